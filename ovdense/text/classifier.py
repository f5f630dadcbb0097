"""The text-generated cosine classifier: logits = s * cos(W f, t_c), with class weights t_c
produced by a text tower from class prompts instead of learned per class.

One module serves detection (RoI features, (N, C)), segmentation (pixel features,
(B, C, H, W)) and action recognition (clip features, (N, C)).
"""
import contextlib
import hashlib
import math
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn as nn
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

BACKGROUND_MODES = ('learned', 'zero')
# exp() underflows to exactly 0 and sigmoid BCE against a 0 target is exactly 0: a class with
# this logit takes no probability mass and gets no gradient.
NOVEL_TRAINING_LOGIT = -1e4


@register('MODELS')
class TextCosineClassifier(BaseModule):
    """Scaled cosine classifier whose class weights come from a text tower.

    Args:
        in_features: feature channels C of the head (mmdet passes this for
            ``cls_predictor_cfg``).
        vocabulary: any vocabulary spec (dataset name, file, comma list, list).
        text_tower: ``TextTower`` arguments (``model``, ``checkpoint``, ``hf_dir``,
            ``context_length``). May be omitted when ``embeddings_file`` is given.
        prompts: ``PromptStyle.build`` arguments (``templates``, ``use_descriptions``...).
        out_features: outputs the host head expects (mmdet passes ``num_classes + 1``);
            checked against the vocabulary, and decides the background column.
        background: ``'learned'`` embedding, ``'zero'`` logit, or None (no column). Default:
            a learned background when ``out_features == len(vocabulary) + 1``.
        scale: s; iCAR uses 1 / 0.05 = 20. ``learn_scale`` makes it a parameter (clamped to
            ``max_scale``).
        logit_bias: initial value of a learnable bias shared by all classes (a prior for
            sigmoid losses, e.g. -4.6), or None.
        projection: bias-free Linear C -> D (iCAR's ``visual_proj``): ``'auto'`` (only when
            C != D), True, or False (then C must equal D).
        embeddings_file: a prebuilt ``.npy``/``.pt`` (``tools/build_text_classifier.py``);
            used instead of running the text tower.
        train_text_tower: train the tower jointly (one random prompt per class per step,
            sharded over ranks); otherwise it is frozen and its embeddings are cached.
        random_embeddings: control experiment: fixed random class embeddings (seeded by the
            class name) instead of the text tower.
        novel_classes: classes left out while training, as the OV datasets' option of that
            name (LVIS frequency letters such as ``'r'``, ``'novel'`` for a vocabulary's
            ``split`` field, or names; see :func:`~ovdense.text.vocabulary.novel_class_ids`).
            No training box or pixel is labelled with them, so scoring them would only teach
            them (and a jointly trained tower) as negatives. In training their logits are
            a constant ``NOVEL_TRAINING_LOGIT`` (no probability, no loss, no gradient under
            softmax or sigmoid losses) and their prompts are not encoded; evaluation scores
            every class. Label indices are unchanged.
        cache_dir: embedding cache directory (default ``$OVDENSE_CACHE_DIR`` or
            ``~/.cache/ovdense/text_embeddings``).
    """

    def __init__(self, in_features: int, vocabulary, text_tower: Optional[Dict] = None,
                 prompts: Optional[Dict] = None, out_features: Optional[int] = None,
                 background: Optional[str] = None, scale: float = 20.0,
                 learn_scale: bool = False, max_scale: float = 100.0,
                 logit_bias: Optional[float] = None, projection: Union[str, bool] = 'auto',
                 embeddings_file: Optional[str] = None, train_text_tower: bool = False,
                 random_embeddings: bool = False, novel_classes: NovelSelection = None,
                 cache_dir: Optional[str] = None,
                 encode_batch_size: int = 256, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.in_features = in_features
        self.vocabulary = load_vocabulary(vocabulary)
        self.text_tower_cfg = dict(text_tower or {})
        self.prompt_style = PromptStyle.build(**(prompts or {}))
        self.embeddings_file = embeddings_file
        self.random_embeddings = random_embeddings
        # checked when training starts (train()): testing, e.g. with another vocabulary,
        # never selects them
        self.novel_classes = novel_classes
        self._trained_ids: Optional[Tuple[Vocabulary, torch.Tensor]] = None
        self.cache_dir = cache_dir
        self.encode_batch_size = encode_batch_size
        self.embed_dim = self._resolve_embed_dim()
        self.background = self._resolve_background(background, out_features)
        self.projection = self._build_projection(projection)
        self._build_scale(scale, learn_scale, max_scale)
        self.logit_bias = None if logit_bias is None else nn.Parameter(
            torch.tensor(float(logit_bias)))
        if self.background == 'learned':
            self.background_embedding = nn.Parameter(torch.randn(self.embed_dim) * 0.02)
        self.train_text_tower = train_text_tower
        if train_text_tower:
            self._check_tower_configured('train_text_tower=True')
            self.text_tower = TextTower(**self.text_tower_cfg)
            self.text_tower.snapshot_initial_state()
        # Outside the module tree: a frozen tower is not saved, moved or re-initialised.
        self._frozen_embedder: Optional[FrozenTextEmbedder] = None
        self._prompt_token_cache: Optional[PromptTokens] = None
        self._embeddings: Optional[torch.Tensor] = None
        # (background version, (K + 1, D) weights), valid while _embeddings is a view of
        # those weights: see _weights_with_background()
        self._weights_cache: Optional[Tuple[int, torch.Tensor]] = None
        # Joint training whose loss scores a sampled subset of classes per step (set by the
        # host head, see score_classes): only those classes' prompts run through the tower.
        self.encode_scored_classes_only = False
        self._class_bank: Optional[torch.Tensor] = None  # the forward's (detached) weights
        self._scored_features: Optional[torch.Tensor] = None
        self._returns_embedded_features = False  # see embedded_features_only()
        self._register_load_state_dict_pre_hook(self._on_load_state_dict)

    # -- construction ----------------------------------------------------------------------
    @property
    def frozen_embedder(self) -> FrozenTextEmbedder:
        if self._frozen_embedder is None:
            self._frozen_embedder = FrozenTextEmbedder(self.text_tower_cfg,
                                                       EmbeddingCache(self.cache_dir))
        return self._frozen_embedder

    @property
    def num_classes(self) -> int:
        return len(self.vocabulary)

    @property
    def out_features(self) -> int:
        return self.num_classes + (self.background is not None)

    def _check_tower_configured(self, why: str) -> None:
        if not self.text_tower_cfg.get('model'):
            raise ValueError(f"TextCosineClassifier: {why} needs text_tower=dict(model=...)")

    def _check_novel_classes(self) -> None:
        if self.novel_classes is not None and len(self.trained_class_ids()) == 0:
            raise ValueError(f'novel_classes={self.novel_classes!r} leaves no class of '
                             f'{self.vocabulary.source!r} to train on')

    def trained_class_ids(self) -> torch.Tensor:
        """Indices of the classes scored in training mode (all but ``novel_classes``);
        resolved once per vocabulary, not per training step."""
        if self._trained_ids is None or self._trained_ids[0] is not self.vocabulary:
            novel = set(novel_class_ids(self.vocabulary, self.novel_classes))
            ids = torch.tensor([i for i in range(self.num_classes) if i not in novel],
                               dtype=torch.long)
            self._trained_ids = (self.vocabulary, ids)
        return self._trained_ids[1]

    def _leaves_classes_out(self) -> bool:
        return self.training and self.novel_classes is not None

    def _resolve_embed_dim(self) -> int:
        if self.text_tower_cfg.get('model'):
            return int(load_tower_config(self.text_tower_cfg['model'])['embed_dim'])
        if self.embeddings_file:
            return int(load_classifier_file(self.embeddings_file, self.num_classes)[0].shape[1])
        raise ValueError('TextCosineClassifier needs text_tower=dict(model=...) or '
                         'embeddings_file=<.npy/.pt> to know the class embeddings')

    def _resolve_background(self, background: Optional[str], out_features: Optional[int]
                            ) -> Optional[str]:
        k = self.num_classes
        if out_features is not None and out_features not in (k, k + 1):
            raise ValueError(
                f'vocabulary size mismatch: the head expects {out_features} outputs but '
                f'vocabulary {self.vocabulary.source!r} has {k} classes (expected {k} outputs, '
                f'or {k + 1} with a background column); set the head\'s num_classes to {k}')
        if background is None and out_features == k + 1:
            background = 'learned'
        if background is not None and background not in BACKGROUND_MODES:
            raise ValueError(f'background must be one of {BACKGROUND_MODES} or None, '
                             f'got {background!r}')
        if background is not None and out_features == k:
            raise ValueError(f'background={background!r} adds a column but the head expects '
                             f'{out_features} = num_classes outputs')
        return background

    def _build_projection(self, projection: Union[str, bool]) -> nn.Module:
        c, d = self.in_features, self.embed_dim
        if projection == 'auto':
            projection = c != d
        if projection:
            return nn.Linear(c, d, bias=False)
        if c != d:
            raise ValueError(f'TextCosineClassifier: feature dim {c} != text embedding dim {d} '
                             'and projection=False; enable projection or change the head')
        return nn.Identity()

    def _build_scale(self, scale: float, learn_scale: bool, max_scale: float) -> None:
        self.max_scale = max_scale
        if learn_scale:
            self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))
        else:
            self.register_buffer('log_scale', torch.tensor(math.log(scale)), persistent=False)

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=self.max_scale)

    def init_weights(self) -> None:
        super().init_weights()
        # A host head's init_cfg may override everything under fc_cls; restore the tower.
        if self.train_text_tower:
            self.text_tower.reset_parameters()
        self._forget_embeddings()

    def _forget_embeddings(self) -> None:
        self._embeddings = None
        self._weights_cache = None
        self._class_bank = None

    # -- vocabulary ------------------------------------------------------------------------
    def set_vocabulary(self, vocabulary, embeddings_file: Optional[str] = None) -> None:
        """Swap the classes (test-time open vocabulary) without rebuilding the head.

        The file is checked (shape, stored class names, rows) before anything changes: a
        refused file leaves the head on its old classes."""
        vocabulary = load_vocabulary(vocabulary)
        if embeddings_file:
            load_classifier_file(embeddings_file, len(vocabulary), self.embed_dim,
                                 vocabulary.names)
        self.vocabulary = vocabulary
        self.embeddings_file = embeddings_file
        self._forget_embeddings()

    # -- class embeddings ------------------------------------------------------------------
    def class_embeddings(self, device=None) -> torch.Tensor:
        """(K, D) unit-norm class embeddings for the current mode and vocabulary."""
        device = device or self.log_scale.device
        if self._defers_encoding():
            return self._bank_embeddings(device)
        if self.training and self.train_text_tower:
            return self._sampled_embeddings()
        if self._embeddings is None or self._embeddings.device != torch.device(device):
            self._embeddings = self._eval_embeddings(device).to(device)
        return self._embeddings

    def _sampled_embeddings(self) -> torch.Tensor:
        # Batches of encode_batch_size prompts of similar length, each cut to its longest
        # prompt: less padding to run forward and backward through than one batch of K.
        if not self._leaves_classes_out():
            return self._encode_sampled_prompts(None)
        trained = self.trained_class_ids()
        encoded = self._encode_sampled_prompts(trained.tolist())
        # zero rows for the left-out classes: their logits are overwritten in forward
        return encoded.new_zeros(self.num_classes, encoded.shape[1]).index_copy(
            0, trained.to(encoded.device), encoded)

    def _encode_sampled_prompts(self, classes) -> torch.Tensor:
        tokens = self._prompt_tokens().sample(classes)
        return encode_sharded(lambda start, stop: self.text_tower.encode_tokens(
            tokens[start:stop], self.encode_batch_size), len(tokens))

    # -- joint training with a sampled subset of scored classes ----------------------------
    def _defers_encoding(self) -> bool:
        return self.encode_scored_classes_only and self.training and self.train_text_tower

    def _bank_embeddings(self, device) -> torch.Tensor:
        """The forward's class weights when the loss picks the classes it scores after the
        forward: no gradient, kept from the classes' last encoding (the full ensemble at
        first), so the forward's logits stay meaningful for whoever reads them (e.g. Cascade
        R-CNN's refinement). :meth:`score_classes` then recomputes the scored columns."""
        if self._class_bank is None or self._class_bank.device != torch.device(device):
            self._class_bank = self._eval_embeddings(device).to(device)
        return self._class_bank

    def score_classes(self, logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """``logits`` of the last training forward, with the columns of ``classes`` computed
        from freshly encoded prompts (differentiable through the tower).

        For a loss that scores only ``classes`` (federated sampling) this gives the same
        loss and gradients as encoding every class: the other columns carry no gradient.
        """
        if not self._defers_encoding() or self._scored_features is None:
            raise RuntimeError('score_classes follows a training forward with '
                               'encode_scored_classes_only=True and a trainable tower')
        x, self._scored_features = self._scored_features, None
        tokens = self._prompt_tokens().sample(classes.tolist())
        fresh = self.text_tower.encode_tokens(tokens, self.encode_batch_size).to(x.dtype)
        # a new bank, not an in-place update: the forward's product saved the old one
        self._class_bank = self._class_bank.index_copy(0, classes, fresh.detach())
        logits = logits.index_copy(1, classes, self._class_logits(x, fresh))
        return self._without_novel_classes(logits) if self._leaves_classes_out() else logits

    def _prompt_tokens(self) -> PromptTokens:
        """The vocabulary's prompts tokenised once (rebuilt when the vocabulary changes)."""
        if (self._prompt_token_cache is None
                or not self._prompt_token_cache.built_for(self.vocabulary, self.prompt_style)):
            self._prompt_token_cache = PromptTokens(self.text_tower, self.vocabulary,
                                                    self.prompt_style)
        return self._prompt_token_cache

    @torch.no_grad()
    def _eval_embeddings(self, device) -> torch.Tensor:
        if self.embeddings_file:
            return load_classifier_file(self.embeddings_file, self.num_classes,
                                        self.embed_dim)[0]
        if self.random_embeddings:
            return random_class_embeddings(self.vocabulary, self.embed_dim)
        if self.train_text_tower:  # weights change during training: no disk cache
            return build_class_embeddings(self.text_tower, self.vocabulary, self.prompt_style,
                                          self.encode_batch_size,
                                          prompt_tokens=self._prompt_tokens())
        return self._cached_frozen_embeddings(device)

    def _cached_frozen_embeddings(self, device) -> torch.Tensor:
        embeddings, path = self.frozen_embedder.embeddings(
            self.vocabulary, self.prompt_style, device, self.encode_batch_size)
        print_log(f'text embeddings for {self.num_classes} classes: {path}', logger='current')
        return embeddings

    def describe_embeddings(self) -> Dict:
        tower = self.text_tower if self.train_text_tower else (
            self.frozen_embedder.tower if self.frozen_embedder.tower_built else None)
        return describe_embeddings(self.vocabulary, self.prompt_style, tower)

    def train(self, mode: bool = True):
        if mode and self.novel_classes is not None:
            self._check_novel_classes()
        if mode and self.train_text_tower:
            self._embeddings = None
        return super().train(mode)

    def _on_load_state_dict(self, *args, **kwargs) -> None:
        self._forget_embeddings()

    # -- forward ---------------------------------------------------------------------------
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C) -> (N, K[+1]) or (B, C, H, W) -> (B, K[+1], H, W).

        Inside :meth:`embedded_features_only`: (N, C) -> (N, D) embedded features instead.
        """
        dense = features.dim() == 4
        x = self.embed(features.permute(0, 2, 3, 1) if dense else features)
        if self._returns_embedded_features:
            return x
        if self._defers_encoding():
            self._scored_features = x
        if torch.is_grad_enabled():
            logits = self._logits_for_autograd(x, self.class_embeddings(x.device).to(x.dtype))
        else:
            logits = self.logits_of_embedded(x, self.inference_weights(x))
        if self._leaves_classes_out():
            logits = self._without_novel_classes(logits)
        return logits.permute(0, 3, 1, 2) if dense else logits

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., D): projected, unit-norm features times the scale.

        Scaling the features (N x D) rather than the logits (N x K) saves a pass over N x K.
        Normalised in float32: under fp16 autocast the squared norm of small features
        underflows and F.normalize's eps (1e-12) is 0 in fp16, so zero features gave NaN.
        """
        return F.normalize(self.projection(features).float(), dim=-1) * self.scale

    @contextlib.contextmanager
    def embedded_features_only(self):
        """Test time: ``forward`` returns the embedded (N, D) features, so that a caller can
        score them in chunks (:meth:`inference_weights`, :meth:`logits_of_embedded`) and
        never hold all N x K logits at once."""
        if self.training or torch.is_grad_enabled():
            raise RuntimeError('embedded_features_only is for inference: call eval() and '
                               'run under torch.no_grad()')
        self._returns_embedded_features = True
        try:
            yield
        finally:
            self._returns_embedded_features = False

    def inference_weights(self, x: torch.Tensor) -> torch.Tensor:
        """(K[+1], D) in ``x``'s dtype: the class embeddings, then the background row.

        The background is a row of the (small) weights rather than a column appended to
        the (large) logits: the product is then the only N x (K+1) buffer.
        """
        if self.background is None:
            return self.class_embeddings(x.device).to(x.dtype)
        if self.training:  # the embeddings may change every step
            return self._with_background_row(self.class_embeddings(x.device)).to(x.dtype)
        return self._weights_with_background(x.device).to(x.dtype)

    def _with_background_row(self, embeddings: torch.Tensor) -> torch.Tensor:
        return torch.cat([embeddings, self._background_weight(embeddings)])

    def _weights_with_background(self, device) -> torch.Tensor:
        """(K + 1, D): the cached class embeddings and the background row in one tensor,
        kept until the background parameter or the embeddings change, so that testing copies
        no K x D weights per image; the cached class embeddings become a view of its first
        K rows (re-encoded embeddings are not, which is how the cache sees the change)."""
        embeddings = self.class_embeddings(device)
        version = self.background_embedding._version if self.background == 'learned' else 0
        cached = self._weights_cache
        if cached is None or cached[0] != version or embeddings._base is not cached[1]:
            with torch.no_grad():
                weights = self._with_background_row(embeddings)
            self._embeddings = weights[:self.num_classes]
            self._weights_cache = (version, weights)
        return self._weights_cache[1]

    def logits_of_embedded(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Logits of embedded features ``x`` (no autograd), ``weights`` from
        :meth:`inference_weights`; the bias is added in place."""
        logits = x @ weights.t()
        if self.logit_bias is not None:
            logits[..., :self.num_classes] += self.logit_bias
        return logits

    def _logits_for_autograd(self, x: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """The background logit is computed apart: a trainable background row inside the
        weight matrix would make autograd compute a (K+1) x D weight gradient, an extra
        N x D x K product, for one trainable row."""
        logits = self._class_logits(x, embeddings)
        if self.background is None:
            return logits
        return torch.cat([logits, x @ self._background_weight(x).t()], dim=-1)

    def _without_novel_classes(self, logits: torch.Tensor) -> torch.Tensor:
        novel = torch.ones(logits.shape[-1], dtype=torch.bool, device=logits.device)
        novel[self.trained_class_ids().to(logits.device)] = False
        novel[self.num_classes:] = False  # background column
        return logits.masked_fill(novel, NOVEL_TRAINING_LOGIT)

    def _class_logits(self, x: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        logits = x @ embeddings.t()
        return logits if self.logit_bias is None else logits + self.logit_bias

    def _background_weight(self, x: torch.Tensor) -> torch.Tensor:
        """(1, D): the background's unit embedding, or zeros (a logit of 0)."""
        if self.background == 'zero':
            return x.new_zeros(1, x.shape[-1])
        return F.normalize(self.background_embedding, dim=0).to(x.dtype)[None]

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, classes={self.num_classes}, '
                f'dim={self.embed_dim}, background={self.background}, '
                f'train_text_tower={self.train_text_tower}')


