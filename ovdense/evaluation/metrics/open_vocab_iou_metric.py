"""Open-vocabulary semantic segmentation: mean IoU on novel and on base classes."""
from typing import Dict, List

import numpy as np
from mmseg.evaluation import IoUMetric

from ...registry import register
from ...text.vocabulary import NovelSelection, load_vocabulary, novel_class_ids
from ...utils.cli import ConfigError


@register('METRICS', scopes=('mmseg',))
class OpenVocabIoUMetric(IoUMetric):
    """``IoUMetric`` (same arguments and keys) plus ``mIoU_novel`` and ``mIoU_base``: the mean
    IoU over the novel classes (left out of training) and over the others, every pixel still
    predicted among ALL classes. Means skip classes with no labelled or predicted pixel, as
    mmseg's ``mIoU`` does.

    Args:
        vocabulary / novel_classes: the selection given to the text classifier's
            ``novel_classes`` (LVIS frequency letters such as ``'r'``, ``'novel'`` or names),
            matched by name against the test dataset's classes.
    """

    def __init__(self, vocabulary, novel_classes: NovelSelection = 'r', **kwargs) -> None:
        super().__init__(**kwargs)
        vocab = load_vocabulary(vocabulary)
        self.novel_names = {vocab.names[i] for i in novel_class_ids(vocab, novel_classes)}
        if not self.novel_names:
            raise ConfigError(f'OpenVocabIoUMetric: novel_classes={novel_classes!r} selects '
                              f'no class of {vocab.source!r}')

    def compute_metrics(self, results: List) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        classes = (self.dataset_meta or {}).get('classes')
        if not classes:
            raise ConfigError('OpenVocabIoUMetric needs the test dataset\'s class names')
        missing = sorted(self.novel_names - set(classes))
        if missing:
            raise ConfigError(f'OpenVocabIoUMetric: novel classes {missing[:5]} are not classes '
                              f'of the test dataset')
        intersect, union = (sum(part) for part in tuple(zip(*results))[:2])
        iou = (np.asarray(intersect, dtype=np.float64)
               / np.asarray(union, dtype=np.float64).clip(min=1e-12))
        iou[np.asarray(union) == 0] = np.nan  # a class never labelled nor predicted
        is_novel = np.array([name in self.novel_names for name in classes])
        with np.errstate(all='ignore'):
            for key, mask in (('mIoU_novel', is_novel), ('mIoU_base', ~is_novel)):
                values = iou[mask]
                metrics[key] = (float(np.round(np.nanmean(values) * 100, 2))
                                if np.isfinite(values).any() else float('nan'))
        return metrics
