# Mask R-CNN, iCAR Swin-B image tower, text cosine classifier over the 80 COCO classes
# (names + LVIS definitions as descriptions), fine-tuned on COCO 2017 with the text tower
# trained jointly (one random prompt per class per step), 1x schedule.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'

# ---- set these ----
icar_checkpoint = 'checkpoints/icar_swin-b.pth'  # iCAR file: visual_model.* + sentence_model.*
roberta_dir = 'checkpoints/roberta-base'         # local copy of roberta-base config + tokenizer
data_root = 'data/coco/'
# -------------------

text_classifier = dict(
    vocabulary='coco',
    text_tower=dict(model='icar-roberta-base', checkpoint=icar_checkpoint, hf_dir=roberta_dir),
    prompts=dict(templates='vild', use_descriptions=True),
    train_text_tower=True,
    scale=20.0)

model = dict(
    backbone=dict(
        _delete_=True, type='ICARSwin', arch='base', checkpoint=icar_checkpoint,
        drop_path_rate=0.3, out_indices=(0, 1, 2, 3), with_cp=False, convert_weights=False),
    neck=dict(in_channels=[128, 256, 512, 1024]),
    roi_head=dict(
        type='TextStandardRoIHead',  # scores RoIs in chunks at test time
        bbox_head=dict(type='TextShared2FCBBoxHead', num_classes=80, reg_class_agnostic=True,
                       text_classifier=text_classifier),
        mask_head=dict(class_agnostic=True)))

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
custom_imports = dict(imports=['ovdense'], allow_failed_imports=False)
