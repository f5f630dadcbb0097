"""mmdet R-CNN parts with the text classifier: box heads, a RoI head that scores RoIs a chunk
at a time at test time (threshold-first post-processing in :mod:`.postprocess`), and Mask
Scoring R-CNN's RoI head with class-agnostic masks and mask IoU."""
from .bbox_heads import (TextBBoxHead, TextClassifierMixin, TextConvFCBBoxHead,
                         TextShared2FCBBoxHead, TextShared4Conv1FCBBoxHead, text_bbox_head)
from .text_mask_scoring_roi_head import TextMaskScoringRoIHead
from .text_standard_roi_head import TextStandardRoIHead

__all__ = ['TextBBoxHead', 'text_bbox_head', 'TextClassifierMixin', 'TextConvFCBBoxHead',
           'TextShared2FCBBoxHead',
           'TextMaskScoringRoIHead', 'TextShared4Conv1FCBBoxHead', 'TextStandardRoIHead']
