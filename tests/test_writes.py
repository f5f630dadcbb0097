"""Writes that must not fail a run or leave inconsistent files: the text-embedding cache on a
bad or full disk, file permissions of atomic writes, and the classifier file pair."""
import errno
import hashlib
import os
import stat
import time
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ovdense.text import PromptStyle, load_classifier_file, load_vocabulary, save_classifier_file
from ovdense.text.embeddings import EmbeddingCache, FrozenTextEmbedder
from ovdense.utils import OvdenseFileError, safe_torch_load
from ovdense.utils import io as ovio
from ovdense.utils.io import atomic_write

VOCAB = 'cat,dog,yak'


class FakeTower:
    """Stands in for a text tower: deterministic embeddings, counts its encodes."""
    embed_dim = 8

    def __init__(self):
        self.encodes = 0

    def tokenize(self, prompts, report_cuts=True):
        return torch.arange(len(prompts))

    def cut_texts(self, texts, tokens):
        return []  # nothing is ever cut

    def encode_tokens_eval(self, tokens, batch_size=256, progress=False):
        self.encodes += 1
        return F.normalize(torch.randn(len(tokens), self.embed_dim,
                                       generator=torch.Generator().manual_seed(0)), dim=-1)

    def fingerprint(self):
        return 'fake-tower'

    def describe(self):
        return 'fake tower'

    def to(self, device):
        return self


def _embedder(cache_dir) -> FrozenTextEmbedder:
    embedder = FrozenTextEmbedder({'model': 'fake'}, EmbeddingCache(str(cache_dir)))
    embedder._tower = FakeTower()
    return embedder


def _embed(embedder):
    return embedder.embeddings(load_vocabulary(VOCAB), PromptStyle.build('single'))


def _expected():
    """The embeddings built without any cache."""
    return _embedder('/unused').embeddings(load_vocabulary(VOCAB), PromptStyle.build('single'),
                                           use_cache=False)[0]


def _messages(caught):
    return [str(w.message) for w in caught]


def _run_unwritable(cache_dir, reason):
    """Two builds into an unwritable cache: both return the embeddings, one warning names
    the directory and the reason, nothing is left in the directory."""
    expected = _expected()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        first, first_path = _embed(_embedder(cache_dir))
        second, second_path = _embed(_embedder(cache_dir))
    torch.testing.assert_close(first, expected)
    torch.testing.assert_close(second, expected)
    assert first_path is None and second_path is None
    messages = _messages(caught)
    assert messages == [f'text embedding cache {str(cache_dir)!r} cannot be written ({reason}); '
                        'using the computed embeddings without caching them'], messages
    assert '\n' not in messages[0]


# ------------------------------------------------------------------ case 1: the cache
def test_read_only_cache_directory_warns_once_and_returns_embeddings(tmp_path, monkeypatch):
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    cache_dir.chmod(0o555)
    try:
        if os.access(cache_dir, os.W_OK):  # root ignores the mode: fail as the kernel would
            def denied(*args, **kwargs):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            monkeypatch.setattr(ovio.tempfile, 'mkstemp', denied)
        _run_unwritable(cache_dir, 'Permission denied')
        assert os.listdir(cache_dir) == []
    finally:
        cache_dir.chmod(0o755)


def test_file_in_place_of_the_cache_directory_warns_once(tmp_path):
    cache_dir = tmp_path / 'cache'
    cache_dir.write_bytes(b'not a directory')
    _run_unwritable(cache_dir, 'it is a file, not a directory')
    assert cache_dir.read_bytes() == b'not a directory'


class _FullDisk:
    """A file on a disk that fills up after ``room`` bytes: write raises ENOSPC."""

    def __init__(self, file, room=64):
        self._file, self._room = file, room

    def write(self, data):
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


def test_full_disk_warns_once_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    real_fdopen = os.fdopen
    monkeypatch.setattr(ovio.os, 'fdopen', lambda *a, **k: _FullDisk(real_fdopen(*a, **k)))
    _run_unwritable(cache_dir, os.strerror(errno.ENOSPC))
    assert os.listdir(cache_dir) == []


def _cache_entry_path(tmp_path):
    """Where the cache entry of the test's vocabulary goes (built once to find out)."""
    probe = _embedder(tmp_path / 'probe')
    _, path = _embed(probe)
    return os.path.basename(path)


