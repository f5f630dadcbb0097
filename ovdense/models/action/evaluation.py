"""Open-vocabulary action recognition: the base / novel accuracy metric and a check that the
head and the datasets agree on the classes."""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmaction.evaluation import AccMetric
from mmengine.hooks import Hook
from mmengine.logging import print_log

from ...registry import register
from ...utils.cli import ConfigError
from .classes import resolve_names
from .heads import text_head_of


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


@register('HOOKS', scopes=('mmaction',))
class ActionVocabularyCheckHook(Hook):
    """Refuses to train / evaluate when a dataset's classes are not the classes the
    ``TextI3DHead`` scores in that phase (same names, same order): a mismatch would train or
    score the wrong classes without any error. Runs after ``OpenVocabularyHook`` (--vocab)."""

    priority = 'LOW'

    def before_train(self, runner) -> None:
        self._check(runner, runner.train_dataloader.dataset, training=True, what='training')

    def before_val(self, runner) -> None:
        self._check_loop(runner, runner.val_loop, 'validation')

    def before_test(self, runner) -> None:
        self._check_loop(runner, runner.test_loop, 'test')

    def _check_loop(self, runner, loop, what: str) -> None:
        if not getattr(loop.evaluator, 'metrics', None):
            return  # pictures only (--vocab ... --show-dir): no labels are scored
        self._check(runner, loop.dataloader.dataset, training=False, what=what)

    @staticmethod
    def _check(runner, dataset, training: bool, what: str) -> Optional[bool]:
        head = text_head_of(runner.model)
        classes = tuple((getattr(dataset, 'metainfo', None) or {}).get('classes') or ())
        if head is None or not classes:
            print_log(f'ActionVocabularyCheckHook: {what} classes not checked (no TextI3DHead '
                      'or no dataset class names)', logger='current')
            return None
        vocab = head.vocabulary_for(training)
        if vocab.names != classes:
            diff = [(i, a, b) for i, (a, b) in enumerate(zip(vocab.names, classes)) if a != b]
            raise ConfigError(
                f'the {what} dataset has {len(classes)} classes but the head scores '
                f'{len(vocab)} ({vocab.source}){" while training" if training else ""}; first '
                f'differences (index, head, dataset): {diff[:3]}. Give the dataset and the head '
                'the same vocabulary and selection (VocabVideoDataset classes = TextI3DHead '
                'train_classes)')
        return True
