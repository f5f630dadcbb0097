from .action_visualization_hook import ActionVisualizationHook
from .runtime_hooks import (CheckpointMatchHook, ExactResumeHook, OpenVocabularyHook,
                            TrainOnlyHook)
from .segmentation_hooks import OVSegVisualizationHook, SegVocabularyCheckHook
from .vocabulary_check_hook import (CHECK_HOOK_TYPES, VocabularyCheckHook,
                                    check_dataset_classes, normalised_names, scored_vocabulary)

__all__ = ['ActionVisualizationHook', 'CHECK_HOOK_TYPES', 'CheckpointMatchHook', 'ExactResumeHook',
           'OVSegVisualizationHook', 'OpenVocabularyHook', 'SegVocabularyCheckHook',
           'TrainOnlyHook', 'VocabularyCheckHook', 'check_dataset_classes', 'normalised_names',
           'scored_vocabulary']
