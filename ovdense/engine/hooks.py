"""Hooks that bring ovdense behaviour into the stock mmengine loops."""
from typing import List, Optional, Tuple

import numpy as np

from mmengine.hooks import Hook
from mmengine.logging import print_log

from ..apis import set_model_vocabulary
from ..utils.cli import ConfigError
from ..registry import register


def normalised_names(names) -> tuple:
    """Names compared as words: mmseg's ADE list spells 'bed ' with a trailing space."""
    return tuple(' '.join(str(n).split()) for n in names)


def distinct_palette(count: int, seed: int = 0) -> List[Tuple[int, int, int]]:
    """A fixed list of bright colours, one per class."""
    rng = np.random.default_rng(seed)
    return [tuple(int(v) for v in rng.integers(40, 256, 3)) for _ in range(count)]


@register('HOOKS')
class OpenVocabularyHook(Hook):
    """Tests (or validates) with another vocabulary than the model was trained on.

    After the checkpoint is loaded, the model's text classifiers switch to ``vocabulary``.
    Metrics need the dataset's own classes: a vocabulary with other names is refused for
    evaluation unless ``evaluate=False`` (visual output only, e.g. ``--show-dir``).
    """
    priority = 'VERY_HIGH'

    def __init__(self, vocabulary, embeddings_file: Optional[str] = None,
                 evaluate: bool = True):
        self.vocabulary = vocabulary
        self.embeddings_file = embeddings_file
        self.evaluate = evaluate

    _visual_only = False

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        """Visual output only: the ground truth speaks the dataset's classes, not this
        vocabulary, so it is not drawn (this hook runs before the visualization hook)."""
        if self._visual_only:
            for sample in outputs or ():
                for key in [k for k in sample.keys() if k.startswith('gt_')]:
                    delattr(sample, key)

    def before_test(self, runner) -> None:
        self._apply(runner, runner.test_loop)

    def before_val(self, runner) -> None:
        self._apply(runner, runner.val_loop)

    def _apply(self, runner, loop) -> None:
        vocab = set_model_vocabulary(runner.model, self.vocabulary, self.embeddings_file)
        dataset_classes = tuple(loop.dataloader.dataset.metainfo.get('classes') or ())
        if normalised_names(vocab.names) != normalised_names(dataset_classes):
            if self.evaluate:
                raise ConfigError(
                    f'vocabulary {vocab.source!r} ({len(vocab)} classes) differs from the '
                    f'classes of {type(loop.dataloader.dataset).__name__} '
                    f'({len(dataset_classes)} classes): metrics need the dataset\'s own class '
                    'list in its order. For pictures only, run with --show-dir (no metrics).')
            loop.evaluator.metrics = []
            self._visual_only = True
            print_log(f'vocabulary differs from the dataset classes: metrics skipped, '
                      f'predictions use {len(vocab)} classes', logger='current')
        meta = dict(runner.visualizer.dataset_meta or {})
        meta['classes'] = vocab.names
        if len(meta.get('palette') or ()) < len(vocab):
            meta['palette'] = distinct_palette(len(vocab))
        runner.visualizer.dataset_meta = meta
        print_log(f'test vocabulary: {len(vocab)} classes from {vocab.source}',
                  logger='current')
