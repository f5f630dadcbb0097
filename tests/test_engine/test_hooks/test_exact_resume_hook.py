"""ExactResumeHook (ovdense/engine/hooks/runtime_hooks.py): interrupted training resumes
exactly, end to end (tools/train.py SIGKILLed after a checkpoint, then --resume) and in process
on a toy run that draws from torch, numpy and python random."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from ovdense.testing.configs import REPO
from ovdense.testing.runs import DEMO_SIZES as SIZES
from ovdense.testing.runs import MAX_ITERS
from ovdense.testing.runs import ONE_THREAD_ENV as ENV
from ovdense.testing.runs import load_weights_only as load
from ovdense.testing.runs import tiny_train_config


KILL_AFTER = 4  # iteration of the checkpoint after which run B is killed


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    from ovdense.demo.data import make_demo_data
    return make_demo_data(str(tmp_path_factory.mktemp('reliability') / 'data'), seed=0,
                          sizes=SIZES)


def train_command(config: str, work_dir: str, *extra: str) -> list:
    return [sys.executable, 'tools/train.py', config, '--work-dir', work_dir, *extra]


def start(command: list, log_path: str) -> subprocess.Popen:
    log = open(log_path, 'w')
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=log,
                               stderr=subprocess.STDOUT)
    log.close()
    return process


def finish(process: subprocess.Popen, log_path: str, timeout: float = 600) -> str:
    process.wait(timeout=timeout)
    with open(log_path) as f:
        log = f.read()
    assert process.returncode == 0, log[-4000:]
    return log


def kill_after_checkpoint(process: subprocess.Popen, work_dir: str, iteration: int,
                          log_path: str, timeout: float = 600) -> None:
    """SIGKILL ``process`` as soon as mmengine has recorded ``iter_<iteration>.pth`` as its
    latest checkpoint (it writes ``last_checkpoint`` after the file is complete)."""
    marker = osp.join(work_dir, 'last_checkpoint')
    wanted = f'iter_{iteration}.pth'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if osp.isfile(marker):
            with open(marker) as f:
                if f.read().strip().endswith(wanted):
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    return
        if process.poll() is not None:
            with open(log_path) as f:
                pytest.fail(f'training ended before {wanted} was written:\n{f.read()[-4000:]}')
        time.sleep(0.02)
    process.kill()
    pytest.fail(f'no {wanted} within {timeout} s')


def logged_scalars(work_dir: str, runs=None) -> dict:
    """{iteration: scalars} from the vis_data/scalars.json of every run under ``work_dir``
    (or of the ``runs`` given, e.g. ``[-1]``: the last one); a resumed run's lines overwrite
    nothing the interrupted run logged for later iterations."""
    found = {}
    names = sorted(n for n in os.listdir(work_dir)
                   if osp.isfile(osp.join(work_dir, n, 'vis_data', 'scalars.json')))
    for run in (names if runs is None else [names[i] for i in runs]):
        with open(osp.join(work_dir, run, 'vis_data', 'scalars.json')) as f:
            for line in f:
                record = json.loads(line)
                record.pop('time', None), record.pop('data_time', None)
                found[record['iter']] = record
    return found


@pytest.mark.slow
@pytest.mark.parametrize('task', ['det', 'seg'])
def test_interrupted_training_resumes_exactly(task, demo_data, tmp_path):
    """Run A trains 6 iterations. Run B is SIGKILLed after its iteration-4 checkpoint, then
    ``--resume`` finishes it. Weights, optimizer state and the per-iteration losses, learning
    rates and gradient norms of both are bit-identical (one thread each, deterministic mode;
    the data pipeline, RoI / pixel sampling and prompt sampling draw random numbers, which
    ExactResumeHook puts back where they were)."""
    config = tiny_train_config(task, demo_data, str(tmp_path / 'config'))
    dir_a, dir_b = str(tmp_path / 'A'), str(tmp_path / 'B')
    log_a, log_b = str(tmp_path / 'A.log'), str(tmp_path / 'B.log')
    run_a = start(train_command(config, dir_a), log_a)  # both at once: 2 cores, 2 processes
    run_b = start(train_command(config, dir_b), log_b)
    kill_after_checkpoint(run_b, dir_b, KILL_AFTER, log_b)
    assert not osp.exists(osp.join(dir_b, f'iter_{MAX_ITERS}.pth'))
    resumed_log = str(tmp_path / 'B_resumed.log')
    resumed = finish(start(train_command(config, dir_b, '--resume'), resumed_log), resumed_log)
    assert f'resumed epoch: 0, iter: {KILL_AFTER}' in resumed
    finish(run_a, log_a)

    a = load(osp.join(dir_a, f'iter_{MAX_ITERS}.pth'))
    b = load(osp.join(dir_b, f'iter_{MAX_ITERS}.pth'))
    assert a['state_dict'].keys() == b['state_dict'].keys()
    different = [k for k, v in a['state_dict'].items() if not torch.equal(v, b['state_dict'][k])]
    assert not different, f'{len(different)} tensors differ, e.g. {different[:5]}'
    for group_a, group_b in zip(a['optimizer']['state'].values(),
                                b['optimizer']['state'].values()):
        assert all(torch.equal(group_a[k], group_b[k]) for k in group_a)
    # per-iteration history (the message hub the resumed run restored and extended)
    for key in ('train/loss', 'train/lr', 'train/grad_norm'):
        history_a = a['message_hub']['log_scalars'][key].data[0]
        history_b = b['message_hub']['log_scalars'][key].data[0]
        assert len(history_a) == MAX_ITERS and (history_a == history_b).all(), key
    # what the logger wrote for the iterations after the resume
    scalars_a, scalars_b = logged_scalars(dir_a), logged_scalars(dir_b)
    for iteration in range(KILL_AFTER + 1, MAX_ITERS + 1):
        assert scalars_a[iteration] == scalars_b[iteration], iteration
    # the resumed process trained only what was left: a silent restart from iteration 0
    # would log iterations 1..KILL_AFTER again (and end with the same weights)
    assert sorted(logged_scalars(dir_b, runs=[-1])) == list(range(KILL_AFTER + 1,
                                                                  MAX_ITERS + 1))


class _NoisyData(torch.utils.data.Dataset):
    """Draws from numpy and python random in the main process (num_workers=0), like an
    augmenting pipeline."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        import random

        import numpy as np
        jitter = float(np.random.rand()) + random.random()
        return dict(inputs=torch.tensor([float(index), jitter]),
                    labels=torch.tensor([index % 2.0]))


