#!/usr/bin/env python
"""Train a detector, segmenter or recognizer config (mmdet, mmseg or mmaction scope)."""
import argparse
import sys

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model (ovdense)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (CUDA)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate with the total batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the work dir '
                             'when no path is given')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. train_cfg.max_iters=10 '
                             '(only existing keys)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import ovdense  # noqa: F401  registers ovdense components and compatibility fixes
    from mmengine.runner import Runner

    from ovdense.utils.launch import (apply_train_args, load_config, name_run, set_work_dir,
                                      warn_unmatched_paramwise_keys)
    cfg = load_config(args.config, args.cfg_options)
    set_work_dir(cfg, args.work_dir, args.config)
    name_run(cfg, args.config)
    apply_train_args(cfg, args)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else _build_runner(cfg)
    warn_unmatched_paramwise_keys(runner.model, cfg.get('optim_wrapper'))
    runner.train()
    return 0


def _build_runner(cfg):
    from mmengine.registry import RUNNERS
    return RUNNERS.build(cfg)


if __name__ == '__main__':
    from ovdense.utils.cli import run_cli
    sys.exit(run_cli(main))
