"""Detection: every shipped mmdet config trains one step and predicts at tiny size; the
text bbox heads, OV-LVIS loading, and test-time vocabulary swap."""
import json
import os.path as osp

import pytest
import torch

import ovdense  # noqa: F401
from ovdense.apis import set_model_vocabulary
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.configs import (REPO, parameters_without_gradient, shipped_configs,
                                     shrink_config, tiny_icar_checkpoint,
                                     unused_paramwise_keys)
from ovdense.utils.cli import ConfigError


def detection_configs():
    found = shipped_configs('mmdet')
    assert len(found) >= 5, f'detection configs not found: {found}'
    return found


def _inputs(num_classes, batch=2):
    from mmdet.testing import demo_mm_inputs
    return demo_mm_inputs(batch_size=batch, image_shapes=[(3, 72, 88)] * batch,
                          num_items=[3] * batch, num_classes=num_classes, with_mask=True)


def _build(cfg):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _num_classes(model):
    from ovdense.apis.vocabulary import text_classifiers
    return text_classifiers(model)[0].num_classes


@pytest.mark.parametrize('config', detection_configs(), ids=lambda p: osp.relpath(p, REPO))
def test_config_trains_one_step_and_predicts(config, tmp_path):
    """From an iCAR-layout checkpoint (with its image->text projection): one training step
    gives every trainable parameter a gradient (what DDP's default wrapper needs)."""
    cfg = shrink_config(config, str(tmp_path), icar_checkpoint=tiny_icar_checkpoint(str(tmp_path)))
    model = _build(cfg)
    assert unused_paramwise_keys(model, cfg.get('optim_wrapper')) == []
    num_classes = _num_classes(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train()
    data = model.data_preprocessor(_inputs(num_classes), True)
    losses = model(**data, mode='loss')
    total = sum(v if isinstance(v, torch.Tensor) else sum(v) for k, v in losses.items()
                if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert parameters_without_gradient(model) == []
    optimizer.step()
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(_inputs(num_classes, 1), False),
                        mode='predict')
    assert len(results) == 1 and 'bboxes' in results[0].pred_instances


def test_stock_head_adopts_text_classifier_with_type_and_one_key(tmp_path):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    stock = dict(type='Shared2FCBBoxHead', in_channels=8, fc_out_channels=16, roi_feat_size=7,
                 num_classes=3, reg_class_agnostic=True)
    head = MODELS.build(dict(stock, type='TextShared2FCBBoxHead', text_classifier=dict(
        vocabulary='red circle,blue star,green square',
        text_tower=tiny_text_tower_cfg(str(tmp_path)))))
    reference = MODELS.build(stock)
    assert type(head.fc_cls).__name__ == 'TextCosineClassifier'
    assert [n for n, _ in head.shared_fcs.named_parameters()] == [
        n for n, _ in reference.shared_fcs.named_parameters()]
    cls_score, bbox_pred = head.eval()(torch.randn(5, 8, 7, 7))
    assert cls_score.shape == (5, 4) and bbox_pred.shape == (5, 4)
    with pytest.raises(ValueError, match='expects 81 outputs but vocabulary'):
        MODELS.build(dict(stock, type='TextShared2FCBBoxHead', num_classes=80,
                          text_classifier=dict(vocabulary='a,b,c',
                                               text_tower=tiny_text_tower_cfg(str(tmp_path)))))


def test_federated_sigmoid_loss_scores_present_and_sampled_classes():
    from ovdense.models.losses import FederatedSigmoidLoss
    loss = FederatedSigmoidLoss(num_sample_classes=4).train()
    labels = torch.tensor([0, 2, 10, 10])  # 10 classes; label 10 = background
    mask = loss.class_mask(labels, 10)
    assert mask[0] == 1 and mask[2] == 1 and int(mask.sum()) == 4
    scores = torch.randn(4, 11, requires_grad=True)
    value = loss(scores, labels, torch.ones(4))
    value.backward()
    assert torch.isfinite(value) and scores.grad[:, 10].abs().sum() == 0
    assert loss.get_activation(scores).shape == (4, 11)


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


def test_vocabulary_swap_changes_outputs_without_retraining(tmp_path):
    """After set_model_vocabulary the model predicts exactly what a model built with the new
    vocabulary and the same weights predicts (and no longer what it predicted before)."""
    config = osp.join(REPO, 'configs', 'demo',
                      'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py')
    new_names = 'red star,blue heart,green moon,wheel,kite'
    model = _build(shrink_config(config, str(tmp_path),
                                 vocabulary=','.join(f'c{i}' for i in range(30)))).eval()
    new_cfg = shrink_config(config, str(tmp_path), vocabulary=new_names)
    new_cfg.model.roi_head.bbox_head.num_classes = 5
    built_new = _build(new_cfg).eval()
    built_new.load_state_dict(model.state_dict())
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    data = model.data_preprocessor(_inputs(30, 1), False)
    roi_features = torch.randn(3, 64, 7, 7)
    with torch.no_grad():
        before = model.roi_head.bbox_head(roi_features)[0]
        vocab = set_model_vocabulary(model, new_names)
        after = model.roi_head.bbox_head(roi_features)[0]
        expected = built_new.roi_head.bbox_head(roi_features)[0]
        swapped = model(**data, mode='predict')[0].pred_instances
        reference = built_new(**data, mode='predict')[0].pred_instances
    assert vocab.names[0] == 'red star' and model.roi_head.bbox_head.num_classes == 5
    assert before.shape == (3, 31) and after.shape == (3, 6)
    torch.testing.assert_close(after, expected, rtol=0, atol=0)
    assert not torch.allclose(after[:, :5], before[:, :5])  # other classes, other scores
    assert len(reference.labels) > 0 and int(reference.labels.max()) < 5
    _assert_same_results(swapped, reference)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())


