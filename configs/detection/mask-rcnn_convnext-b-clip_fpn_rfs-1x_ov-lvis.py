# OV-LVIS with a public CLIP instead of iCAR: open_clip ConvNeXt-B (convnext_base_w) image
# tower as a frozen backbone (F-VLM style) and the same CLIP's text tower as the frozen,
# cached classifier. Train on the 866 base classes, test on all 1203 (APr = novel).
_base_ = './mask-rcnn_icar-swin-b_fpn_rfs-1x_ov-lvis.py'

# ---- set these ----
clip_checkpoint = 'checkpoints/open_clip_convnext_base_w.pt'  # local open_clip state dict
# -------------------

model = dict(
    backbone=dict(_delete_=True, type='OpenCLIPVisionBackbone', model_name='convnext_base_w',
                  checkpoint=clip_checkpoint, out_indices=(0, 1, 2, 3), frozen=True),
    neck=dict(in_channels=[128, 256, 512, 1024]),
    roi_head=dict(bbox_head=dict(text_classifier=dict(
        text_tower=dict(_delete_=True, model='convnext_base_w', checkpoint=clip_checkpoint),
        train_text_tower=False, prompts=dict(templates='imagenet')))))
# no Swin position tables here: only the norms keep their no-weight-decay rule
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(_delete_=True,
                                                         norm=dict(decay_mult=0.))))
