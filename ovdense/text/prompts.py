"""Prompt templates and the prompts that describe each class to the text tower."""
import os.path as osp
import random
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

from .vocabulary import ClassEntry, Vocabulary, VocabularyError

TEMPLATE_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'resources',
                        'templates')
TEMPLATE_SETS = ('single', 'vild', 'imagenet', 'action')


def load_templates(spec: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """A template set by name (``single``, ``vild``, ``imagenet``, ``action``), a ``.txt`` file
    (one template per line) or a list of strings; each template holds exactly one ``{}``."""
    if isinstance(spec, str):
        path = osp.join(TEMPLATE_DIR, spec + '.txt') if spec in TEMPLATE_SETS else spec
        if not osp.isfile(path):
            raise FileNotFoundError(f'template set {spec!r} is neither one of {TEMPLATE_SETS} '
                                    'nor an existing .txt file')
        with open(path, encoding='utf-8') as f:
            templates = [line.rstrip('\n') for line in f if line.strip()]
        source = path
    else:
        templates, source = list(spec), '<list>'
    if not templates:
        raise VocabularyError(f'template set {source!r} is empty')
    bad = [t for t in templates if t.count('{}') != 1]
    if bad:
        raise VocabularyError(f'template set {source!r}: each template needs exactly one '
                              f"'{{}}' placeholder; offending: {bad[:3]}")
    return tuple(templates)


@dataclass(frozen=True)
class PromptStyle:
    """How a class becomes text: which templates, and whether descriptions/synonyms are used."""
    templates: Tuple[str, ...] = ('a {}.',)
    use_descriptions: bool = True
    description_format: str = '{name}, {description}'
    use_synonyms: bool = True

    @classmethod
    def build(cls, templates: Union[str, Sequence[str]] = 'single',
              use_descriptions: bool = True,
              description_format: str = '{name}, {description}',
              use_synonyms: bool = True) -> 'PromptStyle':
        return cls(load_templates(templates), use_descriptions, description_format,
                   use_synonyms)

    def subjects(self, entry: ClassEntry) -> Tuple[str, ...]:
        """What fills a template's ``{}``: each phrase for the class, with its description."""
        phrases = entry.phrases if self.use_synonyms else (entry.readable_name,)
        if self.use_descriptions and entry.description:
            return tuple(self.description_format.format(name=p, description=entry.description)
                         for p in phrases)
        return phrases

    def class_prompts(self, entry: ClassEntry) -> List[str]:
        """All prompts of the test-time ensemble for one class (phrases x templates)."""
        return [t.format(s) for s in self.subjects(entry) for t in self.templates]

    def sample_prompt(self, entry: ClassEntry, rng: Optional[random.Random] = None) -> str:
        """One random prompt per class, as iCAR samples during joint training."""
        index = self.sample_prompt_index(len(self.subjects(entry)), rng)
        return self.class_prompts(entry)[index]

    def sample_prompt_index(self, num_subjects: int, rng: Optional[random.Random] = None
                            ) -> int:
        """Index into :meth:`class_prompts` of a random template applied to a random
        subject (the template is drawn first)."""
        rng = rng or random
        template = rng.randrange(len(self.templates))
        subject = rng.randrange(num_subjects)
        return subject * len(self.templates) + template

    def fingerprint(self) -> list:
        return [list(self.templates), self.use_descriptions, self.description_format,
                self.use_synonyms]


def check_class_tokens(tower, vocabulary: Vocabulary, prompts: Sequence[str],
                       per_class: Sequence[Sequence[int]], row_digests: torch.Tensor) -> None:
    """Warn about two classes whose prompts all tokenise alike (the same rows, as often):
    they get identical embeddings. Usually the text tower cut long prompts before the words
    that tell the classes apart. A warning, not an error: iCAR's 16-token context does this
    to two Kinetics-400 classes ('passing American football (in game)' / '(not in game)').

    ``prompts``: the unique prompts of ``vocabulary``; ``row_digests``: one
    :func:`token_row_digests` value per prompt; ``per_class``: each class's indices into them
    (see ``ensemble_prompts``).
    """
    if len(row_digests) == 0:
        return
    first, second = _first_token_twin(per_class, row_digests)
    if first is None:
        return
    ids = sorted(set(per_class[first]) | set(per_class[second]))
    texts = [prompts[i] for i in ids]
    warnings.warn(
        f'vocabulary {vocabulary.source!r}: classes {vocabulary[first].name!r:.80} '
        f'(#{first}) and {vocabulary[second].name!r:.80} (#{second}) get the same tokens '
        f'for every prompt, so identical embeddings: '
        f'{_twin_cause(tower, texts, tower.tokenizer(texts))}')


def token_row_digests(tokens: torch.Tensor) -> torch.Tensor:
    """One int64 per token row, equal for equal rows (and, with odd random-looking 64-bit
    multipliers, different for different rows but with negligible probability): what the
    twin check compares, so that it never needs every token row of a vocabulary at once."""
    rows = tokens.reshape(len(tokens), -1).long()
    steps = torch.arange(1, rows.shape[1] + 1, dtype=torch.long)
    multipliers = steps * -7046029254386353131 | 1  # wraps modulo 2**64, stays odd
    return (rows * multipliers).sum(1)


def _twin_cause(tower, prompts: List[str], tokens: torch.Tensor) -> str:
    """Why two classes' prompts tokenise alike (the context length cut them?), and the fix."""
    length = getattr(tower, 'context_length', tokens.shape[-1])
    cut_texts = getattr(tower, 'cut_texts', None)
    cut = len(cut_texts(prompts, tokens)) if cut_texts is not None else None
    if cut == 0:
        return (f'none of their {len(prompts)} prompts is longer than the text tower\'s '
                f'context length of {length} tokens: they are the same texts or texts the '
                'tokenizer reads alike; give each class its own name and synonyms')
    if cut is None:  # a tower that cannot tell which prompts it cut
        return (f'the text tower reads {length} tokens per prompt; shorten their names or '
                'descriptions, or give each class its own name and synonyms')
    return (f'{cut} of their {len(prompts)} prompts are longer than the text tower\'s context '
            f'length of {length} tokens and were cut; shorten their names or descriptions, '
            'or give the text tower a longer context_length')


def _first_token_twin(per_class: Sequence[Sequence[int]], row_digests: torch.Tensor
                      ) -> Tuple[Optional[int], Optional[int]]:
    """The first two classes whose prompts give the same multiset of token rows."""
    row_ids = row_digests.tolist()
    seen: Dict[Tuple[int, ...], int] = {}
    for index, ids in enumerate(per_class):
        key = tuple(sorted(row_ids[i] for i in ids))
        if key in seen:
            return seen[key], index
        seen[key] = index
    return None, None
