"""Class embeddings from a text tower: prompt ensembles, and the on-disk cache."""
import hashlib
import json
import os
import os.path as osp
import warnings
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.io import (OvdenseFileError, atomic_write, remove_stale_temp_files,
                        safe_torch_load)
from .prompts import PromptStyle, check_class_tokens, token_row_digests
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
        check_class_tokens(tower, vocabulary, prompts, self.per_class,
                           token_row_digests(self.tokens))

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


# Prompts tokenised and encoded at a time when a whole vocabulary's ensemble is built: memory
# stays one slice of token rows plus the K x D sums (20,000 classes x 80 templates is 1.6M
# prompts: 1 GB of token rows at once).
STREAM_PROMPTS = 16384


def build_class_embeddings(tower, vocabulary: Vocabulary, style: PromptStyle,
                           batch_size: int = 256, progress: bool = False,
                           prompt_tokens: Optional[PromptTokens] = None) -> torch.Tensor:
    """(K, D) unit-norm class embeddings: per prompt normalise, mean per class, re-normalise
    (the convention of open_clip's zero-shot classifier and mmseg's CLIPTextEncoder).

    The prompts are encoded STREAM_PROMPTS at a time under one progress bar (``progress``)
    and summed per class as they come. ``prompt_tokens`` (made, and checked, for this
    vocabulary and style) skips the tokenisation; without it each slice is tokenised too,
    and long prompts and classes that tokenise alike are reported once at the end.
    """
    if prompt_tokens is None:
        prompts, per_class = ensemble_prompts(vocabulary, style)
        slices = _tokenised_slices(tower, vocabulary, prompts, per_class)
        total = len(prompts)
    else:
        per_class, tokens = prompt_tokens.per_class, prompt_tokens.tokens
        total = len(tokens)
        slices = ((start, tokens[start:start + STREAM_PROMPTS])
                  for start in range(0, total, STREAM_PROMPTS))
    return _sum_per_class(tower, slices, per_class, total, batch_size, progress)


def _tokenised_slices(tower, vocabulary: Vocabulary, prompts: List[str],
                      per_class: List[List[int]]) -> Iterator[Tuple[int, torch.Tensor]]:
    """(start, token rows) of each slice of ``prompts``; once all are out, the checks of
    :class:`PromptTokens` over the whole vocabulary, from what each slice left behind."""
    digests, cut = [], []
    for start in range(0, len(prompts), STREAM_PROMPTS):
        texts = prompts[start:start + STREAM_PROMPTS]
        tokens = tower.tokenize(texts, report_cuts=False)
        cut += [start + i for i in tower.cut_texts(texts, tokens)]
        digests.append(token_row_digests(tokens))
        yield start, tokens
    if cut:
        tower.warn_cut(len(cut), len(prompts), prompts[cut[0]])
    check_class_tokens(tower, vocabulary, prompts, per_class, torch.cat(digests))


def _sum_per_class(tower, slices: Iterable[Tuple[int, torch.Tensor]],
                   per_class: List[List[int]], total: int, batch_size: int,
                   progress: bool) -> torch.Tensor:
    """Encode each slice of token rows and add every prompt's embedding to the sum of each
    class that has it (a prompt two classes share counts for both); (K, D) normalised sums."""
    prompt_of, class_of = _pairs_by_prompt(per_class)
    sums = None
    from tqdm import tqdm
    with tqdm(total=total, desc='encoding prompts', unit='prompt', disable=not progress) as bar:
        for start, tokens in slices:
            encoded = tower.encode_tokens_eval(tokens, batch_size)
            lo, hi = torch.searchsorted(prompt_of, torch.tensor([start, start + len(tokens)]))
            if sums is None:
                sums = encoded.new_zeros(len(per_class), encoded.shape[1])
            sums.index_add_(0, class_of[lo:hi].to(sums.device),
                            encoded[(prompt_of[lo:hi] - start).to(encoded.device)])
            bar.update(len(tokens))
    return F.normalize(sums, dim=-1)


