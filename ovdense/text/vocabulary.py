"""Class vocabularies: names, synonyms and descriptions, from data files or user specs.

A vocabulary spec is one of:
- a built-in dataset name (``'coco'``, ``'lvis_v1'``, ``'ade20k_150'``, ...; see
  ``builtin_names()``),
- a path to a ``.txt`` (one class per line, optional ``name: description``), ``.json`` or
  ``.yaml``/``.yml`` file (a list of ``{name, description?, synonyms?}`` or a dict with
  ``classes``),
- a comma-separated string (``'red star,blue ring'``),
- a list/tuple of names or of ``{name, description?, synonyms?}`` dicts,
- an existing :class:`Vocabulary`.
"""
import hashlib
import json
import os
import os.path as osp
import reprlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

RESOURCE_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'resources',
                        'vocabularies')
_ALIASES = {'lvis': 'lvis_v1', 'ade20k': 'ade20k_150', 'ade': 'ade20k_150',
            'pascal_context': 'pascal_context_59', 'coco_stuff': 'coco_stuff_171',
            'kinetics': 'kinetics_400', 'k400': 'kinetics_400', 'ov_coco': 'ov_coco_split'}


class VocabularyError(ValueError):
    """A vocabulary spec or file is malformed; the message names the source and the problem."""


@dataclass(frozen=True)
class ClassEntry:
    name: str
    description: str = ''
    synonyms: Tuple[str, ...] = ()
    frequency: Optional[str] = None  # LVIS: 'r' / 'c' / 'f'
    split: Optional[str] = None      # open-vocabulary protocols: 'base' or 'novel'

    @property
    def readable_name(self) -> str:
        """The name as a phrase: LVIS-style ``'bow_(weapon)'`` -> ``'bow (weapon)'``."""
        return _readable(self.name)

    @property
    def phrases(self) -> Tuple[str, ...]:
        """Distinct phrases naming the class: the name first, then synonyms."""
        seen, out = set(), []
        for phrase in (self.name,) + tuple(self.synonyms):
            readable = _readable(phrase)
            if readable and readable.lower() not in seen:
                seen.add(readable.lower())
                out.append(readable)
        return tuple(out)


def _readable(name: str) -> str:
    return ' '.join(name.replace('_', ' ').split())


def text_tower_key(name: str) -> str:
    """A name as prompts put it (underscores as spaces, one space between words), case
    ignored (CLIP's tokenizer lower-cases): names with one key are one class."""
    return _readable(name).casefold()


# Depth- and width-bounded repr: YAML aliases can make a tiny file a document of billions
# of nodes (shared, not copied), which a plain repr would expand in full.
_BOUNDED_REPR = reprlib.Repr()
_BOUNDED_REPR.maxlevel = 3
for _attr in ('maxtuple', 'maxlist', 'maxdict', 'maxset', 'maxfrozenset'):
    setattr(_BOUNDED_REPR, _attr, 4)
_BOUNDED_REPR.maxstring = _BOUNDED_REPR.maxother = _BOUNDED_REPR.maxlong = 60


def preview(value: Any, limit: int = 80) -> str:
    """``<type> <start of its repr>``, at most about ``limit`` characters for any value."""
    text = _BOUNDED_REPR.repr(value)
    if len(text) > limit:
        text = text[:limit - 3] + '...'
    return f'{type(value).__name__} {text}'


