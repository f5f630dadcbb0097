from .hooks import (CheckpointMatchHook, ExactResumeHook, OpenVocabularyHook,
                    OVSegVisualizationHook, SegVocabularyCheckHook, TrainOnlyHook,
                    VocabularyCheckHook)

__all__ = ['CheckpointMatchHook', 'ExactResumeHook', 'OVSegVisualizationHook',
           'OpenVocabularyHook', 'SegVocabularyCheckHook', 'TrainOnlyHook',
           'VocabularyCheckHook']