def _pairs_by_prompt(per_class: List[List[int]]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(prompt index, class index) of every (class, prompt) pair, ordered by prompt (a
    class's prompts stay in their order), so each slice of prompts is one range of pairs."""
    prompt_of = torch.tensor([i for ids in per_class for i in ids], dtype=torch.long)
    class_of = torch.repeat_interleave(torch.arange(len(per_class)),
                                       torch.tensor([len(ids) for ids in per_class]))
    order = torch.sort(prompt_of, stable=True).indices
    return prompt_of[order], class_of[order]


def cache_key(tower_fingerprint: str, vocabulary: Vocabulary, style: PromptStyle) -> str:
    payload = [CACHE_FORMAT, tower_fingerprint, vocabulary.fingerprint(), style.fingerprint()]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


# cache directories already reported as unwritable: said once per process, not per entry
_UNWRITABLE_WARNED: Set[str] = set()


class EmbeddingCache:
    """Files ``<dir>/<key>.pt`` holding class embeddings and what they were made from.

    Writes are atomic, so concurrent builders end with one valid file; a corrupt or
    mismatching file is reported, ignored and rebuilt. The cache only saves time: a directory
    that cannot be written (read-only, full, a file in its place) is reported once and the
    computed embeddings are used uncached.
    """

    ENTRY_PATTERN = '[0-9a-f]' * 40 + '.pt'  # the names path() gives
    STALE_TEMP_AGE = 3600.0  # seconds: older temporary files are left by killed writers

    def __init__(self, directory: Optional[str] = None):
        self.directory = directory or default_cache_dir()

    def path(self, key: str) -> str:
        return osp.join(self.directory, key[:40] + '.pt')

    def load(self, key: str, num_classes: int) -> Optional[torch.Tensor]:
        path = self.path(key)
        if not osp.lexists(path):
            return None
        try:
            return _read_cache_entry(path, key, num_classes)
        except OvdenseFileError as err:
            warnings.warn(f'text embedding cache entry {path!r} is corrupt ({err.reason}); '
                          'rebuilding it')
            return None

    def save(self, key: str, embeddings: torch.Tensor, metadata: Dict) -> Optional[str]:
        """The entry's path, or None (warned once per directory) when it cannot be written."""
        path = self.path(key)
        record = dict(metadata, key=key, embeddings=embeddings.detach().cpu().float())
        try:
            with atomic_write(path) as f:
                torch.save(record, f)
        except OSError as err:
            self._warn_unwritable(path, err)
            return None
        remove_stale_temp_files(self.directory, self.ENTRY_PATTERN, self.STALE_TEMP_AGE)
        return path

    def _warn_unwritable(self, path: str, err: OSError) -> None:
        directory = osp.abspath(self.directory)
        if directory in _UNWRITABLE_WARNED:
            return
        _UNWRITABLE_WARNED.add(directory)
        warnings.warn(f'text embedding cache {self.directory!r} cannot be written '
                      f'({_write_failure(self.directory, path, err)}); using the computed '
                      'embeddings without caching them')


def _read_cache_entry(path: str, key: str, num_classes: int) -> torch.Tensor:
    """The (num_classes, D) embeddings of a cache entry; OvdenseFileError says what is wrong."""
    if not osp.isfile(path):
        kind = 'a directory' if osp.isdir(path) else 'a broken link or special file'
        raise OvdenseFileError(path, reason=f'it is {kind}, not a cache file')
    record = safe_torch_load(path, what='text embedding cache entry')
    if not isinstance(record, dict) or not isinstance(record.get('embeddings'), torch.Tensor):
        kind = type(record).__name__
        raise OvdenseFileError(path, reason=f'it holds a {kind}, not a cache entry (a dict '
                                            "with 'key' and an 'embeddings' tensor)")
    embeddings = record['embeddings']
    if record.get('key') != key:
        raise OvdenseFileError(path, reason=f'key {record.get("key")!r:.20} does not match')
    if embeddings.ndim != 2 or embeddings.shape[0] != num_classes:
        raise OvdenseFileError(path, reason=f'shape {tuple(embeddings.shape)} is not '
                                            f'({num_classes}, D)')
    if not torch.isfinite(embeddings).all():
        raise OvdenseFileError(path, reason='non-finite values')
    return embeddings.float()


def _write_failure(directory: str, path: str, err: OSError) -> str:
    """Why a cache entry could not be written, in words (not the temporary file's name)."""
    if osp.lexists(directory) and not osp.isdir(directory):
        return 'it is a file, not a directory'
    if osp.isdir(path):
        return f'{osp.basename(path)!r} in it is a directory'
    return err.strerror or f'{type(err).__name__}: {err}'


PAIR_DIGEST = 'embeddings_sha256'  # the .pt's record of the .npy written with it


def save_classifier_file(path: str, embeddings: torch.Tensor, metadata: Dict) -> None:
    """``.npy`` (C x D float32, unit rows: Detic's ZeroShotClassifier format) or ``.pt``
    (embeddings plus class names, templates, model id, dim, and ``embeddings_sha256``: the
    sha256 of the ``.npy``'s data bytes, ``np.load(npy).tobytes()``, so that a pair written
    for one stem can be checked to be one build, see :func:`load_classifier_file`)."""
    array = embeddings.detach().cpu().float()
    if path.endswith('.npy'):
        with atomic_write(path) as f:
            np.save(f, array.numpy())
    else:
        record = dict(metadata, embeddings=array, dim=int(array.shape[1]))
        record[PAIR_DIGEST] = embeddings_digest(array)
        with atomic_write(path) as f:
            torch.save(record, f)


def save_classifier_pair(stem: str, embeddings: torch.Tensor, metadata: Dict) -> None:
    """``STEM.npy`` and ``STEM.pt`` (:func:`save_classifier_file`): what the tools write."""
    for path in (stem + '.npy', stem + '.pt'):
        save_classifier_file(path, embeddings, metadata)


def embeddings_digest(embeddings: torch.Tensor) -> str:
    """sha256 of the bytes a ``.npy`` of these embeddings holds (float32, little-endian, C)."""
    array = np.ascontiguousarray(embeddings.detach().cpu().float().numpy(), dtype='<f4')
    return hashlib.sha256(array.tobytes()).hexdigest()


def load_classifier_file(path: str, num_classes: int, dim: Optional[int] = None,
                         names: Optional[Sequence[str]] = None) -> Tuple[torch.Tensor, Dict]:
    """Read a file written by :func:`save_classifier_file` (or any C x D ``.npy``) and check
    its shape against the vocabulary size and the expected embedding dimension, the class
    names a ``.pt`` stores against ``names`` (the vocabulary's, in order), that every row
    normalises to a unit vector, and that ``X.npy`` and ``X.pt`` are one build when both
    exist and the ``.pt`` records a digest. Runs once per file load, never per image."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'classifier embedding file not found: {path!r}')
    if path.endswith('.npy'):
        embeddings, metadata = _read_npy(path), {}
    else:
        embeddings, metadata = _read_pt(path)
    _check_pair(path, embeddings, metadata)
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
    stored = _stored_names(path, metadata, num_classes)
    if names is not None and stored is not None:
        _check_names(path, stored, names)
    return _unit_rows(path, embeddings, stored or names), metadata


def _read_npy(path: str) -> torch.Tensor:
    try:
        array = np.load(path, allow_pickle=False)
    except EOFError as err:  # numpy's message for a zero-byte file: 'No data left in file'
        raise OvdenseFileError(f'cannot read classifier file {path!r}: the file is empty or '
                               'truncated') from err
    except ValueError as err:
        raise OvdenseFileError(f'cannot read classifier file {path!r}: {err}') from err
    if not isinstance(array, np.ndarray) or array.dtype.kind not in 'fiu':
        raise OvdenseFileError(f'classifier file {path!r}: expected a (classes, dim) float '
                               f'array, got {getattr(array, "dtype", type(array).__name__)}')
    return torch.from_numpy(np.asarray(array, dtype=np.float32))


def _read_pt(path: str) -> Tuple[torch.Tensor, Dict]:
    record = safe_torch_load(path, what='classifier embedding file')
    if not isinstance(record, dict) or 'embeddings' not in record:
        raise OvdenseFileError(f"classifier file {path!r} has no 'embeddings' entry")
    embeddings = record['embeddings']
    if not isinstance(embeddings, torch.Tensor) or not embeddings.is_floating_point():
        kind = (f'a {embeddings.dtype} tensor' if isinstance(embeddings, torch.Tensor)
                else f'a {type(embeddings).__name__}')
        raise OvdenseFileError(f"classifier file {path!r}: 'embeddings' is {kind}, expected a "
                               'float tensor of shape (classes, dim)')
    return embeddings.float(), {k: v for k, v in record.items() if k != 'embeddings'}


def _check_pair(path: str, embeddings: torch.Tensor, metadata: Dict) -> None:
    """``X.npy`` and ``X.pt`` are written one after the other: a kill or a full disk between
    the two leaves a new ``.npy`` beside an old ``.pt``. The ``.pt``'s digest tells. A ``.pt``
    without one (written before digests, or not a classifier file) is not checked."""
    stem, suffix = osp.splitext(path)
    npy, pt = stem + '.npy', stem + '.pt'
    if suffix not in ('.npy', '.pt') or not (osp.isfile(npy) and osp.isfile(pt)):
        return
    if suffix == '.npy':
        recorded, actual = _recorded_digest(pt), embeddings_digest(embeddings)
    else:
        recorded = _digest_entry(pt, metadata)
        actual = _npy_digest(npy) if recorded is not None else None
    if recorded is not None and actual is not None and recorded != actual:
        raise OvdenseFileError(
            f'classifier files {npy!r} and {pt!r} do not match: the .pt was written with '
            f'embeddings of sha256 {recorded[:12]}..., the .npy holds {actual[:12]}... (a '
            'mixed pair from an interrupted write); rebuild both with '
            'tools/build_text_classifier.py')


def _recorded_digest(pt: str) -> Optional[str]:
    """The digest a sibling ``.pt`` records; None if it records none or cannot be read (it is
    then refused when it is itself loaded). Tensors are mapped, not read: the sibling may be
    a large checkpoint that merely shares the stem."""
    try:
        record = safe_torch_load(pt, what='classifier embedding file', mmap=True)
    except OvdenseFileError:
        return None
    return _digest_entry(pt, record) if isinstance(record, dict) else None


def _digest_entry(pt: str, record: Dict) -> Optional[str]:
    digest = record.get(PAIR_DIGEST)
    if digest is not None and not (isinstance(digest, str) and len(digest) == 64):
        raise OvdenseFileError(f'classifier file {pt!r}: {PAIR_DIGEST!r} must be a sha256 hex '
                               f'string, got {type(digest).__name__} {str(digest)[:20]!r}')
    return digest


def _npy_digest(npy: str) -> Optional[str]:
    """The digest of a sibling ``.npy``; None if it cannot be read (refused when loaded)."""
    try:
        return embeddings_digest(_read_npy(npy))
    except OvdenseFileError:
        return None


def _stored_names(path: str, metadata: Dict, num_classes: int) -> Optional[List[str]]:
    """The class names a ``.pt`` stores (``class_names``), one per row; None if it has none."""
    stored = metadata.get('class_names')
    if stored is None:
        return None
    if (not isinstance(stored, (list, tuple)) or len(stored) != num_classes
            or not all(isinstance(name, str) for name in stored)):
        raise OvdenseFileError(f"classifier file {path!r}: 'class_names' must be a list of "
                               f'{num_classes} strings, one per row')
    return list(stored)


def _check_names(path: str, stored: Sequence[str], expected: Sequence[str]) -> None:
    """Rows are matched to classes by position: other names or another order would score
    every class with another class's embedding."""
    for index, (have, want) in enumerate(zip(stored, expected)):
        if have != want:
            raise OvdenseFileError(
                f'classifier file {path!r} was built for other classes: position {index} '
                f'holds {have!r}, the vocabulary has {want!r} there')


def _unit_rows(path: str, embeddings: torch.Tensor, names: Optional[Sequence[str]]
               ) -> torch.Tensor:
    """The rows normalised; a row that does not normalise to a unit vector (NaN, inf, zero,
    or too large or small for float32) would turn every prediction into NaN or noise."""
    unit = F.normalize(embeddings, dim=-1)
    bad = ~((unit.norm(dim=-1) - 1).abs() <= 1e-3)  # NaN compares False: bad
    if not bool(bad.any()):
        return unit
    row = int(bad.nonzero()[0])
    label = f'row {row}' if names is None else f'row {row} ({names[row]!r})'
    raise OvdenseFileError(f'classifier file {path!r}: {label} {_row_fault(embeddings[row])}; '
                           'every class embedding must be a finite, non-zero vector')


def _row_fault(row: torch.Tensor) -> str:
    if not bool(torch.isfinite(row).all()):
        return 'is not finite'
    norm = float(row.double().norm())
    if norm == 0:
        return 'has zero norm'
    return f'has norm {norm:.3g}, outside what float32 can normalise'


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
        """(K, D) embeddings and the cache file they came from or went to (None: not cached)."""
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
