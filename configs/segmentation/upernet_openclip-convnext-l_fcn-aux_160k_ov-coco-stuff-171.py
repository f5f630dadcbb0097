# Open-vocabulary evaluation, test only.
# Model: the open_clip ConvNeXt-L UperNet, fine-tuned on ADE20K-150 with
#   upernet_openclip-convnext-l_fcn-aux_160k_ade20k-512x512.py
# Test set: COCO-Stuff 164k, 171 classes, val2017 (5000 images);
# the class list is swapped for this benchmark's 171 names (no weight changes).
# Data: mmseg's tools/dataset_converters/coco_stuff164k.py
#   (*_labelTrainIds.png, 255 = ignore).
#   python tools/test.py THIS_CONFIG \
#       work_dirs/upernet_openclip-convnext-l_fcn-aux_160k_ade20k-512x512/iter_160000.pth
_base_ = './upernet_openclip-convnext-l_fcn-aux_160k_ade20k-512x512.py'

# ---- set these ----
data_root = 'data/coco_stuff164k/'
# -------------------
vocabulary = 'coco_stuff_171'
num_classes = 171

model = dict(
    decode_head=dict(num_classes=num_classes, text_classifier=dict(vocabulary=vocabulary)),
    auxiliary_head=dict(num_classes=num_classes, text_classifier=dict(vocabulary=vocabulary)))

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
    dataset=dict(
        _delete_=True, type='COCOStuffDataset', data_root=data_root,
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
val_evaluator = test_evaluator
