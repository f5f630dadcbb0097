"""Hooks that bring ovdense behaviour into the stock mmengine loops."""
import hashlib
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner.utils import set_random_seed

from ...apis.vocabulary import set_model_vocabulary
from ...registry import register
from ...utils.cli import ConfigError
from ...utils.io import OvdenseFileError
from ...visualization import distinct_palette
from .vocabulary_check_hook import normalised_names


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


def step_seed(seed: int, step: int, unit: str = 'batch') -> int:
    """A 32-bit seed for ``step`` (a batch or an epoch) of a run seeded with ``seed``."""
    digest = hashlib.sha256(f'ovdense:{seed}:{unit}:{step}'.encode()).digest()
    return int.from_bytes(digest[:4], 'little')


class _ReseedingIterator:
    """Wraps ``IterBasedTrainLoop.dataloader_iterator``: before the n-th batch is drawn, every
    generator is seeded from (run seed, n)."""

    def __init__(self, iterator, runner):
        self._inner = iterator
        self._runner = runner
        self._drawn = 0

    def __iter__(self):
        return self

    def __next__(self):
        set_random_seed(step_seed(self._runner.seed, self._drawn))
        self._drawn += 1
        return next(self._inner)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@register('HOOKS')
class TrainOnlyHook(Hook):
    """Trains only the parameters whose names contain one of ``names`` (e.g. BALLAD's phase B:
    ``names=('.adapter.',)``); every other parameter gets ``requires_grad=False`` before the
    first step, so the optimizer never moves it (a frozen parameter has no gradient, hence no
    update and no weight decay). Refuses a pattern list that matches no parameter."""
    priority = 'VERY_HIGH'

    def __init__(self, names=('.adapter.',)):
        self.names = (names,) if isinstance(names, str) else tuple(names)

    def before_train(self, runner) -> None:
        model = getattr(runner.model, 'module', runner.model)
        trained = []
        for name, parameter in model.named_parameters():
            keep = any(pattern in name for pattern in self.names)
            parameter.requires_grad_(keep)
            if keep:
                trained.append(name)
        if not trained:
            raise ConfigError(f'TrainOnlyHook: no parameter name contains any of {self.names}; '
                              'e.g. the text classifiers need adapter_ratio for \'.adapter.\'')
        print_log(f'TrainOnlyHook: training {len(trained)} parameter tensors '
                  f'({sum(model.get_parameter(n).numel() for n in trained)} values), '
                  'everything else frozen', logger='current')


@register('HOOKS')
class ExactResumeHook(Hook):
    """An interrupted run resumed with ``--resume`` continues exactly as the uninterrupted
    run would have: same batches, same random draws, same weights.

    mmengine's resume restores weights, optimizer, parameter schedulers and message hub, and
    ``IterBasedTrainLoop`` re-draws (and drops) the batches already trained, so a seeded
    sampler (``InfiniteSampler``, ``DefaultSampler``) is back at its position. The random
    number generators are not restored: they restart from the seed, and the re-drawn batches
    consume them again, so data augmentation (with ``num_workers=0``), RoI / pixel sampling
    and prompt sampling take another path after a resume.

    This hook makes the random state a function of the position in training: python, numpy
    and torch generators are seeded from (run seed, n) before the n-th batch is drawn
    (iteration-based loops; the batches mmengine re-draws on resume count, so the first new
    batch gets the seed it had in the uninterrupted run), or from (run seed, epoch) before each
    epoch (epoch-based loops, which resume at epoch boundaries). Nothing is stored in
    checkpoints and no process talks to another, so it holds for every rank of a distributed
    run. The run seed is mmengine's (``randomness.seed``, per rank with ``diff_rank_seed``;
    kept in the checkpoint). Data loader workers (``num_workers > 0``) keep their own
    generators, which mmengine's re-drawing already puts back in place (except for
    ``persistent_workers`` across epochs of an epoch-based loop). ``tools/train.py`` adds this
    hook to every training run.
    """
    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator') and not isinstance(loop.dataloader_iterator,
                                                                   _ReseedingIterator):
            loop.dataloader_iterator = _ReseedingIterator(loop.dataloader_iterator, runner)

    def before_train_epoch(self, runner) -> None:
        if not hasattr(runner.train_loop, 'dataloader_iterator'):  # epoch-based loop
            set_random_seed(step_seed(runner.seed, runner.epoch, 'epoch'))


@register('HOOKS')
class CheckpointMatchHook(Hook):
    """Testing: the checkpoint must hold every weight of the config's model, in its shape.

    mmengine loads test checkpoints non-strictly and only logs what is missing, so a
    checkpoint of another model (a segmenter for a detector, another backbone size) would be
    evaluated with partly random weights. ``tools/test.py`` adds this hook; it checks the
    loaded file against the model before the weights are copied and refuses a mismatch with
    the file's name and examples. Extra entries in the checkpoint are allowed.
    """
    priority = 'VERY_HIGH'

    def __init__(self, checkpoint: Optional[str] = None):
        self.checkpoint = checkpoint

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if getattr(runner, '_resume', False):
            return
        import re

        from mmengine.model import BaseTTAModel, is_model_wrapper
        model = runner.model
        while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
            model = model.module
        state = checkpoint.get('state_dict', checkpoint)
        state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}  # as mmengine
        expected = model.state_dict()
        missing = [k for k in expected if k not in state]
        reshaped = [f'{k} {tuple(state[k].shape)} vs {tuple(v.shape)}'
                    for k, v in expected.items()
                    if k in state and getattr(state[k], 'shape', v.shape) != v.shape]
        if not missing and not reshaped:
            return
        source = self.checkpoint or getattr(runner, '_load_from', None) or 'the checkpoint'
        matched = len(expected) - len(missing) - len(reshaped)
        problems = []
        if missing:
            problems.append(f'{len(missing)} missing (e.g. {", ".join(missing[:3])})')
        if reshaped:
            problems.append(f'{len(reshaped)} of another shape (checkpoint vs model, e.g. '
                            f'{"; ".join(reshaped[:3])})')
        raise OvdenseFileError(
            f'checkpoint {source!r} does not fit the model of this config '
            f'({type(model).__name__}): {matched} of {len(expected)} weights match by name and '
            f'shape, {" and ".join(problems)}. Was it trained with another config?')
