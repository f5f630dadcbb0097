"""The command-line tools refuse bad checkpoints, classifier files and paths with one
``error:`` line (exit 2) before they build or create anything, and ``train.py --resume``
survives a bad latest checkpoint by falling back to the newest complete one."""
import os
import os.path as osp
import shlex
import shutil
import subprocess
import sys

import pytest
import torch

from ovdense.testing.configs import REPO, TINY_SWIN, load_tool, shrink_config
from ovdense.testing.runs import DEMO_SIZES as SIZES
from ovdense.testing.runs import tiny_train_config
from ovdense.testing.text import FILE_CLASSES as CLASSES
from ovdense.testing.text import classifier_file, unit_rows


DET_CONFIG = osp.join(REPO, 'configs', 'demo',
                      'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py')
SEG_CONFIG = osp.join(REPO, 'configs', 'demo',
                      'upernet_icar-swin-nano_fcn-aux_2k_ovdense-demo-ade.py')


# one thread: two cores are shared with other test processes
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


def run_tool(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, f'tools/{tool}.py', *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=600)


def run_in_process(tool: str, *args: str, capsys) -> str:
    """``tools/<tool>.py`` as its ``__main__`` runs it (through run_cli), without a process
    start; the one ``error:`` line of the refused run."""
    from ovdense.utils.cli import run_cli
    main = load_tool(tool).main
    code = run_cli(lambda: main(list(args)))
    stderr = capsys.readouterr().err
    return error_line(subprocess.CompletedProcess(args, code, '', stderr))


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one ``error:`` line of a refused run; no traceback, exit code 2."""
    errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    return errors[0]


class Payload:
    """Unpickling this runs a command; here a harmless one that leaves a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {shlex.quote(self.marker)}',)


@pytest.fixture
def pickled_checkpoint(tmp_path):
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'pickled.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': Payload(marker)}, str(path))
    return str(path), marker


@pytest.fixture
def tiny_det_config(tmp_path):
    """The detection demo config with tiny stand-ins: nothing large, nothing downloaded."""
    cfg = shrink_config(DET_CONFIG, str(tmp_path / 'config'))
    path = str(tmp_path / 'config' / 'tiny_det.py')
    cfg.dump(path)
    return path


def assert_refused_pickle(result: subprocess.CompletedProcess, checkpoint: str, marker) -> None:
    line = error_line(result)
    assert f'refusing to load checkpoint {checkpoint!r}' in line, line
    assert 'weights-only allow-list' in line and 'posix.system' in line, line
    assert 'weights_only' not in result.stderr  # never advice to turn the protection off
    assert not marker.exists()


def test_test_tool_refuses_a_pickled_checkpoint_before_making_its_work_dir(
        tmp_path, tiny_det_config, pickled_checkpoint):
    checkpoint, marker = pickled_checkpoint
    work_dir = tmp_path / 'work'
    result = run_tool('test', tiny_det_config, checkpoint, '--work-dir', str(work_dir))
    assert_refused_pickle(result, checkpoint, marker)
    assert not work_dir.exists()


def test_demo_tool_refuses_a_pickled_checkpoint_before_drawing(
        tmp_path, tiny_det_config, pickled_checkpoint):
    import cv2
    import numpy as np
    checkpoint, marker = pickled_checkpoint
    image = str(tmp_path / 'image.png')
    cv2.imwrite(image, np.zeros((32, 32, 3), np.uint8))
    out_dir = tmp_path / 'vis'
    result = run_tool('demo', image, tiny_det_config, checkpoint, '--out-dir', str(out_dir))
    assert_refused_pickle(result, checkpoint, marker)
    assert not out_dir.exists()


