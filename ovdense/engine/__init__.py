from .hooks import (ActionVocabularyCheckHook, CheckpointMatchHook, DetVocabularyCheckHook,
                    ExactResumeHook, OpenVocabularyHook, OVSegVisualizationHook,
                    SegVocabularyCheckHook)

__all__ = ['ActionVocabularyCheckHook', 'CheckpointMatchHook', 'DetVocabularyCheckHook',
           'ExactResumeHook', 'OVSegVisualizationHook', 'OpenVocabularyHook',
           'SegVocabularyCheckHook']
