_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['ovdense'], allow_failed_imports=False)

classifier_file = 'work_dirs/coco_clip_b32.npy'  # from tools/build_text_classifier.py

model = dict(roi_head=dict(
    bbox_head=dict(
        type='TextShared2FCBBoxHead',
        reg_class_agnostic=True,
        text_classifier=dict(vocabulary='coco', embeddings_file=classifier_file)),
    mask_head=dict(class_agnostic=True)))
