#!/usr/bin/env python
"""Generate the synthetic demo dataset used by ``make demo`` (see ovdense/demo/data.py).

    python tools/make_demo_data.py [--out data/ovdense_demo] [--seed 0] [--force]
                                   [--profile {open-vocabulary,long-tailed}]

Reuses an existing copy made with the same seed, sizes and profile unless ``--force`` is given.
Also writes the demo text tower's tokenizer and config under ``<out>/text_tower``, and there
the action demo's text-only pretrained tower weights (about 20 s on 2 CPU cores).
"""
import argparse
import os
import sys
import time

# Runnable from a source checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ovdense.demo.data import (ACTION_CLASSES, DET_CLASSES, NOVEL_ACTIONS,  # noqa: E402
                               NOVEL_CLASSES, PROFILES, make_demo_data)
from ovdense.demo.text_tower import (prepare_action_text_tower,  # noqa: E402
                                     prepare_demo_text_tower)
from ovdense.text import load_vocabulary  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=os.path.join('data', 'ovdense_demo'),
                        help='output directory (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    parser.add_argument('--force', action='store_true',
                        help='regenerate even if a matching copy exists')
    parser.add_argument('--profile', choices=PROFILES, default=PROFILES[0],
                        help="open-vocabulary: novel classes never in training; long-tailed: "
                        "every class in training, most in 1-100 images (default: %(default)s)")
    return parser.parse_args(argv)


def _frequency_counts(vocab_path: str) -> str:
    classes = load_vocabulary(vocab_path)
    return ', '.join(f"{sum(c.frequency == k for c in classes)} '{k}'" for k in 'rcf')


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.seed < 0:
        print('error: --seed must be non-negative', file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        paths = make_demo_data(args.out, seed=args.seed, force=args.force,
                               profile=args.profile)
        # the demo configs' text tower (tokenizer + config) lives beside the data
        paths['text_tower'] = prepare_demo_text_tower(paths['root'])
        paths['action_text_tower'] = prepare_action_text_tower(paths['root'])
    except FileExistsError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'demo data ready in {time.perf_counter() - start:.1f}s at {paths["root"]}')
    if args.profile == 'open-vocabulary':
        print(f'  {len(DET_CLASSES)} object classes, novel (no training boxes): '
              f'{", ".join(NOVEL_CLASSES)}')
    else:
        print(f'  {len(DET_CLASSES)} object classes, all in training; LVIS frequencies: '
              f'{_frequency_counts(paths["vocab_det"])}')
    print(f'  {len(ACTION_CLASSES)} action classes (colour x motion), novel (no training '
          f'clips): {", ".join(NOVEL_ACTIONS)}')
    for key in sorted(paths):
        if key != 'root':
            print(f'  {key}: {paths[key]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
