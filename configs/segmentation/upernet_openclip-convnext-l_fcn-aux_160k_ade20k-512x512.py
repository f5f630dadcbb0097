# UperNet (+ FCN auxiliary head) on an open_clip ConvNeXt-L image tower (the CLIP model FC-CLIP
# builds on), fine-tuned on ADE20K-150, 160k iterations at 512x512, with the text cosine
# classifier in both heads. The class embeddings come from the same CLIP model's text tower,
# kept frozen; the image tower is fine-tuned at 0.1x the head learning rate (AMP) so it stays
# close to the CLIP embedding space.
# open_clip model name and checkpoint: ../_base_/models/upernet_openclip-convnext-l_fcn-aux.py
_base_ = ['../_base_/models/upernet_openclip-convnext-l_fcn-aux.py',
          'mmseg::_base_/datasets/ade20k.py', '../_base_/seg_runtime.py',
          '../_base_/schedules/adamw-amp_clip-finetune_160k.py']

model = dict(class_embeddings=dict(vocabulary='ade20k_150'))  # = ADE20KDataset's classes

train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