@dataclass(frozen=True)
class Vocabulary:
    entries: Tuple[ClassEntry, ...]
    source: str = '<inline>'
    # repr=False: a file's other top-level keys may hold anything (a YAML alias bomb too)
    extra: Dict[str, Any] = field(default_factory=dict, compare=False, hash=False,
                                  repr=False)

    def __post_init__(self):
        _validate(self.entries, self.source)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __getitem__(self, index: int) -> ClassEntry:
        return self.entries[index]

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(entry.name for entry in self.entries)

    def subset(self, names: Iterable[str]) -> 'Vocabulary':
        by_name = {entry.name: entry for entry in self.entries}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise VocabularyError(f'{self.source}: classes not in this vocabulary: {missing[:10]}')
        return Vocabulary(tuple(by_name[name] for name in names), source=self.source)

    def fingerprint(self) -> str:
        """Stable hash of everything that changes the class embeddings."""
        payload = [[e.name, e.description, list(e.synonyms)] for e in self.entries]
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()

    def to_json_dict(self) -> Dict[str, Any]:
        classes = []
        for entry in self.entries:
            record = {'name': entry.name, 'synonyms': list(entry.synonyms),
                      'description': entry.description}
            for key in ('frequency', 'split'):
                if getattr(entry, key) is not None:
                    record[key] = getattr(entry, key)
            classes.append(record)
        return {'name': osp.basename(self.source), 'source': self.source, 'classes': classes}


def _validate(entries: Sequence[ClassEntry], source: str) -> None:
    if not entries:
        raise VocabularyError(f'vocabulary {source!r} is empty: at least one class is needed')
    seen: Dict[str, int] = {}
    duplicates = []
    for index, entry in enumerate(entries):
        if not isinstance(entry.name, str) or not entry.name.strip():
            raise VocabularyError(f'vocabulary {source!r}: class #{index} has an empty name')
        if entry.name in seen:
            duplicates.append(f'{entry.name!r} (#{seen[entry.name]} and #{index})')
        seen.setdefault(entry.name, index)
    if duplicates:
        raise VocabularyError(f'vocabulary {source!r} has duplicate class names: '
                              + ', '.join(duplicates[:10]))
    _check_same_for_text_tower(entries, source)


def _check_same_for_text_tower(entries: Sequence[ClassEntry], source: str) -> None:
    """Refuse names the text tower reads as one ('red_star', 'Red  star'): their prompts
    give identical embeddings, so the classes could never be told apart."""
    groups: Dict[str, List[int]] = {}
    for index, entry in enumerate(entries):
        groups.setdefault(text_tower_key(entry.name), []).append(index)
    clashes = [ids for ids in groups.values() if len(ids) > 1]
    if not clashes:
        return
    described = ['[' + ', '.join(f'{entries[i].name!r:.60} (#{i})' for i in ids[:5]) + ']'
                 for ids in clashes[:5]]
    raise VocabularyError(
        f'vocabulary {source!r}: class names the text tower reads alike (it reads '
        "'_' as a space and ignores case and repeated spaces), so their prompts and "
        f'embeddings are the same: {", ".join(described)}{" ..." if len(clashes) > 5 else ""}'
        "; keep one name per class (other spellings go in its 'synonyms')")


def builtin_names() -> List[str]:
    if not osp.isdir(RESOURCE_DIR):
        return []
    return sorted(f[:-5] for f in os.listdir(RESOURCE_DIR) if f.endswith('.json'))


def load_vocabulary(spec: Union[str, Sequence, 'Vocabulary']) -> Vocabulary:
    """Build a :class:`Vocabulary` from any accepted spec (see module docstring)."""
    if isinstance(spec, Vocabulary):
        return spec
    if isinstance(spec, (list, tuple)):
        return Vocabulary(tuple(_entry_from_record(r, '<list>', i) for i, r in enumerate(spec)),
                          source='<list>')
    if not isinstance(spec, str):
        raise VocabularyError(f'a vocabulary spec must be a name, path, comma list or list; '
                              f'got {type(spec).__name__}')
    builtin = _ALIASES.get(spec.lower(), spec.lower())
    if builtin in builtin_names():
        return _load_file(osp.join(RESOURCE_DIR, builtin + '.json'), source=builtin)
    if osp.splitext(spec)[1].lower() in ('.txt', '.json', '.yaml', '.yml') or osp.sep in spec:
        if not osp.isfile(spec):
            raise FileNotFoundError(f'vocabulary file not found: {spec!r}')
        return _load_file(spec)
    if ',' in spec:
        names = [part.strip() for part in spec.split(',')]
        if names[-1] == '':  # 'name,' is a one-class vocabulary
            names.pop()
        return Vocabulary(tuple(ClassEntry(n) for n in names), source='<comma list>')
    raise VocabularyError(
        f'unknown vocabulary {spec!r}: not a built-in dataset ({", ".join(builtin_names())}), '
        'not a .txt/.json/.yaml file, and not a comma-separated list '
        f"(for a one-class vocabulary write '{spec},')")


