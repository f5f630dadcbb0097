"""tools/train.py and tools/test.py: argument errors are one line, not a traceback."""
import subprocess
import sys

import pytest
import torch

from ovdense.testing.configs import REPO


DEMO = 'configs/demo/mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py'


def run(*args):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)


@pytest.mark.parametrize('args, needle', [
    (['tools/train.py', 'configs/missing.py'], "config file not found: 'configs/missing.py'"),
    (['tools/test.py', DEMO, 'no_such.pth'], "checkpoint not found: 'no_such.pth'"),
    (['tools/train.py', DEMO, '--cfg-options', 'train_cfg.max_itres=3'],
     "has no key 'max_itres' under train_cfg"),
    pytest.param(['tools/train.py', DEMO, '--amp'], '--amp needs a CUDA device',
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason='CPU refusal')),
])
def test_argument_errors_are_one_line(args, needle):
    result = run(*args)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('error:') and needle in last, result.stderr[-800:]
    assert 'Traceback' not in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the refusal on a CPU machine')
def test_test_amp_without_cuda_is_one_line(tmp_path):
    checkpoint = tmp_path / 'fake.pth'
    checkpoint.write_bytes(b'')
    result = run('tools/test.py', DEMO, str(checkpoint), '--amp')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --amp needs a CUDA device (mmengine's TestLoop(fp16=True): fp16 autocast); "
        'none is available here')


def test_detection_tta_without_a_tta_model_is_one_line(tmp_path):
    """The shipped detection configs define no tta_model (mmdet's DetTTAModel merges boxes
    only and asserts that predictions hold no masks); --tta is refused before any run."""
    checkpoint = tmp_path / 'fake.pth'
    checkpoint.write_bytes(b'')
    result = run('tools/test.py', DEMO, str(checkpoint), '--tta',
                 '--work-dir', str(tmp_path / 'work'))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        'error: --tta: the config defines no tta_model / tta_pipeline')
    assert not (tmp_path / 'work').exists()


def test_unknown_vocab_name_is_one_line(tmp_path):
    checkpoint = tmp_path / 'fake.pth'
    checkpoint.write_bytes(b'')
    result = run('tools/test.py', DEMO, str(checkpoint), '--vocab', 'no_such_dataset')
    assert result.returncode == 2
    assert "unknown vocabulary 'no_such_dataset'" in result.stderr.strip().splitlines()[-1]
