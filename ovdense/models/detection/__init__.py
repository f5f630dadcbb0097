from .bbox_heads import (TextConvFCBBoxHead, TextShared2FCBBoxHead,
                         TextShared4Conv1FCBBoxHead)
from .losses import FederatedSigmoidLoss
from .roi_heads import TextStandardRoIHead

__all__ = ['TextConvFCBBoxHead', 'TextShared2FCBBoxHead', 'TextShared4Conv1FCBBoxHead',
           'TextStandardRoIHead', 'FederatedSigmoidLoss']