def _load_file(path: str, source: Optional[str] = None) -> Vocabulary:
    source = source or path
    ext = osp.splitext(path)[1].lower()
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except UnicodeDecodeError as err:
        raise VocabularyError(f'vocabulary file {path!r} is not valid UTF-8 '
                              f'(byte {err.start}: {err.reason})') from err
    if ext == '.txt':
        records = _parse_txt(text)
    else:
        records = _parse_structured(text, path, yaml_format=ext in ('.yaml', '.yml'))
    classes = records.get('classes') if isinstance(records, dict) else records
    if not isinstance(classes, list):
        raise VocabularyError(f'vocabulary file {path!r} must hold a list of classes or a '
                              "mapping with a 'classes' list")
    extra = {k: v for k, v in records.items() if k != 'classes'} if isinstance(
        records, dict) else {}
    entries = tuple(_entry_from_record(r, path, i) for i, r in enumerate(classes))
    return Vocabulary(entries, source=source, extra=extra)


def _parse_txt(text: str) -> List[Dict[str, str]]:
    records = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        name, _, description = line.partition(':')
        records.append({'name': name.strip(), 'description': description.strip()})
    return records


def _parse_structured(text: str, path: str, yaml_format: bool):
    try:
        if yaml_format:
            import yaml
            return yaml.safe_load(text)  # safe_load: no arbitrary Python objects from YAML
        return json.loads(text)
    except Exception as err:
        kind = 'YAML' if yaml_format else 'JSON'
        raise VocabularyError(f'vocabulary file {path!r} is not valid {kind}: {err}') from err


def _entry_from_record(record: Any, source: str, index: int) -> ClassEntry:
    # Messages show preview(value), never a plain repr: see _BOUNDED_REPR.
    if isinstance(record, str):
        return ClassEntry(record.strip())
    if not isinstance(record, dict) or 'name' not in record:
        raise VocabularyError(f'vocabulary {source!r}: class #{index} must be a name or a '
                              f"mapping with a 'name' key; got {preview(record)}")
    name = record['name']
    if not isinstance(name, str):  # str() would make a class 'None' or "['cat']"
        raise VocabularyError(f"vocabulary {source!r}: class #{index} 'name' must be a "
                              f'string; got {preview(name)}')
    synonyms = record.get('synonyms') or ()
    if isinstance(synonyms, str):
        synonyms = (synonyms,)
    if (not isinstance(synonyms, (list, tuple))
            or not all(isinstance(s, str) for s in synonyms)):
        raise VocabularyError(f"vocabulary {source!r}: class #{index} ({name!r:.80}) "
                              "'synonyms' must be a string or a list of strings; got "
                              f'{preview(synonyms)}')
    description = record.get('description', record.get('def', '')) or ''
    _check_optional_str(description, 'description', source, index, name)
    for key in ('frequency', 'split'):
        _check_optional_str(record.get(key), key, source, index, name)
    return ClassEntry(name=name.strip(), description=description.strip(),
                      synonyms=tuple(synonyms),
                      frequency=record.get('frequency'), split=record.get('split'))


