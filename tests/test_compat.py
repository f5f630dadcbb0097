"""Compatibility fixes (ovdense/compat.py): mmengine resumes under weights-only loading with
only HistoryBuffer's methods reachable through getattr, and mmaction2 imports through the shim
(or its absence does not break ``import ovdense``)."""
import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from torch.utils.data import Dataset

import ovdense  # noqa: F401
from ovdense.utils import OvdenseFileError, safe_torch_load


class ToyDataset(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, index):
        return dict(inputs=torch.full((2,), float(index)), labels=torch.tensor([index % 2.0]))


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        output = self.linear(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=((output - torch.stack(labels)) ** 2).mean())
        return output


def _runner(work_dir, max_epochs, resume=False):
    from mmengine.runner import Runner
    return Runner(model=ToyModel(), work_dir=str(work_dir),
                  train_dataloader=dict(dataset=ToyDataset(), batch_size=2, num_workers=0,
                                        sampler=dict(type='DefaultSampler', shuffle=True)),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
                  train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
                  resume=resume, randomness=dict(seed=0), default_scope='mmengine')


def test_mmengine_resume_with_weights_only_loading(tmp_path):
    _runner(tmp_path, 2).train()
    assert os.path.isfile(tmp_path / 'epoch_2.pth')
    runner = _runner(tmp_path, 3, resume=True)
    runner.train()
    assert runner.train_loop.epoch == 3
    assert os.path.isfile(tmp_path / 'epoch_3.pth')
    # the message hub with its HistoryBuffers came back through weights_only loading
    checkpoint = torch.load(tmp_path / 'epoch_3.pth', weights_only=True)
    assert 'message_hub' in checkpoint


def test_getattr_in_a_checkpoint_is_limited_to_history_buffer_methods(tmp_path):
    from mmengine.logging.history_buffer import HistoryBuffer

    class GetattrPayload:  # reaches for a private attribute through the allowed name
        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    path = tmp_path / 'getattr.pth'
    torch.save({'meta': GetattrPayload()}, path)
    with pytest.raises(OvdenseFileError, match="refused getattr.*'__init__'"):
        safe_torch_load(str(path))


def test_mmaction_imports_through_the_shim():
    import importlib.util
    if importlib.util.find_spec('mmaction') is None:
        pytest.skip(reason='mmaction2 is not installed (extra "action")')
    code = ('import ovdense.compat as c; m = c.import_mmaction(); '
            'import mmaction.models as mm; print(m is not None, hasattr(mm, "Recognizer3D"))')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['True', 'True']
    from ovdense.compat import import_mmaction
    import_mmaction()
    from mmaction.models.localizers.drn.drn import DRN
    with pytest.raises(ImportError, match='DRN is not available'):
        DRN()


def test_missing_mmaction_does_not_break_import():
    code = ('import sys; sys.modules["mmaction"] = None\n'
            'import ovdense; from ovdense.compat import import_mmaction\n'
            'print(import_mmaction())')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'None'


def test_stock_ssd_predicts():
    """mmdet 3.3's dense post-processing reads loss_cls, which SSDHead never sets
    (open-mmlab/mmdetection#11305): with ovdense imported the stock SSD300 predicts, and a
    subclass that registers its own loss_cls still reads it."""
    import ovdense  # noqa: F401
    from mmdet.models.losses import FocalLoss
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.registry import init_default_scope

    from ovdense.testing.configs import installed_config
    init_default_scope('mmdet')
    model = MODELS.build(installed_config('mmdet', 'ssd/ssd300_coco.py').model).eval()
    model.bbox_head.test_cfg.score_thr = 0.0  # untrained: every softmax score is ~1/81
    inputs = demo_mm_inputs(batch_size=1, image_shapes=[(3, 300, 300)], num_items=[3],
                            num_classes=4)
    with torch.no_grad():
        found = model(**model.data_preprocessor(inputs, False), mode='predict')[0]
    assert len(found.pred_instances.scores) > 0 and model.bbox_head.loss_cls is None
    model.bbox_head.loss_cls = FocalLoss()
    assert isinstance(model.bbox_head.loss_cls, FocalLoss)