@pytest.mark.parametrize('resume', ['path', 'auto'])
def test_train_tool_refuses_a_pickled_resume_checkpoint(tmp_path, pickled_checkpoint, capsys,
                                                        resume):
    """``--resume CKPT`` and ``--resume`` whose last_checkpoint names the file alike."""
    checkpoint, marker = pickled_checkpoint
    work_dir = tmp_path / 'work'
    args = ['--resume', checkpoint]
    if resume == 'auto':
        work_dir.mkdir()
        (work_dir / 'last_checkpoint').write_text(checkpoint)
        args = ['--resume']
    line = run_in_process('train', SEG_CONFIG, '--work-dir', str(work_dir), *args,
                          capsys=capsys)
    assert f'refusing to load --resume checkpoint {checkpoint!r}' in line, line
    assert 'weights_only' not in line and not marker.exists()
    left = os.listdir(work_dir) if work_dir.exists() else None  # the runner made no work dir
    assert left == (['last_checkpoint'] if resume == 'auto' else None)


# --- tools/train.py --resume: a bad latest checkpoint ------------------------------------


TRAIN_SIZES = {'det_train': 1, 'det_val': 1, 'seg_train': 2, 'seg_val': 1,
               'video_train_per_class': 1, 'video_val_per_class': 1}


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A 2-iteration run of the tiny segmentation demo, a checkpoint after each iteration:
    (config, work dir holding iter_1.pth and iter_2.pth)."""
    from ovdense.demo.data import make_demo_data
    root = tmp_path_factory.mktemp('resume')
    data = make_demo_data(str(root / 'data'), seed=0, sizes=TRAIN_SIZES)
    cfg = shrink_config(SEG_CONFIG, str(root))
    cfg.merge_from_dict({
        'train_cfg.max_iters': 2, 'param_scheduler.0.end': 1, 'param_scheduler.1.begin': 1,
        'param_scheduler.1.end': 2, 'default_hooks.checkpoint.interval': 1,
        'default_hooks.checkpoint.max_keep_ckpts': -1, 'default_hooks.logger.interval': 1,
        'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.data_root': data['ade_root'] + '/',
        'train_dataloader.dataset.vocabulary': data['vocab_seg'],
        'model.decode_head.text_classifier.vocabulary': data['vocab_seg'],
        'model.auxiliary_head.text_classifier.vocabulary': data['vocab_seg']})
    for split in ('val', 'test'):
        cfg[f'{split}_dataloader'] = cfg[f'{split}_cfg'] = cfg[f'{split}_evaluator'] = None
    config = str(root / 'tiny_seg.py')
    cfg.dump(config)
    work_dir = str(root / 'run')
    result = run_tool('train', config, '--work-dir', work_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {'iter_1.pth', 'iter_2.pth'} <= set(os.listdir(work_dir))
    return config, work_dir


def copy_run(trained, tmp_path, last_checkpoint: str) -> str:
    """A copy of the trained work dir whose last_checkpoint holds ``last_checkpoint`` (a
    name in the copy, or '' for an empty file)."""
    work_dir = str(tmp_path / 'run')
    shutil.copytree(trained[1], work_dir)
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, last_checkpoint) if last_checkpoint else '')
    return work_dir


def truncate(path: str) -> None:
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def resume(trained, work_dir: str) -> subprocess.CompletedProcess:
    return run_tool('train', trained[0], '--work-dir', work_dir, '--resume')


def warnings_of(result: subprocess.CompletedProcess) -> list:
    assert result.returncode == 0, result.stderr[-3000:]
    return [line for line in result.stderr.splitlines() if line.startswith('warning:')]


@pytest.mark.slow
def test_resume_skips_a_truncated_latest_checkpoint(trained, tmp_path):
    work_dir = copy_run(trained, tmp_path, 'iter_2.pth')
    skipped, newest = osp.join(work_dir, 'iter_2.pth'), osp.join(work_dir, 'iter_1.pth')
    truncate(skipped)
    result = resume(trained, work_dir)
    assert warnings_of(result) == [
        f'warning: cannot read latest checkpoint {skipped!r}: the file is truncated or not a '
        'torch checkpoint (BadZipFile: File is not a zip file); resuming from '
        f'{newest!r} instead'], result.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 1' in result.stdout + result.stderr
    torch.load(skipped, weights_only=True)  # iteration 2 was trained again and saved whole


@pytest.mark.slow
def test_resume_with_an_empty_last_checkpoint_takes_the_newest_complete_one(trained, tmp_path):
    work_dir = copy_run(trained, tmp_path, '')
    result = resume(trained, work_dir)
    marker, newest = osp.join(work_dir, 'last_checkpoint'), osp.join(work_dir, 'iter_2.pth')
    assert warnings_of(result) == [
        f'warning: {marker!r} is empty; resuming from {newest!r} instead']
    assert 'resumed epoch: 0, iter: 2' in result.stdout + result.stderr


def test_resume_without_a_complete_checkpoint_is_one_error(tmp_path, capsys):
    """Refused before anything is built: no config beyond the shipped one is needed."""
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    for name in ('iter_1.pth', 'iter_2.pth'):
        torch.save({'w': torch.zeros(4)}, str(work_dir / name))
        truncate(str(work_dir / name))
    latest = str(work_dir / 'iter_2.pth')
    (work_dir / 'last_checkpoint').write_text(latest)
    line = run_in_process('train', SEG_CONFIG, '--work-dir', str(work_dir), '--resume',
                          capsys=capsys)
    assert line == (f'error: cannot resume: cannot read latest checkpoint {latest!r}: the file '
                    'is truncated or not a torch checkpoint (BadZipFile: File is not a zip '
                    f'file), and no other iter_*.pth / epoch_*.pth in {str(work_dir)!r} is '
                    'complete')
    assert sorted(os.listdir(work_dir)) == ['iter_1.pth', 'iter_2.pth', 'last_checkpoint']


# --- tools/convert_checkpoint.py ---------------------------------------------------------


@pytest.fixture
def swin_checkpoint(tmp_path):
    """A tiny Swin backbone in mmdet naming: a source convert_checkpoint.py accepts."""
    from mmdet.models.backbones import SwinTransformer
    torch.manual_seed(0)
    model = SwinTransformer(pretrain_img_size=64, **TINY_SWIN)
    path = str(tmp_path / 'swin.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    return path


@pytest.mark.parametrize('dst', ['existing_dir', 'new_dir/'])
def test_convert_tool_refuses_a_directory_as_output(tmp_path, swin_checkpoint, dst, capsys):
    (tmp_path / 'existing_dir').mkdir()
    dst = osp.join(str(tmp_path), dst)
    line = run_in_process('convert_checkpoint', swin_checkpoint, dst, capsys=capsys)
    example = osp.join(dst, 'swin_ovdense.pth')
    assert line == (f'error: DST {dst!r} names a directory, not a file: give a path such as '
                    f'{example!r}')
    assert not (tmp_path / 'new_dir').exists() and not os.listdir(tmp_path / 'existing_dir')


def test_convert_tool_user_errors_exit_2(tmp_path, swin_checkpoint, capsys):
    """The same exit code as every other tool (it was 1); nothing is written."""
    missing = str(tmp_path / 'missing.pth')
    line = run_in_process('convert_checkpoint', missing, str(tmp_path / 'a.pth'), capsys=capsys)
    assert line == f'error: checkpoint file not found: {missing!r}'
    line = run_in_process('convert_checkpoint', swin_checkpoint, str(tmp_path / 'b.pth'),
                          '--layout', 'icar', capsys=capsys)
    assert "was asked to be read as 'icar' but looks like 'mmdet'" in line
    line = run_in_process('convert_checkpoint', swin_checkpoint, swin_checkpoint, capsys=capsys)
    assert line == f'error: SRC and DST are the same file: {swin_checkpoint!r}'
    assert sorted(os.listdir(tmp_path)) == ['swin.pth']
    assert load_tool('convert_checkpoint').main([swin_checkpoint, str(tmp_path / 'c.pth')]) == 0


def test_convert_tool_names_an_output_it_cannot_write(tmp_path, swin_checkpoint, capsys):
    """A file in place of DST's directory: one line, not an OSError traceback."""
    (tmp_path / 'file').write_text('')
    dst = str(tmp_path / 'file' / 'out.pth')
    line = run_in_process('convert_checkpoint', swin_checkpoint, dst, capsys=capsys)
    assert line == (f"error: cannot write {dst!r}: {str(tmp_path / 'file')!r} is a file, "
                    'not a directory')


