"""Hooks for segmentation runs with text classifiers.

* ``SegVocabularyCheckHook``: refuses to train or evaluate when the model's classes and the
  dataset's differ in number (labels would index the wrong classes, mIoU would be silently
  wrong), and ground-truth values that are neither a class id nor the ignore index. Before
  val / test it also re-syncs the segmentor's class count with its decode head (after a
  ``--vocab`` swap).
* ``OVSegVisualizationHook``: mmseg's ``SegVisualizationHook`` for runs whose vocabulary
  may differ from the dataset's (``tools/test.py --vocab ... --show-dir``).
"""
import os.path as osp
from typing import Dict, List, Optional

import mmcv
import torch
from mmengine import fileio
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.engine.hooks import SegVisualizationHook

from ...registry import register
from ...utils.cli import ConfigError  # user errors: tools print one line and exit 2
from .runtime_hooks import normalised_names


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
class SegVocabularyCheckHook(Hook):
    """Checks that a segmentation model's classes and a dataset's agree before they meet.

    * train: the decode head's ``num_classes`` must equal the number of dataset classes
      (label ids index the vocabulary).
    * val / test with metrics: the same (after any ``OpenVocabularyHook`` swap; this hook runs
      later), else mIoU would silently count predictions as absent classes; and every
      ground-truth value must be a class id or the metric's ``ignore_index``.
    Class names that differ only in spacing (mmseg's ``'bed '``) are equal; other name
    differences are reported as a warning.
    """
    priority = 'LOW'

    def __init__(self, check_labels: bool = True):
        self.check_labels = check_labels
        self._eval_state: Dict[str, Optional[tuple]] = {}

    def before_train(self, runner) -> None:
        self._check_classes(runner, runner.train_dataloader.dataset, 'training')

    def before_val(self, runner) -> None:
        self._eval_state['val'] = self._check_eval(runner, runner.val_loop, 'validation')

    def before_test(self, runner) -> None:
        self._eval_state['test'] = self._check_eval(runner, runner.test_loop, 'test')

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._check_outputs(self._eval_state.get('val'), outputs)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._check_outputs(self._eval_state.get('test'), outputs)

    # ----------------------------------------------------------------------------------
    def _check_classes(self, runner, dataset, what: str) -> Optional[int]:
        head = _decode_head(runner)
        classes = tuple((getattr(dataset, 'metainfo', None) or {}).get('classes') or ())
        if head is None or not classes:
            return None
        num_classes = int(head.num_classes)
        classifier = getattr(head, 'conv_seg', None)
        vocab = getattr(classifier, 'vocabulary', None)
        source = f' (vocabulary {vocab.source!r})' if vocab is not None else ''
        if num_classes != len(classes):
            raise ConfigError(
                f'vocabulary size mismatch: the model predicts {num_classes} classes{source} '
                f'but the {what} dataset {type(dataset).__name__} has {len(classes)} classes; '
                'use a config (or tools/test.py --vocab) whose vocabulary is the dataset\'s '
                'class list, or --show-dir for pictures without metrics')
        if vocab is not None and normalised_names(vocab.names) != normalised_names(classes):
            diff = [(i, a, b) for i, (a, b) in enumerate(zip(vocab.names, classes))
                    if normalised_names([a]) != normalised_names([b])]
            print_log(f'the model\'s vocabulary and the {what} dataset\'s classes have the same '
                      f'size but {len(diff)} names differ, e.g. {diff[:3]}', logger='current',
                      level=30)
        return num_classes

    def _check_eval(self, runner, loop, what: str) -> Optional[tuple]:
        metrics = list(getattr(loop.evaluator, 'metrics', []) or [])
        if not metrics:  # e.g. --show-dir with another vocabulary: pictures only
            return None
        num_classes = self._check_classes(runner, loop.dataloader.dataset, what)
        if num_classes is None or not self.check_labels:
            return None
        ignore = [m.ignore_index for m in metrics if hasattr(m, 'ignore_index')]
        if not ignore:
            head = _decode_head(runner)
            ignore = [getattr(head, 'ignore_index', 255)]
        return num_classes, ignore[0], type(loop.dataloader.dataset).__name__

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
