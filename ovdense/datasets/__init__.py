from .ov_lvis import OVLVISV1Dataset
from .segmentation import (ADE20K847Dataset, LoadUInt16SegAnnotations, PascalContext459Dataset,
                           VocabSegDataset, ZeroLabelAsBackground)

__all__ = ['OVLVISV1Dataset', 'ADE20K847Dataset', 'LoadUInt16SegAnnotations',
           'PascalContext459Dataset', 'VocabSegDataset', 'ZeroLabelAsBackground']
