"""tools/train.py --launcher pytorch under torchrun with 2 CPU processes (gloo), then
--resume continues from its checkpoint."""
import os
import subprocess
import sys

import pytest

from ovdense.testing.configs import REPO

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
