#!/usr/bin/env python
"""Learn vision-space class proxies from unlabeled target images (InMaP) and write them as a
classifier file (OUT.npy + OUT.pt) that replaces the text embeddings at test time.

Example (the demo detector, proxies from the unlabeled train images):
    python tools/learn_vision_proxies.py CONFIG work_dirs/demo/iter_400.pth \\
        --images data/ovdense_demo/lvis/train2017 --out work_dirs/demo/proxies.npy
    python tools/test.py CONFIG work_dirs/demo/iter_400.pth \\
        --vocab data/ovdense_demo/vocab_det.json --vocab-embeddings work_dirs/demo/proxies.npy
"""
import argparse
import json
import sys
import time
from dataclasses import fields

from mmengine.config import DictAction

from ovdense.apis.vision_proxies import (MIN_FOREGROUND, PER_IMAGE, ProxyOptions,
                                         learn_proxies_from_images)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='mmdet, mmseg or mmaction config of the model')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('--images', required=True,
                        help='directory of unlabeled images (videos for mmaction), or a list '
                             'file with one path per line (relative to the list\'s folder)')
    parser.add_argument('--out', required=True, help='OUT.npy and OUT.pt are written')
    parser.add_argument('--vocab', help='classes to learn proxies for (default: the model\'s)')
    parser.add_argument('--vocab-embeddings', help='text classifier file for --vocab')
    parser.add_argument('--per-image', type=int, default=PER_IMAGE,
                        help='features kept per image (RoIs, pixels, anchors or clips)')
    parser.add_argument('--min-foreground', type=float, default=MIN_FOREGROUND,
                        help='features whose foreground score is lower are not used')
    parser.add_argument('--max-images', type=int, default=None)
    parser.add_argument('--max-features', type=int, default=None,
                        help='random subset of the features used (default: 25M / classes, at '
                             'most 200,000: the method holds N x classes matrices)')
    parser.add_argument('--batch-size', type=int, default=4)
    for option in fields(ProxyOptions):  # InMaP's settings, with their defaults and help
        parser.add_argument('--' + option.name.replace('_', '-'),
                            type=int if option.type is int else float,
                            default=option.default, help=option.metadata['help'])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings (only existing keys)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from ovdense.utils.cli import check_vocab_args, classifier_output_stem
    stem = classifier_output_stem(args.out)
    check_vocab_args(args.vocab, args.vocab_embeddings)
    from ovdense.text import save_classifier_pair
    from ovdense.utils.launch import load_config
    options = ProxyOptions(**{o.name: getattr(args, o.name) for o in fields(ProxyOptions)})
    cfg = load_config(args.config, args.cfg_options)
    start = time.perf_counter()
    proxies, metadata = learn_proxies_from_images(
        cfg, args.checkpoint, args.images, vocabulary=args.vocab,
        embeddings_file=args.vocab_embeddings, options=options, per_image=args.per_image,
        min_foreground=args.min_foreground, max_images=args.max_images,
        max_features=args.max_features, batch_size=args.batch_size, device=args.device,
        seed=args.seed)
    metadata['config'] = args.config
    save_classifier_pair(stem, proxies, metadata)
    measured = metadata['measured']
    print(json.dumps({k: v for k, v in measured.items() if k != 'label_shares'}))
    print(f'{tuple(proxies.shape)} vision proxies from {measured["features"]} features of '
          f'{measured["inputs"]} inputs in {time.perf_counter() - start:.1f} s\n'
          f'wrote {stem}.npy and {stem}.pt')
    return 0


if __name__ == '__main__':
    from ovdense.utils.cli import run_cli
    sys.exit(run_cli(main))
