"""Mask-classification heads (MaskFormer, Mask2Former) with the text cosine classifier.

These heads classify each query's feature with ``cls_embed``, a ``Linear`` to ``K + 1``
columns, the last being "no object". :class:`TextMaskClassificationMixin` builds it as the
text cosine classifier with a learned no-object embedding (the ``background='learned'``
column); matching, losses, mask prediction and post-processing stay the stock head's, and
every decoder layer's (auxiliary) classification goes through the same classifier, so one
class-embedding component serves all layers. One key adopts it::

    decode_head=dict(type='TextMask2FormerHead', ...stock args...,   # mmseg
                     text_classifier=dict(vocabulary='ade20k_150', text_tower=dict(...)))

``num_classes`` (mmseg) or ``num_things_classes`` + ``num_stuff_classes`` (mmdet) may be
omitted: they follow the vocabulary (mmdet: its last ``num_stuff_classes`` classes are stuff,
0 unless given). The classification loss's ``class_weight`` (``[w] * K + [no-object w]`` in
the stock configs) follows the class count. The vocabulary swaps at test time as for every
other text head; in mmdet the stuff count stays, the new vocabulary's last
``num_stuff_classes`` classes are stuff, and ``set_model_vocabulary`` updates the detector's
panoptic fusion head to the same counts.
"""
import inspect
from typing import Dict, List, Optional

from mmdet.models.dense_heads import Mask2FormerHead, MaskFormerHead

from ...registry import register
from ...text import TextCosineClassifier
from ...text.classifier import head_num_classes, text_classifier_spec
from ...utils.cli import ConfigError
from ..text_variants import text_variant, text_variant_of
from .text_dense_heads import LinearTextClassifier


class TextMaskClassificationMixin:
    """Builds ``cls_embed`` of a MaskFormer-style head as a :class:`TextCosineClassifier`
    (inside a :class:`LinearTextClassifier`: the stock ``Linear``'s reading of its input).

    Args:
        text_classifier: ``TextCosineClassifier`` arguments except ``in_features`` /
            ``out_features``; ``background`` is the no-object column and must stay
            ``'learned'`` (the default). Inside ``WithClassEmbeddings`` it may be omitted.
    """

    def __init__(self, *args, text_classifier: Optional[Dict] = None, **kwargs):
        name = type(self).__name__
        spec = text_classifier_spec(text_classifier, name)
        if spec.setdefault('background', 'learned') != 'learned':
            raise ConfigError(f'{name}: the last classification column is "no object", a '
                              "learned embedding; remove text_classifier.background")
        if self._has_stuff_split():
            stuff = kwargs.setdefault('num_stuff_classes', 0)
            given = kwargs.get('num_things_classes')
            total = head_num_classes(name, spec, None if given is None else given + stuff)
            if stuff > total:
                raise ConfigError(f'{name}: num_stuff_classes={stuff} but the vocabulary has '
                                  f'{total} classes')
            kwargs['num_things_classes'] = total - stuff
        else:
            total = kwargs['num_classes'] = head_num_classes(name, spec, kwargs.get('num_classes'))
        loss_cls = kwargs.get('loss_cls') or {}
        weight_split = self._class_weights(name, loss_cls.get('class_weight'), total)
        super().__init__(*args, **kwargs)
        stock = self.cls_embed
        # scores the last dimension, as the stock Linear: MaskFormer passes every decoder
        # layer at once, (layers, B, queries, C), which is not a (B, C, H, W) feature map
        self.cls_embed = LinearTextClassifier(TextCosineClassifier(
            in_features=stock.in_features, out_features=stock.out_features, **spec))
        self._class_weight_split = weight_split

    def _has_stuff_split(self) -> bool:
        """mmdet's heads count things and stuff; mmseg's count classes."""
        stock_init = super(TextMaskClassificationMixin, self).__init__
        return 'num_things_classes' in inspect.signature(stock_init).parameters

    @staticmethod
    def _class_weights(owner: str, weights: Optional[List[float]], total: int):
        """(class weight, no-object weight) of a ``[w] * K + [no-object w]`` list, whatever
        K it was written for; None without class weights."""
        if weights is None:
            return None
        if len(weights) < 2 or len(set(weights[:-1])) != 1:
            raise ConfigError(
                f'{owner}: loss_cls.class_weight must be [w] * num_classes + [no-object w] (one '
                f'weight for every class, so that it can follow the vocabulary of {total} '
                f'classes); got {len(weights)} weights')
        return float(weights[0]), float(weights[-1])

    # -- classes ---------------------------------------------------------------------------
    @property
    def class_weight(self) -> Optional[List[float]]:
        """The stock heads' per-column loss weights, for the current class count."""
        split = self.__dict__.get('_class_weight_split')
        if split is None:
            return self.__dict__.get('_stock_class_weight')
        return [split[0]] * self.num_classes + [split[1]]

    @class_weight.setter
    def class_weight(self, value) -> None:
        self.__dict__['_stock_class_weight'] = value  # the stock __init__ sets it once

    def loss_by_feat(self, *args, **kwargs):
        if self.class_weight is not None:  # CrossEntropyLoss weighs columns by its own copy
            self.loss_cls.class_weight = self.class_weight
        return super().loss_by_feat(*args, **kwargs)

    @property
    def num_classes(self) -> int:
        return self.__dict__['_num_classes']

    @num_classes.setter
    def num_classes(self, value: int) -> None:
        """Set by the stock __init__, then by a vocabulary swap: mmdet's heads keep their
        stuff count (the new vocabulary's last ``num_stuff_classes`` classes are stuff) and
        the rest are things."""
        swapped = '_num_classes' in self.__dict__
        self.__dict__['_num_classes'] = value
        if swapped and self._has_stuff_split():
            self.num_things_classes = value - self.num_stuff_classes

    def init_weights(self) -> None:
        super().init_weights()
        if not self.cls_embed.classifier._is_init:
            self.cls_embed.classifier.init_weights()


