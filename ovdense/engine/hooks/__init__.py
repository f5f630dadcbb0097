from ...compat import import_mmaction
from .runtime_hooks import (CheckpointMatchHook, DetVocabularyCheckHook, ExactResumeHook,
                            OpenVocabularyHook, TrainOnlyHook, normalised_names)
from .segmentation_hooks import OVSegVisualizationHook, SegVocabularyCheckHook

if import_mmaction() is not None:
    from .action_hooks import ActionVocabularyCheckHook
else:  # pragma: no cover - mmaction2 not installed (extra "action")
    ActionVocabularyCheckHook = None

__all__ = ['ActionVocabularyCheckHook', 'CheckpointMatchHook', 'DetVocabularyCheckHook',
           'ExactResumeHook', 'OVSegVisualizationHook', 'OpenVocabularyHook',
           'SegVocabularyCheckHook', 'TrainOnlyHook', 'normalised_names']
