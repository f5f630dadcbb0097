# Cascade Mask R-CNN, iCAR Swin-B, text cosine classifier in all three stages sharing one
# jointly trained text tower, COCO 3x
# (36 epochs, AdamW as mmdet's Swin recipes: the 1x schedule fragment stretched).
_base_ = ['mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
          'mmdet::_base_/datasets/coco_instance.py', '../_base_/schedules/adamw-swin_1x.py',
          'mmdet::_base_/default_runtime.py']

# ---- set these ----
icar_checkpoint = 'checkpoints/icar_swin-b.pth'
roberta_dir = 'checkpoints/roberta-base'
data_root = 'data/coco/'
# -------------------


def _stage(stds):
    return dict(type='TextShared2FCBBoxHead', reg_class_agnostic=True,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                target_stds=stds))


model = dict(
    # One text tower, trained jointly with the detector (as iCAR), read by all three stages;
    # the stages' class counts follow its vocabulary.
    type='WithClassEmbeddings', base_type='CascadeRCNN',
    class_embeddings=dict(
        type='TrainedTowerClassEmbeddings', vocabulary='coco',
        text_tower=dict(model='icar-roberta-base', checkpoint=icar_checkpoint,
                        hf_dir=roberta_dir),
        prompts=dict(templates='vild', use_descriptions=True)),
    backbone=dict(
        _delete_=True, type='ICARSwin', arch='base', checkpoint=icar_checkpoint,
        drop_path_rate=0.3, out_indices=(0, 1, 2, 3), convert_weights=False),
    neck=dict(in_channels=[128, 256, 512, 1024]),
    roi_head=dict(
        bbox_head=[_stage([0.1, 0.1, 0.2, 0.2]), _stage([0.05, 0.05, 0.1, 0.1]),
                   _stage([0.033, 0.033, 0.067, 0.067])],
        mask_head=dict(class_agnostic=True)))

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1)
]
custom_imports = dict(imports=['ovdense'], allow_failed_imports=False)
