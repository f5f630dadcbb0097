# Open-vocabulary segmentation test set:
#   PASCAL-Context full, 459 classes (PC-459), validation split (5105 images).
# Data: SAN's datasets/prepare_pcontext_sem_seg_459cls.py (uint16 .tif, 65535 = ignore).
_base_ = './ov-seg_test_uint16.py'

data_root = 'data/pcontext_full/'
test_dataloader = dict(dataset=dict(
    type='PascalContext459Dataset', data_root=data_root,
    data_prefix=dict(img_path='val/image',
                     seg_map_path='val/label')))
val_dataloader = test_dataloader
