# Demo open-vocabulary action recognition on the synthetic clips of tools/make_demo_data.py:
# 18 actions = 3 colours x 6 motions of a shape (moving left / right / up / down, growing,
# shrinking), 8 frames of 32x32. Six actions (one per motion, a Latin-square diagonal) have
# no training clip: they are named at test time from words the base actions taught. A nano
# Video Swin (ICARSwin3D, from scratch) + TextI3DHead, whose classifier scores against iCAR's
# text tower architecture (RoBERTa + mean pooling + projection) trained jointly, starting
# from a text-only pretraining on the action names (make_demo_data.py writes it: without it
# every name embeds alike and nothing relates an unseen action to seen ones). CPU-sized.
# No flips: they would turn "moving left" into "moving right".
_base_ = ['mmaction::_base_/default_runtime.py']

data_root = 'data/ovdense_demo/'            # made by tools/make_demo_data.py
text_tower_dir = data_root + 'text_tower'   # tokenizer + config (prepare_demo_text_tower)
vocabulary = data_root + 'vocab_action.json'
num_classes = 24  # 4 colours x 6 motions, the vocabulary's order
novel_classes = 'novel'  # the vocabulary's split: never in training, scored at test
max_iters = 1000
clip_len, frame_interval = 8, 1

text_classifier = dict(
    vocabulary=vocabulary,
    text_tower=dict(model='icar-roberta-nano', hf_dir=text_tower_dir,
                    checkpoint=text_tower_dir + '/action_words.pth'),
    # as the pretraining read them (ovdense.demo.text_tower.ACTION_PROMPTS)
    prompts=dict(templates='action', use_descriptions=False),
    train_text_tower=True,
    scale=20.0, novel_classes=novel_classes)

model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='ICARSwin3D', checkpoint=None,
        arch=dict(embed_dims=32, depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8]),
        patch_size=(2, 4, 4), window_size=(2, 4, 4), drop_path_rate=0.0,
        text_embed_dims=None),
    cls_head=dict(
        type='TextI3DHead', in_channels=256, num_classes=num_classes, spatial_type='avg',
        dropout_ratio=0.0, average_clips='prob', text_classifier=text_classifier),
    data_preprocessor=dict(
        type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], format_shape='NCTHW'))

train_pipeline = [
    dict(type='CheckedOpenCVInit'),
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=frame_interval, num_clips=1),
    dict(type='CheckedOpenCVDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='CheckedOpenCVInit'),
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=frame_interval, num_clips=1,
         test_mode=True),
    dict(type='CheckedOpenCVDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='VocabVideoDataset', vocabulary=vocabulary, classes=None,
        novel_classes=novel_classes, on_unreadable='raise',
        ann_file=data_root + 'videos/train_list.txt',
        data_prefix=dict(video=data_root + 'videos'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='VocabVideoDataset', vocabulary=vocabulary, classes=None,
        ann_file=data_root + 'videos/val_list.txt',
        data_prefix=dict(video=data_root + 'videos'), pipeline=test_pipeline,
        test_mode=True, indices=None))  # indices=N: the first N clips only
test_dataloader = val_dataloader
val_evaluator = dict(type='OpenVocabAccMetric', vocabulary=vocabulary,
                     novel_classes=novel_classes,
                     metric_list=('top_k_accuracy', 'mean_class_accuracy'),
                     metric_options=dict(top_k_accuracy=dict(topk=(1, 5))))
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=10.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=2,
                    save_best=None))
custom_hooks = [dict(type='VocabularyCheckHook')]
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
custom_imports = dict(imports=['ovdense'], allow_failed_imports=False)
