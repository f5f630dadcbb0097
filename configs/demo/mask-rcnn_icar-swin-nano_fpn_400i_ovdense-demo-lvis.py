# The embedded default (`make demo`): open-vocabulary instance segmentation on the synthetic
# LVIS-format dataset of tools/make_demo_data.py. Trained on base classes only (novel = 'r'
# annotations removed by OVLVISV1Dataset), tested on all classes with the real LVIS evaluator.
# Same components as the full-size configs, at CPU size: a nano ICARSwin, and iCAR's text
# tower architecture (RoBERTa + mean pooling + projection) trained jointly from scratch.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py', 'mmdet::_base_/default_runtime.py']

data_root = 'data/ovdense_demo/'            # made by tools/make_demo_data.py
text_tower_dir = data_root + 'text_tower'   # tokenizer + config made by tools/run_demo.py
vocabulary = data_root + 'vocab_det.json'   # all 30 classes in label order
num_classes = 30
novel_classes = 'r'  # absent from training data; never a training target, so never a negative
embed_dim = 64
max_iters = 400  # about 7 minutes on a 2-core CPU

text_classifier = dict(
    vocabulary=vocabulary,
    text_tower=dict(model='icar-roberta-nano', hf_dir=text_tower_dir),
    prompts=dict(templates=['a {}.', 'a photo of a {}.', 'an image of a {}.',
                            'a drawing of a {}.'], use_descriptions=True),
    train_text_tower=True,
    novel_classes=novel_classes,
    scale=20.0)

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True, type='ICARSwin',
        arch=dict(embed_dims=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8), window_size=5),
        pretrain_img_size=160, drop_path_rate=0.0, out_indices=(0, 1, 2, 3),
        text_embed_dims=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64, num_outs=5),
    rpn_head=dict(in_channels=64, feat_channels=64,
                  anchor_generator=dict(scales=[4], ratios=[0.5, 1.0, 2.0])),
    roi_head=dict(
        type='TextStandardRoIHead',  # scores RoIs in chunks at test time
        # A fixed 2x2 sampling grid: adaptive sampling makes mmcv's CPU RoIAlign backward
        # the slowest op of the step.
        bbox_roi_extractor=dict(out_channels=64,
                                roi_layer=dict(type='RoIAlign', output_size=7,
                                               sampling_ratio=2)),
        bbox_head=dict(
            type='TextShared2FCBBoxHead', in_channels=64, fc_out_channels=256,
            num_classes=num_classes, reg_class_agnostic=True,
            text_classifier=text_classifier),
        mask_roi_extractor=dict(out_channels=64,
                                roi_layer=dict(type='RoIAlign', output_size=14,
                                               sampling_ratio=2)),
        mask_head=dict(num_convs=2, in_channels=64, conv_out_channels=64,
                       num_classes=num_classes, class_agnostic=True)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=400, max_per_img=150),
        rcnn=dict(sampler=dict(num=64), mask_size=28)),
    test_cfg=dict(
        rpn=dict(nms_pre=400, max_per_img=150),
        rcnn=dict(score_thr=0.02, max_per_img=50)))

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(160, 160), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(160, 160), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='OVLVISV1Dataset', data_root=data_root + 'lvis/',
        ann_file='annotations/lvis_v1_train.json', data_prefix=dict(img=''),
        novel_classes=novel_classes, filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline, backend_args=backend_args))
val_dataloader = dict(
    batch_size=4, num_workers=1, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='OVLVISV1Dataset', data_root=data_root + 'lvis/',
        ann_file='annotations/lvis_v1_val.json', data_prefix=dict(img=''),
        remove_novel=False, test_mode=True, pipeline=test_pipeline,
        indices=None,  # an int N tests on the first N images only (the demo's pictures)
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(type='LVISMetric', ann_file=data_root + 'lvis/annotations/lvis_v1_val.json',
                     metric=['bbox', 'segm'])
test_evaluator = val_evaluator

# No validation during training: tools/test.py evaluates the final checkpoint.
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters,
                 val_begin=10 ** 9)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=10.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
custom_imports = dict(imports=['ovdense'], allow_failed_imports=False)
