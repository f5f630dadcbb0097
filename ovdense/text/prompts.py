"""Prompt templates and the prompts that describe each class to the text tower."""
import os.path as osp
import random
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

from .vocabulary import ClassEntry, VocabularyError

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
