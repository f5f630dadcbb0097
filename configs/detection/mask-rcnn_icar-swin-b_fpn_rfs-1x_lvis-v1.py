# Mask R-CNN, iCAR Swin-B, text cosine classifier over LVIS v1's 1203 classes (names,
# synonyms and LVIS definitions), fine-tuned on LVIS v1 train with repeat-factor sampling
# (ClassBalancedDataset, oversample_thr=1e-3) and the federated sigmoid loss.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py', 'mmdet::_base_/datasets/lvis_v1_instance.py',
          '../_base_/schedules/adamw-swin_1x.py', 'mmdet::_base_/default_runtime.py']

# ---- set these ----
icar_checkpoint = 'checkpoints/icar_swin-b.pth'
roberta_dir = 'checkpoints/roberta-base'
data_root = 'data/lvis_v1/'
# -------------------

text_classifier = dict(
    vocabulary='lvis_v1',
    text_tower=dict(model='icar-roberta-base', checkpoint=icar_checkpoint, hf_dir=roberta_dir),
    prompts=dict(templates='vild', use_descriptions=True),
    train_text_tower=True, background='zero', logit_bias=-4.6)

model = dict(
    backbone=dict(
        _delete_=True, type='ICARSwin', arch='base', checkpoint=icar_checkpoint,
        drop_path_rate=0.3, out_indices=(0, 1, 2, 3), convert_weights=False),
    neck=dict(in_channels=[128, 256, 512, 1024]),
    roi_head=dict(
        type='TextStandardRoIHead',  # scores RoIs in chunks at test time
        bbox_head=dict(
            type='TextShared2FCBBoxHead', num_classes=1203, reg_class_agnostic=True,
            text_classifier=text_classifier,
            loss_cls=dict(_delete_=True, type='FederatedSigmoidLoss',
                          class_frequencies_file=data_root + 'annotations/lvis_v1_train.json')),
        mask_head=dict(num_classes=1203, class_agnostic=True)),
    test_cfg=dict(rcnn=dict(score_thr=0.0001, max_per_img=300)))  # LVIS allows up to 300

train_dataloader = dict(dataset=dict(dataset=dict(data_root=data_root)))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/lvis_v1_val.json')
test_evaluator = val_evaluator
custom_imports = dict(imports=['ovdense'], allow_failed_imports=False)
