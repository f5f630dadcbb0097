"""Command-line entry points: user errors become one line and a non-zero exit code."""
import sys
from typing import Callable

from .io import OvdenseFileError


class ConfigError(ValueError):
    """A config or command-line setting is wrong; the message names the key."""


def user_errors() -> tuple:
    from ..text.vocabulary import VocabularyError
    return (FileNotFoundError, OvdenseFileError, VocabularyError, ConfigError)


def run_cli(main: Callable[[], int]) -> int:
    """Run ``main``; errors in what the user gave print one line, bugs keep the traceback."""
    try:
        return main()
    except user_errors() as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
