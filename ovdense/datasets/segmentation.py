"""Semantic segmentation data that mmseg lacks, for fine-tuning and open-vocabulary evaluation.

* ``VocabSegDataset``: an mmseg folder dataset whose classes come from any vocabulary spec
  (a vocabulary file, a shipped dataset name, a list), e.g. the demo data's ``vocab_seg.json``.
* ``ADE20K847Dataset`` / ``PascalContext459Dataset``: the ADE20K-Full (847 classes) and
  PASCAL-Context full (459 classes) benchmarks in the layout every open-vocabulary
  segmentation work uses (SAN, FC-CLIP, CAT-Seg): uint16 ``.tif`` label maps holding the
  class id, 65535 = unlabeled/ignore. Class names and order come from the shipped vocabularies
  (``ade20k_847``, ``pascal_context_459``), so ``--vocab`` and the dataset always agree.
* ``LoadUInt16SegAnnotations``: mmseg's ``LoadAnnotations`` casts label maps to uint8, which
  destroys ids >= 256; this one keeps 16-bit ids and maps the file's ignore value to
  ``ignore_index`` (65535 by default: 255 is a real class id when there are > 255 classes).
* ``ZeroLabelAsBackground``: for heads with a background/unlabeled embedding: ADE-style maps
  (0 = unlabeled, k = class k-1) become k-1 for classes and K (the background column) for 0,
  instead of mmseg's ``reduce_zero_label`` which ignores 0.
"""
from typing import Dict, Optional, Sequence

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmseg.datasets import BaseSegDataset
from mmseg.datasets.transforms import LoadAnnotations

from ..registry import register

try:  # user errors: tools print one line and exit 2
    from ..utils.cli import ConfigError
except ImportError:  # pragma: no cover
    ConfigError = ValueError
from ..text import load_vocabulary
from ..utils.io import OvdenseFileError
from .checks import NamedSampleErrors

WIDE_IGNORE_INDEX = 65535


def _vocabulary_metainfo(spec: str) -> Dict:
    return dict(classes=load_vocabulary(spec).names)


@register('DATASETS', scopes=('mmseg',))
class VocabSegDataset(NamedSampleErrors, BaseSegDataset):
    """A folder of images + label maps whose class list is a vocabulary.

    Args:
        vocabulary: any vocabulary spec; label id i is ``vocabulary[i]``.
        **kwargs: ``BaseSegDataset`` arguments (``data_root``, ``data_prefix``,
            ``img_suffix``, ``seg_map_suffix``, ``reduce_zero_label``, ...).
    """

    def __init__(self, vocabulary, metainfo: Optional[dict] = None, **kwargs):
        self.vocabulary = load_vocabulary(vocabulary)
        metainfo = dict(metainfo or {})
        given = metainfo.get('classes')
        if given is not None and tuple(given) != self.vocabulary.names:
            raise ConfigError(f'{type(self).__name__}: metainfo classes ({len(given)}) differ '
                              f'from vocabulary {self.vocabulary.source!r} '
                              f'({len(self.vocabulary)}); give only one of them')
        metainfo['classes'] = self.vocabulary.names
        super().__init__(metainfo=metainfo, **kwargs)


class _WideLabelDataset(NamedSampleErrors, BaseSegDataset):
    """Datasets with > 255 classes: removed classes (custom ``classes``) map to 65535."""

    @classmethod
    def get_label_map(cls, new_classes: Optional[Sequence] = None) -> Optional[dict]:
        label_map = super().get_label_map(new_classes)  # validates the subset
        if label_map is None:
            return None
        new_classes = list(new_classes)
        return {i: new_classes.index(c) if c in new_classes else WIDE_IGNORE_INDEX
                for i, c in enumerate(cls.METAINFO['classes'])}


@register('DATASETS', scopes=('mmseg',))
class ADE20K847Dataset(_WideLabelDataset):
    """ADE20K-Full, 847 classes (``ADE20K_2021_17_01``), as prepared by MaskFormer's
    ``datasets/prepare_ade20k_full_sem_seg.py``: ``images_detectron2/{training,validation}/
    *.jpg`` and ``annotations_detectron2/{training,validation}/*.tif`` (uint16 trainId,
    65535 = ignore). Use ``LoadUInt16SegAnnotations`` and ``IoUMetric(ignore_index=65535)``."""
    METAINFO = _vocabulary_metainfo('ade20k_847')

    def __init__(self, img_suffix='.jpg', seg_map_suffix='.tif', reduce_zero_label=False,
                 ignore_index=WIDE_IGNORE_INDEX, **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, ignore_index=ignore_index,
                         **kwargs)


@register('DATASETS', scopes=('mmseg',))
class PascalContext459Dataset(_WideLabelDataset):
    """PASCAL-Context full, 459 classes, as prepared by SAN's
    ``datasets/prepare_pcontext_sem_seg_459cls.py``: ``pcontext_full/{train,val}/image/*.jpg``
    and ``pcontext_full/{train,val}/label/*.tif`` (uint16, LabelMap - 1, 65535 = ignore).
    Use ``LoadUInt16SegAnnotations`` and ``IoUMetric(ignore_index=65535)``."""
    METAINFO = _vocabulary_metainfo('pascal_context_459')

    def __init__(self, img_suffix='.jpg', seg_map_suffix='.tif', reduce_zero_label=False,
                 ignore_index=WIDE_IGNORE_INDEX, **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, ignore_index=ignore_index,
                         **kwargs)


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
