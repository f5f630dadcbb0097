"""OVCocoMetric (ovdense/evaluation/metrics/ov_coco_metric.py): OV-COCO's novel / base / all
box AP50 through the real pycocotools COCOeval on hand-made boxes, and the split classes
missing from a dataset named."""
import pytest
import torch

import ovdense  # noqa: F401
from ovdense.evaluation import OVCocoMetric
from ovdense.testing.data import SMALL_COCO_BOXES as BOX
from ovdense.testing.data import write_small_coco
from ovdense.text import load_vocabulary


def _sample(img_id, detections):
    """detections: (class name, xywh box, score)."""
    classes = load_vocabulary('ov_coco').names
    boxes = [[x, y, x + w, y + h] for _, (x, y, w, h), _ in detections]
    return dict(img_id=img_id, ori_shape=(48, 64), pred_instances=dict(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        scores=torch.tensor([s for *_, s in detections], dtype=torch.float32),
        labels=torch.tensor([classes.index(n) for n, *_ in detections], dtype=torch.long)))


def _evaluate(tmp_path, predictions):
    metric = OVCocoMetric(ann_file=write_small_coco(tmp_path), metric='bbox')
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
    metric = OVCocoMetric(ann_file=write_small_coco(tmp_path), metric='bbox')
    metric.dataset_meta = dict(classes=('person', 'car', 'dog'))
    metric.process({}, [_sample(1, [('person', BOX[1][0], 0.9)])])  # label 0 in both lists
    with pytest.raises(ValueError, match=r"novel classes \['airplane'.*instances_small.json"):
        metric.evaluate(size=1)
