"""mmdet's one-stage (dense) heads and DETR-family heads with the text cosine classifier.

One mechanism, :class:`TextDenseHeadMixin`, serves every mmdet dense head whose classification
branch ends in a ``Conv2d`` named ``*_cls`` with ``num_base_priors x cls_out_channels`` outputs:
RetinaHead (A anchors per location), FCOSHead, ATSSHead, GFLHead, RTMDetHead,
RTMDetSepBNHead, RTMDetInsSepBNHead, YOLOXHead, SOLOV2Head, CondInstBboxHead, TOODHead,
VFNetHead, ...; and every DETR-family head whose queries are classified by a ``Linear``
(``fc_cls``, or one per decoder layer in ``cls_branches``, the two-stage encoder proposals'
included): DETRHead, ConditionalDETRHead, DABDETRHead, DeformableDETRHead, DINOHead.
Everything of the stock head is kept (towers, regression, assigners / Hungarian matching,
losses, post-processing); each classification conv becomes a :class:`PriorTextClassifier`:
the same conv, now giving ``E`` feature channels per prior, scored by the text cosine
classifier; each classification ``Linear`` a :class:`LinearTextClassifier`. A
stock config adopts it by prefixing the head type with ``Text`` (the convenience types below)
or, for any other head, with ``type='TextDenseHead', base_type='TOODHead'``, and one key::

    bbox_head=dict(type='TextRTMDetSepBNHead', ...stock args...,
                   text_classifier=dict(vocabulary='lvis_v1', text_tower=dict(...)))

Heads with one classification layer per level or per decoder layer (RTMDet's SepBN heads,
YOLOX, Deformable DETR, DINO) score all of them against ONE class-embedding component; DINO's
denoising label queries are made from it by the detector :class:`~ovdense.models.detectors.TextDINO`
(the stock DINO keeps a K-way label table). Heads without a background column (sigmoid / focal /
quality focal losses) start from the usual prior: the classifier's ``logit_bias`` is
``log(0.01 / 0.99)`` unless ``text_classifier.logit_bias`` says otherwise; the stock
``bias_prob`` override of the classification conv is dropped (it would also reach the text
tower), and a stock ``init_weights`` that sets the conv's bias sets this prior.
``cls_out_channels`` follows ``num_classes``, so ``set_model_vocabulary`` and
``tools/test.py --vocab`` swap the classes of a trained model.

At test time, sigmoid heads whose post-processing reads the scores only through mmdet's
``filter_scores_and_topk`` make each level's scores a chunk of locations at a time from the
classifiers' embedded features (:meth:`TextDenseHeadMixin.predict`, ``embedded_scores.py``):
the locations x K scores never exist at once.
"""
import contextlib
import re
import sys
from typing import ContextManager, Dict, Iterator, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmdet.models.dense_heads import (ATSSHead, CondInstBboxHead, ConditionalDETRHead,
                                      DABDETRHead, DeformableDETRHead, DETRHead, DINOHead,
                                      FCOSHead, GFLHead, RetinaHead, RTMDetHead,
                                      RTMDetInsSepBNHead, RTMDetSepBNHead, SOLOV2Head,
                                      YOLOXHead)
from mmengine.model import BaseModule, bias_init_with_prob

from ...registry import register
from ...text import TextCosineClassifier
from ...text.classifier import head_num_classes, reading_component, text_classifier_spec
from ...utils.cli import ConfigError
from ..text_variants import (base_type_builder, defining_class, stock_base, text_variant,
                             without_init_overrides)
from .embedded_scores import EmbeddedScores, scoring_embedded, solov2_predict_by_feat

