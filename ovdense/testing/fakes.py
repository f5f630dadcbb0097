"""Stand-ins for the tests of writes and the text-embedding cache: a text tower that encodes
without a model, an embedder using it, and a file on a disk that fills up."""
import errno
import os

import torch
import torch.nn.functional as F

FAKE_VOCAB = 'cat,dog,yak'


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


def fake_embedder(cache_dir):
    """A ``FrozenTextEmbedder`` caching in ``cache_dir`` whose tower is a :class:`FakeTower`."""
    from ..text.embeddings import EmbeddingCache, FrozenTextEmbedder
    embedder = FrozenTextEmbedder({'model': 'fake'}, EmbeddingCache(str(cache_dir)))
    embedder._tower = FakeTower()
    return embedder


def embed_fake_vocabulary(embedder):
    """``embedder.embeddings`` of :data:`FAKE_VOCAB` with the single template:
    (embeddings, cache file or None)."""
    from ..text import PromptStyle, load_vocabulary
    return embedder.embeddings(load_vocabulary(FAKE_VOCAB), PromptStyle.build('single'))


class FullDisk:
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
