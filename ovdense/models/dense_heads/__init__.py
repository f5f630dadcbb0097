from .text_dense_heads import (LinearTextClassifier, PriorTextClassifier, TextATSSHead,
                               TextCondInstBboxHead, TextConditionalDETRHead, TextDABDETRHead,
                               TextDeformableDETRHead, TextDenseHead, TextDenseHeadMixin,
                               TextDETRHead, TextDINOHead, TextFCOSHead, TextGFLHead,
                               TextRetinaHead, TextRTMDetHead, TextRTMDetInsSepBNHead,
                               TextRTMDetSepBNHead, TextSOLOV2Head, TextYOLOXHead,
                               text_dense_head)
from .text_mask_classification_heads import (TextMask2FormerHead, TextMaskClassificationHead,
                                             TextMaskClassificationMixin, TextMaskFormerHead,
                                             text_mask_classification_head)

__all__ = ['LinearTextClassifier', 'PriorTextClassifier', 'TextATSSHead',
           'TextCondInstBboxHead', 'TextConditionalDETRHead', 'TextDABDETRHead',
           'TextDeformableDETRHead', 'TextDenseHead', 'TextDenseHeadMixin', 'TextDETRHead',
           'TextDINOHead', 'TextFCOSHead', 'TextGFLHead', 'TextMask2FormerHead',
           'TextMaskClassificationHead', 'TextMaskClassificationMixin', 'TextMaskFormerHead',
           'TextRetinaHead', 'TextRTMDetHead', 'TextRTMDetInsSepBNHead', 'TextRTMDetSepBNHead',
           'TextSOLOV2Head', 'TextYOLOXHead', 'text_dense_head', 'text_mask_classification_head']
