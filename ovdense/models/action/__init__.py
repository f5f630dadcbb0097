"""Action recognition (mmaction2): Video Swin with the text cosine classifier.

Importing this package registers into mmaction2's registries (when mmaction2 imports; see
:func:`ovdense.compat.import_mmaction`):

* MODELS: ``TextI3DHead`` (``I3DHead`` whose ``fc_cls`` is ``TextCosineClassifier``);
* DATASETS: ``VocabVideoDataset`` (``VideoDataset`` with vocabulary classes / a class subset);
* TRANSFORMS: ``CheckedOpenCVInit``, ``CheckedOpenCVDecode`` (OpenCV decoding whose errors
  name the video file);
* METRICS: ``OpenVocabAccMetric`` (top-1 on base / novel classes, harmonic mean);
* HOOKS: ``ActionVocabularyCheckHook`` (head and dataset classes agree).

The video backbone, ``ICARSwin3D``, lives in :mod:`ovdense.models.backbones`.
"""
from ...compat import import_mmaction
from .classes import resolve_names, select_classes

if import_mmaction() is not None:
    from .datasets import VocabVideoDataset
    from .evaluation import ActionVocabularyCheckHook, OpenVocabAccMetric
    from .heads import TextI3DHead, text_head_of
    from .transforms import CheckedOpenCVDecode, CheckedOpenCVInit, UnreadableVideoError
else:  # pragma: no cover - mmaction2 not installed (extra "action")
    VocabVideoDataset = ActionVocabularyCheckHook = OpenVocabAccMetric = None
    TextI3DHead = CheckedOpenCVDecode = CheckedOpenCVInit = UnreadableVideoError = None
    text_head_of = None

__all__ = ['ActionVocabularyCheckHook', 'CheckedOpenCVDecode', 'CheckedOpenCVInit',
           'OpenVocabAccMetric', 'TextI3DHead', 'UnreadableVideoError', 'VocabVideoDataset',
           'resolve_names', 'select_classes', 'text_head_of']
