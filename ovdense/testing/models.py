"""Models at test size: built through a scope's registry, the detection demo's Mask R-CNN
shrunk (:func:`~ovdense.testing.configs.shrink_config`), a text bbox head on its own, and the
exact comparison of two detectors' predictions."""
import importlib
import os.path as osp

from .configs import REPO, shrink_config
from .text import tiny_text_tower_cfg

DET_DEMO_CONFIG = osp.join(REPO, 'configs', 'demo',
                           'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py')
SEG_DEMO_CONFIG = osp.join(REPO, 'configs', 'demo',
                           'upernet_icar-swin-nano_fcn-aux_2k_ovdense-demo-ade.py')
ACTION_DEMO_CONFIG = osp.join(REPO, 'configs', 'demo',
                              'video-swin-nano_icar_8x1x1_1k_ovdense-demo-action.py')


def build_model(scope: str, cfg, init_weights: bool = False):
    """``cfg`` built by ``scope``'s MODELS registry with ``scope`` as the default scope
    (``init_weights``: initialised as the runner does)."""
    from mmengine.registry import init_default_scope
    registry = importlib.import_module(f'{scope}.registry').MODELS
    init_default_scope(scope)
    model = registry.build(cfg)
    if init_weights:
        model.init_weights()
    return model


def demo_mask_rcnn(directory: str, roi_head_type: str, sigmoid: bool = False):
    """The detection demo's Mask R-CNN at test size with 30 classes ``c0 .. c29``, the given
    RoI head type and class-specific masks (indexed by the labels), in eval mode. ``sigmoid``:
    as the LVIS configs, the federated sigmoid loss's activation and a zero background logit."""
    cfg = shrink_config(DET_DEMO_CONFIG, str(directory),
                        vocabulary=','.join(f'c{i}' for i in range(30)))
    cfg.model.roi_head.type = roi_head_type
    cfg.model.roi_head.mask_head.class_agnostic = False  # masks indexed by the labels
    if sigmoid:  # as the LVIS configs: the loss's own activation, a zero background logit
        cfg.model.roi_head.bbox_head.loss_cls = dict(type='FederatedSigmoidLoss')
        cfg.model.roi_head.bbox_head.text_classifier.background = 'zero'
    return build_model('mmdet', cfg.model, init_weights=True).eval()


def text_bbox_head(directory: str, num_classes: int, agnostic: bool, loss_cls=None):
    """A ``TextShared2FCBBoxHead`` (8-channel 7 x 7 RoI features, classes ``c0 ..``, a tiny
    text tower), in eval mode."""
    cfg = dict(type='TextShared2FCBBoxHead', in_channels=8, fc_out_channels=16,
               roi_feat_size=7, num_classes=num_classes, reg_class_agnostic=agnostic,
               text_classifier=dict(vocabulary=[f'c{i}' for i in range(num_classes)],
                                    text_tower=tiny_text_tower_cfg(str(directory))))
    if loss_cls is not None:
        cfg['loss_cls'] = loss_cls
    return build_model('mmdet', cfg).eval()


def assert_same_results(fast, stock) -> None:
    """Two ``InstanceData`` predictions are exactly equal (NaN where the other has NaN)."""
    import torch
    assert set(fast.keys()) == set(stock.keys())
    for key in stock.keys():
        torch.testing.assert_close(fast[key], stock[key], rtol=0, atol=0, equal_nan=True,
                                   msg=key)  # exactly equal (NaN where mmdet has NaN)
