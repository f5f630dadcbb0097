"""Class embeddings: the (K, D) unit-norm text weights of one vocabulary, from one source.

A model has ONE of these components; every text classifier of the model (cascade stages,
decode and auxiliary heads, decoder layers) scores against it (see :mod:`.sharing`). Four
sources, each a registered type:

* ``FileClassEmbeddings``: a prebuilt ``.npy``/``.pt`` (``tools/build_text_classifier.py``).
* ``FrozenTowerClassEmbeddings``: a frozen text tower's prompt-ensemble embeddings, through the
  disk cache (the tower is built only on a cache miss and is not part of the model).
* ``TrainedTowerClassEmbeddings``: a text tower trained with the model: in training, one
  random prompt per class per step, the classes sharded over ranks; at test time the full
  prompt ensemble.
* ``RandomClassEmbeddings``: fixed random vectors seeded by each class name (the control).

The component also holds the class list's novel/base split (``novel_classes``): the classes
scored while training are :meth:`ClassEmbeddings.trained_class_ids`.
"""
import hashlib
from abc import abstractmethod
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule

from ..registry import register
from .distributed import encode_sharded
from .embeddings import (EmbeddingCache, FrozenTextEmbedder, PromptTokens,
                         build_class_embeddings, describe_embeddings, load_classifier_file)
from .prompts import PromptStyle
from .towers import TextTower, load_tower_config
from .vocabulary import NovelSelection, Vocabulary, load_vocabulary, novel_class_ids