def test_cache_entry_holding_a_bare_tensor_is_rebuilt(tmp_path):
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    entry = cache_dir / _cache_entry_path(tmp_path)
    torch.save(torch.zeros(3, 8), entry)
    embedder = _embedder(cache_dir)
    with pytest.warns(UserWarning) as caught:
        embeddings, path = _embed(embedder)
    assert _messages(caught) == [
        f"text embedding cache entry {str(entry)!r} is corrupt (it holds a Tensor, not a cache "
        "entry (a dict with 'key' and an 'embeddings' tensor)); rebuilding it"]
    torch.testing.assert_close(embeddings, _expected())
    assert path == str(entry) and embedder.tower.encodes == 1
    again = _embedder(cache_dir)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        torch.testing.assert_close(_embed(again)[0], embeddings)  # the rebuilt entry is valid
    assert again.tower.encodes == 0


def test_cache_entry_that_is_a_directory_is_rebuilt_and_not_cached(tmp_path):
    cache_dir = tmp_path / 'cache'
    entry = cache_dir / _cache_entry_path(tmp_path)
    entry.mkdir(parents=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        embeddings, path = _embed(_embedder(cache_dir))
    torch.testing.assert_close(embeddings, _expected())
    assert path is None and entry.is_dir() and os.listdir(entry) == []
    assert _messages(caught) == [
        f'text embedding cache entry {str(entry)!r} is corrupt (it is a directory, not a cache '
        'file); rebuilding it',
        f'text embedding cache {str(cache_dir)!r} cannot be written ({entry.name!r} in it is a '
        'directory); using the computed embeddings without caching them']
    assert sorted(os.listdir(cache_dir)) == [entry.name]  # no temporary file left


@pytest.mark.parametrize('content', [b'not a torch file', b'\x80\x02garbage', b''],
                         ids=['text', 'bad-pickle', 'empty'])
def test_garbage_cache_entry_is_called_unreadable_not_unsafe(tmp_path, content):
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    entry = cache_dir / _cache_entry_path(tmp_path)
    entry.write_bytes(content)
    with pytest.warns(UserWarning) as caught:
        embeddings, _ = _embed(_embedder(cache_dir))
    torch.testing.assert_close(embeddings, _expected())
    (message,) = _messages(caught)
    assert message.startswith(f'text embedding cache entry {str(entry)!r} is corrupt (the file '
                              'is truncated or not a torch checkpoint (')
    assert message.endswith('); rebuilding it') and '\n' not in message
    assert 'allow-list' not in message and 'weights_only' not in message


def test_load_errors_never_recommend_weights_only_false(tmp_path):
    """torch's own message says 'Re-running torch.load with weights_only set to False will
    likely succeed': for a crafted file that is the one thing not to do."""
    evil = tmp_path / 'evil.pt'
    torch.save({'call': os.system}, evil)
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'not a torch file')
    with pytest.raises(OvdenseFileError) as unsafe:
        safe_torch_load(str(evil))
    with pytest.raises(OvdenseFileError) as unreadable:
        safe_torch_load(str(garbage))
    assert 'allow-list (Trying to load unsupported GLOBAL posix.system' in str(unsafe.value) \
        or 'allow-list (Unsupported global' in str(unsafe.value)
    assert str(unreadable.value) == (
        f"cannot read checkpoint {str(garbage)!r}: the file is truncated or not a torch "
        'checkpoint (Unsupported operand 110)')
    for err in (unsafe.value, unreadable.value):
        assert 'weights_only' not in str(err) and 'False' not in str(err)


def test_cache_removes_its_own_stale_temporary_files(tmp_path):
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    name = _cache_entry_path(tmp_path)
    stale = cache_dir / f'.{name}.k2j3h4x_.tmp'  # left by a killed writer
    fresh = cache_dir / f'.{"0" * 40}.pt.abcd1234.tmp'  # a writer still at work
    foreign = cache_dir / '.notes.txt.abcd1234.tmp'  # not the cache's
    for path in (stale, fresh, foreign):
        path.write_bytes(b'partial')
    hours_ago = time.time() - 2 * 3600
    for path in (stale, foreign):
        os.utime(path, (hours_ago, hours_ago))
    _embed(_embedder(cache_dir))
    assert sorted(os.listdir(cache_dir)) == sorted([name, fresh.name, foreign.name])
    from ovdense.utils.io import remove_stale_temp_files
    assert remove_stale_temp_files(str(cache_dir), '*.txt', max_age=3600) == [str(foreign)]


# ------------------------------------------------------------------ case 2: permissions
@pytest.fixture
def restore_umask():
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.mark.parametrize('mask, mode', [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)],
                         ids=['umask022', 'umask077', 'umask002'])
def test_atomic_writes_respect_the_umask(tmp_path, restore_umask, mask, mode):
    """mkstemp creates 0600 files: a shared cache or a classifier file handed to a colleague
    would be unreadable to them. Written files get 0666 less the umask, like open()."""
    os.umask(mask)
    with atomic_write(str(tmp_path / 'plain.bin')) as f:
        f.write(b'data')
    embeddings = F.normalize(torch.randn(3, 8), dim=-1)
    for suffix in ('.npy', '.pt'):
        save_classifier_file(str(tmp_path / f'classifier{suffix}'), embeddings, {})
    _, cache_path = _embed(_embedder(tmp_path / 'cache'))
    for path in ('plain.bin', 'classifier.npy', 'classifier.pt', cache_path):
        assert stat.S_IMODE(os.stat(tmp_path / path).st_mode) == mode, path


