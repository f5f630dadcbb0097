from .hooks import (CheckpointMatchHook, DetVocabularyCheckHook, ExactResumeHook,
                    OpenVocabularyHook)

__all__ = ['CheckpointMatchHook', 'DetVocabularyCheckHook', 'ExactResumeHook',
           'OpenVocabularyHook']