# the prior probability of the stock heads' classification bias (focal-loss style)
PRIOR_PROB = 0.01
# the stock classification convs' names: retina_cls, conv_cls, ... (+ RepPoints'
# reppoints_cls_out, YOLOF's cls_score)
_CLS_NAME = re.compile(r'(^|_)cls(_out)?$|^cls_score$')
# Chunked test-time scoring (embedded_scores.py) runs only where the whole path is known:
# mmdet classes whose dense post-processing (predict_by_feat -> _predict_by_feat_single) reads
# a level's logits only through permute(1, 2, 0).reshape(-1, K).sigmoid() and then
# filter_scores_and_topk (SOLOv2, TOOD and PAA read all classes' scores otherwise), or whose
# predict_by_feat takes each location's best class with torch.max over all levels' rows ...
_EMBEDDED_POSTPROCESSING = ('BaseDenseHead', 'GFLHead', 'RTMDetInsHead', 'CondInstBboxHead')
_EMBEDDED_MAX_POSTPROCESSING = ('YOLOXHead',)
# ... or whose predict_by_feat is restated for embedded scores (SOLOv2: per-class point NMS)
_EMBEDDED_PREDICT_BY_FEAT = {'SOLOV2Head': solov2_predict_by_feat}
# ... and classes whose forward / forward_single return the classification conv's output
# untouched (YOLOF, TOOD, SABL, guided anchoring... change or mask it; RTMDet's heads only
# with with_objectness, checked apart)
_LOGIT_KEEPING_FORWARDS = (
    'AnchorHead', 'AnchorFreeHead', 'RetinaHead', 'RetinaSepBNHead', 'FCOSHead', 'ATSSHead',
    'GFLHead', 'VFNetHead', 'CenterNetUpdateHead', 'FSAFHead', 'AutoAssignHead', 'DDODHead',
    'CondInstBboxHead', 'RTMDetHead', 'RTMDetSepBNHead', 'RTMDetInsHead',
    'RTMDetInsSepBNHead', 'YOLOXHead', 'SOLOV2Head')


