# Open-vocabulary segmentation test set:
#   COCO-Stuff 164k, 171 classes, val2017 (5000 images).
# Data: mmseg's tools/dataset_converters/coco_stuff164k.py (*_labelTrainIds.png, 255 =
# ignore).
# Test only (val = test); configs using it set the model's vocabulary to these classes.
data_root = 'data/coco_stuff164k/'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale_factor=r, keep_ratio=True)
         for r in [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]]),
]
test_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='COCOStuffDataset', data_root=data_root,
                 data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
                 pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
val_evaluator = test_evaluator
