"""TrainOnlyHook (ovdense/engine/hooks/runtime_hooks.py) in BALLAD's phase B: with
adapter_ratio the text classifier's balanced adapter starts as the identity (the detector
predicts what it predicted without it), then phase B changes adapter parameters only; a
pattern that matches no parameter is refused."""
import os.path as osp

import pytest
import torch

import ovdense  # noqa: F401
from ovdense.testing.configs import REPO, shrink_config
from ovdense.testing.inputs import det_inputs
from ovdense.testing.models import build_model, demo_mask_rcnn
from ovdense.utils.cli import ConfigError


def test_balanced_adapter_starts_as_identity_and_phase_b_trains_only_it(tmp_path):
    """BALLAD: with adapter_ratio the model predicts what it predicted without the adapter
    (A = identity; equal up to float rounding); TrainOnlyHook's phase B then changes adapter
    parameters only."""
    from types import SimpleNamespace

    from mmengine.optim import build_optim_wrapper

    from ovdense.engine.hooks import TrainOnlyHook
    plain = demo_mask_rcnn(tmp_path, 'TextStandardRoIHead')
    config = osp.join(REPO, 'configs', 'demo',
                      'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py')
    cfg = shrink_config(config, str(tmp_path), vocabulary=','.join(f'c{i}' for i in range(30)))
    cfg.model.roi_head.mask_head.class_agnostic = False
    cfg.model.roi_head.bbox_head.text_classifier.adapter_ratio = 0.2
    adapted = build_model('mmdet', cfg.model, init_weights=True).eval()
    missing, unexpected = adapted.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ['roi_head.bbox_head.fc_cls.adapter.linear.bias',
                               'roi_head.bbox_head.fc_cls.adapter.linear.weight']
    assert not unexpected
    data = plain.data_preprocessor(det_inputs(30, 1), False)
    with torch.no_grad():
        before = plain(**data, mode='predict')[0].pred_instances
        after = adapted(**data, mode='predict')[0].pred_instances
    assert len(before.labels) > 0
    for key in before.keys():  # 0.2 f + 0.8 f: equal up to float rounding
        torch.testing.assert_close(after[key], before[key], rtol=1e-5, atol=1e-6, msg=key)

    adapted.train()
    TrainOnlyHook(('.adapter.',)).before_train(SimpleNamespace(model=adapted))
    optim = build_optim_wrapper(adapted, dict(optimizer=dict(type='AdamW', lr=1e-2,
                                                             weight_decay=0.05)))
    start = {k: v.clone() for k, v in adapted.state_dict().items()}
    for _ in range(2):
        adapted.train_step(det_inputs(30, 2), optim)
    changed = sorted(k for k, v in adapted.state_dict().items() if not torch.equal(v, start[k]))
    assert changed == ['roi_head.bbox_head.fc_cls.adapter.linear.bias',
                       'roi_head.bbox_head.fc_cls.adapter.linear.weight']
    with pytest.raises(ConfigError, match='no parameter name contains'):
        TrainOnlyHook('.no_such_part.').before_train(SimpleNamespace(model=adapted))
