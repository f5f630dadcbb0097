# Open-vocabulary COCO (OV-COCO, the OVR-CNN protocol): Faster R-CNN, iCAR Swin-B, text cosine
# classifier over the 65 OV-COCO classes (names + LVIS definitions as descriptions). Train on
# COCO 2017 train with every annotation of the 17 novel classes removed at load time (48 base),
# test on COCO 2017 val with all 65; the headline score is novel-class box AP50
# (coco/bbox_AP50_novel). Boxes only, as OVR-CNN and Detic report OV-COCO.
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py', 'mmdet::_base_/datasets/coco_detection.py',
          '../_base_/schedules/adamw-swin_1x.py', 'mmdet::_base_/default_runtime.py']

# ---- set these ----
icar_checkpoint = 'checkpoints/icar_swin-b.pth'  # iCAR file: visual_model.* + sentence_model.*
roberta_dir = 'checkpoints/roberta-base'         # local copy of roberta-base config + tokenizer
data_root = 'data/coco/'
# -------------------

# 'ov_coco' = resources/vocabularies/ov_coco_split.json: the 65 classes in COCO order, which is
# the label order of OVCocoDataset. novel_classes='novel' (the file's split field) leaves the
# 17 novel classes out while training: no box is labelled with them, so they would only be
# taught as negatives; testing scores all 65.
text_classifier = dict(
    vocabulary='ov_coco',
    text_tower=dict(model='icar-roberta-base', checkpoint=icar_checkpoint, hf_dir=roberta_dir),
    prompts=dict(templates='vild', use_descriptions=True),
    train_text_tower=True,
    novel_classes='novel',
    scale=20.0)

model = dict(
    backbone=dict(
        _delete_=True, type='ICARSwin', arch='base', checkpoint=icar_checkpoint,
        drop_path_rate=0.3, out_indices=(0, 1, 2, 3), with_cp=False, convert_weights=False),
    neck=dict(in_channels=[128, 256, 512, 1024]),
    roi_head=dict(
        type='TextStandardRoIHead',  # scores RoIs in chunks at test time
        # class-agnostic regression: box deltas do not depend on the (swappable) vocabulary
        bbox_head=dict(type='TextShared2FCBBoxHead', num_classes=65, reg_class_agnostic=True,
                       text_classifier=text_classifier)))

train_dataloader = dict(
    dataset=dict(type='OVCocoDataset', data_root=data_root, remove_novel=True))
val_dataloader = dict(
    dataset=dict(type='OVCocoDataset', data_root=data_root, remove_novel=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='OVCocoMetric', metric='bbox',
                     ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
custom_imports = dict(imports=['ovdense'], allow_failed_imports=False)