def test_demo_tool_vocab_embeddings_needs_vocab(tmp_path):
    """Without --vocab the file was silently ignored (as by tools/test.py before)."""
    result = subprocess.run(
        [sys.executable, 'tools/demo.py', str(tmp_path), 'config.py', 'model.pth',
         '--vocab-embeddings', 'classes.npy'], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --vocab-embeddings 'classes.npy' needs --vocab: the vocabulary whose classes "
        'the file holds, in its order')
    assert 'Traceback' not in result.stderr


def test_checkpoints_with_non_finite_weights_are_refused(tmp_path, swin_checkpoint,
                                                         tiny_det_config, capsys):
    """A diverged run's NaN weights loaded silently and predicted nothing (exit 0). Now
    tools/test.py, convert_checkpoint.py and ICARSwin name the file and the first bad tensor."""
    from ovdense.models.backbones import ICARSwin
    from ovdense.utils.io import OvdenseFileError
    state = torch.load(swin_checkpoint, weights_only=True)['state_dict']
    key = sorted(state)[3]
    state[key] = state[key].clone()
    state[key].view(-1)[:2] = torch.tensor([float('nan'), float('inf')])
    bad = str(tmp_path / 'nan.pth')
    torch.save({'state_dict': state}, bad)
    expected = f'checkpoint {bad!r} holds non-finite weights: {"state_dict." + key!r} has 2'

    line = run_in_process('convert_checkpoint', bad, str(tmp_path / 'out.pth'), capsys=capsys)
    assert line.startswith(f'error: {expected}'), line
    assert not (tmp_path / 'out.pth').exists()
    with pytest.raises(OvdenseFileError, match='holds non-finite weights'):
        ICARSwin(arch='auto', checkpoint=bad)

    work_dir = tmp_path / 'work'
    result = run_tool('test', tiny_det_config, bad, '--work-dir', str(work_dir))
    assert error_line(result).startswith(f'error: {expected}')
    assert not work_dir.exists()


