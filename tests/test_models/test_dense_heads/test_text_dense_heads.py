"""Text dense heads (ovdense/models/dense_heads/text_dense_heads.py): one-stage and DETR-family
heads of stock mmdet configs of the installed wheel adopt the text classifier by the head type
alone, train, predict and swap their vocabulary."""
import pytest
import torch

import ovdense  # noqa: F401
from ovdense.apis import set_model_vocabulary
from ovdense.apis.vocabulary import text_classifiers
from ovdense.models.dense_heads import PriorTextClassifier, text_dense_head
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.configs import (backward_of_losses, installed_config,
                                    parameters_without_gradient)
from ovdense.text import TextCosineClassifier
from ovdense.utils.cli import ConfigError


VOCAB4 = 'red circle,blue star,green square,yellow ring'
VOCAB6 = 'cat,dog,bird,fish,horse,cow'


# stock configs of the installed mmdet: (config, has masks); all go through the generic
# TextDenseHead (RepPoints' classifier is reppoints_cls_out, YOLOF's cls_score)
STOCK = [('retinanet/retinanet_r50_fpn_1x_coco.py', False),
         ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', False),
         ('atss/atss_r50_fpn_1x_coco.py', False),
         ('gfl/gfl_r50_fpn_1x_coco.py', False),
         ('tood/tood_r50_fpn_1x_coco.py', False),
         ('rtmdet/rtmdet_tiny_8xb32-300e_coco.py', False),
         ('rtmdet/rtmdet-ins_tiny_8xb32-300e_coco.py', True),
         ('yolox/yolox_tiny_8xb8-300e_coco.py', False),
         ('solov2/solov2_r50_fpn_1x_coco.py', True),
         ('condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py', True),
         ('reppoints/reppoints-moment_r50_fpn_1x_coco.py', False),
         ('yolof/yolof_r50-c5_8xb8-1x_coco.py', False)]


@pytest.fixture(autouse=True)
def _mmdet_scope():
    from mmengine.logging import MessageHub
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    hub = MessageHub.get_current_instance()
    hub.update_info('epoch', 0)  # read by TOOD's and YOLOX's training
    hub.update_info('iter', 0)


def _build(model_cfg):
    from mmdet.registry import MODELS
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def _text_model(relpath, tmp_path, embed_dim=32, **text):
    cfg = installed_config('mmdet', relpath)
    cfg.model.data_preprocessor.pop('batch_augments', None)
    head = cfg.model.get('bbox_head') or cfg.model.mask_head
    head.num_classes = 4
    head.base_type, head.type = head.type, 'TextDenseHead'
    head.text_classifier = dict(
        vocabulary=VOCAB4, text_tower=tiny_text_tower_cfg(str(tmp_path), embed_dim=embed_dim),
        **text)
    model = _build(cfg.model)
    return model, getattr(model, 'bbox_head', None) or model.mask_head


def _inputs(num_classes, masks, batch=2):
    from mmdet.testing import demo_mm_inputs
    torch.manual_seed(0)
    return demo_mm_inputs(batch_size=batch, image_shapes=[(3, 96, 128)] * batch,
                          num_items=[3] * batch, num_classes=num_classes, with_mask=masks)


def _predict(model, masks):
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(_inputs(4, masks, batch=1), False)
        return model(**data, mode='predict')[0].pred_instances