@pytest.mark.parametrize('part,key,message', [
    ('mask_head', 'class_agnostic', 'predicts masks per class.*class_agnostic=True'),
    ('bbox_head', 'reg_class_agnostic',
     'regresses boxes per class .30 classes.; set reg_class_agnostic=True')])
def test_vocabulary_swap_refuses_class_specific_parts(tmp_path, part, key, message):
    config = osp.join(REPO, 'configs', 'demo',
                      'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py')
    cfg = shrink_config(config, str(tmp_path), vocabulary=','.join(f'c{i}' for i in range(30)))
    cfg.model.roi_head[part][key] = False
    model = _build(cfg)
    with pytest.raises(ValueError, match=message):
        set_model_vocabulary(model, 'a,b')
    assert model.roi_head.bbox_head.num_classes == 30  # refused before anything changed


# -- test-time post-processing: threshold first == mmdet's multiclass_nms path ----------------
def _text_bbox_head(tmp_path, num_classes, agnostic, loss_cls=None):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = dict(type='TextShared2FCBBoxHead', in_channels=8, fc_out_channels=16,
               roi_feat_size=7, num_classes=num_classes, reg_class_agnostic=agnostic,
               text_classifier=dict(vocabulary=[f'c{i}' for i in range(num_classes)],
                                    text_tower=tiny_text_tower_cfg(str(tmp_path))))
    if loss_cls is not None:
        cfg['loss_cls'] = loss_cls
    return MODELS.build(cfg).eval()


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


def _assert_same_results(fast, stock):
    assert set(fast.keys()) == set(stock.keys())
    for key in stock.keys():
        torch.testing.assert_close(fast[key], stock[key], rtol=0, atol=0, equal_nan=True,
                                   msg=key)  # exactly equal (NaN where mmdet has NaN)


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
    head = _text_bbox_head(tmp_path, num_classes, agnostic, loss_cls)
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
            _assert_same_results(fast, BBoxHead._predict_by_feat_single(head, *args))
            if cfg is not None:  # not vacuous: detections unless the threshold is above 1
                assert (len(fast.labels) == 0) == (pairs is None)


def test_threshold_first_optional_cap_keeps_the_best_pairs(tmp_path):
    from mmengine.config import ConfigDict
    head = _text_bbox_head(tmp_path, 80, True)
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


def test_mask_rcnn_predictions_equal_mmdet_postprocessing(tmp_path, monkeypatch):
    """End to end: the shipped fast path (TextStandardRoIHead: chunked scoring, threshold-first
    post-processing) gives the boxes, scores, labels and masks (the mask head reads the labels)
    of mmdet's own StandardRoIHead + BBoxHead._predict_by_feat_single (multiclass_nms over
    all N x K scores), with the same weights."""
    from mmdet.models.roi_heads.bbox_heads import BBoxHead
    from ovdense.models.roi_heads import TextClassifierMixin
    fast_model = _demo_mask_rcnn(tmp_path, 'TextStandardRoIHead')
    stock_model = _demo_mask_rcnn(tmp_path, 'StandardRoIHead')
    stock_model.load_state_dict(fast_model.state_dict())
    data = fast_model.data_preprocessor(_inputs(30, 1), False)
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
    _assert_same_results(fast, stock)