# --- tools/test.py: classifier files and checkpoints of another model ---------------------


def test_test_tool_refuses_a_bad_classifier_file_before_building(tmp_path, capsys):
    """tools/test.py --vocab X --vocab-embeddings F: one line, before the model is built."""
    embeddings = unit_rows()
    embeddings[2] = float('nan')
    bad = classifier_file(tmp_path / 'bad.pt', embeddings)
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'')  # never read: the classifier file is refused first
    line = run_in_process('test', DET_CONFIG, str(checkpoint), '--work-dir',
                          str(tmp_path / 'work'), '--vocab', ','.join(CLASSES),
                          '--vocab-embeddings', bad, capsys=capsys)
    assert line == (f"error: classifier file {bad!r}: row 2 ('yak') is not finite; every class "
                    'embedding must be a finite, non-zero vector')
    assert not (tmp_path / 'work').exists()


def test_test_tool_vocab_embeddings_needs_vocab(tmp_path, capsys):
    """Without --vocab the file was silently ignored."""
    classes = classifier_file(tmp_path / 'classes.npy', unit_rows())
    line = run_in_process('test', DET_CONFIG, str(tmp_path / 'model.pth'),
                          '--vocab-embeddings', classes, capsys=capsys)
    assert line == (f'error: --vocab-embeddings {classes!r} needs --vocab: the vocabulary whose '
                    'classes the file holds, in its order')


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    from ovdense.demo.data import make_demo_data
    return make_demo_data(str(tmp_path_factory.mktemp('reliability') / 'data'), seed=0,
                          sizes=SIZES)


