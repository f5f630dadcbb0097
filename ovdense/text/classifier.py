"""The text-generated cosine classifier: logits = s * cos(W f, t_c), with class weights t_c
given by a class-embedding component (:mod:`.class_embeddings`), not learned per class.

One module serves detection (RoI features, (N, C)), segmentation (pixel features,
(B, C, H, W)) and action recognition (clip features, (N, C)). It projects, normalises and
scales the features, adds a bias and a background column, masks novel classes in training,
and scores against the weights of its component: its own (built from the classic
``text_classifier`` settings) or the model's shared one (:mod:`.sharing`).
"""
import math
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from ..registry import register
from .class_embeddings import (SOURCE_KEYS, ClassEmbeddings, build_class_embeddings_source,
                               class_embeddings_cfg, embed_dim_of)
from .vocabulary import Vocabulary, load_vocabulary

BACKGROUND_MODES = ('learned', 'zero')
# exp() underflows to exactly 0 and sigmoid BCE against a 0 target is exactly 0: a class with
# this logit takes no probability mass and gets no gradient.
NOVEL_TRAINING_LOGIT = -1e4


@register('MODELS')
class TextCosineClassifier(BaseModule):
    """Scaled cosine classifier whose class weights come from a text source.

    Args:
        in_features: feature channels C of the head (mmdet passes this for
            ``cls_predictor_cfg``).
        class_embeddings: the component to score against (a
            :class:`~ovdense.text.class_embeddings.ClassEmbeddings`, shared with the other
            classifiers of the model and not saved under this module), or its config
            ``dict(type=...)``. When omitted, the classic settings below build one owned by
            this classifier: ``vocabulary``, ``text_tower`` (``TextTower`` arguments),
            ``prompts`` (``PromptStyle.build`` arguments), ``embeddings_file`` (a prebuilt
            ``.npy``/``.pt``), ``train_text_tower`` (train the tower jointly),
            ``random_embeddings`` (the no-text control), ``novel_classes`` (classes left out
            while training: their logits are ``NOVEL_TRAINING_LOGIT``, no probability, no loss,
            no gradient; evaluation scores every class), ``cache_dir``,
            ``encode_batch_size``.
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
        adapter_ratio: r of BALLAD's balanced residual adapter on the projected features,
            f' = r A(f) + (1 - r) f with A a Linear D -> D that starts as the identity (the
            model is unchanged until A trains); None (default): no adapter. BALLAD uses 0.2.
    """

    def __init__(self, in_features: int, vocabulary=None,
                 class_embeddings: Union[ClassEmbeddings, Dict, None] = None,
                 out_features: Optional[int] = None, background: Optional[str] = None,
                 scale: float = 20.0, learn_scale: bool = False, max_scale: float = 100.0,
                 logit_bias: Optional[float] = None, projection: Union[str, bool] = 'auto',
                 adapter_ratio: Optional[float] = None, init_cfg=None, **source):
        super().__init__(init_cfg=init_cfg)
        self.in_features = in_features
        source, vocab, self.embed_dim = self._embeddings_source(class_embeddings, vocabulary,
                                                                source)
        self.background = self._resolve_background(background, out_features, vocab)
        self.projection = self._build_projection(projection)
        self.adapter = None if adapter_ratio is None else ResidualAdapter(self.embed_dim,
                                                                          adapter_ratio)
        self._build_scale(scale, learn_scale, max_scale)
        self.logit_bias = None if logit_bias is None else nn.Parameter(
            torch.tensor(float(logit_bias)))
        if self.background == 'learned':
            self.background_embedding = nn.Parameter(torch.randn(self.embed_dim) * 0.02)
        if self.owns_embeddings:  # built last: the same random draws as before it was a part
            self.own_embeddings = build_class_embeddings_source(source)
        # (class embeddings, background version, (K + 1, D) weights): see inference_weights
        self._weights_cache: Optional[Tuple[torch.Tensor, int, torch.Tensor]] = None
        # Joint training whose loss scores a sampled subset of classes per step (set by the
        # host head): the forward scores the component's bank, then score_classes encodes
        # the classes the loss picked.
        self.encode_scored_classes_only = False
        self._scored_features: Optional[torch.Tensor] = None
        self._register_load_state_dict_pre_hook(_rename_legacy_tower_keys)

    # -- construction ----------------------------------------------------------------------
    def _embeddings_source(self, class_embeddings, vocabulary, source: Dict
                           ) -> Tuple[Union[ClassEmbeddings, Dict], Vocabulary, int]:
        """The shared component, or the config of this classifier's own; its vocabulary and
        embedding size."""
        unknown = sorted(set(source) - set(SOURCE_KEYS))
        if unknown:
            raise TypeError(f'TextCosineClassifier got unknown argument(s) {unknown}')
        self.owns_embeddings = not isinstance(class_embeddings, ClassEmbeddings)
        if not self.owns_embeddings:
            given = sorted(source) + (['vocabulary'] if vocabulary is not None else [])
            if given:
                raise ValueError(f'TextCosineClassifier: {given} belong to the shared class '
                                 'embeddings (the model\'s class_embeddings); remove them here')
            # not a submodule: the model owns it (one copy in memory and in checkpoints)
            self.__dict__['_shared_embeddings'] = class_embeddings
            return class_embeddings, class_embeddings.vocabulary, class_embeddings.embed_dim
        cfg = (dict(class_embeddings) if isinstance(class_embeddings, dict)
               else class_embeddings_cfg(vocabulary, **source))
        cfg['vocabulary'] = vocab = load_vocabulary(cfg.get('vocabulary'))
        return cfg, vocab, embed_dim_of(cfg)

    @property
    def class_embeddings(self) -> ClassEmbeddings:
        """The component the class weights come from (owned or shared)."""
        if self.owns_embeddings:
            return self.own_embeddings
        return self.__dict__['_shared_embeddings']

    @property
    def vocabulary(self):
        return self.class_embeddings.vocabulary

    @property
    def num_classes(self) -> int:
        return self.class_embeddings.num_classes

    @property
    def out_features(self) -> int:
        return self.num_classes + (self.background is not None)

    @property
    def train_text_tower(self) -> bool:
        return self.class_embeddings.trainable

    @staticmethod
    def _resolve_background(background: Optional[str], out_features: Optional[int],
                            vocabulary: Vocabulary) -> Optional[str]:
        k = len(vocabulary)
        if out_features is not None and out_features not in (k, k + 1):
            raise ValueError(
                f'vocabulary size mismatch: the head expects {out_features} outputs but '
                f'vocabulary {vocabulary.source!r} has {k} classes (expected {k} outputs, '
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
        # A host head's init_cfg may override everything under fc_cls; the owned component,
        # a child, then restores itself (a trainable tower back to its pretrained state).
        super().init_weights()
        if self.adapter is not None:  # an init_cfg over the classifier must not move it
            self.adapter.reset_to_identity()
        self._weights_cache = None

    def set_vocabulary(self, vocabulary, embeddings_file: Optional[str] = None) -> None:
        """Swap the classes of this classifier's component (test-time open vocabulary)."""
        self.class_embeddings.set_vocabulary(vocabulary, embeddings_file)
        self._weights_cache = None

    def describe_embeddings(self) -> Dict:
        return self.class_embeddings.describe()

    # -- forward ---------------------------------------------------------------------------
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C) -> (N, K[+1]) or (B, C, H, W) -> (B, K[+1], H, W)."""
        dense = features.dim() == 4
        logits = self.logits(self.embed(features.permute(0, 2, 3, 1) if dense else features))
        return logits.permute(0, 3, 1, 2) if dense else logits

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., D): projected, unit-norm features times the scale.

        Scaling the features (N x D) rather than the logits (N x K) saves a pass over N x K.
        Normalised in float32: under fp16 autocast the squared norm of small features
        underflows and F.normalize's eps (1e-12) is 0 in fp16, so zero features gave NaN.
        """
        projected = self.projection(features)
        if self.adapter is not None:
            projected = self.adapter(projected)
        return F.normalize(projected.float(), dim=-1) * self.scale

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of embedded features ``x`` (:meth:`embed`) against the current weights."""
        source = self.class_embeddings
        if not torch.is_grad_enabled():
            logits = self.logits_of_embedded(x, self.inference_weights(x))
        elif self.training and source.trainable and self.encode_scored_classes_only:
            self._scored_features = x
            logits = self._logits_for_autograd(x, source.bank(x.device).to(x.dtype))
        else:
            if self.training and self.owns_embeddings:
                source.start_step()
            logits = self._logits_for_autograd(x, source(x.device).to(x.dtype))
        return self._without_novel_classes(logits) if source.leaves_classes_out else logits

    def score_classes(self, logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """``logits`` of the last training forward, with the columns of ``classes`` computed
        from freshly encoded prompts (differentiable through the tower).

        For a loss that scores only ``classes`` (federated sampling) this gives the same
        loss and gradients as encoding every class: the other columns carry no gradient.
        """
        if self._scored_features is None or not self.class_embeddings.trainable:
            raise RuntimeError('score_classes follows a training forward with '
                               'encode_scored_classes_only=True and a trainable tower')
        x, self._scored_features = self._scored_features, None
        fresh = self.class_embeddings.encode(classes).to(x.dtype)
        logits = logits.index_copy(1, classes, self._class_logits(x, fresh))
        if self.class_embeddings.leaves_classes_out:
            return self._without_novel_classes(logits)
        return logits

    def inference_weights(self, x: torch.Tensor) -> torch.Tensor:
        """(K[+1], D) in ``x``'s dtype: the class embeddings, then the background row.

        The background is a row of the (small) weights rather than a column appended to
        the (large) logits: the product is then the only N x (K+1) buffer. The (K + 1, D)
        matrix is kept until the background parameter or the class embeddings change, so
        testing copies no K x D weights per image.
        """
        source = self.class_embeddings
        if self.background is None:
            return source(x.device).to(x.dtype)
        if self.training:  # the embeddings may change every step
            return self._with_background_row(source(x.device)).to(x.dtype)
        embeddings = source.fixed(x.device)
        version = self.background_embedding._version if self.background == 'learned' else 0
        cached = self._weights_cache
        if cached is None or cached[0] is not embeddings or cached[1] != version:
            with torch.no_grad():
                weights = self._with_background_row(embeddings)
            if self.owns_embeddings:  # one copy of the K x D values: a view of the weights
                embeddings = weights[:self.num_classes]
                source.keep_fixed_in(embeddings)
            self._weights_cache = (embeddings, version, weights)
        return self._weights_cache[2].to(x.dtype)

    def _with_background_row(self, embeddings: torch.Tensor) -> torch.Tensor:
        return torch.cat([embeddings, self._background_weight(embeddings)])

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
        novel[self.class_embeddings.trained_class_ids().to(logits.device)] = False
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
        shared = '' if self.owns_embeddings else ', class_embeddings=shared'
        return (f'in_features={self.in_features}, classes={self.num_classes}, '
                f'dim={self.embed_dim}, background={self.background}{shared}')


class ResidualAdapter(nn.Module):
    """BALLAD's balanced adapter (Ma et al., "A Simple Long-Tail Recognition Baseline via
    Vision-Language Model"): f' = r A(f) + (1 - r) f, A a Linear D -> D set to the identity, so
    that f' = f until phase B trains it on class-balanced data."""

    def __init__(self, dim: int, ratio: float):
        super().__init__()
        if not 0 < ratio <= 1:
            raise ValueError(f'adapter_ratio must be in (0, 1], got {ratio}')
        self.ratio = float(ratio)
        self.linear = nn.Linear(dim, dim)
        self.reset_to_identity()

    def reset_to_identity(self) -> None:
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(self.linear.in_features))
            self.linear.bias.zero_()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.ratio * self.linear(features) + (1 - self.ratio) * features

    def extra_repr(self) -> str:
        return f'ratio={self.ratio}'


