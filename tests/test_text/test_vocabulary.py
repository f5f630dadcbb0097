"""Vocabularies (ovdense/text/vocabulary.py): the spec forms (comma list, text / JSON / YAML
files, lists, LVIS categories, built-in names), novel-class selections, and inputs that used to
fail badly or silently: malformed files, non-string fields, YAML alias bombs and names the
text tower reads alike."""
import json
import re
import tracemalloc

import pytest

from ovdense.text import (ClassEntry, Vocabulary, VocabularyError, builtin_names,
                          load_vocabulary, vocabulary_from_lvis_categories)


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


# -- YAML alias bombs -------------------------------------------------------------------


BOMB_LEVELS = 10  # 9**10 (3.5e9) leaves once expanded; the file is under 1 kB
MAX_PEAK_BYTES = 50 * 2**20  # expanding even a small part of the bomb costs gigabytes
MAX_MESSAGE = 400


def _bomb_yaml(classes: str, levels: int = BOMB_LEVELS) -> str:
    """A YAML file whose anchors ``b0 .. b{levels-1}`` each hold 9 aliases of the one
    before; ``classes`` is the ``classes:`` value and may use ``*b{levels-1}``."""
    lines = ['b0: &b0 [' + ', '.join(['lol'] * 9) + ']']
    for level in range(1, levels):
        lines.append(f'b{level}: &b{level} [' + ', '.join([f'*b{level - 1}'] * 9) + ']')
    return '\n'.join(lines + [f'classes: {classes}', ''])


TOP = f'*b{BOMB_LEVELS - 1}'
BOMB_PLACES = {  # where the bomb sits in a class record -> text the message must hold
    'record': (f'[{TOP}]', 'class #0 must be a name or a mapping'),
    'mapping-without-name': (f'[{{label: {TOP}}}]', "class #0 must be a name or a mapping"),
    'name': (f'[{{name: {TOP}}}]', "class #0 'name' must be a string"),
    'synonyms': (f'[{{name: cat, synonyms: {TOP}}}]', "'synonyms' must be a string or a list"),
    'description': (f'[{{name: cat, description: {TOP}}}]', "'description' must be a string"),
    'frequency': (f'[{{name: cat, frequency: {TOP}}}]', "'frequency' must be a string"),
    'split': (f'[{{name: cat, split: {TOP}}}]', "'split' must be a string"),
}


def _peak_bytes(call):
    """``call()``'s result (or the exception it raised) and its peak traced allocation."""
    tracemalloc.start()
    try:
        try:
            outcome = call()
        except Exception as err:  # noqa: BLE001 - the test inspects it
            outcome = err
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize('place', list(BOMB_PLACES))
def test_yaml_alias_bomb_is_refused_without_expanding_it(tmp_path, place):
    classes, expected = BOMB_PLACES[place]
    path = tmp_path / 'bomb.yaml'
    path.write_text(_bomb_yaml(classes), encoding='utf-8')
    error, peak = _peak_bytes(lambda: load_vocabulary(str(path)))
    assert isinstance(error, VocabularyError), repr(error)[:300]
    message = str(error)
    assert str(path) in message and expected in message, message
    assert 'got ' in message and len(message) < MAX_MESSAGE, message
    assert peak < MAX_PEAK_BYTES, f'{peak / 2**20:.0f} MiB traced'


def test_yaml_alias_bomb_beside_the_classes_loads_and_repr_stays_short(tmp_path):
    """Other top-level keys are kept (``Vocabulary.extra``) but never shown whole."""
    path = tmp_path / 'bomb.yaml'
    path.write_text(_bomb_yaml('[cat, dog]'), encoding='utf-8')
    vocabulary, peak = _peak_bytes(lambda: repr(load_vocabulary(str(path))))
    assert isinstance(vocabulary, str), repr(vocabulary)[:300]
    assert "'cat'" in vocabulary and len(vocabulary) < 1000, vocabulary
    assert peak < MAX_PEAK_BYTES, f'{peak / 2**20:.0f} MiB traced'


# -- names the text tower reads alike ------------------------------------------------------


@pytest.mark.parametrize('spelling', [('red_star', 'red star', 'Red Star'),
                                      ('RED_STAR', 'red  star'), ('Red Star', 'red_ star ')])
def test_names_one_class_for_the_text_tower_are_refused(spelling):
    names = list(spelling) + ['blue ring']
    with pytest.raises(VocabularyError) as caught:
        load_vocabulary(names)
    message = str(caught.value)
    assert message.startswith("vocabulary '<list>': class names the text tower reads alike")
    for index, name in enumerate(spelling):
        assert f'{name.strip()!r} (#{index})' in message, message
    assert 'blue ring' not in message


@pytest.mark.parametrize('suffix', ['.txt', '.yaml', '.json'])
def test_alike_names_in_a_file_name_the_file(tmp_path, suffix):
    path = tmp_path / f'classes{suffix}'
    text = {'.txt': 'red_star\nblue ring\nRed Star\n',
            '.yaml': 'classes: [red_star, blue ring, Red Star]\n',
            '.json': '["red_star", "blue ring", "Red Star"]'}[suffix]
    path.write_text(text, encoding='utf-8')
    with pytest.raises(VocabularyError, match="reads alike.*'red_star' \\(#0\\), 'Red Star' "
                                              "\\(#2\\)") as caught:
        load_vocabulary(str(path))
    assert str(path) in str(caught.value)


def test_names_that_read_differently_are_kept():
    names = ['red star', 'red stars', 'red-star', 'redstar', 'bow_(weapon)', 'bow']
    assert load_vocabulary(names).names == tuple(names)


DOCUMENTED_DATASETS = ['coco', 'lvis_v1', 'ade20k_150', 'ade20k_847', 'pascal_context_59',
                       'pascal_context_459', 'coco_stuff_171', 'kinetics_400', 'ov_coco']


@pytest.mark.parametrize('name', sorted(set(DOCUMENTED_DATASETS + builtin_names())))
def test_every_builtin_vocabulary_still_loads(name):
    vocabulary = load_vocabulary(name)
    assert len(vocabulary) > 0 and len(set(vocabulary.names)) == len(vocabulary)
