_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['ovdense'], allow_failed_imports=False)

clip_checkpoint = 'checkpoints/open_clip_vit-b-32.pt'  # a local open_clip ViT-B-32 state dict

model = dict(roi_head=dict(bbox_head=dict(
    type='TextShared2FCBBoxHead',
    reg_class_agnostic=True,
    text_classifier=dict(
        vocabulary='coco',
        text_tower=dict(model='ViT-B-32', checkpoint=clip_checkpoint),
        prompts=dict(templates='vild', use_descriptions=False)))))
