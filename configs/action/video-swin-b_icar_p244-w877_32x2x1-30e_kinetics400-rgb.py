# Video Swin-B initialised from the iCAR 2D image tower (Swin-B inflated to 3D: patch 2x4x4,
# window 8x7x7) fine-tuned on Kinetics-400 with 32x2x1 clips at 224 px, the mmaction2 Swin-B
# recipe (30 epochs, batch 64 = 8 GPUs x 8, AdamW, AMP). The classifier is the text cosine
# classifier over the 400 action names with the 16 action templates ("a video of {}", ...),
# its projection initialised from iCAR's image->text projection (so the model is zero-shot
# capable before fine-tuning) and the text tower trained jointly (one random prompt per class
# per step). Kinetics-400 publishes no class descriptions, so the prompts use names only.
# Data: the mmaction2 video-dataset format (tools/data/kinetics in the mmaction2 repo):
#   data_root/videos_{train,val}/*.mp4 and kinetics400_{train,val}_list_videos.txt
#   ("relative/path.mp4 label" with label ids in label_map_k400.txt order).
# Decoding: OpenCV (no decord needed).
_base_ = ('mmaction::recognition/swin/'
          'swin-base-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb.py')

# ---- set these ----
icar_checkpoint = 'checkpoints/icar_swin-b.pth'  # iCAR file: visual_model.* + sentence_model.*
roberta_dir = 'checkpoints/roberta-base'         # local copy of roberta-base config + tokenizer
data_root = 'data/kinetics400/'
# -------------------
vocabulary = 'kinetics_400'
num_classes = 400

text_classifier = dict(
    vocabulary=vocabulary,
    text_tower=dict(model='icar-roberta-base', checkpoint=icar_checkpoint, hf_dir=roberta_dir),
    prompts=dict(templates='action', use_descriptions=True),
    train_text_tower=True,
    scale=20.0)

model = dict(
    backbone=dict(
        _delete_=True, type='ICARSwin3D', arch='base', checkpoint=icar_checkpoint,
        patch_size=(2, 4, 4), window_size=(8, 7, 7), inflate='center',
        text_embed_dims=None, proj_bias=False,  # the head projects to the text space
        drop_path_rate=0.3, patch_norm=True, mlp_ratio=4.0, qkv_bias=True),
    cls_head=dict(
        _delete_=True, type='TextI3DHead', in_channels=1024, num_classes=num_classes,
        spatial_type='avg', dropout_ratio=0.5, average_clips='prob',
        projection_checkpoint=icar_checkpoint, text_classifier=text_classifier))

file_client_args = dict(io_backend='disk')
train_pipeline = [
    dict(type='CheckedOpenCVInit', **file_client_args),
    dict(type='SampleFrames', clip_len=32, frame_interval=2, num_clips=1),
    dict(type='CheckedOpenCVDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='CheckedOpenCVInit', **file_client_args),
    dict(type='SampleFrames', clip_len=32, frame_interval=2, num_clips=1, test_mode=True),
    dict(type='CheckedOpenCVDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='CheckedOpenCVInit', **file_client_args),
    dict(type='SampleFrames', clip_len=32, frame_interval=2, num_clips=4, test_mode=True),
    dict(type='CheckedOpenCVDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

train_dataloader = dict(
    dataset=dict(
        type='VocabVideoDataset', vocabulary=vocabulary, classes=None,
        on_unreadable='skip',  # a few K400 downloads are broken: warn (naming them) and skip
        ann_file=data_root + 'kinetics400_train_list_videos.txt',
        data_prefix=dict(video=data_root + 'videos_train'), pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type='VocabVideoDataset', vocabulary=vocabulary, classes=None,
        ann_file=data_root + 'kinetics400_val_list_videos.txt',
        data_prefix=dict(video=data_root + 'videos_val'), pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    dataset=dict(
        type='VocabVideoDataset', vocabulary=vocabulary, classes=None,
        ann_file=data_root + 'kinetics400_val_list_videos.txt',
        data_prefix=dict(video=data_root + 'videos_val'), pipeline=test_pipeline,
        test_mode=True))

optim_wrapper = dict(
    paramwise_cfg=dict(
        absolute_pos_embed=dict(decay_mult=0.),
        relative_position_bias_table=dict(decay_mult=0.),
        norm=dict(decay_mult=0.),
        backbone=dict(lr_mult=0.1),
        embeddings=dict(lr_mult=0.1)))  # the class-embedding text tower

custom_hooks = [dict(type='VocabularyCheckHook')]
custom_imports = dict(imports=['ovdense'], allow_failed_imports=False)
