"""Prompts (ovdense/text/prompts.py): PromptStyle's prompts from templates, descriptions and
synonyms, and template validation."""
import pytest

from ovdense.text import ClassEntry, PromptStyle, VocabularyError, load_templates


def test_prompt_style_descriptions_synonyms_templates():
    entry = ClassEntry('bow_(weapon)', 'a weapon for shooting arrows', ('longbow',))
    style = PromptStyle.build(['a photo of a {}.', 'a {}'])
    assert style.class_prompts(entry) == [
        'a photo of a bow (weapon), a weapon for shooting arrows.',
        'a bow (weapon), a weapon for shooting arrows',
        'a photo of a longbow, a weapon for shooting arrows.',
        'a longbow, a weapon for shooting arrows']
    plain = PromptStyle.build('single', use_descriptions=False, use_synonyms=False)
    assert plain.class_prompts(entry) == ['a bow (weapon).']
    assert plain.sample_prompt(entry) == 'a bow (weapon).'


def test_template_validation(tmp_path):
    with pytest.raises(VocabularyError, match="exactly one '{}'"):
        load_templates(['a photo', 'a {} {}'])
    with pytest.raises(FileNotFoundError, match='nope'):
        load_templates('nope')