@pytest.fixture(scope='module')
def det_checkpoints(demo_data, tmp_path_factory):
    """A test config of the tiny detection demo, a checkpoint of its model (never trained:
    only the layout matters here) and one of the tiny segmentation demo model."""
    from mmengine.registry import init_default_scope
    from mmengine.config import Config
    from mmdet.registry import MODELS as DET_MODELS
    from mmseg.registry import MODELS as SEG_MODELS
    directory = tmp_path_factory.mktemp('checkpoints')
    det_config = tiny_train_config('det', demo_data, str(directory), test=True)
    seg_config = tiny_train_config('seg', demo_data, str(directory))
    paths = {'config': det_config}
    for name, config, registry, scope in (('det', det_config, DET_MODELS, 'mmdet'),
                                          ('seg', seg_config, SEG_MODELS, 'mmseg')):
        init_default_scope(scope)
        model = registry.build(Config.fromfile(config).model)
        paths[name] = str(directory / f'{name}.pth')
        torch.save({'meta': {}, 'state_dict': model.state_dict()}, paths[name])
    return paths


def _run_test_tool(det_checkpoints, checkpoint, work_dir, *options):
    from mmdet.visualization import DetLocalVisualizer
    DetLocalVisualizer._instance_dict.pop('visualizer', None)  # one per process otherwise
    out = osp.join(work_dir, 'predictions.pkl')
    args = [det_checkpoints['config'], checkpoint, '--work-dir', work_dir, '--out', out]
    if options:
        args += ['--cfg-options', *options]
    return load_tool('test').main(args), out


def test_checkpoint_of_another_model_is_refused(det_checkpoints, tmp_path):
    """A segmentation checkpoint given to the detection config: mmengine would load the few
    matching weights, log a warning and evaluate a mostly random model."""
    from ovdense.utils import OvdenseFileError
    with pytest.raises(OvdenseFileError) as err:
        _run_test_tool(det_checkpoints, det_checkpoints['seg'], str(tmp_path / 'work'))
    message = str(err.value)
    assert f"checkpoint {det_checkpoints['seg']!r} does not fit the model" in message
    assert 'missing (e.g. neck.' in message and 'Was it trained with another config?' in message
    assert not (tmp_path / 'work' / 'predictions.pkl').exists()


def test_truncated_checkpoint_is_named_before_anything_is_built(det_checkpoints, tmp_path):
    from ovdense.utils import OvdenseFileError
    truncated = tmp_path / 'truncated.pth'
    with open(det_checkpoints['det'], 'rb') as f:
        truncated.write_bytes(f.read()[:4096])
    with pytest.raises(OvdenseFileError, match=r"truncated\.pth'.*truncated or not a torch"):
        _run_test_tool(det_checkpoints, str(truncated), str(tmp_path / 'work'))
    assert not (tmp_path / 'work').exists()  # refused before the runner made its work dir
    # the same file for --resume
    with pytest.raises(OvdenseFileError, match=r"--resume checkpoint .*truncated\.pth'"):
        load_tool('train').main([det_checkpoints['config'], '--work-dir', str(tmp_path / 'train'),
                             '--resume', str(truncated)])
    assert not (tmp_path / 'train').exists()


def test_detection_vocabulary_size_must_match_the_dataset(det_checkpoints, tmp_path):
    from ovdense.utils.cli import ConfigError
    classifier = 'model.roi_head.bbox_head'
    with pytest.raises(ConfigError, match=r'vocabulary size mismatch: the model predicts 5 '
                                          r'classes .* test dataset OVLVISV1Dataset has 30'):
        _run_test_tool(det_checkpoints, det_checkpoints['det'], str(tmp_path / 'work'),
                       f'{classifier}.text_classifier.vocabulary=[a,b,c,d,e]',
                       f'{classifier}.num_classes=5')
    assert not (tmp_path / 'work' / 'predictions.pkl').exists()
