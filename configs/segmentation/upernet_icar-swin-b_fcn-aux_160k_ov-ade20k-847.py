# Open-vocabulary evaluation, test only: the iCAR Swin-B UperNet fine-tuned on
# ADE20K-150 (upernet_icar-swin-b_fcn-aux_160k_ade20k-512x512.py), tested on
# ADE20K-Full, 847 classes with this benchmark's class names (no weight changes):
#   python tools/test.py THIS_CONFIG \
#       work_dirs/upernet_icar-swin-b_fcn-aux_160k_ade20k-512x512/iter_160000.pth
_base_ = ['../_base_/models/upernet_icar-swin-b_fcn-aux.py',
          '../_base_/datasets/ov-seg_ade20k-847.py',
          '../_base_/seg_runtime.py', '../_base_/schedules/adamw-swin_160k.py']

model = dict(class_embeddings=dict(vocabulary='ade20k_847'))  # = the test set's classes
