"""File I/O shared by every ovdense loader: safe unpickling and crash-proof writes."""
import contextlib
import fnmatch
import hashlib
import os
import pickle
import re
import stat
import tempfile
import time
import zipfile
from typing import Dict, Iterator, List, Optional, Tuple

import torch


class OvdenseFileError(ValueError):
    """A file given to ovdense is missing, truncated, malformed or unsafe.

    ``reason`` is what is wrong without the file's name, for callers that word their own
    message (the embedding cache); it defaults to the whole message.
    """

    def __init__(self, message: str, reason: Optional[str] = None):
        super().__init__(message)
        self.reason = reason or message


def safe_torch_load(path: str, map_location='cpu', what: str = 'checkpoint',
                    mmap: bool = False):
    """``torch.load`` with ``weights_only=True`` and errors that name the file.

    Never falls back to full unpickling: a file that needs arbitrary globals is refused.
    ``mmap=True`` maps tensors instead of reading them (zip-format files only), for callers
    that only want the small entries of a possibly large file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{what} file not found: {path!r}')
    extra = {'mmap': True} if mmap else {}  # torch < 2.1 has no mmap argument
    try:
        return torch.load(path, map_location=map_location, weights_only=True, **extra)
    except pickle.UnpicklingError as err:
        reason = _unpickler_reason(err)
        if not _is_allow_list_refusal(reason):  # garbage bytes, or not torch's pickle
            raise _unreadable(path, what, reason) from err
        raise OvdenseFileError(
            f'refusing to load {what} {path!r}: it needs objects outside the weights-only '
            f'allow-list ({reason}). Only tensors, containers and plain values are accepted.',
            reason=f'it needs objects outside the weights-only allow-list ({reason})') from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        detail = f'{type(err).__name__}: {_first_line(err)}' if str(err).strip() else (
            'empty file' if os.path.getsize(path) == 0 else type(err).__name__)
        raise _unreadable(path, what, detail) from err


def refuse_non_finite(obj, path: str, what: str = 'checkpoint') -> None:
    """Refuse a loaded file whose floating-point tensors hold NaN or inf (a diverged run or a
    damaged copy): it would load without complaint and silently predict nothing. One pass over
    the weights, once per file; the first offending entry is named."""
    bad = [(key, count) for key, count in _non_finite_counts(obj, '') if count]
    if bad:
        key, count = bad[0]
        raise OvdenseFileError(
            f'{what} {path!r} holds non-finite weights: {key!r} has {count} NaN/inf values '
            f'({len(bad)} tensor(s) in all); the run that wrote it diverged or the file is '
            'damaged')


def _non_finite_counts(obj, prefix: str) -> Iterator[Tuple[str, int]]:
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() or obj.is_complex():
            yield prefix, int(obj.numel() - torch.isfinite(obj).sum())
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _non_finite_counts(value, f'{prefix}.{key}' if prefix else str(key))
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield from _non_finite_counts(value, f'{prefix}[{index}]')


def _unreadable(path: str, what: str, detail: str) -> OvdenseFileError:
    reason = f'the file is truncated or not a torch checkpoint ({detail})'
    return OvdenseFileError(f'cannot read {what} {path!r}: {reason}', reason=reason)


def _is_allow_list_refusal(reason: str) -> bool:
    """torch's weights-only unpickler says 'Unsupported operand N' for bytes that are no
    pickle opcode it knows (a text file, random bytes, a newer pickle protocol): that file is
    unreadable, not unsafe. Every other refusal names a global, class or call it blocks."""
    return not reason.startswith(('Unsupported operand', 'invalid load key'))


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
    """torch's specific reason ('Unsupported global: GLOBAL posix.system ...', 'Trying to load
    unsupported GLOBAL ...'), without its preamble, which recommends weights_only=False."""
    text = str(err)
    if 'WeightsUnpickler error:' in text:
        text = text.split('WeightsUnpickler error:', 1)[1]
    for paragraph in text.split('\n\n'):
        paragraph = ' '.join(paragraph.split())
        if paragraph and not paragraph.startswith(('Weights only load failed',
                                                   'Check the documentation')):
            return paragraph
    return type(err).__name__


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


TEMP_SUFFIX = '.tmp'
# atomic_write's temporary files: '.<target name>.<mkstemp's random part>.tmp'
_TEMP_NAME = re.compile(r'\.(?P<target>.+)\.[^.]+' + re.escape(TEMP_SUFFIX) + r'\Z')


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'wb') -> Iterator:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    Readers (and concurrent writers) only ever see a complete file; on error nothing is left.
    The file gets the permissions a plain ``open`` would give it (0666 less the umask).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path) + '.',
                               suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, mode) as f:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600: unreadable to others
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        cause = _os_error_behind(err) if isinstance(err, RuntimeError) else None
        if cause is None:
            raise
        raise OSError(cause.errno, cause.strerror, path) from err


def _os_error_behind(err: BaseException) -> Optional[OSError]:
    """The OSError a writer's error hides: torch.save turns a failed write (a full disk) into
    'RuntimeError: unexpected pos 64 vs 0' while closing its archive."""
    seen = set()
    context = err.__context__
    while context is not None and id(context) not in seen:
        if isinstance(context, OSError):
            return context
        seen.add(id(context))
        context = context.__context__
    return None


def _umask() -> int:
    """The process umask. It can only be read by setting it: set to the strictest value
    meanwhile, so a file another thread creates in that instant is never too open."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def remove_stale_temp_files(directory: str, target_pattern: str = '*',
                            max_age: float = 3600.0) -> List[str]:
    """Delete the temporary files :func:`atomic_write` left in ``directory`` when its writer
    was killed: those whose target name matches ``target_pattern`` (fnmatch) and that were
    not modified for ``max_age`` seconds (a live writer's file is younger). Returns the
    removed paths; what cannot be listed or removed is left alone."""
    removed = []
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            match = _TEMP_NAME.match(name)
            if match and fnmatch.fnmatchcase(match['target'], target_pattern):
                path = os.path.join(directory, name)
                if _remove_if_stale(path, max_age):
                    removed.append(path)
    return removed


def _remove_if_stale(path: str, max_age: float) -> bool:
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or time.time() - info.st_mtime < max_age:
            return False
        os.unlink(path)
        return True
    except OSError:  # another process removed it first, or no permission
        return False


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