def _demo_mask_rcnn(tmp_path, roi_head_type, sigmoid=False):
    config = osp.join(REPO, 'configs', 'demo',
                      'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py')
    cfg = shrink_config(config, str(tmp_path), vocabulary=','.join(f'c{i}' for i in range(30)))
    cfg.model.roi_head.type = roi_head_type
    cfg.model.roi_head.mask_head.class_agnostic = False  # masks indexed by the labels
    if sigmoid:  # as the LVIS configs: the loss's own activation, a zero background logit
        cfg.model.roi_head.bbox_head.loss_cls = dict(type='FederatedSigmoidLoss')
        cfg.model.roi_head.bbox_head.text_classifier.background = 'zero'
    return _build(cfg).eval()


@pytest.mark.parametrize('sigmoid', [False, True], ids=['softmax', 'federated-sigmoid'])
def test_chunked_scoring_roi_head_equals_standard_roi_head(tmp_path, monkeypatch, sigmoid):
    """TextStandardRoIHead makes the logits a chunk of RoIs at a time (never all N x K) and
    predicts exactly what StandardRoIHead predicts from the full logits."""
    from ovdense.models.roi_heads import postprocess
    from ovdense.text.classifier import TextCosineClassifier
    rows_per_chunk = 7
    monkeypatch.setattr(postprocess, 'SCORE_CHUNK_ELEMENTS', rows_per_chunk * 31)
    chunked = _demo_mask_rcnn(tmp_path, 'TextStandardRoIHead', sigmoid)
    standard = _demo_mask_rcnn(tmp_path, 'StandardRoIHead', sigmoid)
    standard.load_state_dict(chunked.state_dict())
    data = chunked.data_preprocessor(_inputs(30, 2), False)
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
        _assert_same_results(fast_image.pred_instances, stock_image.pred_instances)
    proposals = chunked.test_cfg.rpn.max_per_img
    assert max(chunk_rows) == rows_per_chunk and sum(chunk_rows) <= 2 * proposals
    assert len(chunk_rows) >= 2 * proposals // rows_per_chunk  # not one N x K product


def test_chunked_scoring_of_an_image_without_rois(tmp_path):
    from mmengine.config import ConfigDict
    head = _text_bbox_head(tmp_path, 7, True)
    cfg = ConfigDict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5), max_per_img=10)
    with torch.no_grad():
        results = head.predict_embedded(torch.zeros(0, 5), torch.zeros(0, head.fc_cls.embed_dim),
                                        torch.zeros(0, 4), dict(img_shape=(90, 100)), False, cfg)
    assert results.bboxes.shape == (0, 4) and results.scores.shape == results.labels.shape == (0,)


def test_forward_embedded_is_the_forward_stopped_before_the_logits(tmp_path):
    """The explicit chunked-scoring API: the box head's forward up to the embedded RoI
    features, then the logits from them; the classifier's own forward is unchanged."""
    head = _text_bbox_head(tmp_path, 7, True)
    classifier = head.fc_cls
    features = torch.randn(3, 8, 7, 7)  # RoI features
    with torch.no_grad():
        embedded, deltas = head.forward_embedded(features)
        logits, stock_deltas = head(features)
    assert head.fc_cls is classifier
    assert embedded.shape == (3, classifier.embed_dim)
    torch.testing.assert_close(deltas, stock_deltas, rtol=0, atol=0)
    weights = classifier.inference_weights(embedded)
    torch.testing.assert_close(classifier.logits_of_embedded(embedded, weights), logits,
                               rtol=0, atol=0)
    with pytest.raises(RuntimeError):  # a failing forward still puts the classifier back
        head.forward_embedded(torch.randn(3, 5, 7, 7))
    assert head.fc_cls is classifier