class ClassEmbeddings(BaseModule):
    """A vocabulary's class embeddings. Call it for the (K, D) weights to score with now.

    Args:
        vocabulary: any vocabulary spec (dataset name, file, comma list, list).
        novel_classes: classes left out while training (LVIS frequency letters such as
            ``'r'``, ``'novel'`` for a vocabulary's ``split`` field, or names; see
            :func:`~ovdense.text.vocabulary.novel_class_ids`). Checked when training starts.
    """

    trainable = False  # whether the weights change while the model trains

    def __init__(self, vocabulary, novel_classes: NovelSelection = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.vocabulary = load_vocabulary(vocabulary)
        self.novel_classes = novel_classes
        # a file given by set_vocabulary (test-time swap) replaces the source
        self.embeddings_file: Optional[str] = None
        self._trained_ids: Optional[Tuple[Vocabulary, torch.Tensor]] = None
        self._fixed: Optional[torch.Tensor] = None  # fixed() for the current vocabulary

    embed_dim: int

    @property
    def num_classes(self) -> int:
        return len(self.vocabulary)

    # -- the weights -----------------------------------------------------------------------
    def forward(self, device=None) -> torch.Tensor:
        """(K, D) unit rows to score with now (a trainable source overrides this)."""
        return self.fixed(device)

    def fixed(self, device=None) -> torch.Tensor:
        """(K, D) without gradient: the full prompt ensemble (or the file's rows), computed
        once per vocabulary and device."""
        device = torch.device(device or 'cpu')
        if self._fixed is None or self._fixed.device != device:
            with torch.no_grad():
                self._fixed = self._compute_fixed(device).to(device)
        return self._fixed

    def keep_fixed_in(self, rows: torch.Tensor) -> None:
        """Hold :meth:`fixed` as ``rows``: the same values stored elsewhere, e.g. the first K
        rows of a classifier's (K + 1, D) weights, so that the K x D values exist once."""
        if self._fixed is None or rows.shape != self._fixed.shape or not torch.equal(
                rows, self._fixed):
            raise ValueError('keep_fixed_in: the rows differ from the fixed embeddings')
        self._fixed = rows

    def _compute_fixed(self, device: torch.device) -> torch.Tensor:
        if self.embeddings_file:  # also a tower's, after a test-time swap to a file
            return file_rows(self.embeddings_file, self.vocabulary)
        return self._compute(device)

    @abstractmethod
    def _compute(self, device: torch.device) -> torch.Tensor:
        """(K, D) unit rows of the current vocabulary, from this source."""

    def start_step(self) -> None:
        """A training step begins: weights encoded for the previous one are dropped. Called
        by whoever owns the component (the model, or the one classifier using it)."""

    def forget(self) -> None:
        """Drop every computed weight (vocabulary swapped, weights loaded or re-initialised)."""
        self._fixed = None

    # -- the class list --------------------------------------------------------------------
    def set_vocabulary(self, vocabulary, embeddings_file: Optional[str] = None) -> None:
        """Swap the classes (test-time open vocabulary). The file is checked (shape, stored
        class names, rows) before anything changes: a refused file changes nothing."""
        vocabulary = load_vocabulary(vocabulary)
        if embeddings_file:
            load_classifier_file(embeddings_file, len(vocabulary), self.embed_dim,
                                 vocabulary.names)
        self.vocabulary = vocabulary
        self.embeddings_file = embeddings_file
        self.forget()

    def trained_class_ids(self) -> torch.Tensor:
        """Indices of the classes scored in training (all but ``novel_classes``), resolved
        once per vocabulary."""
        if self._trained_ids is None or self._trained_ids[0] is not self.vocabulary:
            novel = set(novel_class_ids(self.vocabulary, self.novel_classes))
            ids = torch.tensor([i for i in range(self.num_classes) if i not in novel],
                               dtype=torch.long)
            self._trained_ids = (self.vocabulary, ids)
        return self._trained_ids[1]

    @property
    def leaves_classes_out(self) -> bool:
        """Whether the classes scored now are fewer than the vocabulary (training with
        ``novel_classes``)."""
        return self.training and self.novel_classes is not None

    def train(self, mode: bool = True):
        if mode and self.novel_classes is not None and len(self.trained_class_ids()) == 0:
            raise ValueError(f'novel_classes={self.novel_classes!r} leaves no class of '
                             f'{self.vocabulary.source!r} to train on')
        return super().train(mode)

    def _load_from_state_dict(self, *args, **kwargs):
        self.forget()
        super()._load_from_state_dict(*args, **kwargs)

    def describe(self) -> Dict:
        """What the embeddings are made from (stored beside built classifier files)."""
        return describe_embeddings(self.vocabulary, PromptStyle.build(), None)

    def extra_repr(self) -> str:
        return f'classes={self.num_classes}, dim={self.embed_dim}'


@register('MODELS')
class FileClassEmbeddings(ClassEmbeddings):
    """Rows of a prebuilt ``.npy``/``.pt`` file, one per class of ``vocabulary``, in order."""

    def __init__(self, vocabulary, embeddings_file: str, novel_classes: NovelSelection = None,
                 init_cfg=None):
        super().__init__(vocabulary, novel_classes, init_cfg)
        self._fixed = file_rows(embeddings_file, self.vocabulary)  # checked once, kept
        self.embed_dim = int(self._fixed.shape[1])
        self.embeddings_file = embeddings_file

    def _compute(self, device: torch.device) -> torch.Tensor:
        return file_rows(self.embeddings_file, self.vocabulary)

    def set_vocabulary(self, vocabulary, embeddings_file: Optional[str] = None) -> None:
        if not embeddings_file:
            raise ValueError('these class embeddings come from a file: a new vocabulary needs '
                             'its own file (tools/build_text_classifier.py)')
        super().set_vocabulary(vocabulary, embeddings_file)


class _PromptedClassEmbeddings(ClassEmbeddings):
    """A source that encodes prompts with a text tower."""

    def __init__(self, vocabulary, text_tower: Dict, prompts: Optional[Dict] = None,
                 encode_batch_size: int = 256, novel_classes: NovelSelection = None,
                 init_cfg=None):
        super().__init__(vocabulary, novel_classes, init_cfg)
        self.embed_dim = tower_embed_dim(text_tower, type(self).__name__)
        self.text_tower_cfg = dict(text_tower)
        self.prompt_style = PromptStyle.build(**(prompts or {}))
        self.encode_batch_size = encode_batch_size


@register('MODELS')
class FrozenTowerClassEmbeddings(_PromptedClassEmbeddings):
    """A frozen text tower's prompt-ensemble embeddings, kept in the disk cache (keyed by
    tower, vocabulary and prompts; atomic; a corrupt entry is rebuilt). The tower is built
    only on a cache miss and is not part of the model (not saved, moved or trained)."""

    def __init__(self, vocabulary, text_tower: Dict, prompts: Optional[Dict] = None,
                 cache_dir: Optional[str] = None, encode_batch_size: int = 256,
                 novel_classes: NovelSelection = None, init_cfg=None):
        super().__init__(vocabulary, text_tower, prompts, encode_batch_size, novel_classes,
                         init_cfg)
        self.cache_dir = cache_dir
        self._embedder: Optional[FrozenTextEmbedder] = None

    @property
    def embedder(self) -> FrozenTextEmbedder:
        if self._embedder is None:
            self._embedder = FrozenTextEmbedder(self.text_tower_cfg,
                                                EmbeddingCache(self.cache_dir))
        return self._embedder

    def _compute(self, device: torch.device) -> torch.Tensor:
        embeddings, path = self.embedder.embeddings(self.vocabulary, self.prompt_style, device,
                                                    self.encode_batch_size)
        print_log(f'text embeddings for {self.num_classes} classes: {path}', logger='current')
        return embeddings

    def describe(self) -> Dict:
        tower = self.embedder.tower if self.embedder.tower_built else None
        return describe_embeddings(self.vocabulary, self.prompt_style, tower)


@register('MODELS')
class TrainedTowerClassEmbeddings(_PromptedClassEmbeddings):
    """A text tower trained jointly with the model (iCAR).

    In training, :meth:`training_weights` encodes one random prompt per class, once per step
    however many classifiers read it, each rank encoding a slice of the classes (gradients
    gathered back); novel classes are not encoded (zero rows). A loss that scores a sampled
    subset of the classes per step (federated) reads the detached :meth:`bank` instead and
    encodes only the scored classes with :meth:`encode`. At test time: the full ensemble.
    """

    trainable = True

    def __init__(self, vocabulary, text_tower: Dict, prompts: Optional[Dict] = None,
                 encode_batch_size: int = 256, novel_classes: NovelSelection = None,
                 init_cfg=None):
        super().__init__(vocabulary, text_tower, prompts, encode_batch_size, novel_classes,
                         init_cfg)
        self.tower = TextTower(**self.text_tower_cfg)
        self.tower.snapshot_initial_state()
        self._tokens: Optional[PromptTokens] = None
        self._step_weights: Optional[torch.Tensor] = None
        self._bank: Optional[torch.Tensor] = None

    def init_weights(self) -> None:
        # a host head's init_cfg may have reached the tower: back to its pretrained state
        self.tower.reset_parameters()
        self.forget()

    def forget(self) -> None:
        super().forget()
        self._step_weights = self._bank = None

    def train(self, mode: bool = True):
        # the ensemble changes while training; the bank (classes as last encoded) stays
        self._fixed = self._step_weights = None
        return super().train(mode)

    def start_step(self) -> None:
        self._step_weights = None

    def forward(self, device=None) -> torch.Tensor:
        """In training: the rows encoded for this step (:meth:`training_weights`); else the
        full ensemble (:meth:`fixed`)."""
        return self.training_weights() if self.training else self.fixed(device)

    def prompt_tokens(self) -> PromptTokens:
        """The vocabulary's prompts tokenised once (rebuilt when the vocabulary changes)."""
        if self._tokens is None or not self._tokens.built_for(self.vocabulary,
                                                              self.prompt_style):
            self._tokens = PromptTokens(self.tower, self.vocabulary, self.prompt_style)
        return self._tokens

    def _compute(self, device: torch.device) -> torch.Tensor:
        # weights change during training: no disk cache
        return build_class_embeddings(self.tower, self.vocabulary, self.prompt_style,
                                      self.encode_batch_size, prompt_tokens=self.prompt_tokens())

    def training_weights(self) -> torch.Tensor:
        if self._step_weights is None:
            weights = self._encode_step()
            if weights.requires_grad:
                # The step also ends when backward has passed through its encoding (whose
                # graph is then freed): a classifier that runs before the step's starter in
                # the next forward (DINO's encoder proposals before decoder layer 0) encodes
                # afresh instead of reusing it.
                weights.register_hook(self._end_step)
            self._step_weights = weights
        return self._step_weights

    def _end_step(self, grad: torch.Tensor) -> None:
        self._step_weights = None

    def _encode_step(self) -> torch.Tensor:
        # batches of similar-length prompts, each cut to its longest: less padding to run
        # forward and backward through than one batch of K
        if not self.leaves_classes_out:
            return self._encode_sharded(None)
        trained = self.trained_class_ids()
        encoded = self._encode_sharded(trained.tolist())
        return encoded.new_zeros(self.num_classes, encoded.shape[1]).index_copy(
            0, trained.to(encoded.device), encoded)

    def _encode_sharded(self, classes) -> torch.Tensor:
        tokens = self.prompt_tokens().sample(classes)
        return encode_sharded(lambda start, stop: self.tower.encode_tokens(
            tokens[start:stop], self.encode_batch_size), len(tokens))

    def bank(self, device=None) -> torch.Tensor:
        """(K, D) without gradient: each class as last encoded (the ensemble at first)."""
        device = torch.device(device or 'cpu')
        if self._bank is None or self._bank.device != device:
            self._bank = self.fixed(device)  # encode() replaces the bank, never edits it
        return self._bank

    def encode(self, classes: torch.Tensor) -> torch.Tensor:
        """(len(classes), D): one random prompt of each class freshly encoded (with
        gradient); the bank keeps them."""
        tokens = self.prompt_tokens().sample(classes.tolist())
        fresh = self.tower.encode_tokens(tokens, self.encode_batch_size)
        bank = self.bank(fresh.device)
        # a new bank, not an in-place update: products already computed saved the old one
        self._bank = bank.index_copy(0, classes.to(bank.device), fresh.detach().to(bank.dtype))
        return fresh

    def describe(self) -> Dict:
        return describe_embeddings(self.vocabulary, self.prompt_style, self.tower)


@register('MODELS')
class RandomClassEmbeddings(ClassEmbeddings):
    """Fixed random unit vectors seeded by each class name (the no-text control).

    ``embed_dim``, or ``text_tower=dict(model=...)`` whose embedding size it takes."""

    def __init__(self, vocabulary, embed_dim: Optional[int] = None,
                 text_tower: Optional[Dict] = None, novel_classes: NovelSelection = None,
                 init_cfg=None):
        super().__init__(vocabulary, novel_classes, init_cfg)
        self.embed_dim = (int(embed_dim) if embed_dim is not None
                          else tower_embed_dim(text_tower, 'RandomClassEmbeddings (or embed_dim)'))

    def _compute(self, device: torch.device) -> torch.Tensor:
        return random_class_embeddings(self.vocabulary, self.embed_dim)


def tower_embed_dim(text_tower, owner: str) -> int:
    """The embedding size of a ``text_tower=dict(model=...)`` setting (its model config)."""
    if not (isinstance(text_tower, dict) and text_tower.get('model')):
        raise ValueError(f'{owner} needs text_tower=dict(model=...)')
    return int(load_tower_config(text_tower['model'])['embed_dim'])


def file_rows(path: str, vocabulary: Vocabulary) -> torch.Tensor:
    """The unit rows of a classifier file, checked against the vocabulary's size and names."""
    return load_classifier_file(path, len(vocabulary), None, vocabulary.names)[0]


def random_class_embeddings(vocabulary: Vocabulary, dim: int) -> torch.Tensor:
    """Fixed random unit vectors seeded by each class name."""
    rows = []
    for name in vocabulary.names:
        seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], 'little')
        rows.append(torch.randn(dim, generator=torch.Generator().manual_seed(seed)))
    return F.normalize(torch.stack(rows), dim=-1)


