"""Every shipped mmseg config trains one step and predicts at tiny size, from an iCAR-layout
checkpoint, with text classifiers in every head and a gradient for every trainable parameter
(what DDP's default wrapper needs)."""
import os.path as osp

import pytest
import torch

import ovdense  # noqa: F401
from ovdense.apis.vocabulary import text_classifiers
from ovdense.testing.configs import (REPO, parameters_without_gradient, shipped_configs,
                                     shrink_config, tiny_icar_checkpoint,
                                     unused_paramwise_keys)
from ovdense.testing.inputs import seg_inputs
from ovdense.testing.models import build_model


def segmentation_configs():
    found = shipped_configs('mmseg')
    assert len(found) >= 5, f'segmentation configs not found: {found}'
    return found


@pytest.mark.parametrize('config', segmentation_configs(), ids=lambda p: osp.relpath(p, REPO))
def test_config_trains_one_step_and_predicts(config, tmp_path):
    """From an iCAR-layout checkpoint (with its image->text projection): one training step
    gives every trainable parameter a gradient (what DDP's default wrapper needs)."""
    cfg = shrink_config(config, str(tmp_path),
                        icar_checkpoint=tiny_icar_checkpoint(str(tmp_path)))
    model = build_model('mmseg', cfg.model)
    model.init_weights()
    head = model.decode_head
    for each in (head, getattr(model, 'auxiliary_head', None)):
        assert each is None or text_classifiers(each)  # every head classifies with text
    assert unused_paramwise_keys(model, cfg.get('optim_wrapper')) == []
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    data = model.data_preprocessor(seg_inputs(head.out_channels), True)
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert parameters_without_gradient(model) == []
    optimizer.step()
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(seg_inputs(head.num_classes, 1), False),
                        mode='predict')
    pred = results[0].pred_sem_seg.data
    assert pred.shape == (1, 64, 64) and int(pred.max()) < head.out_channels
    assert results[0].seg_logits.data.shape[0] == head.out_channels == model.out_channels
