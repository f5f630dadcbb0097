#!/usr/bin/env python
"""Draw predictions of a detector or segmenter on an image or a folder of images, with any
vocabulary: ``python tools/demo.py IMG_OR_DIR CONFIG CHECKPOINT --vocab "cat,red star"``."""
import argparse
import os
import os.path as osp
import sys

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('inputs', help='an image file or a folder of images')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--vocab', help='classes to recognise: dataset name, file, or comma '
                                        'list (default: the training vocabulary)')
    parser.add_argument('--vocab-embeddings', help='prebuilt classifier file for --vocab')
    parser.add_argument('--out-dir', default='outputs', help='where drawn images go')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection score cut')
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:N]')
    return parser.parse_args(argv)


def list_images(inputs: str):
    if osp.isdir(inputs):
        images = sorted(osp.join(inputs, f) for f in os.listdir(inputs)
                        if f.lower().endswith(IMAGE_SUFFIXES))
    elif osp.isfile(inputs):
        images = [inputs]
    else:
        raise FileNotFoundError(f'no image or folder at {inputs!r}')
    if not images:
        raise FileNotFoundError(f'{inputs!r} holds no images ({", ".join(IMAGE_SUFFIXES)})')
    return images


def main(argv=None) -> int:
    args = parse_args(argv)
    from ovdense.utils.cli import check_vocab_args
    check_vocab_args(args.vocab, args.vocab_embeddings)
    import ovdense  # noqa: F401
    from ovdense.apis import DenseInferencer
    from ovdense.utils.launch import check_checkpoint, load_config
    images = list_images(args.inputs)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint!r}')
    check_checkpoint(args.checkpoint)  # refused here, not as a traceback from mmengine's loader
    inferencer = DenseInferencer(load_config(args.config), args.checkpoint, args.device,
                                 vocabulary=args.vocab, embeddings_file=args.vocab_embeddings)
    for path in images:
        out = inferencer.draw(path, args.out_dir, score_thr=args.score_thr)
        print(f'{path} -> {out}')
    return 0


if __name__ == '__main__':
    from ovdense.utils.cli import run_cli
    sys.exit(run_cli(main))
