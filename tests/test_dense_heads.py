"""One-stage (dense) heads: stock mmdet configs of the installed wheel adopt the text
classifier by the head type alone, train, predict and swap their vocabulary."""
import pytest
import torch

import ovdense  # noqa: F401
from ovdense.apis import set_model_vocabulary
from ovdense.apis.vocabulary import text_classifiers
from ovdense.models.dense_heads import PriorTextClassifier, text_dense_head
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.configs import installed_config, parameters_without_gradient
from ovdense.text import TextCosineClassifier
from ovdense.utils.cli import ConfigError

VOCAB4 = 'red circle,blue star,green square,yellow ring'
VOCAB6 = 'cat,dog,bird,fish,horse,cow'
# stock configs of the installed mmdet: (config, has masks); TOOD has no convenience type and
# goes through the generic TextDenseHead
STOCK = [('retinanet/retinanet_r50_fpn_1x_coco.py', False),
         ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', False),
         ('atss/atss_r50_fpn_1x_coco.py', False),
         ('gfl/gfl_r50_fpn_1x_coco.py', False),
         ('tood/tood_r50_fpn_1x_coco.py', False),
         ('rtmdet/rtmdet_tiny_8xb32-300e_coco.py', False),
         ('rtmdet/rtmdet-ins_tiny_8xb32-300e_coco.py', True),
         ('yolox/yolox_tiny_8xb8-300e_coco.py', False),
         ('solov2/solov2_r50_fpn_1x_coco.py', True),
         ('condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py', True)]


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


def test_text_classifier_on_a_head_that_ignores_it_is_refused(tmp_path):
    """mmdet's and mmseg's Mask2FormerHead take **kwargs: the key would be swallowed and the
    stock classifier trained. Any module built with the key and no text classifier is refused."""
    from mmdet.registry import MODELS
    cfg = installed_config('mmdet', 'mask2former/mask2former_r50_8xb2-lsj-50e_coco.py')
    cfg.model.panoptic_head.text_classifier = dict(
        vocabulary=VOCAB4, text_tower=tiny_text_tower_cfg(str(tmp_path)))
    with pytest.raises(ConfigError, match='Mask2FormerHead: text_classifier is not used'):
        MODELS.build(cfg.model)
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS as SEG_MODELS
    init_default_scope('mmseg')
    head = installed_config('mmseg', 'mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py'
                            ).model.decode_head
    head.text_classifier = dict(vocabulary=VOCAB4)
    with pytest.raises(ConfigError, match='Mask2FormerHead: text_classifier is not used'):
        SEG_MODELS.build(head)


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


