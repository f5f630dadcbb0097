"""Class embeddings built from prompts (ovdense/text/embeddings.py: build_class_embeddings,
PromptTokens) when prompts are cut by the text tower's context length: classes that get the
same tokens are named, one warning per vocabulary, and a streamed build equals the one-pass
build (a tiny native CLIP tower and a tiny RoBERTa tower)."""
import warnings

import pytest
import torch

from ovdense.testing import tiny_roberta_dir, tiny_text_tower_cfg
from ovdense.text import PromptStyle, TextTower, build_class_embeddings, load_vocabulary
from ovdense.text.embeddings import PromptTokens, ensemble_prompts


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