@pytest.mark.parametrize('relpath,masks', STOCK, ids=[s[0].split('/')[0] for s in STOCK])
def test_stock_dense_head_trains_predicts_and_swaps_vocabulary(relpath, masks, tmp_path):
    model, head = _text_model(relpath, tmp_path)
    assert type(head).__name__.startswith('Text')
    assert text_classifiers(head) and all(isinstance(m, PriorTextClassifier) for m in [
        head.get_submodule(p) for p in head._text_cls_paths])
    assert list(head._classification_convs()) == []  # no stock classifier left
    model.train()
    losses = model(**model.data_preprocessor(_inputs(4, masks), True), mode='loss')
    total = sum(v if isinstance(v, torch.Tensor) else sum(v) for k, v in losses.items()
                if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert parameters_without_gradient(model) == []

    before = _predict(model, masks)
    assert len(before) == 0 or int(before.labels.max()) < 4
    set_model_vocabulary(model, VOCAB6)
    assert head.num_classes == 6 and head.cls_out_channels == 6
    swapped = _predict(model, masks)
    assert len(swapped) == 0 or int(swapped.labels.max()) < 6
    set_model_vocabulary(model, VOCAB4)  # and back: the same detections as before
    again = _predict(model, masks)
    assert torch.equal(again.labels, before.labels)
    assert torch.equal(again.scores, before.scores)


@pytest.mark.parametrize('relpath', ['ssd/ssd300_coco.py',
                                     'ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'])
def test_ssd_per_level_prior_counts(relpath, tmp_path):
    """SSD: a different prior count per level (4, 6, 6, 6, 4, 4), each level's classifier
    the last conv of its cls_convs (after depthwise convs in SSDLite), softmax with a learned
    background column: every level reads one component, trains, predicts and swaps."""
    from mmdet.testing import demo_mm_inputs
    model, head = _text_model(relpath, tmp_path)
    assert [m.num_priors for m in head.modules() if isinstance(m, PriorTextClassifier)] == \
        head.num_base_priors
    assert len({id(c.class_embeddings) for c in text_classifiers(head)}) == 1
    size = 320 if 'ssdlite' in relpath else 300
    torch.manual_seed(0)
    inputs = demo_mm_inputs(batch_size=2, image_shapes=[(3, size, size)] * 2, num_items=[3] * 2,
                            num_classes=4)
    model.train()
    losses = model(**model.data_preprocessor(inputs, True), mode='loss')
    assert backward_of_losses(model, losses) == []
    model.eval()
    data = model.data_preprocessor(dict(inputs=inputs['inputs'][:1],
                                        data_samples=inputs['data_samples'][:1]), False)
    with torch.no_grad():
        before = model(**data, mode='predict')[0].pred_instances
        set_model_vocabulary(model, VOCAB6)
        assert head.cls_out_channels == 7
        model(**data, mode='predict')
        set_model_vocabulary(model, VOCAB4)
        again = model(**data, mode='predict')[0].pred_instances
    assert torch.equal(again.labels, before.labels) and torch.equal(again.scores, before.scores)


# heads whose sigmoid scores go through mmdet's filter_scores_and_topk: BaseDenseHead's
# post-processing (RetinaNet, FCOS, ATSS, RTMDet-tiny: one classifier per level), GFL's,
# RTMDet-Ins's and CondInst's own; YOLOX's (torch.cat of the levels' rows, torch.max);
# SOLOv2's, restated for class chunks through its point NMS
CHUNKED = [('retinanet/retinanet_r50_fpn_1x_coco.py', False),
           ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', False),
           ('atss/atss_r50_fpn_1x_coco.py', False),
           ('rtmdet/rtmdet_tiny_8xb32-300e_coco.py', False),
           ('gfl/gfl_r50_fpn_1x_coco.py', False),
           ('rtmdet/rtmdet-ins_tiny_8xb32-300e_coco.py', True),
           ('condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py', True),
           ('yolox/yolox_tiny_8xb8-300e_coco.py', False),
           ('solov2/solov2_r50_fpn_1x_coco.py', True)]


@pytest.mark.parametrize('relpath,masks', CHUNKED,
                         ids=[p.split('/')[1].split('_')[0] for p, _ in CHUNKED])
def test_chunked_dense_inference_equals_mmdet(relpath, masks, tmp_path, monkeypatch):
    """Test-time scores made from the embedded features a chunk of locations at a time (the
    locations x K scores never exist at once) give mmdet's detections: boxes, scores, labels
    (and masks) in the same order; exactly when a level fits one chunk, and within float32
    rounding of the products (1e-6) with many chunks. A spy shows each path ran."""
    import ovdense.models.dense_heads.text_dense_heads as dense
    import ovdense.models.roi_heads.postprocess as postprocess
    from ovdense.models.dense_heads.embedded_scores import EmbeddedScores
    names = ','.join(f'class {i}' for i in range(40))
    model, head = _text_model(relpath, tmp_path)
    set_model_vocabulary(model, names)
    # many candidates, a real top-k cut; untrained RTMDet boxes are empty: keep them
    head.test_cfg.update(score_thr=0.002, nms_pre=60, min_bbox_size=-1)
    levels = []
    for method in ('top_scores', '_max'):  # the ways of scoring
        real = getattr(EmbeddedScores, method)
        monkeypatch.setattr(EmbeddedScores, method,
                            lambda *a, real=real: levels.append(1) or real(*a))
    solov2 = dense._EMBEDDED_PREDICT_BY_FEAT['SOLOV2Head']
    monkeypatch.setitem(dense._EMBEDDED_PREDICT_BY_FEAT, 'SOLOV2Head',
                        lambda *a, **k: levels.append(1) or solov2(*a, **k))
    one_chunk = _predict(model, masks)
    monkeypatch.setattr(postprocess, 'SCORE_CHUNK_ELEMENTS', 200)  # many chunks per level
    chunks = _predict(model, masks)
    assert levels and len(one_chunk) > 0
    levels.clear()
    monkeypatch.setattr(head, '_embedded_scoring', lambda: None)
    stock = _predict(model, masks)
    assert not levels
    for key in ('bboxes', 'scores', 'labels') + (('masks',) if masks else ()):
        torch.testing.assert_close(one_chunk[key], stock[key], rtol=0, atol=0)
        torch.testing.assert_close(chunks[key], stock[key], rtol=0,
                                   atol=1e-6 if key in ('bboxes', 'scores') else 0)


@pytest.mark.parametrize('relpath', ['yolof/yolof_r50-c5_8xb8-1x_coco.py',
                                     'tood/tood_r50_fpn_1x_coco.py'])
def test_heads_with_other_postprocessing_keep_the_stock_path(relpath, tmp_path):
    model, head = _text_model(relpath, tmp_path)
    assert head._embedded_scoring() is None
    assert len(_predict(model, False).scores) >= 0  # their own path runs


def test_objectness_keeps_the_stock_path(tmp_path, monkeypatch):
    """RTMDet's forward multiplies an objectness into the logits (``with_objectness``, the
    head's default): scoring the embedded features instead would drop it. Such a head takes
    the stock path, and the test-time scores refuse any step that is not mmdet's."""
    from mmdet.models.utils import sigmoid_geometric_mean
    from mmdet.structures import DetDataSample
    from ovdense.models.dense_heads.embedded_scores import EmbeddedScores
    from mmdet.registry import MODELS
    cfg = installed_config('mmdet', 'rtmdet/rtmdet_tiny_8xb32-300e_coco.py')
    head_cfg = cfg.model.bbox_head
    head_cfg.update(type='TextRTMDetSepBNHead', num_classes=4, with_objectness=True,
                    test_cfg=dict(cfg.model.test_cfg, score_thr=0.0),
                    text_classifier=dict(vocabulary=VOCAB4,
                                         text_tower=tiny_text_tower_cfg(str(tmp_path))))
    head = MODELS.build(head_cfg)
    head.init_weights()
    assert head.with_objectness and head._embedded_scoring() is None
    made = []
    real_init = EmbeddedScores.__init__
    monkeypatch.setattr(EmbeddedScores, '__init__',
                        lambda self, *a: made.append(1) or real_init(self, *a))
    head.eval()
    feats = [torch.randn(1, head.in_channels, s, s) for s in (8, 4, 2)]
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                         scale_factor=(1.0, 1.0)))
    with torch.no_grad():
        found = head.predict(feats, [sample])[0]
    assert not made and len(found.scores) > 0
    monkeypatch.undo()
    embedded = EmbeddedScores([(text_classifiers(head)[0], torch.randn(1, 32, 2, 2))])
    with pytest.raises(TypeError, match='not a step of mmdet'):
        sigmoid_geometric_mean(embedded, torch.randn(1, 1, 2, 2))


