"""tools/train.py and tools/test.py: argument errors are one line, not a traceback. One test
runs the real entry point in a new interpreter; the others run the same command line in this
process, as each tool's ``__main__`` does (``run_cli(main)``), to save an interpreter start
(about 8 s) per case."""
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from ovdense.testing.configs import REPO, load_tool
from ovdense.utils.cli import run_cli


DEMO = 'configs/demo/mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py'


@pytest.fixture
def run(capsys, monkeypatch):
    """``run('tools/test.py', *argv)`` -> returncode, stderr of that command line, run from
    the repository root."""
    monkeypatch.chdir(REPO)

    def command(script, *argv):
        tool = script.split('/')[-1][:-len('.py')]
        capsys.readouterr()
        code = run_cli(lambda: load_tool(tool).main(list(argv)))
        return SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)
    return command


def test_the_entry_point_prints_one_line():
    result = subprocess.run([sys.executable, 'tools/train.py', 'configs/missing.py'], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: config file not found: 'configs/missing.py'")
    assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('args, needle', [
    (['tools/train.py', 'configs/missing.py'], "config file not found: 'configs/missing.py'"),
    (['tools/test.py', DEMO, 'no_such.pth'], "checkpoint not found: 'no_such.pth'"),
    (['tools/train.py', DEMO, '--cfg-options', 'train_cfg.max_itres=3'],
     "has no key 'max_itres' under train_cfg"),
    pytest.param(['tools/train.py', DEMO, '--amp'], '--amp needs a CUDA device',
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason='CPU refusal')),
])
def test_argument_errors_are_one_line(run, args, needle):
    result = run(*args)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('error:') and needle in last, result.stderr[-800:]
    assert 'Traceback' not in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the refusal on a CPU machine')
def test_test_amp_without_cuda_is_one_line(run, tmp_path):
    checkpoint = tmp_path / 'fake.pth'
    checkpoint.write_bytes(b'')
    result = run('tools/test.py', DEMO, str(checkpoint), '--amp')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --amp needs a CUDA device (mmengine's TestLoop(fp16=True): fp16 autocast); "
        'none is available here')


def test_detection_tta_without_a_tta_model_is_one_line(run, tmp_path):
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


def test_unknown_vocab_name_is_one_line(run, tmp_path):
    checkpoint = tmp_path / 'fake.pth'
    checkpoint.write_bytes(b'')
    result = run('tools/test.py', DEMO, str(checkpoint), '--vocab', 'no_such_dataset')
    assert result.returncode == 2
    assert "unknown vocabulary 'no_such_dataset'" in result.stderr.strip().splitlines()[-1]
