"""Synthetic model inputs (a batch as a data loader gives it, before the data preprocessor)
for the three scopes: detection images with boxes and masks, segmentation images with label
maps, and action clips. Shared by the tests, :mod:`ovdense.testing.ddp_check` and
``tools/gpu_check.py``."""
from typing import Sequence, Tuple

import torch


def det_inputs(num_classes: int, batch: int = 2) -> dict:
    """``batch`` 72 x 88 images with 3 instances each (boxes, masks, labels below
    ``num_classes``): mmdet's ``demo_mm_inputs``, which draws from ``np.random``."""
    from mmdet.testing import demo_mm_inputs
    return demo_mm_inputs(batch_size=batch, image_shapes=[(3, 72, 88)] * batch,
                          num_items=[3] * batch, num_classes=num_classes, with_mask=True)


def seg_inputs(num_labels: int, batch: int = 2, size: Tuple[int, int] = (64, 64),
               ignore_index: int = 255, seed: int = 0) -> dict:
    """``batch`` random uint8 images with random label maps (labels below ``num_labels``; the
    first 4 rows are ``ignore_index``)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, *size), generator=gen, dtype=torch.uint8))
        labels = torch.randint(0, num_labels, (1, *size), generator=gen)
        labels[:, :4] = ignore_index
        sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size))
        sample.gt_sem_seg = PixelData(data=labels)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def action_clips(labels: Sequence[int], batch: int = 2, frames: int = 8, size: int = 64,
                 seed: int = 0) -> dict:
    """``batch`` random clips (1 view x 3 x ``frames`` x ``size`` x ``size``, uint8) labelled
    in turn with ``labels`` (label ids)."""
    from mmaction.structures import ActionDataSample
    gen = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (1, 3, frames, size, size), generator=gen,
                            dtype=torch.uint8) for _ in range(batch)]
    samples = [ActionDataSample().set_gt_label(int(labels[i % len(labels)]))
               for i in range(batch)]
    return dict(inputs=inputs, data_samples=samples)


def training_batch(model, scope: str, seed: int = 0, batch: int = 2) -> dict:
    """A synthetic training batch for ``model`` (built in ``scope``) whose labels are classes
    it trains on, never a novel one: detection and segmentation labels drawn as above, then
    mapped onto the trained class ids of the model's text classifier; clips labelled with
    them in turn."""
    from ..apis.vocabulary import text_classifiers
    trained = text_classifiers(model)[0].class_embeddings.trained_class_ids()
    if scope == 'mmaction':
        return action_clips(trained.tolist(), batch, seed=seed)
    if scope == 'mmseg':
        inputs = seg_inputs(len(trained), batch, seed=seed)
        for sample in inputs['data_samples']:
            labels = sample.gt_sem_seg.data
            scored = labels < len(trained)  # not the ignored rows
            labels[scored] = trained[labels[scored]]
        return inputs
    import numpy as np
    np.random.seed(seed)  # demo_mm_inputs draws from numpy
    inputs = det_inputs(len(trained), batch)
    for sample in inputs['data_samples']:
        sample.gt_instances.labels = trained[sample.gt_instances.labels]
    return inputs