def test_per_level_classifiers_score_one_component(tmp_path):
    """RTMDet's SepBN head has one classification conv per level: all of them read ONE
    class-embedding component (one tower in memory and in the checkpoint)."""
    model, head = _text_model('rtmdet/rtmdet_tiny_8xb32-300e_coco.py', tmp_path,
                              train_text_tower=True)
    classifiers = text_classifiers(head)
    assert len(classifiers) == 3
    assert len({id(c.class_embeddings) for c in classifiers}) == 1
    assert [c.owns_embeddings for c in classifiers] == [True, False, False]
    tower_keys = [k for k in model.state_dict() if '.tower.' in k]
    assert tower_keys and all(k.startswith('bbox_head.rtm_cls.0.') for k in tower_keys)


def test_prior_layout_matches_the_stock_convs_channels(tmp_path):
    """Channel a * C + c of the output is prior a, class c: the stock head's reading."""
    torch.manual_seed(0)
    classifier = TextCosineClassifier(
        in_features=6, out_features=4, vocabulary=VOCAB4,
        text_tower=tiny_text_tower_cfg(str(tmp_path)), logit_bias=-2.0).eval()
    conv = torch.nn.Conv2d(8, 3 * 4, 3, padding=1)
    layer = PriorTextClassifier(conv, num_priors=3, embed_channels=6, classifier=classifier)
    x = torch.randn(2, 8, 5, 7)
    out = layer(x)
    assert out.shape == (2, 12, 5, 7)
    features = layer.features(x)
    for prior in range(3):
        expected = classifier(features[:, prior * 6:(prior + 1) * 6])
        torch.testing.assert_close(out[:, prior * 4:(prior + 1) * 4], expected)
    assert layer.bias is classifier.logit_bias
    # a stock MaskedConv2d's mask (guided anchoring): 0 where it is False, as there
    mask = torch.rand(1, 5, 7) > 0.5
    masked = layer(x[:1], mask)
    torch.testing.assert_close(masked, out[:1] * mask[:, None])
    assert bool((masked[0, :, ~mask[0]] == 0).all())


