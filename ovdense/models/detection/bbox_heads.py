"""mmdet's ConvFC box heads with the text cosine classifier as their final classifier.

Everything of ``ConvFCBBoxHead`` is kept (shared convs/fcs, regression, losses); only
``fc_cls`` is built as ``TextCosineClassifier`` from one key, ``text_classifier``. A stock
config adopts it by renaming the head's ``type`` and adding that key.
"""
from typing import Dict

from mmdet.models.roi_heads.bbox_heads import (ConvFCBBoxHead, Shared2FCBBoxHead,
                                               Shared4Conv1FCBBoxHead)

from ...registry import register


class TextClassifierMixin:
    """Builds ``fc_cls`` from ``text_classifier`` (TextCosineClassifier settings)."""

    def __init__(self, *args, text_classifier: Dict, **kwargs):
        if 'cls_predictor_cfg' in kwargs:
            raise ValueError(f'{type(self).__name__} builds its classifier from '
                             'text_classifier=...; remove cls_predictor_cfg from the config')
        kwargs['cls_predictor_cfg'] = dict(text_classifier, type='TextCosineClassifier')
        super().__init__(*args, **kwargs)
        # The stock Normal(0.01) override of fc_cls would also hit a trainable text tower.
        self.init_cfg = [cfg for cfg in (self.init_cfg or [])
                         if _override_name(cfg) != 'fc_cls']


def _override_name(init_cfg: Dict):
    override = init_cfg.get('override') if isinstance(init_cfg, dict) else None
    return override.get('name') if isinstance(override, dict) else None


@register('MODELS', scopes=('mmdet',))
class TextConvFCBBoxHead(TextClassifierMixin, ConvFCBBoxHead):
    """``ConvFCBBoxHead`` + text cosine classifier."""


@register('MODELS', scopes=('mmdet',))
class TextShared2FCBBoxHead(TextClassifierMixin, Shared2FCBBoxHead):
    """``Shared2FCBBoxHead`` (Faster/Mask/Cascade R-CNN) + text cosine classifier."""


@register('MODELS', scopes=('mmdet',))
class TextShared4Conv1FCBBoxHead(TextClassifierMixin, Shared4Conv1FCBBoxHead):
    """``Shared4Conv1FCBBoxHead`` (HTC, GN+WS recipes) + text cosine classifier."""
