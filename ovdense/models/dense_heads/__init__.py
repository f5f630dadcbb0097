from .text_dense_heads import (PriorTextClassifier, TextATSSHead, TextCondInstBboxHead,
                               TextDenseHead, TextDenseHeadMixin, TextFCOSHead, TextGFLHead,
                               TextRetinaHead, TextRTMDetHead, TextRTMDetInsSepBNHead,
                               TextRTMDetSepBNHead, TextSOLOV2Head, TextYOLOXHead,
                               text_dense_head)

__all__ = ['PriorTextClassifier', 'TextATSSHead', 'TextCondInstBboxHead', 'TextDenseHead',
           'TextDenseHeadMixin', 'TextFCOSHead', 'TextGFLHead', 'TextRetinaHead',
           'TextRTMDetHead', 'TextRTMDetInsSepBNHead', 'TextRTMDetSepBNHead', 'TextSOLOV2Head',
           'TextYOLOXHead', 'text_dense_head']
