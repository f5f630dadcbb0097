"""OVCocoDataset (ovdense/datasets/ov_coco.py): the shipped 48/17 OV-COCO split and the
dataset that removes novel annotations (and images left empty) for training, keeps them for
testing, takes custom split lists, and names what is wrong."""
from dataclasses import replace

import pytest

import ovdense  # noqa: F401
from mmdet.datasets import CocoDataset
from ovdense.datasets import OVCocoDataset, load_ov_coco_split
from ovdense.testing.data import write_small_coco
from ovdense.text import load_vocabulary


COCO_CLASSES = CocoDataset.METAINFO['classes']
NOVEL = ('airplane', 'bus', 'cat', 'dog', 'cow', 'elephant', 'umbrella', 'tie', 'snowboard',
         'skateboard', 'cup', 'knife', 'cake', 'couch', 'keyboard', 'sink', 'scissors')


def _dataset(ann, **kwargs):
    return OVCocoDataset(ann_file=ann, pipeline=[], data_prefix=dict(img=''),
                         filter_cfg=dict(filter_empty_gt=True), **kwargs)


def _labels(dataset):
    names = dataset.metainfo['classes']
    return {info['img_id']: [names[i['bbox_label']] for i in info['instances']]
            for info in map(dataset.get_data_info, range(len(dataset)))}


def test_shipped_split_is_the_ovr_cnn_split():
    split = load_ov_coco_split()
    assert len(split['base']) == 48 and len(split['novel']) == 17
    assert sorted(split['novel']) == sorted(NOVEL)
    assert not set(split['base']) & set(split['novel'])
    vocab = load_vocabulary('ov_coco')  # the classifier's vocabulary: 65 names, COCO order
    assert vocab.names == tuple(n for n in COCO_CLASSES if n in split['base'] + split['novel'])
    coco = {entry.name: entry for entry in load_vocabulary('coco')}
    # descriptions and synonyms from coco.json; the split field is the file's own
    assert all(replace(entry, split=None) == coco[entry.name] for entry in vocab)
    assert all(entry.description for entry in vocab)


def test_train_mode_removes_novel_annotations_and_emptied_images(tmp_path):
    train = _dataset(write_small_coco(tmp_path))
    assert train.metainfo['classes'] == load_vocabulary('ov_coco').names  # 65-class indexing
    assert len(train.metainfo['classes']) == 65
    # dog gone from image 1; image 2 (airplane only) dropped; traffic light is outside OV-COCO
    assert _labels(train) == {1: ['person'], 3: ['car']}
    info = train.get_data_info(0)
    assert info['instances'][0]['bbox_label'] == 0  # person
    assert len(train.novel_label_ids) == 17 and 12 in train.novel_label_ids  # dog = 12
    assert len(train.base_label_ids) == 48


def test_test_mode_keeps_base_and_novel(tmp_path):
    test = _dataset(write_small_coco(tmp_path), test_mode=True)
    assert _labels(test) == {1: ['person', 'dog'], 2: ['airplane'], 3: ['car'], 4: []}
    dog = test.get_data_info(0)['instances'][1]
    assert dog['bbox_label'] == 12 and dog['bbox'] == [20, 20, 30, 32]
    # an explicit remove_novel wins over test_mode
    assert _labels(_dataset(write_small_coco(tmp_path), test_mode=True, remove_novel=True)) == {
        1: ['person'], 3: ['car'], 4: []}


def test_custom_split_lists(tmp_path):
    ann = write_small_coco(tmp_path)
    train = _dataset(ann, base_classes=['car', 'person'], novel_classes=['dog'])
    assert train.metainfo['classes'] == ('person', 'car', 'dog')  # file order, not given order
    assert _labels(train) == {1: ['person'], 3: ['car']}
    test = _dataset(ann, base_classes=['car', 'person'], novel_classes=['dog'], test_mode=True)
    assert _labels(test) == {1: ['person', 'dog'], 2: [], 3: ['car'], 4: []}


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"instances_small.json.*no categories named \['scissors'"):
        _dataset(write_small_coco(tmp_path, skip_class='scissors'))
    ann = write_small_coco(tmp_path)
    with pytest.raises(ValueError, match=r"no categories named \['zebra-ish'\]"):
        _dataset(ann, novel_classes=['zebra-ish'])
    with pytest.raises(ValueError, match='both base and novel'):
        _dataset(ann, novel_classes=['person'])
    with pytest.raises(ValueError, match='not in the category order of .*instances_small'):
        _dataset(ann, base_classes=['person', 'car'], novel_classes=['dog'],
                 metainfo=dict(classes=('car', 'person', 'dog')))
