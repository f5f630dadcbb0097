"""mmseg decode heads whose per-pixel classifier is the text cosine classifier.

One mechanism, :class:`TextClassifierHeadMixin`, serves every head built on mmseg's
``BaseDecodeHead`` that classifies through ``cls_seg`` / ``conv_seg`` (UPerHead, FCNHead,
ASPPHead, DepthwiseSeparableASPPHead, PSPHead, SegformerHead, ...): everything of the stock
head is kept (its modules, losses, sampler, ``ignore_index``, ``align_corners``), only the final
1x1 ``conv_seg`` becomes :class:`~ovdense.text.TextCosineClassifier`, configured by one key::

    decode_head=dict(type='TextUPerHead', ...stock UPerHead args...,
                     text_classifier=dict(vocabulary='ade20k_150', text_tower=dict(...)))

A stock config adopts it by prefixing the head type with ``Text`` (the convenience types
below) or, for any other head, with ``type='TextDecodeHead', base_type='PSAHead'``. Either way
the head is the mixin over the stock class (:func:`text_decode_head` returns the convenience
class for the heads that have one and makes ``Text<Head>`` for the others).

Other per-class 1x1 convs of a head, named ``*conv_seg`` (DANet's ``pam_conv_seg`` and
``cam_conv_seg``, trained by its auxiliary losses), become text classifiers too, reading the
same class embeddings: no K-way layer is left to break a vocabulary swap.

``text_classifier.background='learned'`` (or ``'zero'``) adds an unlabeled/background column
K: ground-truth pixels labelled K are trained against it (the ``ZeroLabelAsBackground``
transform turns ADE-style label 0 into K instead of ignoring it). By default predictions drop
the column (``predict`` returns ``num_classes`` channels like a stock head; benchmark metrics
ignore unlabeled pixels anyway). ``predict_background=True`` keeps it: pixels whose best score
is the background get id K, which mmseg's IoUMetric counts as "no class" and its visualizer
leaves uncoloured (for open-vocabulary pictures, where most of an image may match no name).
"""
from typing import Dict, Optional, Type

import torch
import torch.nn as nn
from mmseg.models.decode_heads import (ASPPHead, DepthwiseSeparableASPPHead, FCNHead, PSPHead,
                                       SegformerHead, UPerHead)
from mmseg.models.decode_heads.decode_head import BaseDecodeHead

from ...registry import register

try:  # user errors: tools print one line and exit 2
    from ...utils.cli import ConfigError
except ImportError:  # pragma: no cover
    ConfigError = ValueError
from ...text import TextCosineClassifier
from ...text.classifier import head_num_classes, reading_component, text_classifier_spec
from ..text_variants import base_type_builder, text_variant, without_init_overrides


