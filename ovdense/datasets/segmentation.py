"""Semantic segmentation data that mmseg lacks, for fine-tuning and open-vocabulary evaluation.

* ``VocabSegDataset``: an mmseg folder dataset whose classes come from any vocabulary spec
  (a vocabulary file, a shipped dataset name, a list), e.g. the demo data's ``vocab_seg.json``.
* ``ADE20K847Dataset`` / ``PascalContext459Dataset``: the ADE20K-Full (847 classes) and
  PASCAL-Context full (459 classes) benchmarks in the layout every open-vocabulary
  segmentation work uses (SAN, FC-CLIP, CAT-Seg): uint16 ``.tif`` label maps holding the
  class id, 65535 = unlabeled/ignore. Class names and order come from the shipped vocabularies
  (``ade20k_847``, ``pascal_context_459``), so ``--vocab`` and the dataset always agree.

Their transforms (16-bit label maps, background labels) are in :mod:`.transforms.segmentation`.
"""
from typing import Dict, Optional, Sequence

from mmseg.datasets import BaseSegDataset

from ..registry import register

try:  # user errors: tools print one line and exit 2
    from ..utils.cli import ConfigError
except ImportError:  # pragma: no cover
    ConfigError = ValueError
from ..text import load_vocabulary
from .checks import NamedSampleErrors
from .transforms.segmentation import WIDE_IGNORE_INDEX


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
