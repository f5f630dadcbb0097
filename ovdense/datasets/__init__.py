from ..compat import import_mmaction
from .ov_coco import OVCocoDataset, load_ov_coco_split
from .ov_lvis import OVLVISV1Dataset
from .segmentation import ADE20K847Dataset, PascalContext459Dataset, VocabSegDataset
from .transforms import (CheckedOpenCVDecode, CheckedOpenCVInit, LoadUInt16SegAnnotations,
                         UnreadableVideoError, ZeroLabelAsBackground)

if import_mmaction() is not None:
    from .video_dataset import VocabVideoDataset
else:  # pragma: no cover - mmaction2 not installed (extra "action")
    VocabVideoDataset = None

__all__ = ['OVCocoDataset', 'load_ov_coco_split', 'OVLVISV1Dataset', 'ADE20K847Dataset',
           'PascalContext459Dataset', 'VocabSegDataset', 'VocabVideoDataset',
           'CheckedOpenCVDecode', 'CheckedOpenCVInit', 'LoadUInt16SegAnnotations',
           'UnreadableVideoError', 'ZeroLabelAsBackground']
