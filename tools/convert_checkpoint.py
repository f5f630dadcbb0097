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
from ovdense.utils.cli import ConfigError, run_cli  # noqa: E402
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
    """Exit code 0, or 2 with one ``error:`` line for a user error (as every ovdense tool)."""
    return run_cli(lambda: convert(parse_args(argv)))


def convert(args) -> int:
    check_paths(args.src, args.dst)  # before reading SRC: nothing is done for a bad DST
    converted = checkpoints.load_converted(args.src, layout=args.layout,
                                           model_name=args.model_name)
    try:
        checkpoints.save_converted(converted, args.dst)
    except OSError as err:  # a read-only directory, a full disk: nothing is left behind
        raise OvdenseFileError(f'cannot write {args.dst!r}: {_os_reason(err, args.dst)}') from err
    print(checkpoints.summarize(converted))
    print(f'wrote {args.dst}')
    return 0


def _os_reason(err: OSError, dst: str) -> str:
    """'Permission denied', plus the path it concerns when that is not DST itself."""
    if isinstance(err, FileExistsError) and os.path.isfile(err.filename or ''):
        return f'{err.filename!r} is a file, not a directory'  # os.makedirs on DST's parent
    reason = err.strerror or str(err)
    if err.filename and os.path.abspath(err.filename) != os.path.abspath(dst):
        reason += f' ({err.filename!r})'
    return reason


def check_paths(src: str, dst: str) -> None:
    if os.path.isdir(dst) or dst.endswith(('/', os.sep)):
        # the converted file would otherwise replace the directory, or fail to
        example = os.path.join(dst, os.path.splitext(os.path.basename(src))[0] + '_ovdense.pth')
        raise ConfigError(f'DST {dst!r} names a directory, not a file: give a path such as '
                          f'{example!r}')
    if os.path.abspath(src) == os.path.abspath(dst):
        raise ConfigError(f'SRC and DST are the same file: {src!r}')


if __name__ == '__main__':
    sys.exit(main())
