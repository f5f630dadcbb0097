"""Sanity checks for the vocabulary / prompt-template data files shipped in
``ovdense/resources``.

These tests are CPU-only and fast. The class lists are checked against the installed
OpenMMLab packages (required dependencies: a broken install fails these tests).
"""
import collections
import hashlib
import importlib
import importlib.util
import json
import os

import pytest

# Locate the package without importing it (``import ovdense`` registers
# components into the OpenMMLab registries, which these data tests do not need).
_SPEC = importlib.util.find_spec('ovdense')
RESOURCES = os.path.join(list(_SPEC.submodule_search_locations)[0],
                         'resources')
VOCAB_DIR = os.path.join(RESOURCES, 'vocabularies')
TEMPLATE_DIR = os.path.join(RESOURCES, 'templates')

EXPECTED_VOCAB_SIZES = {
    'coco': 80,
    'lvis_v1': 1203,
    'ade20k_150': 150,
    'ade20k_847': 847,
    'pascal_context_59': 59,
    'pascal_context_459': 459,
    'coco_stuff_171': 171,
    'kinetics_400': 400,
    'ov_coco_split': 65,
}

EXPECTED_TEMPLATE_COUNTS = {
    'single': 1,
    'vild': 14,
    'imagenet': 80,
    'action': 16,
}

# (vocabulary, module, dataset class) whose METAINFO['classes'] must equal
# the vocabulary names, in order.
METAINFO_SOURCES = [
    ('coco', 'mmdet.datasets', 'CocoDataset'),
    ('lvis_v1', 'mmdet.datasets', 'LVISV1Dataset'),
    ('ade20k_150', 'mmseg.datasets', 'ADE20KDataset'),
    ('pascal_context_59', 'mmseg.datasets', 'PascalContextDataset59'),
    ('coco_stuff_171', 'mmseg.datasets', 'COCOStuffDataset'),
]


def _load_vocab(name):
    with open(os.path.join(VOCAB_DIR, name + '.json'), encoding='utf-8') as f:
        return json.load(f)


def _load_templates(name):
    with open(os.path.join(TEMPLATE_DIR, name + '.txt'),
              encoding='utf-8') as f:
        return [line.rstrip('\n') for line in f if line.strip()]


def test_no_unexpected_files():
    vocab_files = sorted(f[:-5] for f in os.listdir(VOCAB_DIR)
                         if f.endswith('.json'))
    assert vocab_files == sorted(EXPECTED_VOCAB_SIZES)
    template_files = sorted(f[:-4] for f in os.listdir(TEMPLATE_DIR)
                            if f.endswith('.txt'))
    assert template_files == sorted(EXPECTED_TEMPLATE_COUNTS)


@pytest.mark.parametrize('name', sorted(EXPECTED_VOCAB_SIZES))
def test_vocabulary_format(name):
    vocab = _load_vocab(name)
    assert vocab['name'] == name
    assert isinstance(vocab['source'], str) and vocab['source']
    classes = vocab['classes']
    assert len(classes) == EXPECTED_VOCAB_SIZES[name]
    names = [c['name'] for c in classes]
    assert all(isinstance(n, str) and n.strip() for n in names)
    assert len(set(names)) == len(names), 'class names must be unique'
    for c in classes:
        allowed = {'name', 'synonyms', 'description'}
        if name == 'lvis_v1':
            allowed.add('frequency')
        if name == 'ov_coco_split':
            allowed.add('split')
        assert set(c) <= allowed, (name, c['name'], set(c) - allowed)
        assert isinstance(c.get('synonyms', []), list)
        assert all(isinstance(s, str) and s for s in c.get('synonyms', []))
        assert isinstance(c.get('description', ''), str)


def test_lvis_frequency_split():
    classes = _load_vocab('lvis_v1')['classes']
    counts = collections.Counter(c['frequency'] for c in classes)
    assert counts == {'r': 337, 'c': 461, 'f': 405}
    # every LVIS category has its official definition and synonyms
    assert all(c['description'] for c in classes)
    assert all(c['synonyms'] for c in classes)
    assert classes[0]['name'] == 'aerosol_can'
    assert classes[0]['description'] == (
        'a dispenser that holds a substance under pressure')


def test_coco_descriptions():
    classes = _load_vocab('coco')['classes']
    described = [c for c in classes if c['description']]
    assert len(described) == 80
    person = classes[0]
    assert person['name'] == 'person'
    assert person['description'] == 'a human being'


@pytest.mark.parametrize('vocab_name,module,cls_name', METAINFO_SOURCES)
def test_names_match_installed_metainfo(vocab_name, module, cls_name):
    dataset_cls = getattr(importlib.import_module(module), cls_name)  # required packages
    expected = list(dataset_cls.METAINFO['classes'])
    names = [c['name'] for c in _load_vocab(vocab_name)['classes']]
    assert names == expected


# sha256 of the 400 Kinetics-400 names joined by newlines, in label order (mmaction2's
# tools/data/kinetics/label_map_k400.txt, which the mmaction2 wheel does not ship; checked
# name by name against an independent copy of the official list).
KINETICS_400_SHA256 = 'a8dafb93a1204d4ecfa904f943ce5ee0c62ddeeb1df71aa1f96983fca17d777e'


def test_kinetics_400_names_are_in_label_order():
    names = [c['name'] for c in _load_vocab('kinetics_400')['classes']]
    assert len(names) == 400
    assert hashlib.sha256('\n'.join(names).encode()).hexdigest() == KINETICS_400_SHA256
    # where an mmaction2 source install ships the label map, compare with it as well
    spec = importlib.util.find_spec('mmaction')
    if spec is not None and spec.origin:
        path = os.path.join(os.path.dirname(spec.origin), '.mim', 'tools', 'data', 'kinetics',
                            'label_map_k400.txt')
        if os.path.isfile(path):
            with open(path, encoding='utf-8') as f:
                assert names == [line.strip() for line in f if line.strip()]


@pytest.mark.parametrize('name', sorted(EXPECTED_TEMPLATE_COUNTS))
def test_templates(name):
    templates = _load_templates(name)
    assert len(templates) == EXPECTED_TEMPLATE_COUNTS[name]
    for t in templates:
        assert t.count('{}') == 1, t
        assert t.count('{') == 1 and t.count('}') == 1, t
        assert t.format('cat')


def test_template_values():
    assert _load_templates('single') == ['a {}.']
    imagenet = _load_templates('imagenet')
    assert imagenet[0] == 'a bad photo of a {}.'
    assert imagenet[-1] == 'a tattoo of the {}.'
    vild = _load_templates('vild')
    assert vild[0] == 'a photo of a {}.'
    assert vild[-1] == 'There is a large {} in the scene.'
    action = _load_templates('action')
    assert action[0] == 'a photo of action {}'
    assert action[-1] == 'The woman is {}'
