"""Semantic segmentation (mmseg): decode heads with the text cosine classifier, the hooks
that check and draw runs with a test-time vocabulary, and inference with a custom vocabulary.
Importing this package registers the ``Text*`` heads and ``TextDecodeHead`` (mmseg MODELS) and
``SegVocabularyCheckHook`` / ``OVSegVisualizationHook`` (mmseg HOOKS)."""
from .decode_heads import (TextASPPHead, TextClassifierHeadMixin, TextDecodeHead,
                           TextDepthwiseSeparableASPPHead, TextFCNHead, TextPSPHead,
                           TextSegformerHead, TextUPerHead, text_decode_head)
from .hooks import OVSegVisualizationHook, SegVocabularyCheckHook
from .inference import draw_legend, init_segmentor, segment_image

__all__ = ['TextASPPHead', 'TextClassifierHeadMixin', 'TextDecodeHead',
           'TextDepthwiseSeparableASPPHead', 'TextFCNHead', 'TextPSPHead', 'TextSegformerHead',
           'TextUPerHead', 'text_decode_head', 'OVSegVisualizationHook',
           'SegVocabularyCheckHook', 'draw_legend', 'init_segmentor',
           'segment_image']
