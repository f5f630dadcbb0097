import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from torch.utils.data import Dataset

import ovdense
from ovdense.utils import OvdenseFileError, safe_torch_load

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_components_registered_by_plain_name(scope, tmp_path):
    import importlib
    registry = importlib.import_module(f'{scope}.registry').MODELS
    from ovdense.testing import tiny_text_tower_cfg
    from ovdense.text import TextCosineClassifier
    assert registry.get('TextCosineClassifier') is TextCosineClassifier
    head = registry.build(dict(type='TextCosineClassifier', in_features=8, vocabulary='a,b',
                               text_tower=tiny_text_tower_cfg(str(tmp_path))))
    assert isinstance(head, TextCosineClassifier)
    assert 'TextCosineClassifier' in ovdense.registered_components()[(scope, 'MODELS')]


def test_custom_imports_in_a_config_registers_everything(tmp_path):
    code = (
        'from mmengine.config import Config\n'
        'from mmengine.registry import init_default_scope\n'
        "cfg = Config(dict(custom_imports=dict(imports=['ovdense'], "
        "allow_failed_imports=False), default_scope='mmdet'))\n"
        'from mmengine.utils import import_modules_from_strings\n'
        'import_modules_from_strings(**cfg.custom_imports)\n'
        'from mmdet.registry import MODELS\n'
        "print(MODELS.get('TextCosineClassifier').__name__)\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'TextCosineClassifier'


def test_version_guard_names_the_package(monkeypatch):
    from packaging.version import Version

    from ovdense.utils import versions
    real = versions.installed_version
    monkeypatch.setattr(versions, 'installed_version',
                        lambda d: Version('2.2.0') if d == 'mmcv' else real(d))
    with pytest.raises(ImportError, match=r'mmcv==2.2.0 is installed but ovdense supports'):
        versions.check_versions()


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


class Payload:
    """Unpickling this would run a command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_crafted_checkpoint_is_refused_and_code_does_not_run(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': Payload(marker)}, path)
    with pytest.raises(OvdenseFileError, match='evil.pth.*weights-only'):
        safe_torch_load(str(path))
    from mmengine.runner import CheckpointLoader
    with pytest.raises(Exception, match='(?i)weights_only|unsupported global'):
        CheckpointLoader.load_checkpoint(str(path))
    assert not marker.exists()


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


@pytest.mark.slow
def test_setup_env_is_idempotent_and_reuses_the_mmcv_wheel():
    venv = os.path.dirname(os.path.dirname(sys.executable))
    result = subprocess.run(['bash', 'tools/setup_env.sh'], cwd=REPO, capture_output=True,
                            text=True, env=dict(os.environ, OVDENSE_VENV=venv), timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'building mmcv' not in result.stdout + result.stderr
    assert 'environment ready' in result.stdout
    # one line says which kind of mmcv is installed
    assert re.search(r"mmcv 2\.1\.0: (CPU ops only|CUDA ops \(for torch's CUDA [0-9.]+\) and "
                     r"CPU ops)", result.stdout), result.stdout


def _build_mmcv(tmp_path, nvcc_release=None, **env):
    """tools/build_mmcv.sh with a pre-filled wheel cache (nothing is compiled) and, when
    ``nvcc_release`` is given, a stand-in CUDA_HOME whose nvcc reports that release."""
    env = dict(os.environ, **env)
    if nvcc_release:
        bin_dir = tmp_path / 'cuda' / 'bin'
        bin_dir.mkdir(parents=True)
        (bin_dir / 'nvcc').write_text(
            f'#!/bin/sh\necho "Cuda compilation tools, release {nvcc_release}, V0"\n')
        (bin_dir / 'nvcc').chmod(0o755)
        env['CUDA_HOME'] = str(tmp_path / 'cuda')
    return subprocess.run(['bash', 'tools/build_mmcv.sh', sys.executable, str(tmp_path / 'cache')],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=120)


def _cached_wheel(tmp_path, suffix=''):
    key = 'mmcv-2.1.0-torch{}-cp{}{}{}'.format(
        torch.__version__.replace('+', '_'), *sys.version_info[:2], suffix)
    wheel = tmp_path / 'cache' / key / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
    wheel.parent.mkdir(parents=True)
    wheel.write_bytes(b'')
    return wheel


def test_build_mmcv_reuses_the_cached_cpu_wheel(tmp_path):
    wheel = _cached_wheel(tmp_path)
    result = _build_mmcv(tmp_path, OVDENSE_MMCV_OPS='cpu')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(wheel)
    assert 'cached: mmcv 2.1.0 with CPU ops' in result.stderr


@pytest.mark.skipif(not torch.version.cuda, reason='torch is a CPU-only build here')
def test_build_mmcv_keys_cuda_wheels_by_cuda_version_and_archs(tmp_path):
    cuda = torch.version.cuda
    wheel = _cached_wheel(tmp_path, f'-cuda{cuda}-sm80-sm90-ptx')
    result = _build_mmcv(tmp_path, cuda, OVDENSE_MMCV_OPS='cuda',
                         OVDENSE_CUDA_ARCH_LIST='8.0;9.0+PTX')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(wheel)
    assert f'CUDA ops (CUDA {cuda}, archs 8.0;9.0+PTX)' in result.stderr


@pytest.mark.skipif(not torch.version.cuda, reason='torch is a CPU-only build here')
def test_build_mmcv_refuses_an_nvcc_of_another_cuda_major(tmp_path):
    result = _build_mmcv(tmp_path, '11.8', OVDENSE_MMCV_OPS='cuda')
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert 'is CUDA 11.8 but torch' in lines[0] and 'install the CUDA' in lines[0]


def test_build_mmcv_refuses_an_unknown_ops_kind(tmp_path):
    result = _build_mmcv(tmp_path, OVDENSE_MMCV_OPS='rocm')
    assert result.returncode != 0
    assert result.stderr.strip() == ('[build_mmcv] ERROR: OVDENSE_MMCV_OPS=rocm: expected auto, '
                                     'cpu or cuda')


def test_getattr_in_a_checkpoint_is_limited_to_history_buffer_methods(tmp_path):
    from mmengine.logging.history_buffer import HistoryBuffer

    class GetattrPayload:  # reaches for a private attribute through the allowed name
        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    path = tmp_path / 'getattr.pth'
    torch.save({'meta': GetattrPayload()}, path)
    with pytest.raises(OvdenseFileError, match="refused getattr.*'__init__'"):
        safe_torch_load(str(path))


def test_build_mmcv_reports_the_installed_ops_kind():
    result = subprocess.run(['bash', 'tools/build_mmcv.sh', '--installed', sys.executable],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    version, kind = result.stdout.split()
    import mmcv
    assert version == mmcv.__version__ and kind in ('cpu', 'cuda')
