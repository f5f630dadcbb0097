#!/usr/bin/env python
"""Test a checkpoint (mmdet, mmseg or mmaction config); ``--vocab`` swaps the classes."""
import argparse
import sys

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a model (ovdense)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save evaluation metrics')
    parser.add_argument('--out', help='dump predictions to this pickle file')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='save drawn predictions into this directory')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds per shown image')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    parser.add_argument('--amp', action='store_true',
                        help='test under fp16 autocast (CUDA; mmengine TestLoop fp16=True)')
    parser.add_argument('--vocab', help='test vocabulary: dataset name (lvis_v1, coco ...), '
                                        '.txt/.json/.yaml file or comma-separated names')
    parser.add_argument('--vocab-embeddings', help='prebuilt classifier file (.npy/.pt) for '
                                                   '--vocab (tools/build_text_classifier.py)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings (only existing keys)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from ovdense.utils.cli import check_vocab_args
    check_vocab_args(args.vocab, args.vocab_embeddings)
    import ovdense  # noqa: F401  registers ovdense components and compatibility fixes
    from mmengine.runner import Runner

    from ovdense.utils.launch import (add_result_dump, apply_test_args, check_checkpoint,
                                      load_config, name_run, set_work_dir)
    cfg = load_config(args.config, args.cfg_options)
    set_work_dir(cfg, args.work_dir, args.config)
    name_run(cfg, args.config)
    apply_test_args(cfg, args)
    if args.vocab:
        from ovdense.text import load_classifier_file, load_vocabulary
        vocab = load_vocabulary(args.vocab)  # fail fast, before building anything
        if args.vocab_embeddings:  # rows and stored names now; the dim once the model is built
            load_classifier_file(args.vocab_embeddings, len(vocab), names=vocab.names)
    # a truncated or unsafe file is named before the runner is built or makes its work dir
    check_checkpoint(args.checkpoint)
    runner = Runner.from_cfg(cfg)
    if args.out:
        add_result_dump(runner, cfg.default_scope, args.out)
    runner.test()
    return 0


if __name__ == '__main__':
    from ovdense.utils.cli import run_cli
    sys.exit(run_cli(main))
