"""Hooks for segmentation runs with text classifiers.

* ``SegVocabularyCheckHook``: ``VocabularyCheckHook`` plus a refusal of ground-truth values
  that are neither a class id nor the ignore index.
* ``OVSegVisualizationHook``: mmseg's ``SegVisualizationHook`` for runs whose vocabulary
  may differ from the dataset's (``tools/test.py --vocab ... --show-dir``).
"""
import os.path as osp
from typing import Dict, List, Optional

import mmcv
import torch
from mmengine import fileio
from mmseg.engine.hooks import SegVisualizationHook

from ...registry import register
from ...utils.cli import ConfigError  # user errors: tools print one line and exit 2
from .vocabulary_check_hook import VocabularyCheckHook, normalised_names


def _segmentor(runner):
    model = runner.model
    while hasattr(model, 'module'):  # DDP, SegTTAModel
        model = model.module
    return model


def _decode_head(runner):
    head = getattr(_segmentor(runner), 'decode_head', None)
    if isinstance(head, torch.nn.ModuleList):  # CascadeEncoderDecoder
        head = head[-1]
    return head


@register('HOOKS', scopes=('mmseg',))
class SegVocabularyCheckHook(VocabularyCheckHook):
    """``VocabularyCheckHook`` (the model's classes and the dataset's must agree) plus, for
    val / test with metrics, the label convention: every ground-truth value must be a class
    id or the metric's ``ignore_index``, else mIoU would silently count it as another class.
    """

    def __init__(self, check_labels: bool = True):
        self.check_labels = check_labels
        self._eval_state: Dict[str, Optional[tuple]] = {}

    def before_val(self, runner) -> None:
        self._eval_state['val'] = self._check_eval(runner, runner.val_loop, 'validation')

    def before_test(self, runner) -> None:
        self._eval_state['test'] = self._check_eval(runner, runner.test_loop, 'test')

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._check_outputs(self._eval_state.get('val'), outputs)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._check_outputs(self._eval_state.get('test'), outputs)

    def _check_eval(self, runner, loop, what: str) -> Optional[tuple]:
        vocab = self._check_loop(runner, loop, what)
        if vocab is None or not self.check_labels:
            return None
        metrics = loop.evaluator.metrics
        ignore = [m.ignore_index for m in metrics if hasattr(m, 'ignore_index')]
        if not ignore:
            ignore = [getattr(_decode_head(runner), 'ignore_index', 255)]
        return len(vocab), ignore[0], type(loop.dataloader.dataset).__name__

    @staticmethod
    def _check_outputs(state: Optional[tuple], outputs) -> None:
        if state is None or not outputs:
            return
        num_classes, ignore_index, dataset = state
        for sample in outputs:
            if 'gt_sem_seg' not in sample:
                continue
            gt = sample.gt_sem_seg.data
            bad = (gt < 0) | (gt >= num_classes)
            if ignore_index is not None:
                bad &= gt != ignore_index
            if bool(bad.any()):
                values: List[int] = torch.unique(gt[bad]).tolist()
                raise ConfigError(
                    f'{sample.metainfo.get("seg_map_path", "a label map")}: ground-truth values '
                    f'{values[:10]} are outside the {num_classes} classes of {dataset} and are '
                    f'not the ignore index {ignore_index}; check the label convention '
                    '(reduce_zero_label, 16-bit maps need LoadUInt16SegAnnotations, the '
                    'metric\'s ignore_index)')


@register('HOOKS', scopes=('mmseg',))
class OVSegVisualizationHook(SegVisualizationHook):
    """``SegVisualizationHook`` (same arguments) that works with a test-time vocabulary.

    mmseg's hook steps its pictures by ``runner.iter``, which in a test run builds the
    *training* loop: the training data must then exist (not the case for a test-only
    open-vocabulary config), and the visualizer's class names are reset to the training set's,
    undoing ``--vocab``. This one counts its own pictures. When the visualizer's classes are
    not the dataset's (another vocabulary), the ground truth is not drawn: its ids index the
    dataset's classes, not the names being shown.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._count = 0

    def _after_iter(self, runner, batch_idx: int, data_batch: dict, outputs,
                    mode: str = 'val') -> None:
        if self.draw is False or mode == 'train':
            return
        if not self.every_n_inner_iters(batch_idx, self.interval):
            return
        loop = runner.test_loop if mode == 'test' else runner.val_loop
        dataset_classes = (getattr(loop.dataloader.dataset, 'metainfo', None) or {}).get(
            'classes')
        shown = (self._visualizer.dataset_meta or {}).get('classes')
        draw_gt = dataset_classes is None or shown is None or \
            normalised_names(dataset_classes) == normalised_names(shown)
        for output in outputs:
            self._count += 1
            img = mmcv.imfrombytes(fileio.get(output.img_path, backend_args=self.backend_args),
                                   channel_order='rgb')
            self._visualizer.add_datasample(
                f'{mode}_{osp.basename(output.img_path)}', img, data_sample=output,
                draw_gt=draw_gt, show=self.show, wait_time=self.wait_time, step=self._count)
