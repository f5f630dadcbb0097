"""Every shipped mmdet config trains one step and predicts at tiny size, from an iCAR-layout
checkpoint, with a gradient for every trainable parameter (what DDP's default wrapper
needs)."""
import os.path as osp

import pytest
import torch

import ovdense  # noqa: F401
from ovdense.testing.configs import (REPO, parameters_without_gradient, shipped_configs,
                                     shrink_config, tiny_icar_checkpoint,
                                     unused_paramwise_keys)
from ovdense.testing.inputs import det_inputs, training_batch
from ovdense.testing.models import build_model


def detection_configs():
    found = shipped_configs('mmdet')
    assert len(found) >= 5, f'detection configs not found: {found}'
    return found


def _num_classes(model):
    from ovdense.apis.vocabulary import text_classifiers
    return text_classifiers(model)[0].num_classes


@pytest.mark.parametrize('config', detection_configs(), ids=lambda p: osp.relpath(p, REPO))
def test_config_trains_one_step_and_predicts(config, tmp_path):
    """From an iCAR-layout checkpoint (with its image->text projection): one training step
    gives every trainable parameter a gradient (what DDP's default wrapper needs)."""
    cfg = shrink_config(config, str(tmp_path), icar_checkpoint=tiny_icar_checkpoint(str(tmp_path)))
    model = build_model('mmdet', cfg.model, init_weights=True)
    assert unused_paramwise_keys(model, cfg.get('optim_wrapper')) == []
    num_classes = _num_classes(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train()
    data = model.data_preprocessor(training_batch(model, 'mmdet'), True)
    losses = model(**data, mode='loss')
    total = sum(v if isinstance(v, torch.Tensor) else sum(v) for k, v in losses.items()
                if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert parameters_without_gradient(model) == []
    optimizer.step()
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(det_inputs(num_classes, 1), False),
                        mode='predict')
    assert len(results) == 1 and 'bboxes' in results[0].pred_instances
