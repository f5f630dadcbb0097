"""tools/train.py --launcher pytorch under torchrun with 2 CPU processes (gloo): training and
--resume from its checkpoint, a failing rank ends the whole job, a shared jointly trained tower
under mmengine's default DDP wrapper, and two processes follow the one-process loss curve."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from ovdense.testing.configs import REPO, with_shared_class_embeddings
from ovdense.testing.runs import DEMO_SIZES, MAX_ITERS
from ovdense.testing.runs import load_weights_only as load
from ovdense.testing.runs import tiny_train_config, torchrun_program

sys.path.insert(0, os.path.join(REPO, 'tools'))
from run_demo import DEMO_CONFIG, data_options, prepare_data, schedule_options  # noqa: E402


SIZES = {'det_train': 8, 'det_val': 2, 'seg_train': 2, 'seg_val': 1,
         'video_train_per_class': 1, 'video_val_per_class': 1}


def torchrun_train(work_dir, data_root, max_iters, *extra):
    options = data_options(data_root) + schedule_options(max_iters) + [
        'default_hooks.checkpoint.interval=2', 'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False']
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
               '--master_port', '29561', 'tools/train.py', DEMO_CONFIG, '--launcher', 'pytorch',
               '--work-dir', str(work_dir), *extra, '--cfg-options', *options]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))


@pytest.mark.slow
def test_torchrun_two_cpu_processes_and_resume(tmp_path):
    data_root = str(tmp_path / 'data')
    prepare_data(data_root, SIZES)
    work_dir = tmp_path / 'work'
    first = torchrun_train(work_dir, data_root, 2)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert (work_dir / 'iter_2.pth').is_file()
    resumed = torchrun_train(work_dir, data_root, 4, '--resume')
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert (work_dir / 'iter_4.pth').is_file()
    log = resumed.stdout + resumed.stderr
    assert 'resumed epoch: 0, iter: 2' in log or 'Load checkpoint' in log or 'resumed' in log


TEST_HOOKS = '''"""Test-only hooks for custom_imports, written by
tests/test_tools/test_distributed_training.py."""
import json
import os.path as osp

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class FailOnRankHook(Hook):
    def __init__(self, rank, iteration):
        self.rank, self.iteration = rank, iteration

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if get_rank() == self.rank and runner.iter == self.iteration:
            raise RuntimeError(f'injected failure on rank {self.rank} at iteration {runner.iter}')


@HOOKS.register_module(force=True)
class RecordLossesHook(Hook):
    """Every rank's own losses, one JSON line per iteration (mmengine logs rank 0's only)."""

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        record = {k: float(v) for k, v in outputs.items()}
        with open(osp.join(runner.work_dir, f'losses_rank{get_rank()}.jsonl'), 'a') as f:
            f.write(json.dumps(dict(record, iter=runner.iter + 1)) + '\\n')
'''


def hooks_options(directory: str, *hooks: dict) -> dict:
    """Config settings that import the test-only hooks from ``directory`` (on PYTHONPATH)."""
    with open(osp.join(directory, 'reliability_test_hooks.py'), 'w') as f:
        f.write(TEST_HOOKS)
    return {'custom_imports': dict(imports=['ovdense', 'reliability_test_hooks'],
                                   allow_failed_imports=False),
            'custom_hooks': list(hooks)}


def torchrun(config: str, work_dir: str, hooks_dir: str, timeout: float,
             nproc: int = 2) -> tuple:
    """tools/train.py under torchrun (gloo on CPU); see :func:`torchrun_program`."""
    return torchrun_program(['tools/train.py', config, '--launcher', 'pytorch', '--work-dir',
                             work_dir], timeout, nproc, hooks_dir)


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    from ovdense.demo.data import make_demo_data
    return make_demo_data(str(tmp_path_factory.mktemp('reliability') / 'data'), seed=0,
                          sizes=DEMO_SIZES)


@pytest.mark.slow
def test_failing_rank_ends_the_distributed_job(demo_data, tmp_path):
    """Rank 1 raises at iteration 3 while rank 0 trains on (it is about to block in DDP's
    all-reduce): torchrun must end the whole job with a non-zero exit code, promptly, and the
    output must carry rank 1's error, in its traceback and in torchrun's summary."""
    directory = str(tmp_path / 'config')
    os.makedirs(directory)
    options = hooks_options(directory, dict(type='FailOnRankHook', rank=1, iteration=3))
    config = tiny_train_config('det', demo_data, directory, **options)
    code, elapsed, output = torchrun(config, str(tmp_path / 'work'), directory, timeout=420)
    assert code is not None, f'the job hung (killed after {elapsed:.0f} s):\n{output[-4000:]}'
    assert code != 0, output[-4000:]
    message = 'RuntimeError: injected failure on rank 1 at iteration 3'
    assert f'[rank1]: {message}' in output, output[-4000:]
    summary = output[output.rindex('Root Cause'):]
    assert 'rank      : 1' in summary and message in summary, summary
    assert not osp.exists(tmp_path / 'work' / f'iter_{MAX_ITERS}.pth')


@pytest.mark.slow
def test_a_shared_trained_tower_trains_under_the_default_ddp_wrapper(demo_data, tmp_path):
    """WithClassEmbeddings under torchrun (2 CPU ranks, gloo) and mmengine's default DDP
    wrapper (``find_unused_parameters=False``): the decode and auxiliary heads share one
    jointly trained tower, every parameter gets a gradient each step (else DDP stops at the
    second step), and the checkpoints hold that one tower, changing as it trains."""
    from mmengine.config import Config
    directory = str(tmp_path / 'config')
    path = tiny_train_config('seg', demo_data, directory, max_iters=3)
    cfg = Config.fromfile(path)
    cfg.model = with_shared_class_embeddings(cfg.model, 'EncoderDecoder',
                                             ('decode_head', 'auxiliary_head'))
    assert cfg.model.class_embeddings.type == 'TrainedTowerClassEmbeddings'
    assert 'model_wrapper_cfg' not in cfg  # mmengine's default wrapper
    cfg.dump(path)
    work_dir = str(tmp_path / 'work')
    code, _, output = torchrun(path, work_dir, directory, timeout=420)
    assert code == 0, output[-4000:]
    second, third = (load(osp.join(work_dir, f'iter_{i}.pth'))['state_dict'] for i in (2, 3))
    tower = [k for k in third if '.tower.' in k]
    assert tower and all(k.startswith('class_embeddings.tower.') for k in tower)
    assert any(not torch.equal(second[k], third[k]) for k in tower)


@pytest.mark.slow
def test_two_processes_follow_the_one_process_loss_curve(demo_data, tmp_path):
    """Equal global batch (2 x 1 image under torchrun, 1 x 2 images in one process), with the
    text tower trained jointly and sharded across the two ranks: per-iteration losses (the
    mean of the ranks' losses) and the final weights agree up to float summation order.

    The segmentation demo is used, made free of per-sample randomness and of batch coupling:
    a fixed resize instead of random resize / crop / flip, GroupNorm instead of BatchNorm in
    the heads (the Swin backbone uses LayerNorm). Its pixel-mean losses over equal-sized
    images then make the 2-image loss the mean of the 1-image losses, so DDP's averaged
    gradient equals the one-process gradient. (Detection samples RoIs at random per image and
    normalises its mask loss by the batch's positives, so its curves only match in
    distribution.)"""
    directory = str(tmp_path / 'config')
    os.makedirs(directory)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='ZeroLabelAsBackground', background_index=30),
                dict(type='Resize', scale=(64, 64), keep_ratio=False),
                dict(type='PackSegInputs')]
    group_norm = dict(type='GN', num_groups=4, requires_grad=True)
    options = hooks_options(directory, dict(type='RecordLossesHook'))
    iters = 4
    common = dict(options, **{'train_dataloader.dataset.pipeline': pipeline,
                              'model.decode_head.norm_cfg': group_norm,
                              'model.auxiliary_head.norm_cfg': group_norm,
                              'default_hooks.checkpoint.interval': iters})
    one = tiny_train_config('seg', demo_data, osp.join(directory, 'one'), max_iters=iters,
                            **common)
    two = tiny_train_config('seg', demo_data, osp.join(directory, 'two'), max_iters=iters,
                            **dict(common, **{'train_dataloader.batch_size': 1}))
    code, _, output = torchrun(two, str(tmp_path / 'two'), directory, timeout=420)
    assert code == 0, output[-4000:]
    code, _, output = torchrun(one, str(tmp_path / 'one'), directory, timeout=420, nproc=1)
    assert code == 0, output[-4000:]

    def losses(work_dir, rank):
        with open(osp.join(work_dir, f'losses_rank{rank}.jsonl')) as f:
            return [json.loads(line) for line in f]

    single = losses(str(tmp_path / 'one'), 0)
    ranks = [losses(str(tmp_path / 'two'), r) for r in (0, 1)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == iters
    for step, (expected, *per_rank) in enumerate(zip(single, *ranks)):
        for key in ('loss', 'decode.loss_ce', 'aux.loss_ce'):
            mean = sum(r[key] for r in per_rank) / 2
            assert mean == pytest.approx(expected[key], rel=1e-4, abs=1e-6), (step, key)
    assert ranks[0][-1]['loss'] != ranks[1][-1]['loss']  # the ranks did see different images
    a = load(osp.join(tmp_path, 'one', f'iter_{iters}.pth'))['state_dict']
    b = load(osp.join(tmp_path, 'two', f'iter_{iters}.pth'))['state_dict']
    for key, value in a.items():
        if key.endswith(('in_proj_bias', 'qkv.bias')):
            # The key bias of attention has an exactly zero gradient (softmax ignores a
            # constant added to every key); Adam turns its float-noise gradient into lr-sized
            # steps of arbitrary sign. Query and value biases are compared.
            third = value.shape[0] // 3
            value, other = (torch.cat([t[:third], t[2 * third:]]) for t in (value, b[key]))
        else:
            other = b[key]
        torch.testing.assert_close(other, value, rtol=1e-4, atol=1e-6, msg=key)
