"""Open-vocabulary action recognition: accuracy on base and novel classes."""
from typing import Dict, List, Sequence, Union

import numpy as np
from mmaction.evaluation import AccMetric

from ...registry import register
from ...text.class_selection import resolve_names
from ...utils.cli import ConfigError


@register('METRICS', scopes=('mmaction',))
class OpenVocabAccMetric(AccMetric):
    """``AccMetric`` (top-k, mean class accuracy over all test classes) plus top-1 on the
    clips of base (trained) and novel (unseen) classes, each predicted among ALL test classes
    (generalised zero-shot), and their harmonic mean.

    Args:
        vocabulary / base_classes: the training selection, as given to the head's
            ``train_classes`` and the training dataset's ``classes``. Novel = every test class
            not among them, matched by name against the test dataset's classes.
    """

    def __init__(self, vocabulary, base_classes: Union[str, Sequence],
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.base_names = set(resolve_names(vocabulary, base_classes))

    def compute_metrics(self, results: List) -> Dict:
        metrics = super().compute_metrics(results)
        classes = (self.dataset_meta or {}).get('classes')
        if not classes:
            raise ConfigError('OpenVocabAccMetric needs the test dataset\'s class names '
                              '(metainfo classes, e.g. VocabVideoDataset)')
        is_base = np.array([name in self.base_names for name in classes])
        labels = np.array([r['label'] for r in results])
        correct = np.array([int(np.argmax(r['pred'])) == r['label'] for r in results])
        on_base = is_base[labels]
        for key, mask in (('base_top1', on_base), ('novel_top1', ~on_base)):
            metrics[key] = float(correct[mask].mean()) if mask.any() else float('nan')
        b, n = metrics['base_top1'], metrics['novel_top1']
        metrics['harmonic_top1'] = 2 * b * n / (b + n) if b + n > 0 else 0.0
        return metrics
