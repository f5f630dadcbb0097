"""mmseg decode heads with the text classifier (``Text*`` heads and ``TextDecodeHead``)."""
from .text_decode_heads import (TextASPPHead, TextClassifierHeadMixin, TextDecodeHead,
                                TextDepthwiseSeparableASPPHead, TextFCNHead, TextPSPHead,
                                TextSegformerHead, TextUPerHead, text_decode_head)
from .text_knet_head import TextIterativeDecodeHead

__all__ = ['TextASPPHead', 'TextClassifierHeadMixin', 'TextDecodeHead',
           'TextDepthwiseSeparableASPPHead', 'TextFCNHead', 'TextIterativeDecodeHead',
           'TextPSPHead', 'TextSegformerHead', 'TextUPerHead', 'text_decode_head']
