"""Command-line entry points: user errors become one line and a non-zero exit code."""
import sys
from typing import Callable

USER_ERRORS = (FileNotFoundError, ValueError, KeyError)


def run_cli(main: Callable[[], int]) -> int:
    try:
        return main()
    except USER_ERRORS as err:  # includes OvdenseFileError / VocabularyError (ValueErrors)
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'error: {message}', file=sys.stderr)
        return 2
