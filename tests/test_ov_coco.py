"""OV-COCO: the shipped 48/17 split, the dataset that removes novel annotations for training,
and the metric's novel / base / all box AP50 (real pycocotools COCOeval on hand-made boxes)."""
import json
from dataclasses import replace

import pytest
import torch

import ovdense  # noqa: F401
from mmdet.datasets import CocoDataset
from ovdense.datasets import OVCocoDataset, load_ov_coco_split
from ovdense.evaluation import OVCocoMetric
from ovdense.text import load_vocabulary

COCO_CLASSES = CocoDataset.METAINFO['classes']
NOVEL = ('airplane', 'bus', 'cat', 'dog', 'cow', 'elephant', 'umbrella', 'tie', 'snowboard',
         'skateboard', 'cup', 'knife', 'cake', 'couch', 'keyboard', 'sink', 'scissors')
BOX = {1: [[2, 2, 10, 10], [20, 20, 10, 12]], 2: [[4, 4, 20, 16]], 3: [[6, 6, 12, 12]]}


def _cat_id(name):
    return COCO_CLASSES.index(name) + 1


def _write_coco(tmp_path, skip_class=None):
    """4 images. 1: person + dog (novel). 2: airplane only (novel). 3: car + traffic light
    (one of the 15 classes outside OV-COCO). 4: no annotations."""
    categories = [dict(id=i + 1, name=n, supercategory='x') for i, n in enumerate(COCO_CLASSES)
                  if n != skip_class]
    images = [dict(id=i, file_name=f'{i:012d}.jpg', width=64, height=48) for i in (1, 2, 3, 4)]
    labelled = [(1, 'person', BOX[1][0]), (1, 'dog', BOX[1][1]), (2, 'airplane', BOX[2][0]),
                (3, 'car', BOX[3][0]), (3, 'traffic light', [30, 30, 8, 8])]
    annotations = [dict(id=k + 1, image_id=img, category_id=_cat_id(name), bbox=box,
                        area=box[2] * box[3], iscrowd=0)
                   for k, (img, name, box) in enumerate(labelled)]
    path = tmp_path / 'instances_small.json'
    path.write_text(json.dumps(dict(images=images, annotations=annotations,
                                    categories=categories)))
    return str(path)


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
    train = _dataset(_write_coco(tmp_path))
    assert train.metainfo['classes'] == load_vocabulary('ov_coco').names  # 65-class indexing
    assert len(train.metainfo['classes']) == 65
    # dog gone from image 1; image 2 (airplane only) dropped; traffic light is outside OV-COCO
    assert _labels(train) == {1: ['person'], 3: ['car']}
    info = train.get_data_info(0)
    assert info['instances'][0]['bbox_label'] == 0  # person
    assert len(train.novel_label_ids) == 17 and 12 in train.novel_label_ids  # dog = 12
    assert len(train.base_label_ids) == 48


def test_test_mode_keeps_base_and_novel(tmp_path):
    test = _dataset(_write_coco(tmp_path), test_mode=True)
    assert _labels(test) == {1: ['person', 'dog'], 2: ['airplane'], 3: ['car'], 4: []}
    dog = test.get_data_info(0)['instances'][1]
    assert dog['bbox_label'] == 12 and dog['bbox'] == [20, 20, 30, 32]
    # an explicit remove_novel wins over test_mode
    assert _labels(_dataset(_write_coco(tmp_path), test_mode=True, remove_novel=True)) == {
        1: ['person'], 3: ['car'], 4: []}


def test_custom_split_lists(tmp_path):
    ann = _write_coco(tmp_path)
    train = _dataset(ann, base_classes=['car', 'person'], novel_classes=['dog'])
    assert train.metainfo['classes'] == ('person', 'car', 'dog')  # file order, not given order
    assert _labels(train) == {1: ['person'], 3: ['car']}
    test = _dataset(ann, base_classes=['car', 'person'], novel_classes=['dog'], test_mode=True)
    assert _labels(test) == {1: ['person', 'dog'], 2: [], 3: ['car'], 4: []}


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"instances_small.json.*no categories named \['scissors'"):
        _dataset(_write_coco(tmp_path, skip_class='scissors'))
    ann = _write_coco(tmp_path)
    with pytest.raises(ValueError, match=r"no categories named \['zebra-ish'\]"):
        _dataset(ann, novel_classes=['zebra-ish'])
    with pytest.raises(ValueError, match='both base and novel'):
        _dataset(ann, novel_classes=['person'])
    with pytest.raises(ValueError, match='not in the category order of .*instances_small'):
        _dataset(ann, base_classes=['person', 'car'], novel_classes=['dog'],
                 metainfo=dict(classes=('car', 'person', 'dog')))


def _sample(img_id, detections):
    """detections: (class name, xywh box, score)."""
    classes = load_vocabulary('ov_coco').names
    boxes = [[x, y, x + w, y + h] for _, (x, y, w, h), _ in detections]
    return dict(img_id=img_id, ori_shape=(48, 64), pred_instances=dict(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        scores=torch.tensor([s for *_, s in detections], dtype=torch.float32),
        labels=torch.tensor([classes.index(n) for n, *_ in detections], dtype=torch.long)))


def _evaluate(tmp_path, predictions):
    metric = OVCocoMetric(ann_file=_write_coco(tmp_path), metric='bbox')
    metric.dataset_meta = dict(classes=load_vocabulary('ov_coco').names)
    metric.process({}, [_sample(img_id, dets) for img_id, dets in predictions.items()])
    return metric.evaluate(size=len(predictions))


PERFECT = {1: [('person', BOX[1][0], 0.9), ('dog', BOX[1][1], 0.9)],
           2: [('airplane', BOX[2][0], 0.9)], 3: [('car', BOX[3][0], 0.9)], 4: []}


def test_metric_perfect_novel_predictions(tmp_path):
    scores = _evaluate(tmp_path, PERFECT)
    assert scores['coco/bbox_AP50_novel'] == 1.0  # = 100 in papers' units
    assert scores['coco/bbox_AP50_base'] == 1.0 and scores['coco/bbox_AP50_all'] == 1.0


def test_metric_wrong_novel_predictions_hand_checked(tmp_path):
    wrong = dict(PERFECT)
    # The dog is called a cat: dog AP50 = 0 (cat has no ground truth, so it is not averaged).
    wrong[1] = [('person', BOX[1][0], 0.9), ('cat', BOX[1][1], 0.9)]
    # A higher-scored false airplane on image 4 comes first: precision 1/2 at the only recall
    # level (1.0), so airplane AP50 = 0.5.
    wrong[4] = [('airplane', [40, 30, 10, 10], 0.95)]
    scores = _evaluate(tmp_path, wrong)
    assert scores['coco/bbox_AP50_novel'] == pytest.approx((0.0 + 0.5) / 2)
    assert scores['coco/bbox_AP50_base'] == 1.0  # person, car
    assert scores['coco/bbox_AP50_all'] == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    assert scores['coco/bbox_AP50_all'] == scores['coco/bbox_mAP_50']  # agrees with mmdet's


def test_metric_names_missing_split_classes(tmp_path):
    metric = OVCocoMetric(ann_file=_write_coco(tmp_path), metric='bbox')
    metric.dataset_meta = dict(classes=('person', 'car', 'dog'))
    metric.process({}, [_sample(1, [('person', BOX[1][0], 0.9)])])  # label 0 in both lists
    with pytest.raises(ValueError, match=r"novel classes \['airplane'.*instances_small.json"):
        metric.evaluate(size=1)