def _noisy_model():
    from mmengine.model import BaseModel

    class Noisy(BaseModel):
        """Draws from torch random in every step, like RoI sampling or dropout."""

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, inputs, labels=None, mode='tensor'):
            output = self.linear(torch.stack(inputs) + 0.1 * torch.randn(len(inputs), 2))
            return dict(loss=((output - torch.stack(labels)) ** 2).mean())

    return Noisy()


def _toy_run(work_dir, name, by_epoch, length, exact, resume=False):
    from mmengine.runner import Runner

    from ovdense.engine import ExactResumeHook
    loop = (dict(by_epoch=True, max_epochs=length) if by_epoch
            else dict(by_epoch=False, max_iters=length))
    sampler = 'DefaultSampler' if by_epoch else 'InfiniteSampler'
    runner = Runner(
        model=_noisy_model(), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=dict(dataset=_NoisyData(), batch_size=2, num_workers=0,
                              sampler=dict(type=sampler, shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        train_cfg=loop,
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1 if by_epoch else 2,
                                           by_epoch=by_epoch)),
        custom_hooks=[ExactResumeHook()] if exact else [], resume=resume,
        randomness=dict(seed=0), default_scope='mmengine')
    runner.train()
    return runner.model.linear.weight.detach().clone()


@pytest.mark.parametrize('by_epoch', [False, True])
def test_exact_resume_hook_in_process(tmp_path, by_epoch):
    """The mechanism on a toy run that draws from torch, numpy and python random each step:
    stopped after 2 of 3 epochs (or 4 of 6 iterations) and resumed, it ends with the weights
    of the uninterrupted run; without the hook it does not (mmengine restores no generator
    state). The end-to-end version with SIGKILL is the test above."""
    short, full = (2, 3) if by_epoch else (4, 6)
    ends = {}
    for exact in (True, False):
        tag = f'{"exact" if exact else "stock"}_{"epoch" if by_epoch else "iter"}'
        whole = _toy_run(tmp_path / f'{tag}_a', f'{tag}_a', by_epoch, full, exact)
        _toy_run(tmp_path / f'{tag}_b', f'{tag}_b1', by_epoch, short, exact)
        resumed = _toy_run(tmp_path / f'{tag}_b', f'{tag}_b2', by_epoch, full, exact,
                           resume=True)
        ends[exact] = torch.equal(whole, resumed)
    assert ends == {True: True, False: False}
