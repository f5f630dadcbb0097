# OV-LVIS with DINO (4 scales, 12 epochs) on the iCAR Swin-B image tower, boxes only: box APr
# (lvis/bbox_APr) is the novel-class score. Train on LVIS v1 train with every annotation of the
# 337 rare classes removed at load time (866 base), class-balanced (repeat factor threshold
# 1e-3); test on LVIS v1 val with all 1203 classes. Every decoder layer's classifier and the
# two-stage encoder proposals score against ONE jointly trained iCAR text tower
# (WithClassEmbeddings), and the denoising label queries are made from its class embeddings
# (TextDINO: no K-way label table). Not run here (no LVIS, no GPU).
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'

# ---- set these ----
icar_checkpoint = 'checkpoints/icar_swin-b.pth'  # iCAR file: visual_model.* + sentence_model.*
roberta_dir = 'checkpoints/roberta-base'         # local copy of roberta-base config + tokenizer
data_root = 'data/lvis_v1/'
# -------------------
novel_classes = 'r'  # removed from the training data, left out of the training logits

model = dict(
    type='WithClassEmbeddings', base_type='TextDINO',
    class_embeddings=dict(
        type='TrainedTowerClassEmbeddings', vocabulary='lvis_v1', novel_classes=novel_classes,
        text_tower=dict(model='icar-roberta-base', checkpoint=icar_checkpoint,
                        hf_dir=roberta_dir),
        prompts=dict(templates='vild', use_descriptions=True)),
    backbone=dict(_delete_=True, type='ICARSwin', arch='base', checkpoint=icar_checkpoint,
                  drop_path_rate=0.3, out_indices=(1, 2, 3), convert_weights=False),
    neck=dict(in_channels=[256, 512, 1024]),
    bbox_head=dict(type='TextDINOHead', num_classes=None),  # class count: the vocabulary's
    test_cfg=dict(max_per_img=300))  # LVIS allows up to 300

train_dataloader = dict(
    dataset=dict(_delete_=True, type='ClassBalancedDataset', oversample_thr=1e-3,
                 dataset=dict(type='OVLVISV1Dataset', novel_classes=novel_classes,
                              data_root=data_root, ann_file='annotations/lvis_v1_train.json',
                              data_prefix=dict(img=''), filter_cfg=dict(filter_empty_gt=False),
                              pipeline={{_base_.train_pipeline}})))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='OVLVISV1Dataset', remove_novel=False, data_root=data_root,
                 ann_file='annotations/lvis_v1_val.json', data_prefix=dict(img=''),
                 test_mode=True, pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='LVISMetric', metric='bbox',
                     ann_file=data_root + 'annotations/lvis_v1_val.json')
test_evaluator = val_evaluator
# the text tower learns at the backbone's 0.1x rate (DINO's recipe already has the backbone's)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'embeddings.tower': dict(lr_mult=0.1)}))
custom_imports = dict(imports=['ovdense'], allow_failed_imports=False)