class PriorTextClassifier(BaseModule):
    """Stands in for a dense head's classification conv: (B, C_in, H, W) -> (B, A * C, H, W),
    channel ``a * C + c`` = prior ``a``, class ``c``, as the stock conv's outputs are read.

    ``features`` is the stock conv's geometry (kernel, stride, padding, dilation) with ``A x E``
    outputs; each prior's ``E`` channels go through the text cosine classifier.
    """

    def __init__(self, conv: nn.Conv2d, num_priors: int, embed_channels: int,
                 classifier: TextCosineClassifier):
        super().__init__()
        self.num_priors, self.embed_channels = num_priors, embed_channels
        self.features = nn.Conv2d(conv.in_channels, num_priors * embed_channels,
                                  conv.kernel_size, conv.stride, conv.padding, conv.dilation)
        self.classifier = classifier
        # set by the head's predict: forward then gives EmbeddedScores, not logits
        self.gives_embedded_scores = False

    @property
    def bias(self) -> Optional[nn.Parameter]:
        """What a stock ``init_weights`` sets as the conv's bias: the classifier's prior."""
        return self.classifier.logit_bias

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``mask`` (a stock ``MaskedConv2d``'s, guided anchoring): outputs are 0 where it is
        False, as there; they are computed everywhere."""
        f = self.features(x)
        b, _, h, w = f.shape
        f = f.view(b, self.num_priors, self.embed_channels, h, w).permute(0, 1, 3, 4, 2)
        embedded = self.classifier.embed(f)  # (B, A, H, W, D)
        if self.gives_embedded_scores:
            return EmbeddedScores(
                [(self.classifier, embedded.permute(0, 1, 4, 2, 3).reshape(b, -1, h, w))])
        logits = self.classifier.logits(embedded)  # (B, A, H, W, C)
        logits = logits.permute(0, 1, 4, 2, 3).reshape(b, -1, h, w)
        return logits if mask is None else logits * mask.view(-1, 1, h, w).to(logits.dtype)


class LinearTextClassifier(BaseModule):
    """Stands in for a query head's ``Linear`` classifier (DETR family): (..., C_in) ->
    (..., C), scored by the text cosine classifier."""

    def __init__(self, classifier: TextCosineClassifier):
        super().__init__()
        self.classifier = classifier

    @property
    def bias(self) -> Optional[nn.Parameter]:
        """What a stock ``init_weights`` sets as the layer's bias: the classifier's prior."""
        return self.classifier.logit_bias

    @property
    def in_features(self) -> int:
        return self.classifier.in_features

    @property
    def out_features(self) -> int:
        """What the stock detectors read (DINO's encoder proposals): follows the vocabulary."""
        return self.classifier.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embedded = self.classifier.embed(x)  # float32
        # float32 logits under autocast too: the Hungarian matcher's focal cost takes the log
        # of their sigmoid, and in float16 a logit below about -17 (reached at scale 20) has
        # sigmoid 0 and an infinite cost ("cost matrix is infeasible"); Q x K is small
        with torch.autocast(device_type=embedded.device.type, enabled=False):
            return self.classifier.logits(embedded)


class TextDenseHeadMixin:
    """Builds the classification conv(s) of a stock dense head as :class:`PriorTextClassifier`.

    Args:
        text_classifier: ``TextCosineClassifier`` arguments except ``in_features`` /
            ``out_features`` (set by the head). Required (inside ``WithClassEmbeddings``: may
            be omitted, the model's component is used).
        num_classes: may be omitted: it is then the vocabulary size; when given it must equal
            it.
        cls_embed_channels: feature channels ``E`` per prior before the classifier's
            projection (default: the classification conv's input channels).
    """

    def __init__(self, *args, text_classifier: Optional[Dict] = None,
                 cls_embed_channels: Optional[int] = None, **kwargs):
        name = type(self).__name__
        spec = text_classifier_spec(text_classifier, name)
        kwargs['num_classes'] = head_num_classes(name, spec, kwargs.get('num_classes'))
        class_weights = self._detr_class_weights(kwargs)
        super().__init__(*args, **kwargs)
        if class_weights is not None:
            self.bg_cls_weight = class_weights[1]
        self._detr_class_weight_split = class_weights
        convs = list(self._classification_convs())
        if not convs:
            raise ConfigError(
                f'{name}: no classification layer found (a Conv2d named *_cls with '
                f'num_base_priors x cls_out_channels = {self._num_priors} x '
                f'{self.cls_out_channels} outputs, or a Linear named *_cls or in cls_branches '
                f'with {self.cls_out_channels}); this head is not supported by TextDenseHead')
        if self.cls_out_channels == self.num_classes:  # sigmoid scores: the usual prior
            spec.setdefault('logit_bias', bias_init_with_prob(PRIOR_PROB))
        self._text_cls_paths = self._replace(convs, spec, cls_embed_channels)
        self.init_cfg = without_init_overrides(self.init_cfg, {p.split('.')[0]
                                                               for p in self._text_cls_paths})

    def _detr_class_weights(self, kwargs: Dict) -> Optional[Tuple[float, float]]:
        """DETRHead turns ``loss_cls.class_weight=w`` (+ ``bg_cls_weight``) into per-column
        weights only when its class is exactly DETRHead: done here for ``TextDETRHead``.
        Returns ``(class weight, no-object weight)``, or None; :meth:`loss_by_feat` sizes the
        columns to the current vocabulary."""
        from mmdet.models.dense_heads import DETRHead
        loss_cls = kwargs.get('loss_cls')
        if type(self).__bases__[-1] is not DETRHead or not isinstance(loss_cls, dict) or \
                loss_cls.get('class_weight') is None:
            return None
        loss_cls = kwargs['loss_cls'] = dict(loss_cls)
        weight = float(loss_cls['class_weight'])
        no_object = float(loss_cls.pop('bg_cls_weight', weight))
        loss_cls['class_weight'] = [weight] * kwargs['num_classes'] + [no_object]
        return weight, no_object

    def loss_by_feat(self, *args, **kwargs):
        split = self._detr_class_weight_split
        if split is not None:  # softmax DETR: one loss weight per column of this vocabulary
            self.loss_cls.class_weight = [split[0]] * self.num_classes + [split[1]]
        return super().loss_by_feat(*args, **kwargs)

    # -- classes ---------------------------------------------------------------------------
    @property
    def cls_out_channels(self) -> int:
        """``num_classes`` (+1 for a softmax background): follows a vocabulary swap."""
        return self.num_classes + self.__dict__.get('_background_channels', 0)

    @cls_out_channels.setter
    def cls_out_channels(self, value: int) -> None:
        # the stock __init__ sets it once: remember whether it adds a background channel
        self.__dict__['_background_channels'] = value - self.num_classes

    @property
    def _num_priors(self) -> Union[int, List[int]]:
        """Priors per location: one count, or one per level (SSD)."""
        return getattr(self, 'num_base_priors', 1)

    # -- construction ----------------------------------------------------------------------
    def _classification_convs(self) -> Iterator[Tuple[str, nn.Module]]:
        """The stock classification layers: ``Conv2d`` named ``*_cls`` (or the last conv of
        each of SSD's ``cls_convs``) with A x C outputs (dense heads), ``Linear`` named
        ``*_cls`` or in ``cls_branches`` with C outputs (the DETR family, one per decoder
        layer or one shared)."""
        priors = self._num_priors
        outputs = {a * self.cls_out_channels for a in (priors if isinstance(priors, list)
                                                       else [priors])}
        for path, module in self.named_modules(remove_duplicate=False):
            named = [part for part in path.split('.') if not part.isdigit()][-1:] or ['']
            if isinstance(module, nn.Conv2d):
                found = module.out_channels in outputs and (
                    _CLS_NAME.search(named[0]) or self._last_of_cls_convs(path))
            elif isinstance(module, nn.Linear):
                found = module.out_features == self.cls_out_channels and (
                    _CLS_NAME.search(named[0]) or named[0] == 'cls_branches')
            else:
                found = False
            if found:
                yield path, module

    def _last_of_cls_convs(self, path: str) -> bool:
        """``cls_convs.<level>.<last>``: SSD's classifier, the last layer of each level's
        ``Sequential`` (the ones before it are depthwise feature convs)."""
        parts = path.split('.')
        if len(parts) != 3 or parts[0] != 'cls_convs':
            return False
        level = self.get_submodule('.'.join(parts[:2]))
        return isinstance(level, nn.Sequential) and parts[2] == str(len(level) - 1)

    def _replace(self, convs, spec: Dict, embed_channels: Optional[int]) -> List[str]:
        """Each classification conv becomes a PriorTextClassifier, each Linear a
        LinearTextClassifier (one per stock layer object, so a layer shared by several levels
        or decoder layers stays shared); the first owns the class embeddings (unless the
        model shares its own), the others read them."""
        made: Dict[int, nn.Module] = {}
        for path, conv in convs:
            if id(conv) not in made:
                linear = isinstance(conv, nn.Linear)
                # a Linear classifier scores its input; a conv gets E channels per prior
                channels = conv.in_features if linear else embed_channels or conv.in_channels
                first = next(iter(made.values()), None)
                classifier = TextCosineClassifier(
                    in_features=channels, out_features=self.cls_out_channels,
                    **(spec if first is None
                       else reading_component(spec, first.classifier.class_embeddings)))
                made[id(conv)] = LinearTextClassifier(classifier) if linear else \
                    PriorTextClassifier(conv, conv.out_channels // self.cls_out_channels,
                                        channels, classifier)
            parent, _, name = path.rpartition('.')
            self.get_submodule(parent)._modules[name] = made[id(conv)]
        return [path for path, _ in convs]

    # -- test time: scores a chunk of locations at a time ------------------------------------
    def predict(self, *args, **kwargs):
        """Sigmoid heads on mmdet's post-processing of :data:`_EMBEDDED_POSTPROCESSING`: the
        classification layers give :class:`EmbeddedScores`, scored a chunk of locations at a
        time by that post-processing's ``filter_scores_and_topk`` or ``torch.max`` (the
        locations x K scores never exist at once; the detections are mmdet's). Other heads:
        the stock path."""
        scoring = self._embedded_scoring()
        if scoring is None:
            return super().predict(*args, **kwargs)
        classifiers = [m for m in self.modules() if isinstance(m, PriorTextClassifier)]
        for classifier in classifiers:
            classifier.gives_embedded_scores = True
        try:
            with scoring:
                return super().predict(*args, **kwargs)
        finally:
            for classifier in classifiers:
                classifier.gives_embedded_scores = False

    def predict_by_feat(self, *args, **kwargs):
        """The stock method, or its restatement for embedded scores
        (:data:`_EMBEDDED_PREDICT_BY_FEAT`) when the forward gave :class:`EmbeddedScores`."""
        restated = _EMBEDDED_PREDICT_BY_FEAT.get(
            defining_class(stock_base(type(self), TextDenseHeadMixin),
                           'predict_by_feat').__name__)
        if restated is not None and any(isinstance(a, list) and a and
                                        isinstance(a[0], EmbeddedScores) for a in args):
            return restated(self, *args, **kwargs)
        return super().predict_by_feat(*args, **kwargs)

    def _embedded_scoring(self) -> Optional[ContextManager]:
        """What makes the stock post-processing score :class:`EmbeddedScores` (its module's
        ``filter_scores_and_topk`` replaced, or nothing for YOLOX's ``torch.max``), or None
        where the stock path must run: softmax or custom activations, an objectness branch
        that the forward multiplies into the scores (RTMDet's ``with_objectness``), a forward
        not in :data:`_LOGIT_KEEPING_FORWARDS`, post-processing not in
        :data:`_EMBEDDED_POSTPROCESSING`, or no conv classifier."""
        from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
        from mmdet.models.dense_heads.base_mask_head import BaseMaskHead
        sigmoid = getattr(self, 'use_sigmoid_cls', self.cls_out_channels == self.num_classes)
        if not sigmoid or getattr(getattr(self, 'loss_cls', None), 'custom_cls_channels',
                                  False) or \
                getattr(self, 'with_objectness', False) or \
                not any(isinstance(m, PriorTextClassifier) for m in self.modules()):
            return None
        base = stock_base(type(self), TextDenseHeadMixin)
        if defining_class(base, 'predict') not in (BaseDenseHead, BaseMaskHead) or \
                any(defining_class(base, name).__name__ not in _LOGIT_KEEPING_FORWARDS
                    for name in ('forward', 'forward_single') if hasattr(base, name)):
            return None
        by_feat = defining_class(base, 'predict_by_feat')
        if by_feat.__name__ in _EMBEDDED_MAX_POSTPROCESSING or \
                by_feat.__name__ in _EMBEDDED_PREDICT_BY_FEAT:
            return contextlib.nullcontext()
        single = defining_class(base, '_predict_by_feat_single')
        if single.__name__ not in _EMBEDDED_POSTPROCESSING or \
                by_feat not in (BaseDenseHead, single):
            return None
        return scoring_embedded(sys.modules[single.__module__])

    def init_weights(self) -> None:
        super().init_weights()
        # some stock heads (RTMDet) initialise without visiting their children
        for module in self.modules():
            if isinstance(module, (PriorTextClassifier, LinearTextClassifier)) and \
                    not module.classifier._is_init:
                module.classifier.init_weights()


_TEXT_HEADS: Dict[type, type] = {}


def text_dense_head(base: type) -> type:
    """The ``Text*`` class of any mmdet dense head class (made once, then reused)."""
    from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
    from mmdet.models.dense_heads.base_mask_head import BaseMaskHead
    if not (isinstance(base, type) and issubclass(base, (BaseDenseHead, BaseMaskHead,
                                                          DETRHead))):
        raise TypeError(f'{base!r} is not an mmdet dense head (a BaseDenseHead, BaseMaskHead '
                        'or DETRHead subclass)')
    return text_variant(TextDenseHeadMixin, base, _TEXT_HEADS, __name__)


TextDenseHead = base_type_builder('TextDenseHead', 'mmdet', text_dense_head)  # noqa: N816


def _convenience_type(base: type) -> type:
    cls = text_dense_head(base)
    register('MODELS', scopes=('mmdet',))(cls)
    return cls


TextRetinaHead = _convenience_type(RetinaHead)
TextFCOSHead = _convenience_type(FCOSHead)
TextATSSHead = _convenience_type(ATSSHead)
TextGFLHead = _convenience_type(GFLHead)
TextRTMDetHead = _convenience_type(RTMDetHead)
TextRTMDetSepBNHead = _convenience_type(RTMDetSepBNHead)
TextRTMDetInsSepBNHead = _convenience_type(RTMDetInsSepBNHead)
TextYOLOXHead = _convenience_type(YOLOXHead)
TextSOLOV2Head = _convenience_type(SOLOV2Head)
TextCondInstBboxHead = _convenience_type(CondInstBboxHead)
TextDETRHead = _convenience_type(DETRHead)
TextConditionalDETRHead = _convenience_type(ConditionalDETRHead)
TextDABDETRHead = _convenience_type(DABDETRHead)
TextDeformableDETRHead = _convenience_type(DeformableDETRHead)
TextDINOHead = _convenience_type(DINOHead)
