# A one-stage instance segmenter on the demo data: CondInst (FCOS-style dense head + dynamic
# mask head) whose classification conv is the text classifier (TextCondInstBboxHead). Same
# backbone, text tower, data, schedule and evaluation as the demo Mask R-CNN it inherits from;
# only the detector differs. Trained on base classes, tested on all with the LVIS evaluator.
_base_ = './mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py'

channels = 64
model = dict(
    _delete_=True,
    type='CondInst',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_mask=True,
                           pad_size_divisor=32),
    backbone=dict(  # the demo Mask R-CNN's, without the stride-4 output (CondInst starts at P3)
        type='ICARSwin',
        arch=dict(embed_dims=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8), window_size=5),
        pretrain_img_size=160, drop_path_rate=0.0, out_indices=(1, 2, 3), text_embed_dims=None),
    neck=dict(type='FPN', in_channels=[64, 128, 256], out_channels=channels,
              start_level=0, add_extra_convs='on_output', num_outs=5,
              relu_before_extra_convs=True),
    bbox_head=dict(
        type='TextCondInstBboxHead',
        text_classifier={{_base_.text_classifier}},
        num_params=169, in_channels=channels, stacked_convs=2, feat_channels=channels,
        strides=[8, 16, 32, 64, 128], norm_on_bbox=True, centerness_on_reg=True,
        center_sampling=True, conv_bias=True,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    mask_head=dict(
        type='CondInstMaskHead', num_layers=3, feat_channels=8, size_of_interest=8,
        mask_out_stride=4, max_masks_to_train=300,
        mask_feature_head=dict(in_channels=channels, feat_channels=channels, start_level=0,
                               end_level=2, out_channels=8, mask_stride=8,
                               num_stacked_convs=2, norm_cfg=dict(type='BN',
                                                                  requires_grad=True)),
        loss_mask=dict(type='DiceLoss', use_sigmoid=True, activate=True, eps=5e-6,
                       loss_weight=1.0)),
    test_cfg=dict(nms_pre=400, min_bbox_size=0, score_thr=0.02,
                  nms=dict(type='nms', iou_threshold=0.6), max_per_img=50, mask_thr=0.5))
