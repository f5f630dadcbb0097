# Open-vocabulary segmentation test set:
#   ADE20K-Full, 847 classes, validation split (2000 images).
# Data: MaskFormer's datasets/prepare_ade20k_full_sem_seg.py (uint16 .tif, 65535 =
# ignore).
_base_ = './ov-seg_test_uint16.py'

data_root = 'data/ADE20K_2021_17_01/'
test_dataloader = dict(dataset=dict(
    type='ADE20K847Dataset', data_root=data_root,
    data_prefix=dict(img_path='images_detectron2/validation',
                     seg_map_path='annotations_detectron2/validation')))
val_dataloader = test_dataloader
