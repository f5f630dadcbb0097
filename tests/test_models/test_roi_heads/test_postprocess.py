"""Threshold-first test-time post-processing of the text bbox heads
(ovdense/models/roi_heads/postprocess.py): exactly mmdet's multiclass_nms path
(``BBoxHead._predict_by_feat_single``) at every class count, activation, threshold and
chunking, and the optional cap on the pairs kept."""
import math

import pytest
import torch

import ovdense  # noqa: F401
from ovdense.testing.models import assert_same_results, text_bbox_head


def _random_predictions(num_rois, num_classes, agnostic, seed):
    """RoIs clustered in a small image (so NMS suppresses), logits, box deltas."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(num_rois, 2, generator=g) * 60
    wh = torch.rand(num_rois, 2, generator=g) * 30 + 2
    roi = torch.cat([torch.zeros(num_rois, 1), xy, xy + wh], dim=1)
    cls_score = torch.randn(num_rois, num_classes + 1, generator=g) * 3
    cls_score[: num_rois // 4] = cls_score[0]  # ties: equal scores on several RoIs
    cls_score[-1, 0] = float('nan')  # mmdet judges the rest of a sigmoid row as usual
    bbox_pred = torch.randn(num_rois, 4 * (1 if agnostic else num_classes), generator=g) * 0.2
    return roi, cls_score, bbox_pred


def _threshold_keeping(cls_score, activation, pairs):
    """A score threshold that about ``pairs`` (RoI, class) pairs pass."""
    scores = activation(cls_score)[:, :-1].flatten()
    scores = scores[~scores.isnan()].sort(descending=True).values
    return float(scores[min(pairs, len(scores)) - 1])


@pytest.mark.parametrize('num_classes,agnostic,activation', [
    (1, True, 'softmax'), (7, True, 'softmax'), (80, True, 'softmax'),
    (1203, True, 'softmax'), (1203, True, 'sigmoid'), (7, False, 'softmax'),
    (80, False, 'sigmoid')])
def test_threshold_first_postprocessing_equals_mmdet(tmp_path, monkeypatch, num_classes,
                                                     agnostic, activation):
    from mmdet.models.roi_heads.bbox_heads import BBoxHead
    from mmengine.config import ConfigDict
    from ovdense.models.roi_heads import postprocess
    loss_cls = dict(type='FederatedSigmoidLoss') if activation == 'sigmoid' else None
    head = text_bbox_head(tmp_path, num_classes, agnostic, loss_cls)
    img_meta = dict(img_shape=(90, 100), scale_factor=(1.5, 0.8))
    # a few rows per chunk, so that the chunked thresholding is exercised at every K
    monkeypatch.setattr(postprocess, 'SCORE_CHUNK_ELEMENTS', 7 * (num_classes + 1))
    # (surviving pairs, max_per_img, rescale); above 10,000 pairs batched_nms runs per class
    cases = [(1500, 100, False), (6000, -1, True), (None, 100, False)]
    if num_classes <= 80:
        cases.append((10 ** 9, 30, True))  # score_thr = 0: every pair, split NMS
    for seed, (pairs, max_per_img, rescale) in enumerate(cases):
        roi, cls_score, bbox_pred = _random_predictions(300, num_classes, agnostic, seed)
        score_thr = (1.01 if pairs is None else 0.0 if pairs == 10 ** 9 else
                     _threshold_keeping(cls_score, head._score_activation(), pairs))
        test_cfg = ConfigDict(score_thr=score_thr, nms=dict(type='nms', iou_threshold=0.5),
                              max_per_img=max_per_img)
        for cfg in (test_cfg, None):  # None: aug test, raw boxes and scores, mmdet's path
            args = (roi, cls_score, bbox_pred, img_meta, rescale, cfg)
            fast = head._predict_by_feat_single(*args)
            assert_same_results(fast, BBoxHead._predict_by_feat_single(head, *args))
            if cfg is not None:  # not vacuous: detections unless the threshold is above 1
                assert (len(fast.labels) == 0) == (pairs is None)


def test_threshold_first_optional_cap_keeps_the_best_pairs(tmp_path):
    from mmengine.config import ConfigDict
    head = text_bbox_head(tmp_path, 80, True)
    roi, cls_score, bbox_pred = _random_predictions(200, 80, True, 4)
    cls_score = cls_score.nan_to_num()
    img_meta = dict(img_shape=(90, 100), scale_factor=(1.0, 1.0))
    base = dict(score_thr=0.0, nms=None, max_per_img=-1)  # nms=None: sorted, nothing dropped
    everything = head._predict_by_feat_single(roi, cls_score, bbox_pred, img_meta, False,
                                              ConfigDict(base))
    capped = head._predict_by_feat_single(roi, cls_score, bbox_pred, img_meta, False,
                                          ConfigDict(base, nms_pre=50))
    assert len(everything.scores) == 200 * 80 and len(capped.scores) == 50
    assert torch.equal(capped.scores, everything.scores[:50])


@pytest.mark.parametrize('kind', ['flat', 'background', 'peaked', 'edge'])
def test_softmax_rows_ruled_out_by_the_bound_hold_no_pair(kind):
    """The softmax rows that the log-sum-exp bound rules out before any exponential hold no
    pair above the threshold: the pairs equal plain softmax thresholding, to the bit, and
    rows are ruled out (the test is not vacuous)."""
    from functools import partial
    import torch.nn.functional as F
    from ovdense.models.roi_heads.postprocess import (_chunk_pairs, _rows_that_may_score,
                                                      softmax_rows)
    g = torch.Generator().manual_seed(3)
    num_classes, score_thr = 2100, 0.05  # above _BOUND_TEST_MIN_COLUMNS
    logits = torch.randn(64, num_classes + 1, generator=g)  # 'flat': nothing passes
    if kind == 'background':  # confident background, a few confident classes
        logits[:, -1] += 12
        logits[::8, 5] += 16
    if kind == 'peaked':  # one to three strong classes in every other row
        for row in range(0, 64, 2):
            logits[row, torch.randint(num_classes, (row % 3 + 1,), generator=g)] += 9
    if kind == 'edge':  # best class within 1e-4 of the threshold, on both sides
        logits[:, -1] = 0.0
        logits[:, :-1] = -40.0
        side = torch.where(torch.arange(64) % 2 == 0, 1e-4, -1e-4)
        # p = e^b / (e^b + 1 + (K - 1) e^-40) = thr  <=>  b = log(thr / (1 - thr)) + ...
        logits[:, 0] = math.log(score_thr / (1 - score_thr)) + side
        logits[6, 3] = float('nan')  # a NaN row is judged element by element
    fast = _chunk_pairs(logits, softmax_rows, score_thr, first_roi=100)
    plain = _chunk_pairs(logits, partial(F.softmax, dim=-1), score_thr, first_roi=100)
    for a, b in zip(fast, plain):
        assert torch.equal(a, b)
    ruled_out = 64 - len(_rows_that_may_score(logits, score_thr))
    if kind == 'edge':
        assert len(fast[0]) == 31  # the rows just above, less the NaN row
        assert ruled_out == 0  # within the slack: every row is scored exactly
    else:
        assert ruled_out >= 31
        assert (len(fast[0]) > 0) == (kind != 'flat')


def test_softmax_row_bound_in_half_precision_keeps_every_pair():
    """fp16 logits (mixed-precision inference): the bound is taken in float32, so the pairs
    still equal plain softmax thresholding of the same half-precision logits."""
    from functools import partial
    import torch.nn.functional as F
    from ovdense.models.roi_heads.postprocess import _chunk_pairs, softmax_rows
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(48, 2101, generator=g) * 2
    logits[:, -1] += 10
    logits[::3, 7] += 13.5  # near the threshold in some rows, above or below it
    logits = logits.half()
    fast = _chunk_pairs(logits, softmax_rows, 0.05, first_roi=0)
    plain = _chunk_pairs(logits, partial(F.softmax, dim=-1), 0.05, first_roi=0)
    assert len(plain[0]) > 0
    for a, b in zip(fast, plain):
        assert torch.equal(a, b)
