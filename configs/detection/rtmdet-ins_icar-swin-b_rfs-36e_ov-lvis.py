# OV-LVIS with RTMDet-Ins (one-stage instance segmentation) on the iCAR Swin-B image tower:
# mask APr (lvis/segm_APr) is the novel-class score. Train on LVIS v1 train with every
# annotation of the 337 rare classes removed at load time (866 base), class-balanced (repeat
# factor threshold 1e-3); test on LVIS v1 val with all 1203 classes. The head's
# classification convs (one per level) score against ONE jointly trained iCAR text tower
# (WithClassEmbeddings) under the usual focal-loss prior. mmdet's RTMDet-Ins-L recipe (cached
# mosaic + mixup, a plain last stage, EMA) cut from 300 epochs from scratch to 36 from the
# pretrained tower, with the AdamW rate of its Swin detectors. Not run here (no LVIS, no GPU).
_base_ = 'mmdet::rtmdet/rtmdet-ins_l_8xb32-300e_coco.py'

# ---- set these ----
icar_checkpoint = 'checkpoints/icar_swin-b.pth'  # iCAR file: visual_model.* + sentence_model.*
roberta_dir = 'checkpoints/roberta-base'         # local copy of roberta-base config + tokenizer
data_root = 'data/lvis_v1/'
# -------------------
novel_classes = 'r'  # removed from the training data, left out of the training logits
max_epochs, stage2_num_epochs = 36, 4

model = dict(
    type='WithClassEmbeddings', base_type='RTMDet',
    class_embeddings=dict(
        type='TrainedTowerClassEmbeddings', vocabulary='lvis_v1', novel_classes=novel_classes,
        text_tower=dict(model='icar-roberta-base', checkpoint=icar_checkpoint,
                        hf_dir=roberta_dir),
        prompts=dict(templates='vild', use_descriptions=True)),
    backbone=dict(_delete_=True, type='ICARSwin', arch='base', checkpoint=icar_checkpoint,
                  drop_path_rate=0.3, out_indices=(1, 2, 3), convert_weights=False),
    # the pipelines pad to 640 x 640; padding any other input (and its masks) to a multiple
    # of 32 keeps the PAFPN's upsampled and lateral maps the same size
    data_preprocessor=dict(pad_size_divisor=32, pad_mask=True),
    neck=dict(in_channels=[256, 512, 1024]),
    bbox_head=dict(type='TextRTMDetInsSepBNHead', num_classes=None),  # the vocabulary's
    # LVIS: up to 300 detections per image, scored down to 1e-4 (mmdet's LVIS recipes)
    test_cfg=dict(score_thr=0.0001, max_per_img=300))

train_dataloader = dict(
    batch_size=4, num_workers=4,  # 8 GPUs x 4
    dataset=dict(_delete_=True, type='ClassBalancedDataset', oversample_thr=1e-3,
                 dataset=dict(type='OVLVISV1Dataset', novel_classes=novel_classes,
                              data_root=data_root, ann_file='annotations/lvis_v1_train.json',
                              data_prefix=dict(img=''), filter_cfg=dict(filter_empty_gt=True),
                              pipeline={{_base_.train_pipeline}})))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='OVLVISV1Dataset', remove_novel=False, data_root=data_root,
                 ann_file='annotations/lvis_v1_val.json', data_prefix=dict(img=''),
                 test_mode=True, pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='LVISMetric', metric=['bbox', 'segm'],
                     ann_file=data_root + 'annotations/lvis_v1_val.json')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=max_epochs, val_interval=12, dynamic_intervals=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', eta_min=1e-6, begin=max_epochs // 2, end=max_epochs,
         T_max=max_epochs // 2, by_epoch=True, convert_to_iter_based=True)]
# the tower and the image tower learn at 0.1x (pretrained); no decay on norms and biases
optim_wrapper = dict(
    optimizer=dict(lr=4e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1),
                                    'embeddings.tower': dict(lr_mult=0.1)}))
custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002, update_buffers=True,
         priority=49),
    dict(type='PipelineSwitchHook', switch_epoch=max_epochs - stage2_num_epochs,
         switch_pipeline={{_base_.train_pipeline_stage2}})]
custom_imports = dict(imports=['ovdense'], allow_failed_imports=False)
