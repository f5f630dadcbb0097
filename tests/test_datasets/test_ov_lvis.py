"""OVLVISV1Dataset (ovdense/datasets/ov_lvis.py): rare (or named) novel classes' annotations
and the images they leave empty are removed for training, the class indexing is unchanged, and
bad input is named."""
import json

import pytest

import ovdense  # noqa: F401


def _write_lvis(path, categories, images, annotations):
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)


def _small_lvis(tmp_path):
    categories = [dict(id=i + 1, name=n, synonyms=[n], synset=f'{n}.n.01', frequency=f,
                       image_count=1, instance_count=1, **{'def': f'a {n}'})
                  for i, (n, f) in enumerate([('cat', 'f'), ('yak', 'r'), ('dog', 'c')])]
    images = [dict(id=i, width=32, height=32, coco_url=f'http://images.cocodataset.org/'
                   f'train2017/{i:012d}.jpg', neg_category_ids=[], not_exhaustive_category_ids=[])
              for i in (1, 2, 3)]
    poly = [[2, 2, 12, 2, 12, 12, 2, 12]]
    annotations = [dict(id=1, image_id=1, category_id=1, bbox=[2, 2, 10, 10], area=100,
                        segmentation=poly),
                   dict(id=2, image_id=1, category_id=2, bbox=[2, 2, 10, 10], area=100,
                        segmentation=poly),
                   dict(id=3, image_id=2, category_id=2, bbox=[2, 2, 10, 10], area=100,
                        segmentation=poly),
                   dict(id=4, image_id=3, category_id=3, bbox=[2, 2, 10, 10], area=100,
                        segmentation=poly)]
    path = tmp_path / 'lvis_small.json'
    _write_lvis(path, categories, images, annotations)
    return str(path)


def test_ov_lvis_loader_removes_novel_annotations_and_empty_images(tmp_path):
    from ovdense.datasets import OVLVISV1Dataset
    ann = _small_lvis(tmp_path)
    train = OVLVISV1Dataset(ann_file=ann, data_root=str(tmp_path), pipeline=[],
                            data_prefix=dict(img=''))
    assert train.metainfo['classes'] == ('cat', 'yak', 'dog')  # indexing unchanged
    labels = {info['img_id']: [i['bbox_label'] for i in info['instances']]
              for info in map(train.get_data_info, range(len(train)))}
    assert labels == {1: [0], 3: [2]}  # yak (r) gone; image 2 had only yak -> dropped
    assert train.novel_label_ids == [1]
    by_name = OVLVISV1Dataset(ann_file=ann, data_root=str(tmp_path), pipeline=[],
                              novel_classes=['dog'], data_prefix=dict(img=''))
    assert sorted(by_name.get_data_info(i)['img_id'] for i in range(len(by_name))) == [1, 2]
    full = OVLVISV1Dataset(ann_file=ann, data_root=str(tmp_path), pipeline=[],
                           remove_novel=False, test_mode=True, data_prefix=dict(img=''))
    assert len(full) == 3


def test_ov_lvis_loader_bad_input(tmp_path):
    from ovdense.datasets import OVLVISV1Dataset
    ann = _small_lvis(tmp_path)
    with pytest.raises(ValueError, match="novel_classes: \\['zebra'\\] are neither label ids"):
        OVLVISV1Dataset(ann_file=ann, pipeline=[], novel_classes=['zebra'])
    with pytest.raises(ValueError, match='lvis_small.json.*first differences'):
        OVLVISV1Dataset(ann_file=ann, pipeline=[], metainfo=dict(classes=('cat', 'dog', 'yak')))
