"""Class embeddings from a text tower: prompt ensembles, and the on-disk cache."""
import hashlib
import json
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.io import OvdenseFileError, atomic_write, safe_torch_load
from .prompts import PromptStyle
from .vocabulary import Vocabulary

CACHE_FORMAT = 1


def default_cache_dir() -> str:
    return os.environ.get('OVDENSE_CACHE_DIR',
                          osp.join(osp.expanduser('~'), '.cache', 'ovdense', 'text_embeddings'))


def ensemble_prompts(vocabulary: Vocabulary, style: PromptStyle
                     ) -> Tuple[List[str], List[List[int]]]:
    """Unique prompts to encode, and for each class the indices of its prompts.

    Identical prompts (shared synonyms, repeated templates) are encoded once.
    """
    unique: Dict[str, int] = {}
    per_class = []
    for entry in vocabulary:
        per_class.append([unique.setdefault(p, len(unique)) for p in style.class_prompts(entry)])
    return list(unique), per_class


class PromptTokens:
    """Every prompt of a vocabulary's ensemble, tokenised once.

    Joint training encodes one random prompt per class on every step; sampling token rows
    from here replaces formatting and tokenising K prompts per step (open_clip's HF
    tokenizer also cleans every prompt with ftfy on every call).
    """

    def __init__(self, tower, vocabulary: Vocabulary, style: PromptStyle):
        self.vocabulary, self.style = vocabulary, style
        prompts, self.per_class = ensemble_prompts(vocabulary, style)
        self.tokens = tower.tokenize(prompts)

    def built_for(self, vocabulary: Vocabulary, style: PromptStyle) -> bool:
        return self.vocabulary is vocabulary and self.style is style

    def sample(self, classes: Optional[Sequence[int]] = None, rng=None) -> torch.Tensor:
        """(len(classes), context) token rows (default: every class): one prompt per class,
        drawn exactly as :meth:`PromptStyle.sample_prompt` draws it (same random calls)."""
        num_templates = len(self.style.templates)
        classes = range(len(self.per_class)) if classes is None else classes
        rows = [self.per_class[c][self.style.sample_prompt_index(
            len(self.per_class[c]) // num_templates, rng)] for c in classes]
        return self.tokens[rows]


def build_class_embeddings(tower, vocabulary: Vocabulary, style: PromptStyle,
                           batch_size: int = 256, progress: bool = False,
                           prompt_tokens: Optional[PromptTokens] = None) -> torch.Tensor:
    """(K, D) unit-norm class embeddings: per prompt normalise, mean per class, re-normalise
    (the convention of open_clip's zero-shot classifier and mmseg's CLIPTextEncoder).
    ``prompt_tokens`` (made for this vocabulary and style) skips the tokenisation."""
    prompt_tokens = prompt_tokens or PromptTokens(tower, vocabulary, style)
    encoded = tower.encode_tokens_eval(prompt_tokens.tokens, batch_size, progress)
    return average_per_class(encoded, prompt_tokens.per_class)


def average_per_class(encoded: torch.Tensor, per_class: List[List[int]]) -> torch.Tensor:
    """(K, D): the normalised sum of each class's prompt embeddings (rows of ``encoded``)."""
    index = torch.tensor([i for ids in per_class for i in ids], device=encoded.device)
    owner = torch.repeat_interleave(torch.arange(len(per_class), device=encoded.device),
                                    torch.tensor([len(ids) for ids in per_class],
                                                 device=encoded.device))
    sums = torch.zeros(len(per_class), encoded.shape[1], device=encoded.device,
                       dtype=encoded.dtype).index_add_(0, owner, encoded[index])
    return F.normalize(sums, dim=-1)


def cache_key(tower_fingerprint: str, vocabulary: Vocabulary, style: PromptStyle) -> str:
    payload = [CACHE_FORMAT, tower_fingerprint, vocabulary.fingerprint(), style.fingerprint()]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


class EmbeddingCache:
    """Files ``<dir>/<key>.pt`` holding class embeddings and what they were made from.

    Writes are atomic, so concurrent builders end with one valid file; a corrupt or
    mismatching file is reported, ignored and rebuilt.
    """

    def __init__(self, directory: Optional[str] = None):
        self.directory = directory or default_cache_dir()

    def path(self, key: str) -> str:
        return osp.join(self.directory, key[:40] + '.pt')

    def load(self, key: str, num_classes: int) -> Optional[torch.Tensor]:
        path = self.path(key)
        if not osp.exists(path):
            return None
        try:
            record = safe_torch_load(path, what='text embedding cache')
            embeddings = record['embeddings']
            if record.get('key') != key:
                raise OvdenseFileError(f'key {record.get("key")!r:.20} does not match')
            if embeddings.ndim != 2 or embeddings.shape[0] != num_classes:
                raise OvdenseFileError(f'shape {tuple(embeddings.shape)} is not '
                                       f'({num_classes}, D)')
            if not torch.isfinite(embeddings).all():
                raise OvdenseFileError('non-finite values')
        except (OvdenseFileError, KeyError, TypeError, AttributeError) as err:
            warnings.warn(f'text embedding cache {path!r} is corrupt ({err}); rebuilding it')
            return None
        return embeddings.float()

    def save(self, key: str, embeddings: torch.Tensor, metadata: Dict) -> str:
        path = self.path(key)
        record = dict(metadata, key=key, embeddings=embeddings.detach().cpu().float())
        with atomic_write(path) as f:
            torch.save(record, f)
        return path


def save_classifier_file(path: str, embeddings: torch.Tensor, metadata: Dict) -> None:
    """``.npy`` (C x D float32, unit rows: Detic's ZeroShotClassifier format) or ``.pt``
    (embeddings plus class names, templates, model id, dim)."""
    array = embeddings.detach().cpu().float()
    if path.endswith('.npy'):
        with atomic_write(path) as f:
            np.save(f, array.numpy())
    else:
        with atomic_write(path) as f:
            torch.save(dict(metadata, embeddings=array, dim=int(array.shape[1])), f)


def load_classifier_file(path: str, num_classes: int, dim: Optional[int] = None
                         ) -> Tuple[torch.Tensor, Dict]:
    """Read a file written by :func:`save_classifier_file` (or any C x D ``.npy``) and check
    its shape against the vocabulary size and the expected embedding dimension."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'classifier embedding file not found: {path!r}')
    if path.endswith('.npy'):
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise OvdenseFileError(f'cannot read classifier file {path!r}: {err}') from err
        embeddings, metadata = torch.from_numpy(np.asarray(array, dtype=np.float32)), {}
    else:
        record = safe_torch_load(path, what='classifier embedding file')
        if not isinstance(record, dict) or 'embeddings' not in record:
            raise OvdenseFileError(f"classifier file {path!r} has no 'embeddings' entry")
        embeddings = record['embeddings'].float()
        metadata = {k: v for k, v in record.items() if k != 'embeddings'}
    if embeddings.ndim != 2:
        raise OvdenseFileError(f'classifier file {path!r}: expected a (classes, dim) matrix, '
                               f'got shape {tuple(embeddings.shape)}')
    if embeddings.shape[0] != num_classes:
        raise OvdenseFileError(
            f'classifier file {path!r} has {embeddings.shape[0]} class embeddings but the '
            f'vocabulary has {num_classes} classes')
    if dim is not None and embeddings.shape[1] != dim:
        raise OvdenseFileError(f'classifier file {path!r} has embedding dim '
                               f'{embeddings.shape[1]}, expected {dim}')
    return F.normalize(embeddings, dim=-1), metadata


class FrozenTextEmbedder:
    """Class embeddings from a frozen tower, through the disk cache.

    The tower is built only on a cache miss (a tower loaded from a file is identified by the
    file's hash), so test-time inference with a valid cache never runs it.
    """

    def __init__(self, tower_cfg: Dict, cache: Optional[EmbeddingCache] = None):
        if not tower_cfg.get('model'):
            raise ValueError("computing class embeddings needs text_tower=dict(model=...)")
        self.tower_cfg = dict(tower_cfg)
        self.cache = cache or EmbeddingCache()
        self._tower = None

    @property
    def tower(self):
        from .towers import TextTower
        if self._tower is None:
            self._tower = TextTower(**self.tower_cfg).requires_grad_(False).eval()
        return self._tower

    @property
    def tower_built(self) -> bool:
        return self._tower is not None

    def fingerprint(self) -> str:
        """The same key whether or not the tower is built (a frozen tower loaded from a file
        is identified by the file), so every process finds what another one cached."""
        from .towers import checkpoint_fingerprint
        cfg = self.tower_cfg
        if cfg.get('checkpoint'):
            return checkpoint_fingerprint(cfg['model'], cfg['checkpoint'], cfg.get('hf_dir'),
                                          cfg.get('context_length'))
        return self.tower.fingerprint()

    def embeddings(self, vocabulary: Vocabulary, style: PromptStyle, device='cpu',
                   batch_size: int = 256, progress: bool = False,
                   use_cache: bool = True) -> Tuple[torch.Tensor, Optional[str]]:
        """(K, D) embeddings and the cache file they came from or went to (None: no cache)."""
        key = cache_key(self.fingerprint(), vocabulary, style) if use_cache else None
        if key is not None:
            cached = self.cache.load(key, len(vocabulary))
            if cached is not None:
                return cached, self.cache.path(key)
        tower = self.tower.to(device)
        embeddings = build_class_embeddings(tower, vocabulary, style, batch_size, progress)
        if key is None:
            return embeddings, None
        return embeddings, self.cache.save(key, embeddings,
                                           describe_embeddings(vocabulary, style, tower))


def describe_embeddings(vocabulary: Vocabulary, style: PromptStyle, tower=None) -> Dict:
    """Metadata stored beside embeddings: what they were made from."""
    return {'class_names': list(vocabulary.names), 'templates': list(style.templates),
            'use_descriptions': style.use_descriptions,
            'model': tower.describe() if tower is not None else None,
            'dim': int(tower.embed_dim) if tower is not None else None}
