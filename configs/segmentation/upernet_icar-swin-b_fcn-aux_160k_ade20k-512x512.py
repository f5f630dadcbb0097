# UperNet (+ FCN auxiliary head), iCAR Swin-B image tower, fine-tuned on ADE20K-150 for 160k
# iterations at 512x512 (batch 16 = 8 GPUs x 2), the mmseg Swin-B recipe. The final 1x1
# classification conv of both heads is the text cosine classifier; both score against one
# jointly trained iCAR text tower (one random prompt per class per step, 0.1x learning rate).
# Paths of the iCAR checkpoint and the RoBERTa tokenizer:
#   ../_base_/models/upernet_icar-swin-b_fcn-aux.py
_base_ = ['../_base_/models/upernet_icar-swin-b_fcn-aux.py', 'mmseg::_base_/datasets/ade20k.py',
          '../_base_/seg_runtime.py', '../_base_/schedules/adamw-swin_160k.py']

model = dict(class_embeddings=dict(vocabulary='ade20k_150'))  # = ADE20KDataset's classes

train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'embeddings.tower': dict(lr_mult=0.1)}))
