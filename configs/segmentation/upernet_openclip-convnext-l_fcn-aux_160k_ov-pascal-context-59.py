# Open-vocabulary evaluation, test only: the open_clip ConvNeXt-L UperNet fine-tuned on
# ADE20K-150 (upernet_openclip-convnext-l_fcn-aux_160k_ade20k-512x512.py), tested on
# PASCAL-Context, 59 classes (PC-59) with this benchmark's class names (no weight changes):
#   python tools/test.py THIS_CONFIG \
#       work_dirs/upernet_openclip-convnext-l_fcn-aux_160k_ade20k-512x512/iter_160000.pth
_base_ = ['../_base_/models/upernet_openclip-convnext-l_fcn-aux.py',
          '../_base_/datasets/ov-seg_pascal-context-59.py',
          '../_base_/seg_runtime.py', '../_base_/schedules/adamw-amp_clip-finetune_160k.py']

model = dict(class_embeddings=dict(vocabulary='pascal_context_59'))  # = the test set's classes