def test_sigmoid_heads_start_from_the_prior_and_softmax_heads_get_a_background(tmp_path):
    _, sigmoid = _text_model('retinanet/retinanet_r50_fpn_1x_coco.py', tmp_path)
    prior = torch.tensor(0.01).logit()
    assert torch.allclose(text_classifiers(sigmoid)[0].logit_bias, prior)
    assert sigmoid.cls_out_channels == 4 and text_classifiers(sigmoid)[0].background is None
    cfg = installed_config('mmdet', 'retinanet/retinanet_r50_fpn_1x_coco.py').to_dict()
    cfg = dict(cfg['model']['bbox_head'])
    cfg.update(type='TextRetinaHead', num_classes=4, loss_cls=dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0), text_classifier=dict(
            vocabulary=VOCAB4, text_tower=tiny_text_tower_cfg(str(tmp_path))))
    softmax = _build(cfg)
    assert softmax.cls_out_channels == 5
    assert text_classifiers(softmax)[0].background == 'learned'
    assert text_classifiers(softmax)[0].logit_bias is None
    set_model_vocabulary(softmax, VOCAB6)
    assert softmax.cls_out_channels == 7


def test_dense_head_bad_input(tmp_path):
    text = dict(vocabulary=VOCAB4, text_tower=tiny_text_tower_cfg(str(tmp_path)))
    retina = dict(installed_config('mmdet', 'retinanet/retinanet_r50_fpn_1x_coco.py')
                  .model.bbox_head)
    with pytest.raises(ConfigError, match='vocabulary size mismatch.*num_classes=80'):
        _build(dict(retina, type='TextRetinaHead', text_classifier=text))
    with pytest.raises(ConfigError, match="base_type='NoSuchHead' is not a registered"):
        _build(dict(type='TextDenseHead', base_type='NoSuchHead', text_classifier=text))
    with pytest.raises(ConfigError, match='not an mmdet dense head'):
        _build(dict(type='TextDenseHead', base_type='Shared2FCBBoxHead', text_classifier=text))
    with pytest.raises(ConfigError, match='needs text_classifier'):
        _build(dict(retina, type='TextRetinaHead', num_classes=4))
    with pytest.raises(ConfigError, match='CenterNetHead: no classification layer found'):
        _build(dict(type='TextDenseHead', base_type='CenterNetHead', in_channels=8,
                    feat_channels=8, num_classes=4, text_classifier=text))
    with pytest.raises(TypeError, match='not an mmdet dense head'):
        text_dense_head(torch.nn.Conv2d)


