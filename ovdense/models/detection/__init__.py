from .bbox_heads import (TextConvFCBBoxHead, TextShared2FCBBoxHead,
                         TextShared4Conv1FCBBoxHead)
from .losses import FederatedSigmoidLoss

__all__ = ['TextConvFCBBoxHead', 'TextShared2FCBBoxHead', 'TextShared4Conv1FCBBoxHead',
           'FederatedSigmoidLoss']
