"""Command-line entry points: user errors become one line and a non-zero exit code."""
import os
import sys
from typing import Callable

from .io import OvdenseFileError


class ConfigError(ValueError):
    """A config or command-line setting is wrong; the message names the key."""


def check_vocab_args(vocab, vocab_embeddings) -> None:
    """``--vocab-embeddings`` without ``--vocab`` (tools/test.py, tools/demo.py): the file's
    rows only mean something for the vocabulary they were built from, in its order."""
    if vocab_embeddings and not vocab:
        raise ConfigError(f'--vocab-embeddings {vocab_embeddings!r} needs --vocab: the '
                          'vocabulary whose classes the file holds, in its order')


def classifier_output_stem(out: str) -> str:
    """OUT without its .npy/.pt suffix, for tools writing a classifier file pair. A directory
    ('DIR/', or one that exists) or a bare suffix ('DIR/.npy') would get hidden files such as
    'DIR/.npy': refused."""
    name = os.path.basename(out)
    if not name or name in ('.npy', '.pt') or os.path.isdir(out):
        folder = out if os.path.isdir(out) else os.path.dirname(out)
        example = os.path.join(folder, 'classifier.npy')
        raise ConfigError(f'--out {out!r} names a directory, not a file: give a path such as '
                          f'{example!r} (OUT.npy and OUT.pt are written)')
    return os.path.splitext(out)[0] if out.endswith(('.npy', '.pt')) else out


def user_errors() -> tuple:
    from ..text.vocabulary import VocabularyError
    return (FileNotFoundError, OvdenseFileError, VocabularyError, ConfigError)


def run_cli(main: Callable[[], int]) -> int:
    """Run ``main``; errors in what the user gave print one line, bugs keep the traceback.

    Under torchrun, the error is also recorded for torchrun's failure summary, whose "root
    cause" then names the failing rank's exception instead of only its exit code.
    """
    if os.environ.get('TORCHELASTIC_ERROR_FILE'):
        from torch.distributed.elastic.multiprocessing.errors import record
        main = record(main)
    try:
        return main()
    except user_errors() as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
