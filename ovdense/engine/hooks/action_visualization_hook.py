"""``tools/test.py --show / --show-dir`` for action recognition.

MMAction2 1.2.0's ``VisualizationHook`` cannot draw the ``NCTHW`` clips of 3D recognizers, and
its default runtime defines no visualization hook. This one draws each clip as a strip of
frames captioned with its label and the top-k predicted classes, named in the vocabulary the
model scores (after ``--vocab``, the new one).
"""
import os.path as osp
from typing import Optional, Sequence

import torch
from mmengine.hooks import Hook

from ...registry import register
from ...visualization.clips import captioned, frame_strip
from .vocabulary_check_hook import scored_vocabulary


@register('HOOKS', scopes=('mmaction',))
class ActionVisualizationHook(Hook):
    """Draw action predictions of val / test clips.

    Args:
        draw: draw at all (``tools/test.py`` turns it on for ``--show`` / ``--show-dir``).
        interval: draw the batches whose index is a multiple of ``interval``: every clip of
            them in test, the first clip in validation.
        show: show each picture in a window for ``wait_time`` seconds.
        topk: predicted classes named in the caption.

    Pictures go through the runner's visualizer (its ``save_dir``: ``--show-dir``), named
    after the video file when the pipeline packs ``filename`` into the metainfo (mmaction2's
    ``PackActionInputs(meta_keys=...)``), else ``clip_<n>`` in the loop's order.
    """
    priority = 'NORMAL'  # after OpenVocabularyHook, which renames the classes

    def __init__(self, draw: bool = False, interval: int = 1, show: bool = False,
                 wait_time: float = 0., topk: int = 3) -> None:
        self.draw = draw
        self.interval = max(1, int(interval))
        self.show = show
        self.wait_time = wait_time
        self.topk = topk
        self._drawn = 0

    def before_val(self, runner) -> None:
        self._drawn = 0

    def before_test(self, runner) -> None:
        self._drawn = 0

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._draw_batch(runner, batch_idx, data_batch, (outputs or [])[:1], runner.iter)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._draw_batch(runner, batch_idx, data_batch, outputs or [], 0)

    def _draw_batch(self, runner, batch_idx: int, data_batch, outputs: Sequence,
                    step: int) -> None:
        if not self.draw or batch_idx % self.interval:
            return
        names = self._class_names(runner)
        visualizer = runner.visualizer
        for index, sample in enumerate(outputs):
            strip, _, _ = frame_strip(data_batch['inputs'][index])
            drawn = captioned(visualizer, strip, self.caption(sample, names))
            filename = sample.metainfo.get('filename')
            name = (osp.splitext(osp.basename(str(filename)))[0] if filename
                    else f'clip_{self._drawn:05d}')
            self._drawn += 1
            if self.show:
                visualizer.show(drawn, win_name=name, wait_time=self.wait_time)
            visualizer.add_image(name, drawn, step=step)

    @staticmethod
    def _class_names(runner) -> Optional[Sequence[str]]:
        vocab = scored_vocabulary(runner.model)
        if vocab is not None:
            return vocab.names
        return (runner.visualizer.dataset_meta or {}).get('classes')

    def caption(self, sample, names: Optional[Sequence[str]]) -> str:
        """``label: <name>`` (when the sample has one) and ``pred: <name> <score>`` lines."""
        def name_of(label: int) -> str:
            return names[label] if names is not None and 0 <= label < len(names) else str(label)

        lines = []
        if 'gt_label' in sample:
            labels = torch.as_tensor(sample.gt_label).flatten().tolist()
            lines.append('label: ' + ', '.join(name_of(int(i)) for i in labels))
        if 'pred_score' in sample:
            scores = torch.as_tensor(sample.pred_score).float().flatten()
            top = scores.topk(min(self.topk, scores.numel()))
            lines += [f'pred: {name_of(int(i))} {float(s):.2f}'
                      for s, i in zip(top.values, top.indices)]
        return '\n'.join(lines) or 'no prediction'
