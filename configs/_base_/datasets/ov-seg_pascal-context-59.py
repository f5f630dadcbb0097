# Open-vocabulary segmentation test set:
#   PASCAL-Context, 59 classes (PC-59), validation split (5105 images).
# Data: mmseg's tools/dataset_converters/pascal_context.py (VOC2010 layout; 0 =
# background, ignored).
_base_ = './ov-seg_test.py'

data_root = 'data/VOCdevkit/VOC2010/'
test_dataloader = dict(dataset=dict(
    type='PascalContextDataset59', data_root=data_root,
    data_prefix=dict(img_path='JPEGImages',
                     seg_map_path='SegmentationClassContext'),
    ann_file='ImageSets/SegmentationContext/val.txt'))
val_dataloader = test_dataloader
