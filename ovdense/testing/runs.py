"""Training runs at test size: the demo configs shrunk to a few deterministic iterations on
the tiny demo data, and programs started under torchrun (gloo on CPU)."""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time
from typing import Optional

from .configs import REPO, shrink_config
from .models import DET_DEMO_CONFIG, SEG_DEMO_CONFIG

# demo data sizes (ovdense.demo.data.make_demo_data) of the runs
DEMO_SIZES = {'det_train': 8, 'det_val': 2, 'seg_train': 8, 'seg_val': 2,
              'video_train_per_class': 1, 'video_val_per_class': 1}
MAX_ITERS = 6
# One thread per process: two cores are shared with other test processes, and an interrupted
# and an uninterrupted run then reduce in the same order and agree bit for bit.
ONE_THREAD_ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


def tiny_train_config(task: str, data: dict, directory: str, max_iters: int = MAX_ITERS,
                      test: bool = False, **overrides) -> str:
    """The demo config of ``task`` shrunk to test size (tiny backbone and text tower), a short
    iteration-based schedule with a checkpoint every 2 iterations, deterministic on CPU, no
    validation (``test``: a test split for tools/test.py); written to ``directory``."""
    os.makedirs(directory, exist_ok=True)
    cfg = shrink_config(DET_DEMO_CONFIG if task == 'det' else SEG_DEMO_CONFIG, directory)
    options = {
        'train_cfg.max_iters': max_iters, 'param_scheduler.0.end': 2,
        'param_scheduler.1.begin': 2, 'param_scheduler.1.end': max_iters,
        'default_hooks.checkpoint.interval': 2, 'default_hooks.checkpoint.max_keep_ckpts': -1,
        'default_hooks.logger.interval': 1,
        'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'randomness': dict(seed=0, deterministic=True)}
    if task == 'det':
        options.update({
            'train_dataloader.dataset.data_root': data['lvis_root'] + '/',
            'model.roi_head.bbox_head.text_classifier.vocabulary': data['vocab_det']})
    else:
        options.update({
            'train_dataloader.dataset.data_root': data['ade_root'] + '/',
            'train_dataloader.dataset.vocabulary': data['vocab_seg'],
            'model.decode_head.text_classifier.vocabulary': data['vocab_seg'],
            'model.auxiliary_head.text_classifier.vocabulary': data['vocab_seg']})
    if test and task == 'det':
        options.update({'test_dataloader.dataset.data_root': data['lvis_root'] + '/',
                        'test_evaluator.ann_file': data['lvis_val_ann']})
    elif test:
        options.update({'test_dataloader.dataset.data_root': data['ade_root'] + '/',
                        'test_dataloader.dataset.vocabulary': data['vocab_seg']})
    if test:
        options.update({'test_dataloader.num_workers': 0,
                        'test_dataloader.persistent_workers': False})
    options.update(overrides)
    cfg.merge_from_dict(options)
    for split in ('val', 'test') if not test else ('val',):
        cfg[f'{split}_dataloader'] = cfg[f'{split}_cfg'] = cfg[f'{split}_evaluator'] = None
    path = osp.join(directory, f'tiny_{task}.py')
    cfg.dump(path)
    return path


def load_weights_only(path: str):
    """A checkpoint read on the CPU with ``torch.load(weights_only=True)``."""
    import torch
    return torch.load(path, map_location='cpu', weights_only=True)


def read_metrics(work_dir: str) -> dict:
    """The metrics tools/test.py logged under ``work_dir`` (``<run>/<run>.json`` lines)."""
    found = {}
    for path in glob.glob(osp.join(work_dir, '*', '*.json')):
        with open(path) as f:
            for line in f:
                found.update(json.loads(line))
    return found


def torchrun_program(program: list, timeout: float, nproc: int = 2,
                     python_path: Optional[str] = None) -> tuple:
    """``program`` (a script and its arguments, or ``-m module ...``) under torchrun; returns
    (exit code or None on timeout, elapsed seconds, output). On timeout the whole process
    group is killed, not only torchrun."""
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               '--nproc_per_node', str(nproc), *program]
    env = dict(ONE_THREAD_ENV, PYTHONPATH=os.pathsep.join(filter(None, [
        python_path, ONE_THREAD_ENV.get('PYTHONPATH')])))
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        code = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        code = None
    return code, time.monotonic() - started, output
