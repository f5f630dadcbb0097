# Open-vocabulary segmentation test set:
#   ADE20K-Full, 847 classes, validation split (2000 images).
# Data: MaskFormer's datasets/prepare_ade20k_full_sem_seg.py (uint16 .tif, 65535 =
# ignore).
# Test only (val = test); configs using it set the model's vocabulary to these classes.
data_root = 'data/ADE20K_2021_17_01/'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadUInt16SegAnnotations'),
    dict(type='PackSegInputs'),
]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale_factor=r, keep_ratio=True)
         for r in [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadUInt16SegAnnotations')], [dict(type='PackSegInputs')]]),
]
test_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ADE20K847Dataset', data_root=data_root,
                 data_prefix=dict(img_path='images_detectron2/validation',
                                  seg_map_path='annotations_detectron2/validation'),
                 pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], ignore_index=65535)
val_evaluator = test_evaluator
