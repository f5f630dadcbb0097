"""Hand-checked values of mmdet's ``LVISMetric`` (the real ``lvis`` evaluator), the metric
behind the README's headline number, mask APr.

The other tests only check that ``lvis/segm_APr`` and friends exist. Here a tiny LVIS v1
annotation file (4 images, one category per frequency group) is evaluated with predictions
whose AP is derived by hand, so a wrong frequency grouping, a broken numpy-2 fix, a label
to category-id mix-up, masks evaluated as boxes or LVIS's federated rules not applied would
each change an asserted number.

``import ovdense`` comes first: it gives lvis 0.5.3's evaluator the ``np.float`` alias
that numpy 2 removed (``ovdense/compat.py``); without it ``accumulate`` crashes.
"""
import json

import numpy as np
import pytest
import torch

import ovdense  # noqa: F401  (first: the numpy-2 fix for lvis' evaluator)
import lvis.eval as lvis_eval_module  # install requirements of ovdense: no skip
import pycocotools.mask as pycocotools_mask
from mmdet.evaluation import LVISMetric

H = W = 64
# LVIS v1 categories: one per frequency group; label index k <-> category id k + 1.
CATEGORIES = [
    {'id': 1, 'name': 'red_circle', 'frequency': 'r', 'synonyms': ['red_circle'],
     'def': 'a red round flat shape', 'image_count': 2, 'instance_count': 2,
     'synset': 'red_circle.n.01'},
    {'id': 2, 'name': 'blue_star', 'frequency': 'c', 'synonyms': ['blue_star'],
     'def': 'a blue five-pointed star', 'image_count': 2, 'instance_count': 2,
     'synset': 'blue_star.n.01'},
    {'id': 3, 'name': 'green_square', 'frequency': 'f', 'synonyms': ['green_square'],
     'def': 'a green flat shape', 'image_count': 3, 'instance_count': 3,
     'synset': 'green_square.n.01'},
]
CLASSES = tuple(c['name'] for c in CATEGORIES)
RARE, COMMON, FREQUENT = 0, 1, 2  # label indices


def rect(x1, y1, x2, y2):
    return [x1, y1, x2, y1, x2, y2, x1, y2]


# The frequent class is L-shaped: its box is 30 x 20 = 600 px, the shape 600 - 12 x 14 = 432
# px, so a mask that fills the box has mask IoU ~0.72 with it (box IoU 1).
def ell(x, y):
    return [x, y, x + 18, y, x + 18, y + 14, x + 30, y + 14, x + 30, y + 20, x, y + 20]


# image id -> (federated lists, [(label, polygon)]). The lists follow LVIS's rules:
# neg_category_ids: verified absent (a detection of it is a false positive);
# not_exhaustive_category_ids: present but not every instance annotated (an unmatched
# detection of it is ignored); any other class absent from an image's annotations is
# unverified there, and its detections on that image are dropped before matching.
IMAGES = {
    1: ({'neg': [], 'not_exhaustive': []},
        [(RARE, rect(6, 6, 26, 30)), (FREQUENT, ell(30, 36))]),
    2: ({'neg': [], 'not_exhaustive': []},
        [(RARE, rect(36, 8, 58, 28)), (FREQUENT, ell(4, 40))]),
    3: ({'neg': [1], 'not_exhaustive': []},
        [(COMMON, rect(4, 34, 28, 60)), (FREQUENT, ell(30, 40))]),
    4: ({'neg': [], 'not_exhaustive': [2]},
        [(COMMON, rect(30, 30, 56, 58))]),
}
# A box that overlaps no annotation of any image (false-positive detections go here).
EMPTY_CORNER = (40, 2, 60, 22)


def polygon_mask(polygon):
    rle = pycocotools_mask.merge(pycocotools_mask.frPyObjects([polygon], H, W))
    return pycocotools_mask.decode(rle).astype(bool)


def polygon_box(polygon):
    xs, ys = polygon[0::2], polygon[1::2]
    return (min(xs), min(ys), max(xs), max(ys))


def box_mask(box):
    mask = np.zeros((H, W), dtype=bool)
    x1, y1, x2, y2 = box
    mask[y1:y2, x1:x2] = True
    return mask


