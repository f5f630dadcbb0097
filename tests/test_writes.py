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


def _cache_entry_path(tmp_path):
    """Where the cache entry of the test's vocabulary goes (built once to find out)."""
    probe = _embedder(tmp_path / 'probe')
    _, path = _embed(probe)
    return os.path.basename(path)


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


def _mixed_pair_message(stem):
    return (f'classifier files {stem + ".npy"!r} and {stem + ".pt"!r} do not match: the .pt '
            'was written with embeddings of sha256 ')


