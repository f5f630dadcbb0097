"""The one check that a model's classes and a dataset's agree, for detection, segmentation and
action recognition alike.

Label ids index the vocabulary the model scores, so a dataset with other classes, or the same
classes in another order, would train or score the wrong classes without any error.
"""
from typing import Optional

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log

from ...apis.vocabulary import text_classifiers
from ...registry import register
from ...text import Vocabulary
from ...utils.cli import ConfigError


def normalised_names(names) -> tuple:
    """Names compared as words: mmseg's ADE list spells 'bed ' with a trailing space."""
    return tuple(' '.join(str(n).split()) for n in names)


def scored_vocabulary(model: nn.Module) -> Optional[Vocabulary]:
    """The classes ``model`` scores (its text classifiers share one vocabulary), or None when
    it has no text classifier. Training and evaluation score the same list: novel classes are
    left out of the training logits, not out of the vocabulary."""
    while hasattr(model, 'module'):  # DDP, TTA wrappers
        model = model.module
    classifiers = text_classifiers(model)
    return classifiers[0].vocabulary if classifiers else None


def check_dataset_classes(model: nn.Module, dataset, what: str) -> Optional[Vocabulary]:
    """Refuse (one line) a ``dataset`` whose ``metainfo['classes']`` are not the classes
    ``model`` scores: same names in the same order, spacing ignored. Returns the model's
    vocabulary, or None when there is nothing to compare."""
    vocab = scored_vocabulary(model)
    classes = tuple((getattr(dataset, 'metainfo', None) or {}).get('classes') or ())
    if vocab is None or not classes:
        print_log(f'vocabulary check: {what} classes not compared (no text classifier or no '
                  'dataset class names)', logger='current')
        return None
    dataset_name = type(dataset).__name__
    if len(vocab) != len(classes):
        raise ConfigError(
            f'vocabulary size mismatch: the model predicts {len(vocab)} classes '
            f'(vocabulary {vocab.source!r}) but the {what} dataset {dataset_name} has '
            f'{len(classes)} classes; use a config (or tools/test.py --vocab) whose vocabulary '
            "is the dataset's class list, or --show-dir for pictures without metrics")
    model_names, data_names = normalised_names(vocab.names), normalised_names(classes)
    if model_names != data_names:
        diff = [(i, a, b) for i, (a, b) in enumerate(zip(model_names, data_names)) if a != b]
        raise ConfigError(
            f'class names differ: the model\'s vocabulary {vocab.source!r} and the {what} '
            f'dataset {dataset_name} both have {len(classes)} classes but {len(diff)} names '
            f'differ; first differences (index, model, dataset): {diff[:3]}. Labels index the '
            "vocabulary: give the dataset (metainfo classes) and the model the same class "
            'list in the same order')
    return vocab


@register('HOOKS')
class VocabularyCheckHook(Hook):
    """Refuses to train, validate or test (with metrics) when the dataset's classes are not
    the classes the model scores (``check_dataset_classes``). Runs after
    ``OpenVocabularyHook`` (``--vocab``); ``tools/train.py`` and ``tools/test.py`` add it to
    every config that has none. Loops without metrics (pictures only) are not checked."""
    priority = 'LOW'

    def before_train(self, runner) -> None:
        check_dataset_classes(runner.model, runner.train_dataloader.dataset, 'training')

    def before_val(self, runner) -> None:
        self._check_loop(runner, runner.val_loop, 'validation')

    def before_test(self, runner) -> None:
        self._check_loop(runner, runner.test_loop, 'test')

    def _check_loop(self, runner, loop, what: str) -> Optional[Vocabulary]:
        if not getattr(loop.evaluator, 'metrics', None):
            return None  # pictures only (--vocab ... --show-dir): no labels are scored
        return check_dataset_classes(runner.model, loop.dataloader.dataset, what)


# The names of earlier versions, kept so that configs naming them still build.
register('HOOKS', scopes=('mmdet',), name='DetVocabularyCheckHook')(VocabularyCheckHook)
register('HOOKS', scopes=('mmaction',), name='ActionVocabularyCheckHook')(VocabularyCheckHook)
CHECK_HOOK_TYPES = ('VocabularyCheckHook', 'DetVocabularyCheckHook',
                    'ActionVocabularyCheckHook', 'SegVocabularyCheckHook')
