"""Setting up the environment (tools/setup_env.sh, tools/build_mmcv.sh): setup is idempotent
and reuses the mmcv wheel, and build_mmcv.sh keys its cached wheels by torch, Python, CUDA
version and archs, refuses a mismatched nvcc or an unknown ops kind, and reports the
installed kind."""
import os
import re
import subprocess
import sys

import pytest
import torch


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_setup_env_is_idempotent_and_reuses_the_mmcv_wheel():
    venv = os.path.dirname(os.path.dirname(sys.executable))
    result = subprocess.run(['bash', 'tools/setup_env.sh'], cwd=REPO, capture_output=True,
                            text=True, env=dict(os.environ, OVDENSE_VENV=venv), timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'building mmcv' not in result.stdout + result.stderr
    assert 'already installed from this checkout' in result.stdout  # no editable reinstall
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


def test_build_mmcv_reports_the_installed_ops_kind():
    result = subprocess.run(['bash', 'tools/build_mmcv.sh', '--installed', sys.executable],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    version, kind = result.stdout.split()
    import mmcv
    assert version == mmcv.__version__ and kind in ('cpu', 'cuda')