@pytest.fixture(scope='module')
def ann_file(tmp_path_factory):
    """A tiny annotation file in the LVIS v1 layout."""
    images, annotations = [], []
    for image_id, (lists, objects) in IMAGES.items():
        images.append({'id': image_id, 'width': W, 'height': H,
                       'coco_url': f'http://images.cocodataset.org/val2017/{image_id:012d}.jpg',
                       'neg_category_ids': lists['neg'],
                       'not_exhaustive_category_ids': lists['not_exhaustive']})
        for label, polygon in objects:
            x1, y1, x2, y2 = polygon_box(polygon)
            annotations.append({'id': len(annotations) + 1, 'image_id': image_id,
                                'category_id': label + 1, 'segmentation': [polygon],
                                'bbox': [x1, y1, x2 - x1, y2 - y1],
                                'area': int(polygon_mask(polygon).sum())})
    path = tmp_path_factory.mktemp('lvis') / 'lvis_v1_tiny.json'
    path.write_text(json.dumps({'info': {}, 'licenses': [], 'images': images,
                                'annotations': annotations, 'categories': CATEGORIES}))
    return str(path)


def ground_truth_predictions(score=1.0):
    """image id -> [(label, box xyxy, mask, score)]: every annotation, exactly."""
    return {image_id: [(label, polygon_box(p), polygon_mask(p), score) for label, p in objects]
            for image_id, (_, objects) in IMAGES.items()}


def evaluate(ann_file, predictions):
    """LVIS bbox + segm metrics of ``predictions`` through mmdet's process/evaluate."""
    assert hasattr(lvis_eval_module.np, 'float'), 'ovdense did not patch lvis for numpy 2'
    metric = LVISMetric(ann_file=ann_file, metric=['bbox', 'segm'])
    metric.dataset_meta = dict(classes=CLASSES)
    for image_id in IMAGES:
        dets = predictions.get(image_id, [])
        pred = dict(
            labels=torch.tensor([d[0] for d in dets], dtype=torch.long),
            bboxes=torch.tensor([d[1] for d in dets], dtype=torch.float32).reshape(-1, 4),
            masks=torch.from_numpy(np.stack([d[2] for d in dets]) if dets
                                   else np.zeros((0, H, W), dtype=bool)),
            scores=torch.tensor([d[3] for d in dets], dtype=torch.float32))
        metric.process({}, [dict(img_id=image_id, ori_shape=(H, W), pred_instances=pred)])
    return metric.evaluate(size=len(IMAGES))


def assert_metrics(results, kind, **expected):
    got = {key: results[f'lvis/{kind}_{key}'] for key in expected}
    assert got == expected, f'{kind}: got {got}, expected {expected}'


ALL_ONE = dict(AP=1.0, AP50=1.0, AP75=1.0, APr=1.0, APc=1.0, APf=1.0)


def test_perfect_predictions_score_one_in_every_group(ann_file):
    """Every annotation predicted with its own box and mask, score 1 and the right label:
    AP, AP50, AP75 and APr/APc/APf are all exactly 1.0 for boxes and masks."""
    results = evaluate(ann_file, ground_truth_predictions())
    assert_metrics(results, 'bbox', **ALL_ONE)
    assert_metrics(results, 'segm', **ALL_ONE)


def test_one_of_two_rare_instances_missed_gives_51_of_101(ann_file):
    """Rare red_circle has 2 instances; only the one in image 1 is detected.

    Hand derivation (LVIS ``accumulate``, the same at every IoU threshold): the rare
    detections sorted by score are [TP], so recall = [0.5], precision = [1.0]. Precision is
    read at the 101 recall points 0.00, 0.01, ..., 1.00: the 51 points <= 0.5 get 1.0, the
    50 points above the highest recall reached get 0. APr = 51 / 101 = 0.50495 -> 0.505
    (mmdet rounds to 3 decimals). APc = APf = 1.0 and AP, the mean over the three
    categories, = (51/101 + 1 + 1) / 3 = 0.83498 -> 0.835.
    """
    predictions = ground_truth_predictions()
    predictions[2] = [d for d in predictions[2] if d[0] != RARE]
    results = evaluate(ann_file, predictions)
    for kind in ('bbox', 'segm'):
        assert_metrics(results, kind, APr=round(51 / 101, 3), APc=1.0, APf=1.0,
                       AP=round((51 / 101 + 2) / 3, 3))
        assert results[f'lvis/{kind}_APr'] == 0.505