def text_classifier_spec(text_classifier, owner: str, set_by_head) -> Dict:
    """Check a host head's ``text_classifier=dict(...)`` and return a copy without ``type``.

    ``set_by_head`` lists the keys the head fills in itself (feature channels, class count).
    """
    from ..utils.cli import ConfigError
    if not isinstance(text_classifier, dict) or not text_classifier.get('vocabulary'):
        raise ConfigError(f'{owner} needs text_classifier=dict(vocabulary=..., '
                          'text_tower=dict(model=...) or embeddings_file=...)')
    spec = dict(text_classifier)
    if spec.pop('type', 'TextCosineClassifier') != 'TextCosineClassifier':
        raise ConfigError(f'{owner}: text_classifier builds a TextCosineClassifier; '
                          f'got type={text_classifier["type"]!r}')
    for key in set_by_head:
        if key in spec:
            raise ConfigError(f'{owner}: text_classifier.{key} is set by the head; remove it '
                              'from the config')
    return spec


def random_class_embeddings(vocabulary: Vocabulary, dim: int) -> torch.Tensor:
    """Fixed random unit vectors seeded by each class name (the no-text control)."""
    rows = []
    for name in vocabulary.names:
        seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], 'little')
        rows.append(torch.randn(dim, generator=torch.Generator().manual_seed(seed)))
    return F.normalize(torch.stack(rows), dim=-1)
