"""Text mask-classification heads (MaskFormer / Mask2Former,
ovdense/models/dense_heads/text_mask_classification_heads.py): stock configs of the installed
mmseg and mmdet adopt the text classifier by the head type alone, train (every decoder layer
scored against one class-embedding component), predict, and (mmseg) swap their vocabulary."""
import pytest
import torch

import ovdense  # noqa: F401
from ovdense.apis import set_model_vocabulary
from ovdense.apis.vocabulary import text_classifiers
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.configs import backward_of_losses, installed_config
from ovdense.text import TextCosineClassifier
from ovdense.utils.cli import ConfigError

VOCAB4 = 'red circle,blue star,green square,yellow ring'
VOCAB6 = 'cat,dog,bird,fish,horse,cow'


def _small(cfg, num_queries=10, layers=2):
    """The stock head at test size: few queries and decoder layers, a ResNet-18 trunk."""
    head = cfg.model.decode_head if 'decode_head' in cfg.model else cfg.model.panoptic_head
    cfg.model.backbone.update(depth=18, init_cfg=None)
    head.in_channels = [64, 128, 256, 512]
    head.num_queries = num_queries
    head.num_transformer_feat_level = 3
    head.transformer_decoder.num_layers = layers
    head.pixel_decoder.encoder.num_layers = 1
    head.loss_cls.pop('class_weight', None)
    head.loss_cls.class_weight = [1.0] * 150 + [0.1]  # the stock list, written for 150
    return head