def _rename_legacy_tower_keys(state_dict, prefix, *args) -> None:
    """Checkpoints saved before the class embeddings were a component hold a jointly trained
    tower under ``<classifier>.text_tower.``; it now lives under
    ``<classifier>.own_embeddings.tower.``."""
    old = prefix + 'text_tower.'
    for key in [k for k in state_dict if k.startswith(old)]:
        state_dict[prefix + 'own_embeddings.tower.' + key[len(old):]] = state_dict.pop(key)


# what a host head fills in itself: its feature channels and its class count
SET_BY_HEAD = ('in_features', 'out_features')


def text_classifier_spec(text_classifier, owner: str) -> Dict:
    """Check a host head's ``text_classifier=dict(...)`` and return a copy without ``type``;
    inside ``WithClassEmbeddings`` it names the model's shared component."""
    from ..utils.cli import ConfigError
    from .sharing import shared_class_embeddings
    shared = shared_class_embeddings()
    if shared is not None and text_classifier is None:
        text_classifier = {}
    if not isinstance(text_classifier, dict) or not (
            text_classifier.get('vocabulary') or shared is not None
            or text_classifier.get('class_embeddings')):
        raise ConfigError(f'{owner} needs text_classifier=dict(vocabulary=..., '
                          'text_tower=dict(model=...) or embeddings_file=...)')
    spec = dict(text_classifier)
    if spec.pop('type', 'TextCosineClassifier') != 'TextCosineClassifier':
        raise ConfigError(f'{owner}: text_classifier builds a TextCosineClassifier; '
                          f'got type={text_classifier["type"]!r}')
    for key in SET_BY_HEAD:
        if key in spec:
            raise ConfigError(f'{owner}: text_classifier.{key} is set by the head; remove it '
                              'from the config')
    if shared is not None:
        inside = sorted(k for k in spec if k in SOURCE_KEYS or k == 'class_embeddings')
        if inside:
            raise ConfigError(f'{owner}: text_classifier.{inside[0]} is set once for the model '
                              'in class_embeddings (WithClassEmbeddings); remove it here')
        spec['class_embeddings'] = shared
    return spec