# -- the classic one-dict settings -----------------------------------------------------------
SOURCE_KEYS = ('vocabulary', 'text_tower', 'prompts', 'embeddings_file', 'train_text_tower',
               'random_embeddings', 'novel_classes', 'cache_dir', 'encode_batch_size')


def class_embeddings_cfg(vocabulary=None, text_tower: Optional[Dict] = None,
                         prompts: Optional[Dict] = None, embeddings_file: Optional[str] = None,
                         train_text_tower: bool = False, random_embeddings: bool = False,
                         novel_classes: NovelSelection = None, cache_dir: Optional[str] = None,
                         encode_batch_size: int = 256) -> Dict:
    """The component config (``dict(type=...)``) that a head's ``text_classifier`` flags
    describe: a file, else random, else a trained or frozen tower."""
    common = dict(vocabulary=vocabulary, novel_classes=novel_classes)
    if sum(map(bool, (embeddings_file, train_text_tower, random_embeddings))) > 1:
        raise ValueError('choose one class embedding source: embeddings_file, '
                         'train_text_tower=True or random_embeddings=True')
    if embeddings_file:
        return dict(common, type='FileClassEmbeddings', embeddings_file=embeddings_file)
    if random_embeddings:
        return dict(common, type='RandomClassEmbeddings', text_tower=text_tower)
    if not (isinstance(text_tower, dict) and text_tower.get('model')):
        why = 'train_text_tower=True' if train_text_tower else 'the class embeddings'
        raise ValueError(f'TextCosineClassifier: {why} needs text_tower=dict(model=...) '
                         'or embeddings_file=<.npy/.pt>')
    tower = dict(common, text_tower=text_tower, prompts=prompts,
                 encode_batch_size=encode_batch_size)
    if train_text_tower:
        return dict(tower, type='TrainedTowerClassEmbeddings')
    return dict(tower, type='FrozenTowerClassEmbeddings', cache_dir=cache_dir)