def _seg_model(tmp_path, vocabulary=VOCAB4):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = installed_config('mmseg', 'mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py')
    cfg.model.data_preprocessor.size = (64, 64)
    head = _small(cfg)
    head.type = 'TextMask2FormerHead'
    head.pop('num_classes')
    head.text_classifier = dict(vocabulary=vocabulary,
                                text_tower=tiny_text_tower_cfg(str(tmp_path)))
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _seg_inputs(num_classes, batch=2, size=64):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(batch):
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             pad_shape=(size, size)))
        labels = torch.randint(0, num_classes, (1, size // 8, size // 8), generator=gen)
        sample.gt_sem_seg = PixelData(data=labels.repeat_interleave(8, 1).repeat_interleave(8, 2))
        samples.append(sample)
    return dict(inputs=[torch.randint(0, 256, (3, size, size), generator=gen, dtype=torch.uint8)
                        for _ in range(batch)], data_samples=samples)


def _seg_logits(model):
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(_seg_inputs(4, batch=1), False)
        return model(**data, mode='predict')[0].seg_logits.data


def test_mmseg_mask2former_trains_predicts_and_swaps_vocabulary(tmp_path):
    model = _seg_model(tmp_path)
    head = model.decode_head
    assert isinstance(head.cls_embed.classifier, TextCosineClassifier)
    assert head.cls_embed.classifier.background == 'learned' and head.num_classes == 4
    assert head.class_weight == [1.0] * 4 + [0.1]  # follows the vocabulary, not the 150
    assert len(text_classifiers(model)) == 1  # every decoder layer scores with it
    model.train()
    losses = model(**model.data_preprocessor(_seg_inputs(4), True), mode='loss')
    assert any(k.startswith('decode.d0.') for k in losses)  # auxiliary layers scored too
    assert backward_of_losses(model, losses) == []

    before = _seg_logits(model)
    assert before.shape[0] == 4
    set_model_vocabulary(model, VOCAB6)
    assert head.num_classes == head.out_channels == model.out_channels == 6
    assert head.class_weight == [1.0] * 6 + [0.1]
    assert _seg_logits(model).shape[0] == 6
    set_model_vocabulary(model, VOCAB4)
    torch.testing.assert_close(_seg_logits(model), before, rtol=0, atol=0)


def test_mmseg_maskformer_scores_all_decoder_layers_at_once(tmp_path):
    """MaskFormer classifies every decoder layer in one call, a (layers, B, queries, C)
    tensor: the text classifier reads it as the stock Linear does (not as a feature map)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = installed_config('mmseg', 'maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py')
    cfg.model.data_preprocessor.size = (64, 64)
    cfg.model.backbone.update(depth=18, init_cfg=None)
    head = cfg.model.decode_head
    head.update(type='TextMaskFormerHead', in_channels=[64, 128, 256, 512], num_queries=10,
                text_classifier=dict(vocabulary=VOCAB4,
                                     text_tower=tiny_text_tower_cfg(str(tmp_path))))
    head.pop('num_classes')
    head.transformer_decoder.num_layers = 2
    head.loss_cls.class_weight = [1.0] * 150 + [0.1]
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    losses = model(**model.data_preprocessor(_seg_inputs(4), True), mode='loss')
    assert any(k.startswith('decode.d0.') for k in losses)
    assert backward_of_losses(model, losses) == []
    before = _seg_logits(model)
    set_model_vocabulary(model, VOCAB6)
    assert _seg_logits(model).shape[0] == 6
    set_model_vocabulary(model, VOCAB4)
    torch.testing.assert_close(_seg_logits(model), before, rtol=0, atol=0)


def _mmdet_model(tmp_path, relpath, vocabulary, num_stuff_classes):
    """mmdet's stock Mask2Former config at test size with TextMask2FormerHead; the
    vocabulary's last num_stuff_classes classes are stuff."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = installed_config('mmdet', relpath)
    cfg.model.data_preprocessor.pop('batch_augments', None)
    head = _small(cfg)
    head.type = 'TextMask2FormerHead'
    head.pop('num_things_classes')
    head.num_stuff_classes = num_stuff_classes
    head.text_classifier = dict(vocabulary=vocabulary,
                                text_tower=tiny_text_tower_cfg(str(tmp_path)))
    things = len(vocabulary.split(',')) - num_stuff_classes
    cfg.model.panoptic_fusion_head.update(num_things_classes=things,
                                          num_stuff_classes=num_stuff_classes)
    cfg.model.test_cfg.max_per_image = 20  # <= queries x classes
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_mmdet_mask2former_instance_head_trains_predicts_and_swaps(tmp_path):
    from mmdet.testing import demo_mm_inputs
    model = _mmdet_model(tmp_path, 'mask2former/mask2former_r50_8xb2-lsj-50e_coco.py', VOCAB4, 0)
    head = model.panoptic_head
    assert head.num_things_classes == 4 and head.num_stuff_classes == 0
    model.train()
    torch.manual_seed(0)
    data = demo_mm_inputs(batch_size=2, image_shapes=[(3, 64, 64)] * 2, num_items=[3] * 2,
                          num_classes=4, with_mask=True)
    losses = model(**model.data_preprocessor(data, True), mode='loss')
    assert backward_of_losses(model, losses) == []
    model.eval()
    inputs = model.data_preprocessor(demo_mm_inputs(
        batch_size=1, image_shapes=[(3, 64, 64)], num_classes=4, with_mask=True), False)
    with torch.no_grad():
        before = model(**inputs, mode='predict')[0].pred_instances
        assert int(before.labels.max()) < 4
        set_model_vocabulary(model, VOCAB6)  # the fusion head follows: 6 things
        assert (head.num_things_classes, model.panoptic_fusion_head.num_things_classes) == (6, 6)
        swapped = model(**inputs, mode='predict')[0].pred_instances
        assert int(swapped.labels.max()) < 6
        set_model_vocabulary(model, VOCAB4)
        again = model(**inputs, mode='predict')[0].pred_instances
    assert torch.equal(again.labels, before.labels) and torch.equal(again.scores, before.scores)


def test_mmdet_mask2former_panoptic_things_and_stuff_follow_the_vocabulary(tmp_path):
    """Panoptic Mask2Former (mmdet's stock COCO panoptic config): the vocabulary's last
    num_stuff_classes names are stuff, the rest things; trains on instance + semantic ground
    truth, predicts a panoptic map whose ids stay in the vocabulary, and after a swap the head
    and the fusion head count the new things with the same stuff count."""
    from mmdet.testing import demo_mm_inputs
    model = _mmdet_model(tmp_path, 'mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py',
                         VOCAB6, 2)  # 'horse', 'cow': stuff
    head = model.panoptic_head
    assert (head.num_things_classes, head.num_stuff_classes) == (4, 2)
    assert head.class_weight == [1.0] * 6 + [0.1]
    model.train()
    torch.manual_seed(0)
    data = demo_mm_inputs(batch_size=2, image_shapes=[(3, 64, 64)] * 2, num_items=[3] * 2,
                          num_classes=4, with_mask=True, with_semantic=True)
    for sample in data['data_samples']:  # semantic ids: things 0-3, stuff 4-5
        sample.gt_sem_seg.sem_seg = torch.randint(0, 6, sample.gt_sem_seg.sem_seg.shape)
    losses = model(**model.data_preprocessor(data, True), mode='loss')
    assert backward_of_losses(model, losses) == []
    model.eval()
    with torch.no_grad():
        result = model(**model.data_preprocessor(
            demo_mm_inputs(batch_size=1, image_shapes=[(3, 64, 64)], num_classes=4,
                           with_mask=True), False), mode='predict')[0]
    ids = result.pred_panoptic_seg.sem_seg.unique()
    labels = ids % 1000  # mmdet's panoptic id: label + instance * INSTANCE_OFFSET
    assert bool(((labels < 6) | (ids == 6)).all())  # 6 = VOID (num_classes)
    set_model_vocabulary(model, 'cat,dog,bird,fish,ant,bee,sky,grass')  # stuff stays last 2
    fusion = model.panoptic_fusion_head
    assert (head.num_things_classes, head.num_stuff_classes, head.num_classes) == (6, 2, 8)
    assert (fusion.num_things_classes, fusion.num_stuff_classes, fusion.num_classes) == (6, 2, 8)
    with torch.no_grad():
        result = model(**model.data_preprocessor(
            demo_mm_inputs(batch_size=1, image_shapes=[(3, 64, 64)], num_classes=4,
                           with_mask=True), False), mode='predict')[0]
    ids = result.pred_panoptic_seg.sem_seg.unique()
    assert bool((((ids % 1000) < 8) | (ids == 8)).all())
    # fewer names than the stuff count: refused in one line before anything changes
    with pytest.raises(ValueError, match='keeps its 2 stuff classes .* of 1 classes has fewer'):
        set_model_vocabulary(model, 'sky,')
    assert (head.num_things_classes, head.num_classes, fusion.num_things_classes) == (6, 8, 6)
    assert model.panoptic_head.cls_embed.classifier.num_classes == 8


def test_bad_settings_are_refused_in_one_line(tmp_path):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = installed_config('mmseg', 'mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py')
    head = _small(cfg)
    head.type = 'TextMask2FormerHead'
    head.text_classifier = dict(vocabulary=VOCAB4, text_tower=tiny_text_tower_cfg(str(tmp_path)))
    with pytest.raises(ConfigError, match='num_classes=150 but vocabulary'):
        MODELS.build(head)
    head.pop('num_classes')
    head.loss_cls.class_weight = [1.0, 2.0, 0.1]
    with pytest.raises(ConfigError, match=r'class_weight must be \[w\] \* num_classes'):
        MODELS.build(head)
    head.loss_cls.class_weight = [1.0] * 5
    head.text_classifier.background = 'zero'
    with pytest.raises(ConfigError, match='"no object", a learned embedding'):
        MODELS.build(head)
    generic = dict(head, type='TextMaskClassificationHead', base_type='UPerHead')
    generic['text_classifier'] = dict(head.text_classifier, background='learned')
    with pytest.raises(ConfigError, match="base_type='UPerHead'.*not a MaskFormer"):
        MODELS.build(generic)
