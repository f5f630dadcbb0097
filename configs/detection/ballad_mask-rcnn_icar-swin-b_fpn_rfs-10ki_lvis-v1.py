# BALLAD phase B on LVIS v1 (fine-tuned, all 1203 classes): start from the phase-A model
# (mask-rcnn_icar-swin-b_fpn_rfs-1x_lvis-v1.py, trained), freeze both towers and everything
# else, and train only the text classifier's residual adapter (f' = 0.2 A(f) + 0.8 f, A the
# identity at first) for 10k iterations on class-balanced samples. Box regression and masks
# are class-agnostic, so nothing but the adapter needs to learn. Not measured on LVIS here
# (no LVIS on the development machines); the demo pair of configs is measured in the README.
_base_ = ['./mask-rcnn_icar-swin-b_fpn_rfs-1x_lvis-v1.py']

# ---- set this: the phase-A checkpoint ----
load_from = 'work_dirs/mask-rcnn_icar-swin-b_fpn_rfs-1x_lvis-v1/epoch_12.pth'
# ------------------------------------------
max_iters = 10000

model = dict(roi_head=dict(bbox_head=dict(text_classifier=dict(adapter_ratio=0.2))))
custom_hooks = [dict(type='TrainOnlyHook', names=('.adapter.',))]
# Parameters are frozen after DDP is built: let it skip the ones that get no gradient.
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)

# Stronger balancing than phase A's 1e-3: an image of a class seen in 1 of 100k images is
# drawn 100x, one of a class in 1% of the images ~3x.
train_dataloader = dict(sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
                        dataset=dict(oversample_thr=0.1))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=1e-4, weight_decay=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=500, end=max_iters, eta_min=1e-6),
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