SOURCES = {cls.__name__: cls for cls in (FileClassEmbeddings, FrozenTowerClassEmbeddings,
                                         TrainedTowerClassEmbeddings, RandomClassEmbeddings)}


def _check_source_type(cfg) -> None:
    if not isinstance(cfg, dict) or cfg.get('type') not in SOURCES:
        kind = cfg.get('type') if isinstance(cfg, dict) else type(cfg).__name__
        raise ValueError(f'class_embeddings: type must be one of {sorted(SOURCES)}, got '
                         f'{kind!r}')


def build_class_embeddings_source(cfg) -> ClassEmbeddings:
    """A component from its config (``dict(type=<one of SOURCES>, ...)``) or itself."""
    if isinstance(cfg, ClassEmbeddings):
        return cfg
    _check_source_type(cfg)
    args = dict(cfg)
    return SOURCES[args.pop('type')](**args)


def embed_dim_of(cfg: Dict) -> int:
    """The embedding size D of a component config, without building the component (whose
    construction may draw random numbers: see ``TextCosineClassifier``)."""
    _check_source_type(cfg)
    if cfg.get('embed_dim') is not None:
        return int(cfg['embed_dim'])
    if cfg['type'] == 'FileClassEmbeddings':
        return int(file_rows(cfg['embeddings_file'],
                             load_vocabulary(cfg.get('vocabulary'))).shape[1])
    return tower_embed_dim(cfg.get('text_tower'), cfg['type'])
