# Demo semantic segmentation on the synthetic ADE-format data of tools/make_demo_data.py
# (30 colour x shape classes; the 6 novel ones never occur in training images). UperNet + FCN
# auxiliary head on a nano ICARSwin, both heads with the text cosine classifier and iCAR's text
# tower architecture (RoBERTa + mean pooling + projection) trained jointly from scratch. The
# plain background (label 0) is learnt as a background embedding and kept in predictions, so
# pictures colour only the pixels that match a class name. CPU-sized.
_base_ = ['mmseg::_base_/models/upernet_swin.py', 'mmseg::_base_/default_runtime.py']

data_root = 'data/ovdense_demo/'            # made by tools/make_demo_data.py
text_tower_dir = data_root + 'text_tower'   # tokenizer + config (prepare_demo_text_tower)
vocabulary = data_root + 'vocab_seg.json'   # all 30 classes in label order
num_classes = 30
novel_classes = 'r'  # absent from training images: not taught as negatives; scored apart
max_iters = 2000
crop_size = (128, 128)

text_classifier = dict(
    vocabulary=vocabulary,
    text_tower=dict(model='icar-roberta-nano', hf_dir=text_tower_dir),
    prompts=dict(templates=['a {}.', 'a photo of a {}.', 'an image of a {}.',
                            'a drawing of a {}.'], use_descriptions=True),
    train_text_tower=True,
    novel_classes=novel_classes,
    background='learned',
    scale=20.0)
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True, type='ICARSwin',
        arch=dict(embed_dims=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8), window_size=5),
        pretrain_img_size=160, drop_path_rate=0.0, out_indices=(0, 1, 2, 3),
        text_embed_dims=None, proj_bias=False),
    decode_head=dict(
        type='TextUPerHead', in_channels=[32, 64, 128, 256], channels=64,
        num_classes=num_classes, norm_cfg=norm_cfg, dropout_ratio=0.0,
        predict_background=True, text_classifier=text_classifier),
    auxiliary_head=dict(
        type='TextFCNHead', in_channels=128, channels=32, num_classes=num_classes,
        norm_cfg=norm_cfg, dropout_ratio=0.0, text_classifier=text_classifier),
    test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='ZeroLabelAsBackground', background_index=num_classes),  # 0 -> 30, k -> k-1
    dict(type='RandomResize', scale=(160, 160), ratio_range=(0.8, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),  # no colour jitter: colour words are class names
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 160), keep_ratio=True),
    dict(type='LoadAnnotations'),  # reduce_zero_label: background pixels are not scored
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='VocabSegDataset', vocabulary=vocabulary, data_root=data_root + 'ade/',
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        reduce_zero_label=False, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='VocabSegDataset', vocabulary=vocabulary, data_root=data_root + 'ade/',
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        reduce_zero_label=True, pipeline=test_pipeline,
        indices=None))  # an int N tests on the first N images only (the demo's pictures)
test_dataloader = val_dataloader
# mmseg's IoUMetric keys plus mIoU_novel / mIoU_base over the classes training left out
val_evaluator = dict(type='OpenVocabIoUMetric', vocabulary=vocabulary,
                     novel_classes=novel_classes, iou_metrics=['mIoU'])
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=10.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=1e-5),
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='OVSegVisualizationHook'))
custom_hooks = [dict(type='SegVocabularyCheckHook')]
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
custom_imports = dict(imports=['ovdense'], allow_failed_imports=False)