# DETR family: stock configs of the installed mmdet at test size (ResNet-18 trunk, one
# encoder and two decoder layers, ten queries)
DETR = ['detr/detr_r50_8xb2-150e_coco.py', 'conditional_detr/conditional-detr_r50_8xb2-50e_coco.py',
        'dab_detr/dab-detr_r50_8xb2-50e_coco.py',
        'deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
        'deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.py',
        'dino/dino-4scale_r50_8xb2-12e_coco.py']


def _detr_model(relpath, tmp_path):
    cfg = installed_config('mmdet', relpath)
    model = cfg.model
    model.backbone.depth = 18
    resnet18 = [64, 128, 256, 512]
    model.neck.in_channels = [resnet18[i] for i in model.backbone.out_indices]
    model.encoder.num_layers, model.decoder.num_layers = 1, 2
    model.num_queries = 10
    if 'dn_cfg' in model:
        model.dn_cfg.group_cfg.num_dn_queries = 8
    model.test_cfg.max_per_img = 10
    head = model.bbox_head
    head.num_classes = 4
    head.type = 'Text' + head.type
    head.text_classifier = dict(vocabulary=VOCAB4,
                                text_tower=tiny_text_tower_cfg(str(tmp_path), embed_dim=32))
    model = _build(model)
    return model, model.bbox_head


@pytest.mark.parametrize('relpath', DETR, ids=[p.split('/')[1].split('_r50')[0] for p in DETR])
def test_detr_family_head_trains_predicts_and_swaps_vocabulary(relpath, tmp_path):
    """Every decoder layer's classifier (and the two-stage encoder proposals') scores against
    one class-embedding component; Hungarian matching and losses are the stock head's."""
    model, head = _detr_model(relpath, tmp_path)
    classifiers = text_classifiers(head)
    assert classifiers and len({id(c.class_embeddings) for c in classifiers}) == 1
    assert list(head._classification_convs()) == []  # no stock classifier left
    assert head.cls_out_channels == 4 + (not head.loss_cls.use_sigmoid)
    model.train()
    losses = model(**model.data_preprocessor(_inputs(4, False), True), mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert parameters_without_gradient(model) == []

    before = _predict(model, False)
    assert int(before.labels.max()) < 4
    set_model_vocabulary(model, VOCAB6)
    assert head.num_classes == 6 and head.cls_out_channels == 6 + (not head.loss_cls.use_sigmoid)
    assert int(_predict(model, False).labels.max()) < 6
    if type(model).__name__ != 'DINO':  # stock DINO's K-way label table: TextDINO's tests
        model.train()  # trains with 6 classes (vanilla DETR's softmax class weights follow)
        losses = model(**model.data_preprocessor(_inputs(6, False), True), mode='loss')
        assert torch.isfinite(sum(v for k, v in losses.items() if 'loss' in k))
    set_model_vocabulary(model, VOCAB4)
    again = _predict(model, False)
    assert torch.equal(again.labels, before.labels) and torch.equal(again.scores, before.scores)
