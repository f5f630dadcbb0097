# BALLAD phase B on the long-tailed demo data: start from the phase-A checkpoint, freeze every
# parameter but the text classifier's residual adapter (f' = 0.2 A(f) + 0.8 f, A = identity at
# first), and train it on class-balanced samples (LVIS repeat factors, a high threshold so
# that images of tail classes are drawn several times). Nothing else needs to train for
# detection: box regression and masks are class-agnostic here, and the adapter only sees the
# classification path.
_base_ = ['./mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis-lt.py']

load_from = 'work_dirs/mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis-lt/iter_400.pth'
max_iters = 100

model = dict(roi_head=dict(bbox_head=dict(text_classifier=dict(adapter_ratio=0.2))))
custom_hooks = [dict(type='TrainOnlyHook', names=('.adapter.',))]
# Parameters are frozen after DDP is built: let it skip the ones that get no gradient.
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)

# r(image) = max over its classes of max(1, sqrt(t / fraction of images with the class)):
# at t = 0.3 a class in 5 of 600 images is drawn ~6x as often, one in half the images once.
phase_a_dataset = {{_base_.train_dataset}}
train_dataloader = dict(dataset=dict(_delete_=True, type='ClassBalancedDataset',
                                     oversample_thr=0.3, dataset=phase_a_dataset))

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=1e-2, weight_decay=0.0))  # one D x D layer from the identity
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=10, end=max_iters, eta_min=1e-5),
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
