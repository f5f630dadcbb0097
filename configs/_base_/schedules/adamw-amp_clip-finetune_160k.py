# The 160k schedule of adamw-swin_160k.py for a CLIP image tower fine-tuned under a frozen
# text tower: AMP, AdamW (lr 1e-4, weight decay 0.05), the image tower at 0.1x the head
# learning rate so it stays close to the CLIP embedding space.
_base_ = './adamw-swin_160k.py'

optim_wrapper = dict(
    _delete_=True, type='AmpOptimWrapper', loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1),
                                    'norm': dict(decay_mult=0.)}))
