"""TextStandardRoIHead (ovdense/models/roi_heads/text_standard_roi_head.py): chunked
scoring (never all N x K logits at once) with threshold-first post-processing predicts exactly
what mmdet's StandardRoIHead and multiclass_nms predict with the same weights (softmax and
federated sigmoid)."""
import pytest
import torch

import ovdense  # noqa: F401
from ovdense.testing.inputs import det_inputs
from ovdense.testing.models import assert_same_results, demo_mask_rcnn


def test_mask_rcnn_predictions_equal_mmdet_postprocessing(tmp_path, monkeypatch):
    """End to end: the shipped fast path (TextStandardRoIHead: chunked scoring, threshold-first
    post-processing) gives the boxes, scores, labels and masks (the mask head reads the labels)
    of mmdet's own StandardRoIHead + BBoxHead._predict_by_feat_single (multiclass_nms over
    all N x K scores), with the same weights."""
    from mmdet.models.roi_heads.bbox_heads import BBoxHead
    from ovdense.models.roi_heads import TextClassifierMixin
    fast_model = demo_mask_rcnn(tmp_path, 'TextStandardRoIHead')
    stock_model = demo_mask_rcnn(tmp_path, 'StandardRoIHead')
    stock_model.load_state_dict(fast_model.state_dict())
    data = fast_model.data_preprocessor(det_inputs(30, 1), False)
    with torch.no_grad():
        fast = fast_model(**data, mode='predict')[0].pred_instances
    stock_calls = []

    def mmdet_postprocessing(self, *args, **kwargs):
        cls_score = kwargs['cls_score'] if 'cls_score' in kwargs else args[1]
        stock_calls.append(cls_score.shape)  # (N, K + 1): every score of every RoI
        return BBoxHead._predict_by_feat_single(self, *args, **kwargs)

    monkeypatch.setattr(TextClassifierMixin, '_predict_by_feat_single', mmdet_postprocessing)
    with torch.no_grad():
        stock = stock_model(**data, mode='predict')[0].pred_instances
    # the reference is mmdet's post-processing of all N x (K + 1) scores
    assert stock_calls and stock_calls[0][0] > 0 and stock_calls[0][1] == 31
    assert len(stock.labels) > 0 and 'masks' in stock
    assert_same_results(fast, stock)


@pytest.mark.parametrize('sigmoid', [False, True], ids=['softmax', 'federated-sigmoid'])
def test_chunked_scoring_roi_head_equals_standard_roi_head(tmp_path, monkeypatch, sigmoid):
    """TextStandardRoIHead makes the logits a chunk of RoIs at a time (never all N x K) and
    predicts exactly what StandardRoIHead predicts from the full logits."""
    from ovdense.models.roi_heads import postprocess
    from ovdense.text.classifier import TextCosineClassifier
    rows_per_chunk = 7
    monkeypatch.setattr(postprocess, 'SCORE_CHUNK_ELEMENTS', rows_per_chunk * 31)
    chunked = demo_mask_rcnn(tmp_path, 'TextStandardRoIHead', sigmoid)
    standard = demo_mask_rcnn(tmp_path, 'StandardRoIHead', sigmoid)
    standard.load_state_dict(chunked.state_dict())
    data = chunked.data_preprocessor(det_inputs(30, 2), False)
    with torch.no_grad():
        stock = standard(**data, mode='predict')
    chunk_rows = []
    logits_of_embedded = TextCosineClassifier.logits_of_embedded

    def spy(self, x, weights):
        chunk_rows.append(len(x))
        return logits_of_embedded(self, x, weights)

    monkeypatch.setattr(TextCosineClassifier, 'logits_of_embedded', spy)
    with torch.no_grad():
        fast = chunked(**data, mode='predict')
    for fast_image, stock_image in zip(fast, stock):
        assert len(stock_image.pred_instances.labels) > 0
        assert_same_results(fast_image.pred_instances, stock_image.pred_instances)
    proposals = chunked.test_cfg.rpn.max_per_img
    assert max(chunk_rows) == rows_per_chunk and sum(chunk_rows) <= 2 * proposals
    assert len(chunk_rows) >= 2 * proposals // rows_per_chunk  # not one N x K product