def test_rare_objects_named_as_another_class_give_rare_ap_zero(ann_file):
    """Both rare objects detected perfectly but labelled blue_star (common), score 1.

    APr = 0: no detection carries the rare label, so recall is 0 at every threshold. APc
    stays 1.0 by LVIS's federated rule: images 1 and 2 neither annotate blue_star nor list
    it in neg_category_ids, so the wrong blue_star detections there are dropped, not
    counted as false positives. AP = (0 + 1 + 1) / 3 = 0.667.
    """
    predictions = ground_truth_predictions()
    for image_id in (1, 2):
        predictions[image_id] = [(COMMON if d[0] == RARE else d[0],) + d[1:]
                                 for d in predictions[image_id]]
    results = evaluate(ann_file, predictions)
    for kind in ('bbox', 'segm'):
        assert_metrics(results, kind, APr=0.0, APc=1.0, APf=1.0, AP=0.667)


def _with_extra_detection(image_id, label):
    """True detections at score 0.9, plus one false detection (score 1.0, so it ranks
    first) of ``label`` on an empty part of ``image_id``."""
    predictions = ground_truth_predictions(score=0.9)
    predictions[image_id] = predictions[image_id] + [
        (label, EMPTY_CORNER, box_mask(EMPTY_CORNER), 1.0)]
    return predictions


@pytest.mark.parametrize('image_id, label, expected', [
    # image 3 lists red_circle in neg_category_ids: the extra detection is a false positive.
    # Sorted: FP, TP, TP -> precision [0, 1/2, 2/3] at recall [0, 1/2, 1]; interpolated
    # (max to the right) 2/3 at every recall point -> APr = 2/3 = 0.667.
    (3, RARE, dict(APr=0.667, APc=1.0, APf=1.0, AP=round((2 / 3 + 2) / 3, 3))),
    # image 4 does not mention red_circle (unverified): the detection is dropped.
    (4, RARE, ALL_ONE),
    # image 3 annotates blue_star exhaustively: unmatched -> false positive, APc = 2/3.
    (3, COMMON, dict(APr=1.0, APc=0.667, APf=1.0, AP=round((2 / 3 + 2) / 3, 3))),
    # image 4 lists blue_star in not_exhaustive_category_ids: unmatched -> ignored.
    (4, COMMON, ALL_ONE),
], ids=['rare-on-verified-negative', 'rare-on-unverified-image',
        'common-exhaustive', 'common-not-exhaustive'])
def test_federated_rules_decide_whether_a_false_detection_counts(ann_file, image_id, label,
                                                                 expected):
    """One top-scored false detection lowers its class's AP to exactly 2/3 where LVIS's
    federated annotation says the image was checked for that class, and changes nothing
    where it was not (unverified class, or not_exhaustive_category_ids)."""
    results = evaluate(ann_file, _with_extra_detection(image_id, label))
    for kind in ('bbox', 'segm'):
        assert_metrics(results, kind, **expected)


def test_segm_metrics_score_masks_not_boxes(ann_file):
    """green_square objects are L-shaped; predicting their exact boxes but box-filling
    masks keeps every bbox metric at 1.0 while the masks have IoU ~0.72 with the truth.

    A match then exists at IoU thresholds 0.50 ... 0.70 (5 of 10) with precision 1, and at
    none above: segm APf = 5/10 = 0.5, AP75 = (1 + 1 + 0) / 3 = 0.667, AP50 = 1.0, AP =
    (1 + 1 + 0.5) / 3 = 0.833, rare and common untouched.
    """
    predictions = ground_truth_predictions()
    ious = []
    for image_id, dets in predictions.items():
        for i, (label, box, mask, score) in enumerate(dets):
            if label == FREQUENT:
                ious.append((mask & box_mask(box)).sum() / (mask | box_mask(box)).sum())
                dets[i] = (label, box, box_mask(box), score)
    assert len(ious) == 3 and all(0.70 < iou < 0.75 for iou in ious), ious
    results = evaluate(ann_file, predictions)
    assert_metrics(results, 'bbox', **ALL_ONE)
    assert_metrics(results, 'segm', APr=1.0, APc=1.0, APf=0.5, AP50=1.0, AP75=0.667,
                   AP=0.833)
