"""Class embeddings as one component per model: each source on its own, and
``WithClassEmbeddings`` sharing one component (one tower) among every classifier of a model
(Cascade R-CNN's three stages, UperNet's decode and auxiliary heads)."""
import os.path as osp

import pytest
import torch

import ovdense  # noqa: F401
from ovdense.apis import set_model_vocabulary
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.configs import REPO, shrink_config, with_shared_class_embeddings
from ovdense.text import (FileClassEmbeddings, FrozenTowerClassEmbeddings,
                          RandomClassEmbeddings, TextCosineClassifier,
                          TrainedTowerClassEmbeddings, save_classifier_file)
from ovdense.utils.cli import ConfigError

CASCADE = osp.join(REPO, 'configs/detection/cascade-mask-rcnn_icar-swin-b_fpn_3x_coco.py')
UPERNET_DEMO = osp.join(REPO, 'configs/demo/upernet_icar-swin-nano_fcn-aux_2k_ovdense-demo-ade.py')
NAMES = 'red circle,blue star,green square'


# ------------------------------------------------------------------------------ sources
def test_sources_give_unit_rows_one_per_class(tmp_path):
    tower = tiny_text_tower_cfg(str(tmp_path))
    frozen = FrozenTowerClassEmbeddings(NAMES, tower, cache_dir=str(tmp_path / 'cache'))
    weights = frozen()
    assert weights.shape == (3, frozen.embed_dim) and not weights.requires_grad
    torch.testing.assert_close(weights.norm(dim=-1), torch.ones(3))
    assert frozen() is weights  # computed once per vocabulary and device
    path = str(tmp_path / 'classes.pt')
    save_classifier_file(path, weights, frozen.describe())
    from_file = FileClassEmbeddings(NAMES, path)
    # the file holds the exact rows; loading re-normalises them (1-ulp differences)
    torch.testing.assert_close(from_file(), weights)
    random = RandomClassEmbeddings(NAMES, embed_dim=8)
    torch.testing.assert_close(random(), RandomClassEmbeddings(NAMES, embed_dim=8)())
    assert random().shape == (3, 8)


def test_file_source_needs_a_file_for_another_vocabulary(tmp_path):
    path = str(tmp_path / 'classes.npy')
    save_classifier_file(path, torch.eye(3, 4), {})
    source = FileClassEmbeddings(NAMES, path)
    with pytest.raises(ValueError, match='needs its own file'):
        source.set_vocabulary('cat,dog')
    assert list(source.vocabulary.names) == NAMES.split(',')


def test_trained_tower_encodes_once_per_step(tmp_path):
    source = TrainedTowerClassEmbeddings(NAMES, tiny_text_tower_cfg(str(tmp_path))).train()
    calls = []
    source.tower.encoder.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    first = source()
    assert first.requires_grad and source() is first and sum(calls) == 3
    source.start_step()
    assert source() is not first and sum(calls) == 6
    source.eval()
    with torch.no_grad():
        assert not source().requires_grad  # the full ensemble at test time


# ------------------------------------------------------------------------------ sharing
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


def test_a_shared_component_is_not_a_classifier_setting(tmp_path):
    source = RandomClassEmbeddings(NAMES, embed_dim=8)
    classifier = TextCosineClassifier(8, class_embeddings=source)
    assert classifier.class_embeddings is source and not classifier.owns_embeddings
    assert list(classifier.state_dict()) == []  # the model, not the classifier, saves it
    with pytest.raises(ValueError, match='belong to the shared class embeddings'):
        TextCosineClassifier(8, 'cat,dog', class_embeddings=source)


def test_test_time_weights_hold_the_class_embeddings_once(tmp_path):
    """An owned component keeps its K x D embeddings as a view of the classifier's (K + 1, D)
    test-time weights; classifiers sharing a component keep their caches valid however their
    calls alternate."""
    x = torch.randn(4, 8)
    owned = TextCosineClassifier(8, NAMES, random_embeddings=True, out_features=4,
                                 text_tower=tiny_text_tower_cfg(str(tmp_path))).eval()
    with torch.no_grad():
        weights = owned.inference_weights(x)
        fixed = owned.class_embeddings.fixed()
        assert fixed.untyped_storage().data_ptr() == weights.untyped_storage().data_ptr()
        assert owned.inference_weights(x) is weights
    source = RandomClassEmbeddings(NAMES, embed_dim=8)
    first, second = (TextCosineClassifier(8, class_embeddings=source, out_features=4).eval()
                     for _ in range(2))
    with torch.no_grad():
        a, b = first.inference_weights(x), second.inference_weights(x)
        assert first.inference_weights(x) is a and second.inference_weights(x) is b
