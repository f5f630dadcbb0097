# Mask2Former, iCAR Swin-B image tower, fine-tuned on ADE20K-150 for 160k iterations at
# 640x640 (batch 16 = 8 GPUs x 2), mmseg's Swin-B Mask2Former recipe. All nine decoder layers
# score against ONE jointly trained iCAR text tower (0.1x learning rate, like the backbone).
# Not run here (no GPU). Paths of the iCAR checkpoint and the RoBERTa tokenizer:
#   ../_base_/models/mask2former_icar-swin-b.py
# Other class lists of the same images: tools/test.py ... --vocab <vocabulary>; the
# open-vocabulary test sets: mask2former_icar-swin-b_160k_ov-*.py.
_base_ = ['../_base_/models/mask2former_icar-swin-b.py',
          'mmseg::_base_/datasets/ade20k_640x640.py',
          '../_base_/seg_runtime.py', '../_base_/schedules/adamw-mask2former_160k.py']

model = dict(class_embeddings=dict(vocabulary='ade20k_150'))  # = ADE20KDataset's classes
data_root = 'data/ade/ADEChallengeData2016/'
# mmseg's Mask2Former training pipeline: shortest edge 320-1280, 640 crops
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomChoiceResize', scales=[int(640 * x * 0.1) for x in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=2560),
    dict(type='RandomCrop', crop_size={{_base_.crop_size}}, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root,
                                                   pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'embeddings.tower': dict(lr_mult=0.1)}))