def test_federated_joint_training_encodes_only_the_scored_classes(tmp_path):
    """With a class-sampling loss the tower encodes the scored classes only; the loss and
    every gradient are those of encoding all classes (the other columns get no gradient)."""
    import copy

    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    num_classes = 12
    torch.manual_seed(0)
    sampled = MODELS.build(dict(
        type='TextShared2FCBBoxHead', in_channels=8, fc_out_channels=16, roi_feat_size=7,
        num_classes=num_classes, reg_class_agnostic=True,
        loss_cls=dict(type='FederatedSigmoidLoss', num_sample_classes=5),
        text_classifier=dict(vocabulary=[f'class {i}' for i in range(num_classes)],
                             text_tower=tiny_text_tower_cfg(str(tmp_path)),
                             prompts=dict(templates='single', use_descriptions=False),
                             train_text_tower=True)))
    sampled.init_weights()
    everything = copy.deepcopy(sampled)
    everything.fc_cls.encode_scored_classes_only = False
    assert sampled.fc_cls.encode_scored_classes_only
    feats, rois = torch.randn(20, 8, 7, 7), torch.rand(20, 5) * 30
    labels = torch.tensor([0, 3, 3, 7] + [num_classes] * 16)
    bbox_targets, bbox_weights = torch.randn(20, 4), (labels < num_classes)[:, None].float()

    def step(head):
        encoded = []  # prompts run through the tower with gradients
        head.fc_cls.class_embeddings.tower.encoder.register_forward_pre_hook(
            lambda module, args: encoded.append(args[0].shape[0])
            if torch.is_grad_enabled() else None)
        head.train()
        cls_score, bbox_pred = head(feats)
        torch.manual_seed(1)  # the same sampled negative classes
        losses = head.loss(cls_score, bbox_pred, rois, labels, torch.ones(20), bbox_targets,
                           bbox_weights)
        (losses['loss_cls'] + losses['loss_bbox']).backward()
        grads = {n: p.grad for n, p in head.named_parameters() if p.grad is not None}
        return losses, grads, sum(encoded)

    losses, grads, encoded = step(sampled)
    reference_losses, reference_grads, reference_encoded = step(everything)
    assert (encoded, reference_encoded) == (5, num_classes)  # 3 present + 2 sampled
    for key in ('loss_cls', 'loss_bbox'):
        torch.testing.assert_close(losses[key], reference_losses[key])
    assert set(grads) == set(reference_grads)
    assert any(n.startswith('fc_cls.own_embeddings.tower') for n in grads)
    for name, grad in reference_grads.items():
        torch.testing.assert_close(grads[name], grad, atol=1e-6, rtol=1e-5, msg=name)


def test_balanced_adapter_starts_as_identity_and_phase_b_trains_only_it(tmp_path):
    """BALLAD: with adapter_ratio the model predicts what it predicted without the adapter
    (A = identity; equal up to float rounding); TrainOnlyHook's phase B then changes adapter
    parameters only."""
    from types import SimpleNamespace

    from mmengine.optim import build_optim_wrapper

    from ovdense.engine.hooks import TrainOnlyHook
    plain = _demo_mask_rcnn(tmp_path, 'TextStandardRoIHead')
    config = osp.join(REPO, 'configs', 'demo',
                      'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py')
    cfg = shrink_config(config, str(tmp_path), vocabulary=','.join(f'c{i}' for i in range(30)))
    cfg.model.roi_head.mask_head.class_agnostic = False
    cfg.model.roi_head.bbox_head.text_classifier.adapter_ratio = 0.2
    adapted = _build(cfg).eval()
    missing, unexpected = adapted.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ['roi_head.bbox_head.fc_cls.adapter.linear.bias',
                               'roi_head.bbox_head.fc_cls.adapter.linear.weight']
    assert not unexpected
    data = plain.data_preprocessor(_inputs(30, 1), False)
    with torch.no_grad():
        before = plain(**data, mode='predict')[0].pred_instances
        after = adapted(**data, mode='predict')[0].pred_instances
    assert len(before.labels) > 0
    for key in before.keys():  # 0.2 f + 0.8 f: equal up to float rounding
        torch.testing.assert_close(after[key], before[key], rtol=1e-5, atol=1e-6, msg=key)

    adapted.train()
    TrainOnlyHook(('.adapter.',)).before_train(SimpleNamespace(model=adapted))
    optim = build_optim_wrapper(adapted, dict(optimizer=dict(type='AdamW', lr=1e-2,
                                                             weight_decay=0.05)))
    start = {k: v.clone() for k, v in adapted.state_dict().items()}
    for _ in range(2):
        adapted.train_step(_inputs(30, 2), optim)
    changed = sorted(k for k, v in adapted.state_dict().items() if not torch.equal(v, start[k]))
    assert changed == ['roi_head.bbox_head.fc_cls.adapter.linear.bias',
                       'roi_head.bbox_head.fc_cls.adapter.linear.weight']
    with pytest.raises(ConfigError, match='no parameter name contains'):
        TrainOnlyHook('.no_such_part.').before_train(SimpleNamespace(model=adapted))