_TEXT_HEADS: Dict[type, type] = {}


def text_mask_classification_head(base: type) -> type:
    """The ``Text*`` class of a MaskFormer-style head (mmdet's or mmseg's), made once."""
    if not (isinstance(base, type) and issubclass(base, (MaskFormerHead, Mask2FormerHead))):
        raise TypeError(f'{base!r} is not a MaskFormer / Mask2Former head')
    return text_variant(TextMaskClassificationMixin, base, _TEXT_HEADS, __name__)


@register('MODELS', scopes=('mmdet', 'mmseg'))
def TextMaskClassificationHead(base_type: str, **kwargs):  # noqa: N802 - a type name
    """Any registered MaskFormer-style head with the text classifier:
    ``dict(type='TextMaskClassificationHead', base_type='Mask2FormerHead', ...)``; the base
    is looked up in the current scope's registry (mmdet or mmseg)."""
    from mmengine.registry import DefaultScope
    scope = DefaultScope.get_current_instance()
    if scope is not None and scope.scope_name == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmdet.registry import MODELS
    return text_variant_of(MODELS, base_type, 'TextMaskClassificationHead',
                           text_mask_classification_head)(**kwargs)


def _register(base: type, scope: str) -> type:
    cls = text_mask_classification_head(base)
    register('MODELS', scopes=(scope,))(cls)
    return cls


TextMaskFormerHead = _register(MaskFormerHead, 'mmdet')
TextMask2FormerHead = _register(Mask2FormerHead, 'mmdet')


def _register_mmseg() -> None:
    from mmseg.models.decode_heads import Mask2FormerHead as SegMask2FormerHead
    from mmseg.models.decode_heads import MaskFormerHead as SegMaskFormerHead
    for base in (SegMaskFormerHead, SegMask2FormerHead):
        _register(base, 'mmseg')


_register_mmseg()
