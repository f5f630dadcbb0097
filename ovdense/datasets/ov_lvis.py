"""Open-vocabulary LVIS: train on base classes only, test on all, from the stock LVIS files.

Novel categories (frequency 'r' by default, or a given list of names) keep their label index
(the 1203-class indexing is unchanged) but every annotation of them is removed at load time,
and training images left without annotations are dropped. No second annotation file needed.
"""
from typing import List, Optional, Sequence, Set, Union

from mmdet.datasets import LVISV1Dataset

from ..registry import register
from ..text.vocabulary import novel_class_ids, vocabulary_from_lvis_categories
from .checks import NamedSampleErrors, check_annotation_categories


@register('DATASETS', scopes=('mmdet',))
class OVLVISV1Dataset(NamedSampleErrors, LVISV1Dataset):
    """LVIS v1 with the annotations of novel categories removed.

    Args:
        novel_classes: frequency letters (``'r'``, ``'rc'``) or a list of category names (see
            :func:`ovdense.text.vocabulary.novel_class_ids`).
        remove_novel: set False to load everything (e.g. for the test split).
        metainfo: as for ``LVISV1Dataset``; when it has no ``classes``, the annotation file's
            category names are used, so label indices and class names always agree.
    """

    def __init__(self, *args, novel_classes: Union[str, Sequence[str]] = 'r',
                 remove_novel: bool = True, **kwargs):
        self.novel_classes = novel_classes
        self.remove_novel = remove_novel
        self._novel_ids: Optional[Set[int]] = None
        self._classes_from_file = not (kwargs.get('metainfo') or {}).get('classes')
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        self._novel_ids = None
        data_list = super().load_data_list()
        if self.remove_novel:
            data_list = [info for info in data_list if info['instances']]
        return data_list

    def parse_data_info(self, raw_data_info: dict) -> dict:
        if self._novel_ids is None:  # first image: self.lvis is loaded, categories known
            self._prepare_categories()
        check_annotation_categories(self.ann_file, raw_data_info, self.cat2label)
        if self.remove_novel:
            raw_data_info = dict(raw_data_info, raw_ann_info=[
                ann for ann in raw_data_info['raw_ann_info']
                if ann['category_id'] not in self._novel_ids])
        return super().parse_data_info(raw_data_info)

    def _prepare_categories(self) -> None:
        categories = self.lvis.load_cats(self.cat_ids)
        names = tuple(c['name'] for c in categories)
        classes = tuple(self._metainfo.get('classes') or ())
        if self._classes_from_file:
            self._metainfo['classes'] = names
        elif classes != names:
            diff = [(i, a, b) for i, (a, b) in enumerate(zip(classes, names)) if a != b]
            raise ValueError(
                f'{self.ann_file!r} has {len(names)} categories but metainfo classes has '
                f'{len(classes)}; first differences (index, metainfo, file): {diff[:5]}. '
                'Labels follow the file\'s category order, so the class list must match it.')
        self._novel_ids = self._select_novel(categories)

    def _select_novel(self, categories: List[dict]) -> Set[int]:
        ordered = sorted(categories, key=lambda c: c['id'])
        vocab = vocabulary_from_lvis_categories(ordered, source=str(self.ann_file))
        return {ordered[i]['id'] for i in novel_class_ids(vocab, self.novel_classes)}

    @property
    def novel_label_ids(self) -> List[int]:
        """Label indices of the novel classes (for reporting)."""
        return sorted(self.cat2label[i] for i in self._novel_ids or ())
