#!/usr/bin/env python
"""Convert an iCAR / open_clip (timm Swin trunk) / Swin checkpoint into one ovdense file.

    python tools/convert_checkpoint.py SRC DST [--layout auto|icar|open_clip|swin|mmdet]
                                               [--model-name OPEN_CLIP_MODEL]

The output (see ``ovdense/checkpoints.py`` for the exact keys) holds the image backbone in mmdet
Swin naming, the image->text projection and, untouched, the text tower; it loads with
``torch.load(weights_only=True)``. Sources are read with ``weights_only=True`` too.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ovdense import checkpoints  # noqa: E402
from ovdense.utils.io import OvdenseFileError  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='source checkpoint')
    parser.add_argument('dst', help='output file (written atomically)')
    parser.add_argument('--layout', default='auto', choices=('auto',) + checkpoints.LAYOUTS,
                        help='source layout (default: detect)')
    parser.add_argument('--model-name', default='',
                        help='stored as source_model_name, e.g. the open_clip model config '
                             'of the text tower')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if os.path.abspath(args.src) == os.path.abspath(args.dst):
        print('error: SRC and DST are the same file', file=sys.stderr)
        return 2
    try:
        converted = checkpoints.convert_file(args.src, args.dst, layout=args.layout,
                                             model_name=args.model_name)
    except (OvdenseFileError, FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(checkpoints.summarize(converted))
    print(f'wrote {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
