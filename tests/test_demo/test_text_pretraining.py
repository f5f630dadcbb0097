"""The action demo's text-only pretraining (ovdense.demo.text_tower.pretrain_bag_of_words):
a from-scratch tower embeds every action alike; after it, actions sharing a colour or a motion
word are near, others far, and an unseen pair of seen words lands where its words point."""
import os

import pytest
import torch

from ovdense.demo.data import ACTION_CLASSES, NOVEL_ACTIONS, make_demo_data
from ovdense.demo.text_tower import (ACTION_PROMPTS, prepare_demo_text_tower,
                                     pretrain_bag_of_words)
from ovdense.text import PromptStyle, TextTower, load_vocabulary

STEPS = 200
TINY = dict(det_train=1, det_val=1, seg_train=1, seg_val=1, video_train_per_class=1,
            video_val_per_class=1)


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('pretrain') / 'data')
    make_demo_data(root, sizes=TINY)
    tower_dir = prepare_demo_text_tower(root)
    out = os.path.join(root, 'words.pth')
    pretrain_bag_of_words(tower_dir, os.path.join(root, 'vocab_action.json'), out, steps=STEPS)
    return dict(root=root, tower_dir=tower_dir, out=out)


def _class_embeddings(tower_dir, vocabulary, checkpoint=None):
    tower = TextTower(model='icar-roberta-nano', hf_dir=tower_dir, checkpoint=checkpoint).eval()
    style = PromptStyle.build(**ACTION_PROMPTS)
    with torch.no_grad():
        rows = [tower(style.class_prompts(entry)).mean(0) for entry in load_vocabulary(vocabulary)]
    return torch.nn.functional.normalize(torch.stack(rows), dim=-1)


def _pairs(share_colour, share_motion):
    parts = [name.split('_', 1) for name in ACTION_CLASSES]
    return [(i, j) for i in range(len(parts)) for j in range(len(parts)) if i < j
            and (parts[i][0] == parts[j][0]) == share_colour
            and (parts[i][1] == parts[j][1]) == share_motion]


def test_shared_words_are_near_and_unseen_pairs_compose(demo):
    vocabulary = os.path.join(demo['root'], 'vocab_action.json')
    before = _class_embeddings(demo['tower_dir'], vocabulary)
    after = _class_embeddings(demo['tower_dir'], vocabulary, checkpoint=demo['out'])

    def mean_cos(emb, pairs):
        return float(torch.stack([emb[i] @ emb[j] for i, j in pairs]).mean())

    unrelated = _pairs(False, False)
    assert mean_cos(before, unrelated) > 0.9   # from scratch: every action embeds alike
    assert mean_cos(after, unrelated) < 0.5
    for related in (_pairs(True, False), _pairs(False, True)):
        assert mean_cos(after, related) > mean_cos(after, unrelated) + 0.15
    # a novel action = its colour's base action + another colour's action of its motion
    # - that colour's base action of the first motion: its own name is the nearest class
    index = {name: i for i, name in enumerate(ACTION_CLASSES)}
    base = [name for name in ACTION_CLASSES if name not in NOVEL_ACTIONS]
    hits = 0
    for name in NOVEL_ACTIONS:
        colour, motion = name.split('_', 1)
        other = next(b.split('_', 1)[0] for b in base
                     if b.endswith(motion) and not b.startswith(colour))
        pivot = next(b.split('_', 1)[1] for b in base if b.startswith(colour + '_')
                     and f'{other}_{b.split("_", 1)[1]}' in base)
        query = (after[index[f'{colour}_{pivot}']] + after[index[f'{other}_{motion}']]
                 - after[index[f'{other}_{pivot}']])
        scores = after @ query
        for used in (f'{colour}_{pivot}', f'{other}_{motion}', f'{other}_{pivot}'):
            scores[index[used]] = -1
        hits += ACTION_CLASSES[int(scores.argmax())] == name
    assert hits >= len(NOVEL_ACTIONS) - 1


def test_deterministic_and_leaves_the_global_generator_alone(demo, tmp_path):
    vocabulary = os.path.join(demo['root'], 'vocab_action.json')
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    again = pretrain_bag_of_words(demo['tower_dir'], vocabulary, str(tmp_path / 'again.pth'),
                                  steps=STEPS)
    assert torch.equal(torch.rand(3), expected_draw)
    first = torch.load(demo['out'], weights_only=True)
    second = torch.load(again, weights_only=True)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_nothing_to_learn_is_one_line_and_writes_nothing(demo, tmp_path):
    out = tmp_path / 'none.pth'
    with pytest.raises(ValueError, match='no class phrase has a word of its own'):
        pretrain_bag_of_words(demo['tower_dir'], os.path.join(demo['root'], 'vocab_action.json'),
                              str(out), steps=1, max_share=0.0)
    assert not out.exists() and os.listdir(tmp_path) == []
