# Open-vocabulary evaluation, test only: the iCAR Swin-B Mask2Former fine-tuned on ADE20K-150
# (mask2former_icar-swin-b_160k_ade20k-640x640.py), tested on
# PASCAL-Context full, 459 classes (PC-459) with this benchmark's class names (no weight changes):
#   python tools/test.py THIS_CONFIG \
#       work_dirs/mask2former_icar-swin-b_160k_ade20k-640x640/iter_160000.pth
_base_ = ['../_base_/models/mask2former_icar-swin-b.py',
          '../_base_/datasets/ov-seg_pascal-context-459.py',
          '../_base_/seg_runtime.py', '../_base_/schedules/adamw-mask2former_160k.py']

model = dict(class_embeddings=dict(vocabulary='pascal_context_459'))  # = the test set's classes
