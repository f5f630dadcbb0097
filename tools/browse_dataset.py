#!/usr/bin/env python
"""Draw a config's ground truth after its data pipeline (mmdet, mmseg or mmaction config).

    python tools/browse_dataset.py CONFIG [--output-dir DIR] [--not-show] [--phase train]
        [--max-images N] [--show-interval S] [--cfg-options key=value ...]
"""
import argparse
import os
import sys

from mmengine.config import DictAction

# Runnable from a source checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be a positive integer, got {text!r}')
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Browse a dataset (ovdense)')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--output-dir', help='write the drawn samples into this directory')
    parser.add_argument('--not-show', action='store_true',
                        help='do not open a window (write to --output-dir only)')
    parser.add_argument('--show-interval', type=float, default=2,
                        help='seconds each shown image stays up (default: %(default)s)')
    parser.add_argument('--phase', choices=['train', 'val', 'test'], default='train',
                        help='which dataloader\'s dataset to draw (default: %(default)s)')
    parser.add_argument('--max-images', type=_positive_int, default=None,
                        help='draw only the first N samples (default: the whole dataset)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. '
                             'train_dataloader.dataset.data_root=data/x/ (only existing keys)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import ovdense  # noqa: F401  registers ovdense components and compatibility fixes
    from ovdense.utils.browse import browse_dataset, has_display
    from ovdense.utils.cli import ConfigError
    from ovdense.utils.launch import load_config

    show = not args.not_show
    if show and not has_display():
        if args.output_dir is None:
            raise ConfigError('no display to show images on: add --not-show --output-dir DIR')
        print('no display: writing to --output-dir only (as with --not-show)', file=sys.stderr)
        show = False
    if not show and args.output_dir is None:
        raise ConfigError('--not-show needs --output-dir: nothing would be drawn')
    cfg = load_config(args.config, args.cfg_options)
    written = browse_dataset(cfg, phase=args.phase, output_dir=args.output_dir,
                             max_images=args.max_images, show=show,
                             wait_time=args.show_interval)
    if args.output_dir is not None:
        print(f'\n{len(written)} {args.phase} samples drawn to {args.output_dir}')
    return 0


if __name__ == '__main__':
    from ovdense.utils.cli import run_cli
    sys.exit(run_cli(main))
