# mmseg's Swin-B Mask2Former schedule: AdamW (lr 1e-4, weight decay 0.05, gradient clipping at
# 0.01), the backbone at 0.1x learning rate and no weight decay on its norms, position tables
# and the query / level embeddings; poly decay over 160k iterations, validation every 5k.
_base_ = 'mmseg::_base_/schedules/schedule_160k.py'

backbone_norm = dict(lr_mult=0.1, decay_mult=0.0)
no_decay = dict(lr_mult=1.0, decay_mult=0.0)
swin_depths = [2, 2, 18, 2]  # Swin-B
custom_keys = {
    'backbone': dict(lr_mult=0.1, decay_mult=1.0),
    'backbone.patch_embed.norm': backbone_norm, 'backbone.norm': backbone_norm,
    'absolute_pos_embed': backbone_norm, 'relative_position_bias_table': backbone_norm,
    'query_embed': no_decay, 'query_feat': no_decay, 'level_embed': no_decay}
custom_keys.update({f'backbone.stages.{stage}.blocks.{block}.norm': backbone_norm
                    for stage, blocks in enumerate(swin_depths) for block in range(blocks)})
custom_keys.update({f'backbone.stages.{stage}.downsample.norm': backbone_norm
                    for stage in range(len(swin_depths) - 1)})
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(custom_keys=custom_keys, norm_decay_mult=0.0))
param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=160000,
                        by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000, val_interval=5000)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=5000, save_best='mIoU'),
                     # pictures that also work under tools/test.py --vocab
                     visualization=dict(type='OVSegVisualizationHook'))
