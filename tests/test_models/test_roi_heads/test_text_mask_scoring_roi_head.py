"""Mask Scoring R-CNN with the text classifier (TextMaskScoringRoIHead): mmdet's stock
ms-rcnn config with class-agnostic masks and mask IoU trains (every parameter gets a gradient),
predicts masks scored by the MaskIoU head, and swaps its vocabulary."""
import pytest
import torch

import ovdense  # noqa: F401
from ovdense.apis import set_model_vocabulary
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.configs import installed_config, parameters_without_gradient
from ovdense.utils.cli import ConfigError

VOCAB4 = 'red circle,blue star,green square,yellow ring'
VOCAB6 = 'cat,dog,bird,fish,horse,cow'


def _ms_rcnn(tmp_path, class_agnostic=True):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    model = installed_config('mmdet', 'ms_rcnn/ms-rcnn_r50-caffe_fpn_1x_coco.py').model
    model.backbone.depth = 18
    model.neck.in_channels = [64, 128, 256, 512]
    model.train_cfg.rpn_proposal.max_per_img = 64
    model.train_cfg.rcnn.sampler.num = 32
    model.test_cfg.rpn.max_per_img = 32
    roi = model.roi_head
    roi.type = 'TextMaskScoringRoIHead'
    roi.bbox_head.update(type='TextShared2FCBBoxHead', num_classes=4, reg_class_agnostic=True,
                         text_classifier=dict(vocabulary=VOCAB4, text_tower=tiny_text_tower_cfg(
                             str(tmp_path), embed_dim=32)))
    roi.mask_head.update(num_classes=4, class_agnostic=class_agnostic)
    built = MODELS.build(model)
    built.init_weights()
    return built


def _inputs(num_classes, batch=2):
    from mmdet.testing import demo_mm_inputs
    torch.manual_seed(0)
    return demo_mm_inputs(batch_size=batch, image_shapes=[(3, 96, 128)] * batch,
                          num_items=[3] * batch, num_classes=num_classes, with_mask=True)


def _predict(model):
    model.eval()
    model.test_cfg.rcnn.score_thr = 0.0  # an untrained model: keep every detection
    with torch.no_grad():
        return model(**model.data_preprocessor(_inputs(4, batch=1), False),
                     mode='predict')[0].pred_instances


def test_ms_rcnn_trains_predicts_and_swaps_with_class_agnostic_mask_iou(tmp_path):
    model = _ms_rcnn(tmp_path)
    assert model.roi_head.mask_iou_head.fc_mask_iou.out_features == 1
    model.train()
    losses = model(**model.data_preprocessor(_inputs(4), True), mode='loss')
    assert 'loss_mask_iou' in losses
    loss, _ = model.parse_losses(losses)
    loss.backward()
    assert parameters_without_gradient(model) == []

    before = _predict(model)
    assert len(before) > 0 and int(before.labels.max()) < 4
    assert before.masks.shape[1:] == (96, 128)
    set_model_vocabulary(model, VOCAB6)
    after = _predict(model)
    assert int(after.labels.max()) < 6 and int(after.labels.max()) >= 0
    set_model_vocabulary(model, VOCAB4)
    again = _predict(model)
    assert torch.equal(again.labels, before.labels) and torch.equal(again.scores, before.scores)


def test_class_specific_masks_are_refused_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match='set mask_head.class_agnostic=True'):
        _ms_rcnn(tmp_path, class_agnostic=False)
