"""WithClassEmbeddings (ovdense/text/sharing.py): one class-embedding component (one tower)
shared among every classifier of a model (Cascade R-CNN's three stages, UperNet's decode and
auxiliary heads), saved and swapped once, its settings said once."""
import os.path as osp

import pytest
import torch

import ovdense  # noqa: F401
from ovdense.apis import set_model_vocabulary
from ovdense.testing.configs import REPO, shrink_config, with_shared_class_embeddings
from ovdense.text import TrainedTowerClassEmbeddings
from ovdense.utils.cli import ConfigError


CASCADE = osp.join(REPO, 'configs/detection/cascade-mask-rcnn_icar-swin-b_fpn_3x_coco.py')
UPERNET_DEMO = osp.join(REPO, 'configs/demo/upernet_icar-swin-nano_fcn-aux_2k_ovdense-demo-ade.py')
NAMES = 'red circle,blue star,green square'


def _det_model(tmp_path, **options):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = shrink_config(CASCADE, str(tmp_path), vocabulary=NAMES)
    cfg.model.update(options)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _det_inputs(model, batch=2):
    from mmdet.testing import demo_mm_inputs
    inputs = demo_mm_inputs(batch_size=batch, image_shapes=[(3, 72, 88)] * batch,
                            num_items=[3] * batch, num_classes=3, with_mask=True)
    return model.data_preprocessor(inputs, True)


def test_cascade_stages_share_one_trained_tower(tmp_path):
    model = _det_model(tmp_path)
    assert type(model).__name__ == 'CascadeRCNN'  # the stock model, one component added
    source = model.class_embeddings
    assert isinstance(source, TrainedTowerClassEmbeddings)
    stages = list(model.roi_head.bbox_head)
    assert [head.fc_cls.class_embeddings for head in stages] == [source] * 3
    assert [head.num_classes for head in stages] == [3] * 3  # from the vocabulary
    tower = sum(p.numel() for p in source.parameters())
    keys = model.state_dict()
    assert sum(v.numel() for k, v in keys.items() if '.tower.' in k) == tower  # one copy
    assert not any('own_embeddings' in k for k in keys)
    encoded = []
    source.tower.encoder.register_forward_pre_hook(
        lambda m, a: encoded.append(a[0].shape[0]) if torch.is_grad_enabled() else None)
    model.train()
    for step in range(2):
        losses = model(**_det_inputs(model), mode='loss')
        sum(v for k, v in losses.items() if 'loss_cls' in k).backward()
        assert sum(encoded) == 3 * (step + 1)  # one encoding per step for the three stages
    grads = [p.grad for p in source.tower.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_shared_model_round_trips_and_swaps_its_vocabulary_once(tmp_path):
    model = _det_model(tmp_path).eval()
    data = _det_inputs(model, 1)
    with torch.no_grad():
        before = model(**data, mode='tensor')
    other = _det_model(tmp_path).eval()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        after = other(**data, mode='tensor')
    for a, b in zip(before, after):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    swaps = []
    original = TrainedTowerClassEmbeddings.set_vocabulary
    TrainedTowerClassEmbeddings.set_vocabulary = (
        lambda self, *a, **k: swaps.append(1) or original(self, *a, **k))
    try:
        set_model_vocabulary(other, 'cat,dog,horse,sheep')
    finally:
        TrainedTowerClassEmbeddings.set_vocabulary = original
    assert swaps == [1]
    assert [h.num_classes for h in other.roi_head.bbox_head] == [4] * 3


def test_upernet_decode_and_auxiliary_heads_share_one_component(tmp_path):
    from mmseg.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    cfg = shrink_config(UPERNET_DEMO, str(tmp_path), vocabulary=NAMES)
    heads = ('decode_head', 'auxiliary_head')
    model = MODELS.build(with_shared_class_embeddings(cfg.model, 'EncoderDecoder', heads))
    model.init_weights()
    assert type(model).__name__ == 'EncoderDecoder'
    assert model.decode_head.conv_seg.class_embeddings is model.class_embeddings
    assert model.auxiliary_head.conv_seg.class_embeddings is model.class_embeddings
    assert model.decode_head.num_classes == model.auxiliary_head.num_classes == 3
    separate = MODELS.build(dict(cfg.model, **{  # the classic config: a tower per head
        key: dict(cfg.model[key], num_classes=3) for key in heads}))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    tower = count(model.class_embeddings)
    assert count(separate) - count(model) == tower  # one tower fewer


def test_shared_settings_are_said_once(tmp_path):
    with pytest.raises(ConfigError, match='text_classifier.vocabulary is set once'):
        _det_model(tmp_path, roi_head=dict(bbox_head=[
            dict(type='TextShared2FCBBoxHead', reg_class_agnostic=True,
                 text_classifier=dict(vocabulary='cat,dog'))] * 3))
    with pytest.raises(ConfigError, match='no head of CascadeRCNN scores'):
        _det_model(tmp_path, roi_head=dict(bbox_head=[
            dict(type='Shared2FCBBoxHead', reg_class_agnostic=True, num_classes=3)] * 3))
    with pytest.raises(ConfigError, match="base_type='NoSuchDetector' is not a registered"):
        _det_model(tmp_path, base_type='NoSuchDetector')
    with pytest.raises(ConfigError, match='type must be one of'):
        _det_model(tmp_path, class_embeddings=dict(type='TextTower', vocabulary=NAMES))
