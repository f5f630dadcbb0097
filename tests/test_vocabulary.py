import json
import re

import pytest

from ovdense.text import (ClassEntry, PromptStyle, Vocabulary, VocabularyError,
                          load_templates, load_vocabulary, vocabulary_from_lvis_categories)


def test_comma_list_and_one_class_form():
    vocab = load_vocabulary('red star, blue ring ,green square')
    assert vocab.names == ('red star', 'blue ring', 'green square')
    assert load_vocabulary('zebra,').names == ('zebra',)


def test_txt_with_descriptions(tmp_path):
    path = tmp_path / 'v.txt'
    path.write_text('# comment\nred star: a star coloured red\n\nblue ring\n', encoding='utf-8')
    vocab = load_vocabulary(str(path))
    assert vocab.names == ('red star', 'blue ring')
    assert vocab[0].description == 'a star coloured red'
    assert vocab[1].description == ''


@pytest.mark.parametrize('suffix', ['.json', '.yaml'])
def test_structured_files(tmp_path, suffix):
    records = [{'name': 'aerosol_can', 'description': 'a dispenser', 'synonyms': ['spray_can']},
               {'name': 'zebra'}]
    path = tmp_path / ('v' + suffix)
    if suffix == '.json':
        path.write_text(json.dumps({'classes': records}))
    else:
        import yaml
        path.write_text(yaml.safe_dump(records))
    vocab = load_vocabulary(str(path))
    assert vocab.names == ('aerosol_can', 'zebra')
    assert vocab[0].phrases == ('aerosol can', 'spray can')
    assert vocab[0].synonyms == ('spray_can',)


def test_list_spec_and_lvis_categories():
    vocab = load_vocabulary(['cat', {'name': 'dog', 'description': 'a canine'}])
    assert vocab.names == ('cat', 'dog') and vocab[1].description == 'a canine'
    cats = [{'id': 2, 'name': 'b', 'def': 'second', 'synonyms': ['b'], 'frequency': 'r'},
            {'id': 1, 'name': 'a', 'def': 'first', 'synonyms': [], 'frequency': 'f'}]
    vocab = vocabulary_from_lvis_categories(cats)
    assert vocab.names == ('a', 'b') and vocab[1].frequency == 'r'
    assert vocab[1].description == 'second'


@pytest.mark.parametrize('spec, match', [
    ('a,,b', 'empty name'),
    ('cat,dog,cat', "duplicate class names: 'cat'"),
    ('not_a_dataset_name', 'unknown vocabulary'),
    ([], 'is empty'),
])
def test_bad_specs(spec, match):
    with pytest.raises(VocabularyError, match=match):
        load_vocabulary(spec)


def test_missing_file_is_named(tmp_path):
    missing = str(tmp_path / 'nope.txt')
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        load_vocabulary(missing)


def test_malformed_files(tmp_path):
    bad_json = tmp_path / 'bad.json'
    bad_json.write_text('{"classes": [')
    with pytest.raises(VocabularyError, match='bad.json.*not valid JSON'):
        load_vocabulary(str(bad_json))
    not_utf8 = tmp_path / 'latin.txt'
    not_utf8.write_bytes('caf\xe9\n'.encode('latin-1'))
    with pytest.raises(VocabularyError, match='latin.txt.*not valid UTF-8'):
        load_vocabulary(str(not_utf8))
    wrong_shape = tmp_path / 'shape.json'
    wrong_shape.write_text(json.dumps({'classes': [{'label': 'x'}]}))
    with pytest.raises(VocabularyError, match="class #0 must be a name or a mapping"):
        load_vocabulary(str(wrong_shape))


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / 'evil.yaml'
    marker = tmp_path / 'pwned'
    path.write_text(f"- !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(VocabularyError, match='not valid YAML'):
        load_vocabulary(str(path))
    assert not marker.exists()


def test_fingerprint_tracks_descriptions():
    a = Vocabulary((ClassEntry('cat', 'a feline'),))
    b = Vocabulary((ClassEntry('cat', 'a pet'),))
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == Vocabulary((ClassEntry('cat', 'a feline'),)).fingerprint()


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


def test_novel_class_ids_by_frequency_split_and_names():
    from ovdense.text import VocabularyError, novel_class_ids
    lvis_like = load_vocabulary([dict(name='cat', frequency='f'), dict(name='yak', frequency='r'),
                                 dict(name='owl', frequency='c')])
    assert novel_class_ids(lvis_like, None) == []
    assert novel_class_ids(lvis_like, 'r') == [1]
    assert novel_class_ids(lvis_like, 'rc') == [1, 2]
    assert novel_class_ids(lvis_like, ['owl', 'cat']) == [0, 2]
    assert novel_class_ids(lvis_like, [2, 'yak', 1]) == [1, 2]  # label ids too
    ov_coco = load_vocabulary('ov_coco')
    novel = [ov_coco.names[i] for i in novel_class_ids(ov_coco, 'novel')]
    assert len(novel) == 17 and 'dog' in novel and 'person' not in novel
    with pytest.raises(VocabularyError, match='frequency letters'):
        novel_class_ids(lvis_like, 'rx')
    with pytest.raises(VocabularyError, match="no class .* has split 'novel'"):
        novel_class_ids(lvis_like, 'novel')
    with pytest.raises(VocabularyError, match='without one'):
        novel_class_ids(ov_coco, 'r')
    with pytest.raises(VocabularyError, match="\\['zebra'\\] are neither label ids nor class"):
        novel_class_ids(lvis_like, ['zebra'])
    with pytest.raises(VocabularyError, match='label id 3 is outside'):
        novel_class_ids(lvis_like, [3])


@pytest.mark.parametrize('record, needle', [
    ({'name': None}, "class #1 'name' must be a string; got None"),
    ({'name': ['cat']}, "class #1 'name' must be a string; got list ['cat']"),
    ({'name': 'dog', 'synonyms': 5},
     "class #1 ('dog') 'synonyms' must be a string or a list of strings; got int 5"),
    ({'name': 'dog', 'synonyms': ['hound', None]},
     "class #1 ('dog') 'synonyms' must be a string or a list of strings; got list ['hound', None]"),
    ({'name': 'dog', 'description': {'text': 'a canine'}},
     "class #1 ('dog') 'description' must be a string; got dict {'text': 'a canine'}"),
], ids=['null-name', 'list-name', 'int-synonyms', 'null-synonym', 'dict-description'])
def test_entries_with_non_string_fields_are_named(tmp_path, record, needle):
    """str() would turn a null name into a class 'None' and a list into "['cat']"."""
    path = tmp_path / 'typed.json'
    path.write_text(json.dumps({'classes': ['cat', record]}))
    with pytest.raises(VocabularyError, match=re.escape(f"vocabulary '{path}': {needle}")):
        load_vocabulary(str(path))
