"""Open-vocabulary action recognition: accuracy on base and novel classes."""
from typing import Dict, List

import numpy as np
from mmaction.evaluation import AccMetric

from ...registry import register
from ...text.vocabulary import NovelSelection, load_vocabulary, novel_class_ids
from ...utils.cli import ConfigError


@register('METRICS', scopes=('mmaction',))
class OpenVocabAccMetric(AccMetric):
    """``AccMetric`` (top-k, mean class accuracy over all test classes) plus, on the clips of
    base (trained) and of novel (unseen) classes, each predicted among ALL test classes
    (generalised zero-shot): top-1 (``base_top1``, ``novel_top1``, their harmonic mean
    ``harmonic_top1``) and mean class accuracy (``base_mean1``, ``novel_mean1``: the mean over
    the split's classes that have test clips of their per-class top-1). Also
    ``novel_only_top1``: the novel clips predicted among the novel classes alone (the
    zero-shot protocol of action recognition papers, where seen classes do not compete).

    Args:
        vocabulary / novel_classes: the split given to the class-embedding component's
            ``novel_classes`` and the training dataset's (names and/or label ids of
            ``vocabulary``). Base = every other test class; matched by name against the test
            dataset's classes.
        base_classes: removed (refused in one line); say ``novel_classes``.
    """

    def __init__(self, vocabulary, novel_classes: NovelSelection = None, base_classes=None,
                 **kwargs) -> None:
        if base_classes is not None:
            raise ConfigError('OpenVocabAccMetric: base_classes was replaced by novel_classes '
                              '(the same selection as the model\'s and the dataset\'s)')
        super().__init__(**kwargs)
        vocab = load_vocabulary(vocabulary)
        novel = set(novel_class_ids(vocab, novel_classes))
        if not novel:
            raise ConfigError('OpenVocabAccMetric: novel_classes selects no class of '
                              f'{vocab.source!r}')
        self.base_names = {name for i, name in enumerate(vocab.names) if i not in novel}

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
        for split, mask in (('base', on_base), ('novel', ~on_base)):
            metrics[f'{split}_top1'] = float(correct[mask].mean()) if mask.any() else float('nan')
            per_class = [correct[labels == label].mean() for label in np.unique(labels[mask])]
            metrics[f'{split}_mean1'] = float(np.mean(per_class)) if per_class else float('nan')
        metrics['novel_only_top1'] = self._top1_among(results, ~is_base, ~on_base)
        b, n = metrics['base_top1'], metrics['novel_top1']
        metrics['harmonic_top1'] = 2 * b * n / (b + n) if b + n > 0 else 0.0
        return metrics

    @staticmethod
    def _top1_among(results: List, classes: np.ndarray, clips: np.ndarray) -> float:
        """Top-1 of the selected clips when only the selected classes may be predicted."""
        if not clips.any():
            return float('nan')
        allowed = np.flatnonzero(classes)
        picked = [r for r, keep in zip(results, clips) if keep]
        predicted = [allowed[int(np.argmax(np.asarray(r['pred'])[allowed]))] for r in picked]
        return float(np.mean([p == r['label'] for p, r in zip(predicted, picked)]))