def reading_component(spec: Dict, component: ClassEmbeddings) -> Dict:
    """``spec`` for a further classifier of the same head that scores with ``component``
    (the first classifier's): its own settings kept, the class-embedding settings dropped."""
    own = {k: v for k, v in spec.items() if k not in SOURCE_KEYS and k != 'class_embeddings'}
    return dict(own, class_embeddings=component)


def head_num_classes(owner: str, spec: Dict, num_classes: Optional[int]) -> int:
    """The class count of a head scoring with the checked ``spec``: the vocabulary's (a shared
    class list always wins); a ``num_classes`` given in the config must equal it, since label
    ids index the vocabulary."""
    from ..utils.cli import ConfigError
    vocab, shared = spec_vocabulary(spec)
    if num_classes is not None and not shared and num_classes != len(vocab):
        raise ConfigError(
            f'vocabulary size mismatch: {owner} has num_classes={num_classes} but '
            f'vocabulary {vocab.source!r} has {len(vocab)} classes; the label ids index '
            f'the vocabulary, so set num_classes={len(vocab)} (or drop it)')
    return len(vocab)


def spec_vocabulary(spec: Dict) -> Tuple[Vocabulary, bool]:
    """The vocabulary a checked ``text_classifier`` spec scores (loaded once: the spec then
    holds it), and whether it is the model's shared one."""
    source = spec.get('class_embeddings')
    if isinstance(source, ClassEmbeddings):
        return source.vocabulary, True
    holder = source if isinstance(source, dict) else spec
    holder['vocabulary'] = vocabulary = load_vocabulary(holder.get('vocabulary'))
    return vocabulary, False
