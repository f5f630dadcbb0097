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


def test_custom_imports_given_by_cfg_options_are_imported(tmp_path, monkeypatch):
    """Config.fromfile imports a config's custom_imports before --cfg-options are merged;
    an import added on the command line must still happen."""
    from ovdense.utils.launch import load_config
    (tmp_path / 'ovdense_cli_plugin.py').write_text('IMPORTED = True\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, 'ovdense_cli_plugin', raising=False)
    load_config(f'{REPO}/{DEMO}', {'custom_imports.imports': ['ovdense', 'ovdense_cli_plugin']})
    assert sys.modules['ovdense_cli_plugin'].IMPORTED


def test_runs_started_in_one_process_get_their_own_logger_and_visualizer():
    """Loggers and visualizers are per-name singletons; mmengine names them <config>_<second>
    and mmdet's / mmseg's runtimes name the visualizer 'visualizer', so a second in-process run
    wrote into the first one's folders. Every run started through the tools has its own name."""
    from mmengine.config import Config

    from ovdense.utils.launch import name_run
    names = set()
    for _ in range(3):
        cfg = Config(dict(default_scope='mmseg', visualizer=dict(type='SegLocalVisualizer',
                                                                 name='visualizer')))
        name_run(cfg, 'configs/x/some_config.py')
        assert cfg.experiment_name.startswith('some_config_')
        assert cfg.visualizer.name == cfg.experiment_name
        names.add(cfg.experiment_name)
    assert len(names) == 3
    kept = Config(dict(experiment_name='mine'))
    name_run(kept, 'c.py')
    assert kept.experiment_name == 'mine' and 'visualizer' not in kept
