"""Vocabulary inputs that used to fail badly or silently: YAML alias bombs, names the text
tower reads alike, and prompts cut by the text tower's context length."""
import tracemalloc
import warnings

import pytest
import torch

from ovdense.testing import tiny_roberta_dir, tiny_text_tower_cfg
from ovdense.text import (PromptStyle, TextTower, VocabularyError, build_class_embeddings,
                          builtin_names, load_vocabulary)
from ovdense.text.embeddings import PromptTokens, ensemble_prompts

# -- 1. YAML alias bombs -----------------------------------------------------------------
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


# -- 2. names the text tower reads alike ----------------------------------------------------
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


# -- 3. prompts cut by the context length ---------------------------------------------------
CONTEXT = 8  # tokens, with the start and end tokens
LONG = 'a very long red circle shape with {}'  # the cut falls inside it at CONTEXT
STYLE = PromptStyle.build('single', use_descriptions=False)


@pytest.fixture(scope='module', params=['clip', 'roberta'])
def short_tower(request, tmp_path_factory):
    """A tiny native CLIP tower or a tiny RoBERTa tower, both reading CONTEXT tokens."""
    directory = str(tmp_path_factory.mktemp(request.param))
    if request.param == 'clip':
        return TextTower(**tiny_text_tower_cfg(directory, context_length=CONTEXT))
    return TextTower('icar-roberta-base', hf_dir=tiny_roberta_dir(directory),
                     context_length=CONTEXT)


def _embed_recording_warnings(tower, names):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        embeddings = build_class_embeddings(tower, load_vocabulary(names), STYLE)
    return embeddings, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_classes_that_differ_only_after_the_cut_are_named(short_tower):
    names = [LONG.format('dots'), 'blue ring', LONG.format('stripes')]
    _, messages = _embed_recording_warnings(short_tower, names)
    twins = [m for m in messages if 'get the same tokens' in m]
    assert len(twins) == 1, messages
    message = twins[0]
    assert message.startswith(f"vocabulary '<list>': classes {names[0]!r} (#0) and "
                              f'{names[2]!r} (#2) get the same tokens for every prompt')
    assert f'2 of their 2 prompts are longer than the text tower\'s context length of ' \
           f'{CONTEXT} tokens' in message, message


def test_cut_prompts_give_one_warning_per_vocabulary(short_tower):
    names = [f'{colour} circle shape with dots and stripes' for colour in
             ('red', 'green', 'blue', 'yellow')] + ['ring']
    embeddings, messages = _embed_recording_warnings(short_tower, names)
    assert embeddings.shape[0] == len(names)
    assert len(messages) == 1, messages
    assert f'4 of 5 prompts are longer than its context length ({CONTEXT} tokens)' \
           in messages[0], messages[0]


def test_prompts_that_fit_give_no_warning(short_tower):
    _, messages = _embed_recording_warnings(short_tower, ['red', 'blue', 'ring'])
    assert messages == []


def test_cut_texts_agrees_with_the_untruncated_lengths(short_tower):
    """Texts of every length around the context, the exact fit included."""
    # words of the tiny tokenizers' corpus: one token each, so every length occurs
    words = 'person bicycle car motorcycle airplane bus train truck boat traffic light'.split()
    texts = [' '.join(words[:n]) for n in range(1, len(words) + 1)]
    wide = short_tower.tokenizer(texts, context_length=64)
    lengths = (wide != short_tower._pad_token_id()).sum(1).tolist()
    assert CONTEXT in lengths  # one text fills the context exactly: it is not cut
    expected = [i for i, length in enumerate(lengths) if length > CONTEXT]
    tokens = short_tower.tokenizer(texts)
    assert short_tower.cut_texts(texts, tokens) == expected


def test_classes_with_the_same_prompts_are_named_when_nothing_is_cut(short_tower):
    """Synonyms swapped between two classes: the same prompts, so one embedding."""
    vocabulary = load_vocabulary([{'name': 'red', 'synonyms': ['blue']},
                                  {'name': 'blue', 'synonyms': ['red']}, 'car'])
    style = PromptStyle.build('single')
    with pytest.warns(UserWarning, match=r"classes 'red' \(#0\) and 'blue' \(#1\) get "
                                         'the same tokens.*none of their 2 prompts'):
        PromptTokens(short_tower, vocabulary, style)
    prompts, per_class = ensemble_prompts(vocabulary, style)
    assert sorted(per_class[0]) == sorted(per_class[1])  # why: the same prompt strings


def test_streamed_build_equals_the_one_pass_build_and_warns_once(short_tower, monkeypatch):
    """A large vocabulary is tokenised and encoded a slice at a time (bounded memory); the
    result equals the all-at-once build, long prompts still give one warning per vocabulary,
    and twins are found across slices."""
    import ovdense.text.embeddings as embeddings_module
    names = [f'{colour} circle shape with dots and stripes'
             for colour in ('red', 'green', 'blue', 'yellow')] + ['ring', 'blue ring', 'car',
                                                                  LONG.format('dots'),
                                                                  LONG.format('stripes')]
    vocabulary = load_vocabulary([{'name': n, 'synonyms': [n + ' again']} for n in names])
    style = PromptStyle.build(['a {}.', 'a photo of a {}.'], use_descriptions=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        whole = build_class_embeddings(short_tower, vocabulary, style,
                                       prompt_tokens=PromptTokens(short_tower, vocabulary,
                                                                  style))
    monkeypatch.setattr(embeddings_module, 'STREAM_PROMPTS', 5)  # 36 prompts: 8 slices
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        streamed = build_class_embeddings(short_tower, vocabulary, style)
    torch.testing.assert_close(streamed, whole, rtol=0, atol=1e-6)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len([m for m in messages if 'prompts are longer than its context' in m]) == 1
    twins = [m for m in messages if 'get the same tokens' in m]
    assert len(twins) == 1 and f'{names[7]!r} (#7) and {names[8]!r} (#8)' in twins[0], messages
