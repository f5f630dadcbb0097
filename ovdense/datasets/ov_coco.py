"""Open-vocabulary COCO (OV-COCO): 48 base / 17 novel classes, from the stock COCO 2017 files.

The split (``resources/vocabularies/ov_coco_split.json``) is the one of OVR-CNN (Zareian et
al., CVPR 2021). The label space is the 65 split classes in the annotation file's category order;
the other 15 COCO classes are skipped in training and testing. For training, every annotation
of a novel class is removed at load time and images left without annotations are dropped, so no
second annotation file is needed.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Set, Tuple

from mmdet.datasets import CocoDataset

from ..registry import register
from ..text.vocabulary import RESOURCE_DIR
from .checks import NamedSampleErrors, check_annotation_categories

OV_COCO_SPLIT_FILE = osp.join(RESOURCE_DIR, 'ov_coco_split.json')


def load_ov_coco_split(path: str = OV_COCO_SPLIT_FILE) -> Dict[str, Tuple[str, ...]]:
    """``{'base': names, 'novel': names}`` from a split file, each in the file's order."""
    with open(path, encoding='utf-8') as f:
        classes = json.load(f)['classes']
    split: Dict[str, List[str]] = {'base': [], 'novel': []}
    for record in classes:
        if record.get('split') not in split:
            raise ValueError(f'{path!r}: class {record.get("name")!r} has split '
                             f'{record.get("split")!r}; expected "base" or "novel"')
        split[record['split']].append(record['name'])
    return {key: tuple(names) for key, names in split.items()}


def resolve_split(base_classes: Optional[Sequence[str]] = None,
                  novel_classes: Optional[Sequence[str]] = None) -> Dict[str, Tuple[str, ...]]:
    """The shipped split, with either list replaced by a given one; the two must not overlap."""
    split = load_ov_coco_split()
    if base_classes is not None:
        split['base'] = tuple(base_classes)
    if novel_classes is not None:
        split['novel'] = tuple(novel_classes)
    overlap = sorted(set(split['base']) & set(split['novel']))
    if overlap:
        raise ValueError(f'classes both base and novel: {overlap[:10]}')
    return split


def _coco_order(names: Sequence[str]) -> Tuple[str, ...]:
    # Stock COCO files list categories in this order; names outside it keep their given order
    # at the end (sorted() is stable). load_data_list re-reads the order from the file anyway.
    rank = {name: i for i, name in enumerate(CocoDataset.METAINFO['classes'])}
    return tuple(sorted(names, key=lambda name: rank.get(name, len(rank))))


@register('DATASETS', scopes=('mmdet',))
class OVCocoDataset(NamedSampleErrors, CocoDataset):
    """COCO restricted to the OV-COCO classes, with the novel annotations removed for training.

    Args:
        base_classes / novel_classes: category names; ``None`` takes the shipped OVR-CNN split.
        remove_novel: drop every novel annotation (and the images it leaves empty). ``None``
            (default) removes them unless ``test_mode``.
        metainfo: as for ``CocoDataset`` (a keyword). Without ``classes``, the classes are base +
            novel in the annotation file's category order, so label indices and names agree.
    """

    def __init__(self, *args, base_classes: Optional[Sequence[str]] = None,
                 novel_classes: Optional[Sequence[str]] = None,
                 remove_novel: Optional[bool] = None, **kwargs):
        split = resolve_split(base_classes, novel_classes)
        self.base_classes, self.novel_classes = split['base'], split['novel']
        self.remove_novel = remove_novel
        self._novel_ids: Optional[Set[int]] = None
        self._emptied_img_ids: Set[int] = set()
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        self._classes_given = bool(metainfo.get('classes'))
        if self._classes_given:
            unknown = sorted(set(self.novel_classes) - set(metainfo['classes']))
            if unknown:
                raise ValueError(f'novel classes not among metainfo classes: {unknown[:10]}')
        else:
            metainfo['classes'] = _coco_order(self.base_classes + self.novel_classes)
        super().__init__(*args, metainfo=metainfo, **kwargs)

    @property
    def removing_novel(self) -> bool:
        return not self.test_mode if self.remove_novel is None else self.remove_novel

    def load_data_list(self) -> List[dict]:
        self._novel_ids, self._emptied_img_ids = None, set()
        data_list = super().load_data_list()
        return [info for info in data_list if info['img_id'] not in self._emptied_img_ids]

    def parse_data_info(self, raw_data_info: dict) -> dict:
        if self._novel_ids is None:  # first image: self.coco is loaded, categories known
            self._prepare_categories()
        check_annotation_categories(self.ann_file, raw_data_info, self.coco.cats)
        if not self.removing_novel:
            return super().parse_data_info(raw_data_info)
        anns = raw_data_info['raw_ann_info']
        kept = [ann for ann in anns if ann['category_id'] not in self._novel_ids]
        info = super().parse_data_info(dict(raw_data_info, raw_ann_info=kept))
        # Only images the removal emptied are dropped here; images without annotations from
        # the start follow filter_cfg, as in mmdet.
        if len(kept) < len(anns) and not info['instances']:
            self._emptied_img_ids.add(info['img_id'])
        return info

    def _prepare_categories(self) -> None:
        # CocoDataset labels categories in the file's order and silently skips class names the
        # file lacks; both would misalign labels and names, so check here.
        classes = tuple(self._metainfo['classes'])
        categories = self.coco.load_cats(self.cat_ids)
        names = tuple(cat['name'] for cat in categories)
        missing = [name for name in classes if name not in names]
        if missing:
            raise ValueError(f'{self.ann_file!r} has no categories named {missing[:10]} '
                             f'(OV-COCO classes; check base_classes / novel_classes)')
        if names != classes:
            if self._classes_given:
                raise ValueError(
                    f'metainfo classes are not in the category order of {self.ann_file!r}; '
                    f'labels follow the file, whose order is {list(names)[:10]}...')
            self._metainfo['classes'] = names
        by_name = {cat['name']: cat['id'] for cat in categories}
        self._novel_ids = {by_name[name] for name in self.novel_classes}

    def _label_ids(self, names: Sequence[str]) -> List[int]:
        index = {name: i for i, name in enumerate(self.metainfo['classes'])}
        return sorted(index[name] for name in names if name in index)

    @property
    def novel_label_ids(self) -> List[int]:
        """Label indices of the novel classes (for reporting)."""
        return self._label_ids(self.novel_classes)

    @property
    def base_label_ids(self) -> List[int]:
        return self._label_ids(self.base_classes)
