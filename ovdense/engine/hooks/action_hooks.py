"""The check that the action head and the datasets agree on the classes."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log

from ...models.heads import text_head_of
from ...registry import register
from ...utils.cli import ConfigError


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