def test_atomic_write_keeps_its_temporary_file_recognisable(tmp_path):
    seen = []
    with atomic_write(str(tmp_path / 'out.pt')) as f:
        seen.extend(os.listdir(tmp_path))
        f.write(b'x')
    (tmp,) = seen
    assert tmp.startswith('.out.pt.') and tmp.endswith('.tmp')
    assert os.listdir(tmp_path) == ['out.pt']


# ------------------------------------------------------------------ case 3: the file pair
def _rows(seed, rows=3, dim=8):
    return F.normalize(torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed)),
                       dim=-1)


def _save_pair(stem, embeddings):
    for suffix in ('.npy', '.pt'):
        save_classifier_file(f'{stem}{suffix}', embeddings, {'class_names': VOCAB.split(',')})


def test_classifier_pair_records_the_npy_digest(tmp_path):
    stem = str(tmp_path / 'classifier')
    embeddings = _rows(0)
    _save_pair(stem, embeddings)
    digest = hashlib.sha256(np.load(stem + '.npy').tobytes()).hexdigest()
    assert safe_torch_load(stem + '.pt')['embeddings_sha256'] == digest
    for suffix in ('.npy', '.pt'):
        loaded, _ = load_classifier_file(stem + suffix, 3, 8, VOCAB.split(','))
        torch.testing.assert_close(loaded, embeddings)


def _mixed_pair_message(stem):
    return (f'classifier files {stem + ".npy"!r} and {stem + ".pt"!r} do not match: the .pt '
            'was written with embeddings of sha256 ')


def test_kill_between_the_two_writes_leaves_a_pair_that_is_refused(tmp_path):
    """The build tool writes X.npy, then X.pt: killed in between, a new .npy sits beside the
    old .pt."""
    stem = str(tmp_path / 'classifier')
    _save_pair(stem, _rows(0))
    save_classifier_file(stem + '.npy', _rows(1), {})  # ... and the process dies here
    for suffix in ('.npy', '.pt'):
        with pytest.raises(OvdenseFileError) as err:
            load_classifier_file(stem + suffix, 3, 8)
        assert str(err.value).startswith(_mixed_pair_message(stem))
        assert 'rebuild both with tools/build_text_classifier.py' in str(err.value)
        assert '\n' not in str(err.value)


def test_full_disk_on_the_second_write_leaves_a_pair_that_is_refused(tmp_path, monkeypatch):
    stem = str(tmp_path / 'classifier')
    _save_pair(stem, _rows(0))
    real_fdopen = os.fdopen
    save_classifier_file(stem + '.npy', _rows(1), {})
    monkeypatch.setattr(ovio.os, 'fdopen', lambda *a, **k: _FullDisk(real_fdopen(*a, **k)))
    with pytest.raises(OSError) as err:  # torch.save's 'unexpected pos' names no cause
        save_classifier_file(stem + '.pt', _rows(1), {})
    assert str(err.value) == f'[Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}: ' \
        f'{stem + ".pt"!r}'  # the target's name, not the temporary file's
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ['classifier.npy', 'classifier.pt']  # no .tmp
    with pytest.raises(OvdenseFileError, match='do not match'):
        load_classifier_file(stem + '.npy', 3, 8)


def test_pair_written_before_digests_still_loads(tmp_path):
    """A .pt without 'embeddings_sha256' (older ovdense) is not checked against the .npy."""
    stem = str(tmp_path / 'classifier')
    np.save(stem + '.npy', _rows(1).numpy())
    torch.save({'embeddings': _rows(0), 'class_names': VOCAB.split(','), 'dim': 8},
               stem + '.pt')
    torch.testing.assert_close(load_classifier_file(stem + '.npy', 3, 8)[0], _rows(1))
    torch.testing.assert_close(load_classifier_file(stem + '.pt', 3, 8)[0], _rows(0))


def test_unrelated_sibling_checkpoint_is_not_a_pair(tmp_path):
    """X.pt that is no classifier file (a tower checkpoint sharing the stem) is ignored."""
    stem = str(tmp_path / 'clip')
    np.save(stem + '.npy', _rows(1).numpy())
    torch.save({'state_dict': {'w': torch.zeros(2)}}, stem + '.pt')
    torch.testing.assert_close(load_classifier_file(stem + '.npy', 3, 8)[0], _rows(1))
