"""File I/O shared by every ovdense loader: safe unpickling and crash-proof writes."""
import contextlib
import hashlib
import os
import pickle
import tempfile
import zipfile
from typing import Dict, Iterator, Optional, Tuple

import torch


class OvdenseFileError(ValueError):
    """A file given to ovdense is missing, truncated, malformed or unsafe."""


def safe_torch_load(path: str, map_location='cpu', what: str = 'checkpoint'):
    """``torch.load`` with ``weights_only=True`` and errors that name the file.

    Never falls back to full unpickling: a file that needs arbitrary globals is refused.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{what} file not found: {path!r}')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise OvdenseFileError(
            f'refusing to load {what} {path!r}: it needs objects outside the weights-only '
            f'allow-list ({_unpickler_reason(err)}). '
            'Only tensors, containers and plain values are accepted.') from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise OvdenseFileError(
            f'cannot read {what} {path!r}: the file is truncated or not a torch checkpoint '
            f'({type(err).__name__}: {_first_line(err)})') from err


def check_torch_file(path: str, what: str = 'checkpoint') -> None:
    """Cheap check that ``path`` is a complete ``torch.save`` file, before anything is built
    around it: a zip archive (torch's format) must have its central directory, which is
    written last, so a truncated copy or an interrupted download is named here rather than
    failing deep inside a loader. Files in torch's legacy (pre-zip) format pass unchecked."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{what} file not found: {path!r}')
    with open(path, 'rb') as f:
        head = f.read(4)
    if head == b'PK\x03\x04':
        try:
            with zipfile.ZipFile(path) as archive:
                archive.infolist()
            return
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            reason = f'{type(err).__name__}: {_first_line(err)}'
    elif head[:1] == b'\x80':  # a pickle: torch's legacy format
        return
    else:
        reason = 'empty file' if not head else 'not a zip archive or a pickle'
    raise OvdenseFileError(f'cannot read {what} {path!r}: the file is truncated or not a torch '
                           f'checkpoint ({reason})')


def _unpickler_reason(err: BaseException) -> str:
    """torch's specific reason ('Unsupported global: GLOBAL posix.system ...'), not its
    generic preamble."""
    text = str(err)
    if 'WeightsUnpickler error:' in text:
        reason = text.split('WeightsUnpickler error:', 1)[1].strip()
        return ' '.join(reason.split('\n\n', 1)[0].split())
    return _first_line(err)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'wb') -> Iterator:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    Readers (and concurrent writers) only ever see a complete file; on error nothing is left.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path) + '.',
                               suffix='.tmp')
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_FILE_HASHES: Dict[Tuple[str, int, int], str] = {}


def sha256_of_file(path: str, chunk: int = 1 << 20, limit: Optional[int] = None) -> str:
    """Hex digest of a file; remembered per (path, size, mtime) so a large checkpoint is
    hashed once per process."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if limit is None and key in _FILE_HASHES:
        return _FILE_HASHES[key]
    digest = _hash_file(path, chunk, limit)
    if limit is None:
        _FILE_HASHES[key] = digest
    return digest


def _hash_file(path: str, chunk: int, limit: Optional[int]) -> str:
    digest = hashlib.sha256()
    read = 0
    with open(path, 'rb') as f:
        while limit is None or read < limit:
            block = f.read(chunk)
            if not block:
                break
            digest.update(block)
            read += len(block)
    return digest.hexdigest()