class TextClassifierHeadMixin:
    """Builds ``conv_seg`` from ``text_classifier`` (TextCosineClassifier settings).

    Args:
        text_classifier: ``TextCosineClassifier`` arguments except ``in_features`` /
            ``out_features`` (the head's ``channels`` and ``num_classes``). Required.
        num_classes: may be omitted: it is then the vocabulary size; when given it must equal
            it (the label ids index the vocabulary).
        check_labels: training raises a clear error when a ground-truth value is neither a
            class id, the background id (with a background column) nor ``ignore_index``
            (instead of CUDA's device-side assert or a silently wrong loss).
        predict_background: keep the background column in predictions (id ``num_classes``);
            needs ``text_classifier.background``. ``out_channels`` is then ``num_classes + 1``.
    """

    def __init__(self, *args, text_classifier: Optional[Dict] = None,
                 check_labels: bool = True, predict_background: bool = False, **kwargs):
        self._predict_background = False
        name = type(self).__name__
        spec = text_classifier_spec(text_classifier, name)
        kwargs['num_classes'] = num_classes = head_num_classes(name, spec,
                                                               kwargs.get('num_classes'))
        if kwargs.get('out_channels') not in (None, num_classes):
            raise ConfigError(f'{name}: out_channels={kwargs["out_channels"]} is not supported '
                              '(the text classifier scores every class: one output per class, '
                              'softmax over them)')
        super().__init__(*args, **kwargs)
        if not isinstance(self._modules.get('conv_seg'), nn.Conv2d):
            raise ConfigError(
                f'{name}: the stock head has no 1x1 conv_seg classifier (it classifies '
                'otherwise, e.g. PointHead\'s fc_seg reads the coarse K-way prediction, '
                'Segmenter\'s mask transformer normalises over K classes); not supported')
        in_features = getattr(self.conv_seg, 'in_channels', self.channels)
        self.conv_seg = TextCosineClassifier(in_features=in_features, **spec)
        self._replace_extra_classifiers(spec)
        if predict_background and self.conv_seg.background is None:
            raise ConfigError(f'{name}: predict_background=True needs a background column: '
                              "set text_classifier.background='learned' (or 'zero')")
        self.check_labels = check_labels
        self._predict_background = bool(predict_background)
        self._check_class_weights()
        # The stock Normal(std=0.01) override of conv_seg would also hit the projection and a
        # trainable text tower; the classifier initialises itself.
        self.init_cfg = without_init_overrides(self.init_cfg, {'conv_seg'})

    def _replace_extra_classifiers(self, spec: Dict) -> None:
        """Every other ``*conv_seg`` 1x1 conv with one output per class (DANet's position and
        channel attention branches) becomes a text classifier reading ``conv_seg``'s class
        embeddings."""
        for name, module in list(self.named_children()):
            if name != 'conv_seg' and name.endswith('conv_seg') and \
                    isinstance(module, nn.Conv2d) and module.out_channels == self.num_classes:
                setattr(self, name, TextCosineClassifier(
                    in_features=module.in_channels,
                    **reading_component(spec, self.conv_seg.class_embeddings)))

    # -- classes ---------------------------------------------------------------------------
    @property
    def out_channels(self) -> int:
        """Channels of the predicted logits: ``num_classes`` (+1 with
        ``predict_background``); follows ``num_classes`` when the vocabulary is swapped."""
        return self.num_classes + int(self._predict_background)

    @out_channels.setter
    def out_channels(self, value: int) -> None:
        pass  # derived from num_classes (BaseDecodeHead and set_model_vocabulary assign it)

    @property
    def text_classifier(self) -> TextCosineClassifier:
        return self.conv_seg

    @property
    def background_index(self) -> Optional[int]:
        """The ground-truth id trained as background/unlabeled (``num_classes``), or None."""
        return self.conv_seg.num_classes if self.conv_seg.background is not None else None

    # -- training --------------------------------------------------------------------------
    def loss_by_feat(self, seg_logits: torch.Tensor, batch_data_samples) -> dict:
        self._check_class_weights()  # a swapped vocabulary may have another class count
        if self.check_labels:
            self._check_labels(self._stack_batch_gt(batch_data_samples))
        return super().loss_by_feat(seg_logits, batch_data_samples)

    def _check_class_weights(self) -> None:
        """A loss's per-class ``class_weight`` must have one entry per output column."""
        losses = self.loss_decode if isinstance(self.loss_decode, nn.ModuleList) \
            else [self.loss_decode]
        for loss in losses:
            weights = getattr(loss, 'class_weight', None)
            if weights is not None and len(weights) != self.conv_seg.out_features:
                raise ConfigError(
                    f'{type(self).__name__}: loss_decode {type(loss).__name__}.class_weight '
                    f'has {len(weights)} entries, the vocabulary '
                    f'{self.conv_seg.vocabulary.source!r} has {self.conv_seg.out_features} '
                    'output columns: give one weight per column, or none')

    def _check_labels(self, seg_label: torch.Tensor) -> None:
        num_outputs = self.conv_seg.out_features
        bad = (seg_label < 0) | (seg_label >= num_outputs)
        if self.ignore_index is not None:
            bad &= seg_label != self.ignore_index
        if bool(bad.any()):
            values = torch.unique(seg_label[bad]).tolist()
            background = (f', background id {self.background_index}'
                          if self.background_index is not None else '')
            raise ConfigError(
                f'{type(self).__name__}: ground-truth label values {values[:10]} are outside '
                f'the vocabulary {self.conv_seg.vocabulary.source!r} ({self.conv_seg.num_classes}'
                f' classes: ids 0..{self.conv_seg.num_classes - 1}{background}, ignore_index '
                f'{self.ignore_index}); check the dataset\'s label convention '
                '(reduce_zero_label, label_map, ignore value) against the vocabulary')

    # -- prediction ------------------------------------------------------------------------
    def predict_by_feat(self, seg_logits: torch.Tensor, batch_img_metas) -> torch.Tensor:
        if self.conv_seg.background is not None and not self._predict_background:
            seg_logits = seg_logits[:, :self.conv_seg.num_classes]
        return super().predict_by_feat(seg_logits, batch_img_metas)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', text_classifier_classes={self.conv_seg.num_classes}'


