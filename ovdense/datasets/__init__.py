from .ov_coco import OVCocoDataset, load_ov_coco_split
from .ov_lvis import OVLVISV1Dataset
from .segmentation import (ADE20K847Dataset, LoadUInt16SegAnnotations, PascalContext459Dataset,
                           VocabSegDataset, ZeroLabelAsBackground)

__all__ = ['OVCocoDataset', 'load_ov_coco_split', 'OVLVISV1Dataset', 'ADE20K847Dataset',
           'LoadUInt16SegAnnotations', 'PascalContext459Dataset', 'VocabSegDataset',
           'ZeroLabelAsBackground']