def _check_optional_str(value: Any, key: str, source: str, index: int, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise VocabularyError(f'vocabulary {source!r}: class #{index} ({name!r:.80}) '
                              f'{key!r} must be a string; got {preview(value)}')


def vocabulary_from_lvis_categories(categories: Sequence[Dict[str, Any]],
                                    source: str = '<lvis categories>') -> Vocabulary:
    """LVIS category records (``name``, ``synonyms``, ``def``, ``frequency``) in id order."""
    ordered = sorted(categories, key=lambda c: c['id'])
    return Vocabulary(tuple(_entry_from_record(c, source, i) for i, c in enumerate(ordered)),
                      source=source)


NovelSelection = Union[None, str, Sequence[Union[int, str]]]
LVIS_FREQUENCIES = 'rcf'


def novel_class_ids(vocabulary: Vocabulary, novel_classes: NovelSelection) -> List[int]:
    """Indices of the classes an open-vocabulary training leaves out (sorted).

    ``novel_classes``: None (none); LVIS frequency letters (``'r'``, ``'rc'``) matched against
    each class's ``frequency``; ``'novel'``: the classes whose ``split`` is ``'novel'`` (as in
    the OV-COCO split file); or a list of class names and/or label ids (indices into
    ``vocabulary``).
    """
    if novel_classes is None:
        return []
    if novel_classes == 'novel':
        ids = [i for i, entry in enumerate(vocabulary) if entry.split == 'novel']
        if not ids:
            raise VocabularyError(f"novel_classes='novel': no class of {vocabulary.source!r} "
                                  "has split 'novel'")
        return ids
    if isinstance(novel_classes, str):
        return _ids_by_frequency(vocabulary, novel_classes)
    return sorted(set(class_ids(vocabulary, novel_classes, 'novel_classes')))


ClassSelection = NovelSelection  # the same shapes; a string is a vocabulary spec here


def select_classes(vocabulary, classes: ClassSelection = None
                   ) -> Tuple['Vocabulary', 'Vocabulary', List[int]]:
    """``(full vocabulary, selected sub-vocabulary, label ids of the selection)``.

    ``classes``: None (all), a list of label ids and/or class names, or any vocabulary spec
    whose names are all in ``vocabulary`` (a comma list, a file). The selection keeps the
    order given: selected class ``i`` is new label ``i``.
    """
    vocab = load_vocabulary(vocabulary)
    if classes is None:
        return vocab, vocab, list(range(len(vocab)))
    if isinstance(classes, str):
        classes = list(load_vocabulary(classes).names)
    ids = class_ids(vocab, classes, 'classes')
    if not ids:
        raise VocabularyError(f'classes of {vocab.source!r}: the selection is empty')
    repeated = sorted({vocab.names[i] for i in ids if ids.count(i) > 1})
    if repeated:
        raise VocabularyError(f'classes of {vocab.source!r} repeat {repeated[:5]}')
    return vocab, vocab.subset([vocab.names[i] for i in ids]), ids


def class_ids(vocabulary: 'Vocabulary', items, what: str) -> List[int]:
    """The label ids of ``items`` (label ids and/or names of ``vocabulary``), in order."""
    if not isinstance(items, (list, tuple)):
        raise VocabularyError(f'{what} must be a list of label ids and/or class names of '
                              f'{vocabulary.source!r}; got {type(items).__name__}')
    index = {name: i for i, name in enumerate(vocabulary.names)}
    ids, missing = [], []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            if not 0 <= item < len(vocabulary):
                raise VocabularyError(f'{what}: label id {item} is outside {vocabulary.source!r}'
                                      f' (0..{len(vocabulary) - 1})')
            ids.append(item)
        elif isinstance(item, str) and item in index:
            ids.append(index[item])
        else:
            missing.append(item)
    if missing:
        raise VocabularyError(f'{what}: {missing[:10]} are neither label ids nor class names '
                              f'of {vocabulary.source!r}')
    return ids


def _ids_by_frequency(vocabulary: Vocabulary, letters: str) -> List[int]:
    if not letters or set(letters) - set(LVIS_FREQUENCIES):
        raise VocabularyError(f"novel_classes={letters!r}: expected LVIS frequency letters "
                              f"among {tuple(LVIS_FREQUENCIES)}, 'novel', or a list of names")
    unmarked = [entry.name for entry in vocabulary if entry.frequency is None]
    if unmarked:
        raise VocabularyError(f'novel_classes={letters!r} selects by LVIS frequency but '
                              f'{vocabulary.source!r} has classes without one: {unmarked[:5]}')
    return [i for i, entry in enumerate(vocabulary) if entry.frequency in letters]
