"""Segmentation transforms that mmseg lacks.

* ``LoadUInt16SegAnnotations``: mmseg's ``LoadAnnotations`` casts label maps to uint8, which
  destroys ids >= 256; this one keeps 16-bit ids and maps the file's ignore value to
  ``ignore_index`` (65535 by default: 255 is a real class id when there are > 255 classes).
* ``ZeroLabelAsBackground``: for heads with a background/unlabeled embedding: ADE-style maps
  (0 = unlabeled, k = class k-1) become k-1 for classes and K (the background column) for 0,
  instead of mmseg's ``reduce_zero_label`` which ignores 0.
"""
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations

from ...registry import register
from ...utils.cli import ConfigError
from ...utils.io import OvdenseFileError

WIDE_IGNORE_INDEX = 65535


@register('TRANSFORMS', scopes=('mmseg',))
class LoadUInt16SegAnnotations(LoadAnnotations):
    """``LoadAnnotations`` for label maps with more than 255 classes (16-bit PNG / TIFF).

    Args:
        ignore_value: the file's unlabeled value (65535 in the A-847 / PC-459 files).
        ignore_index: what unlabeled pixels become (default: 65535, i.e. unchanged); must be
            >= the number of classes, and equal to the metric's / head's ``ignore_index``.
        reduce_zero_label: as mmseg (normally left None: taken from the dataset).
    """

    def __init__(self, ignore_value: int = WIDE_IGNORE_INDEX,
                 ignore_index: int = WIDE_IGNORE_INDEX, reduce_zero_label=None,
                 backend_args=None, imdecode_backend: str = 'pillow'):
        super().__init__(reduce_zero_label=reduce_zero_label, backend_args=backend_args,
                         imdecode_backend=imdecode_backend)
        if not 0 <= ignore_index <= WIDE_IGNORE_INDEX:
            raise ConfigError(f'ignore_index must fit in uint16, got {ignore_index}')
        self.ignore_value = ignore_value
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: dict) -> None:
        path = results['seg_map_path']
        seg = mmcv.imfrombytes(fileio.get(path, backend_args=self.backend_args),
                               flag='unchanged', backend=self.imdecode_backend)
        if seg.ndim == 3 and seg.shape[-1] == 1:
            seg = seg[..., 0]
        if seg.ndim != 2 or not np.issubdtype(seg.dtype, np.integer):
            raise OvdenseFileError(f'{path!r}: expected a single-channel integer label map, got '
                                   f'{seg.dtype} of shape {seg.shape}')
        seg = seg.astype(np.int64)
        if self.reduce_zero_label is None:
            self.reduce_zero_label = results['reduce_zero_label']
        if self.reduce_zero_label != results['reduce_zero_label']:
            raise ConfigError(f'the dataset has reduce_zero_label={results["reduce_zero_label"]}'
                              f' but {type(self).__name__} has {self.reduce_zero_label}')
        ignore = seg == self.ignore_value
        if self.reduce_zero_label:
            ignore |= seg == 0
            seg = seg - 1
        if results.get('label_map'):
            mapped = seg.copy()
            for old_id, new_id in results['label_map'].items():
                mapped[seg == old_id] = new_id
            seg = mapped
        seg[ignore] = self.ignore_index
        if seg.min() < 0 or seg.max() > WIDE_IGNORE_INDEX:
            raise OvdenseFileError(f'{path!r}: label values {seg.min()}..{seg.max()} do not fit '
                                   'uint16')
        results['gt_seg_map'] = seg.astype(np.uint16)
        results['seg_fields'].append('gt_seg_map')

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(ignore_value={self.ignore_value}, '
                f'ignore_index={self.ignore_index}, reduce_zero_label={self.reduce_zero_label})')


@register('TRANSFORMS', scopes=('mmseg',))
class ZeroLabelAsBackground(BaseTransform):
    """ADE-style label maps for a head with a background column: value 0 (unlabeled) becomes
    ``background_index`` (= the number of classes K), value k becomes k-1, ``ignore_index``
    stays. Load the annotations with ``reduce_zero_label=False`` (set it on the dataset)."""

    def __init__(self, background_index: int, ignore_index: int = 255):
        if background_index == ignore_index:
            raise ConfigError('background_index must differ from ignore_index')
        self.background_index = background_index
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        if results.get('reduce_zero_label'):
            raise ConfigError('ZeroLabelAsBackground needs the label 0 that reduce_zero_label '
                              'removes: build the dataset with reduce_zero_label=False')
        seg = results['gt_seg_map']
        out = seg.astype(np.int64) - 1
        out[seg == 0] = self.background_index
        out[seg == self.ignore_index] = self.ignore_index
        dtype = seg.dtype if out.max() <= np.iinfo(seg.dtype).max else np.uint16
        results['gt_seg_map'] = out.astype(dtype)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(background_index={self.background_index}, '
                f'ignore_index={self.ignore_index})')