# -- the convenience types (same construction as text_decode_head) -------------------------
@register('MODELS', scopes=('mmseg',))
class TextUPerHead(TextClassifierHeadMixin, UPerHead):
    """``UPerHead`` (UperNet) + text cosine classifier."""


@register('MODELS', scopes=('mmseg',))
class TextFCNHead(TextClassifierHeadMixin, FCNHead):
    """``FCNHead`` (FCN, and UperNet's auxiliary head) + text cosine classifier."""


@register('MODELS', scopes=('mmseg',))
class TextASPPHead(TextClassifierHeadMixin, ASPPHead):
    """``ASPPHead`` (DeepLabV3) + text cosine classifier."""


@register('MODELS', scopes=('mmseg',))
class TextDepthwiseSeparableASPPHead(TextClassifierHeadMixin, DepthwiseSeparableASPPHead):
    """``DepthwiseSeparableASPPHead`` (DeepLabV3+) + text cosine classifier."""


@register('MODELS', scopes=('mmseg',))
class TextPSPHead(TextClassifierHeadMixin, PSPHead):
    """``PSPHead`` (PSPNet) + text cosine classifier."""


@register('MODELS', scopes=('mmseg',))
class TextSegformerHead(TextClassifierHeadMixin, SegformerHead):
    """``SegformerHead`` (SegFormer's all-MLP decoder) + text cosine classifier."""


_TEXT_HEADS: Dict[type, type] = {
    UPerHead: TextUPerHead, FCNHead: TextFCNHead, ASPPHead: TextASPPHead,
    DepthwiseSeparableASPPHead: TextDepthwiseSeparableASPPHead, PSPHead: TextPSPHead,
    SegformerHead: TextSegformerHead}


def text_decode_head(base: Type[BaseDecodeHead]) -> type:
    """The ``Text*`` class of any mmseg decode head class (made once, then reused); for the
    mask-classification heads (MaskFormer, Mask2Former) their ``Text*`` class."""
    from mmdet.models.dense_heads import MaskFormerHead
    from ..dense_heads.text_mask_classification_heads import text_mask_classification_head
    if isinstance(base, type) and issubclass(base, MaskFormerHead):  # Mask2Former's base too
        return text_mask_classification_head(base)
    if not (isinstance(base, type) and issubclass(base, BaseDecodeHead)):
        raise TypeError(f'{base!r} is not an mmseg decode head (a BaseDecodeHead subclass)')
    return text_variant(TextClassifierHeadMixin, base, _TEXT_HEADS, __name__)


TextDecodeHead = base_type_builder('TextDecodeHead', 'mmseg', text_decode_head)  # noqa: N816
