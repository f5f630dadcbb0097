# Open-vocabulary segmentation test set:
#   COCO-Stuff 164k, 171 classes, val2017 (5000 images).
# Data: mmseg's tools/dataset_converters/coco_stuff164k.py (*_labelTrainIds.png, 255 =
# ignore).
_base_ = './ov-seg_test.py'

data_root = 'data/coco_stuff164k/'
test_dataloader = dict(dataset=dict(
    type='COCOStuffDataset', data_root=data_root,
    data_prefix=dict(img_path='images/val2017',
                     seg_map_path='annotations/val2017')))
val_dataloader = test_dataloader
