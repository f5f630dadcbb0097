"""The synthetic demo dataset generator (ovdense/demo/data.py): deterministic bytes, class
lists, LVIS / ADE / video files that the OpenMMLab loaders read, vocabularies, and safe
reuse (tiny sizes, CPU, a few seconds)."""
import hashlib
import json
import os

import cv2
import lvis
import numpy as np
import PIL.Image as PIL_Image
import pycocotools.mask as mask_utils
import pytest

from ovdense.demo import data as demo_data
from ovdense.demo.data import (ACTION_CLASSES, BASE_CLASSES, COLOURS, DET_CLASSES,
                               IMAGE_SIZE, MOTIONS, NOVEL_ACTIONS, NOVEL_CLASSES, SEG_CLASSES,
                               SHAPES, VIDEO_FRAMES, VIDEO_SIZE, make_demo_data)
from ovdense.testing.optional import require_mmaction

# det_val >= len(NOVEL_CLASSES): the round-robin first object puts every novel class in val.
TINY = dict(det_train=8, det_val=6, seg_train=4, seg_val=6, video_train_per_class=1,
            video_val_per_class=1)


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    return make_demo_data(str(tmp_path_factory.mktemp('demo') / 'data'), seed=0, sizes=TINY)


def _load_json(path):
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _tree_hashes(root):
    hashes = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, 'rb') as f:
                hashes[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return hashes


def _tree_stats(root):
    stats = {}
    for folder, _, files in os.walk(root):
        for name in files:
            st = os.stat(os.path.join(folder, name))
            stats[os.path.join(folder, name)] = (st.st_mtime_ns, st.st_ino)
    return stats


def _polygon_area(flat):
    x, y = np.asarray(flat[0::2]), np.asarray(flat[1::2])
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


# ----------------------------------------------------------------------------- determinism

def test_same_seed_gives_identical_bytes_and_other_seed_differs(demo, tmp_path):
    again = make_demo_data(str(tmp_path / 'again'), seed=0, sizes=TINY)
    reference = _tree_hashes(demo['root'])
    assert len(reference) > 40
    assert _tree_hashes(again['root']) == reference

    other = _tree_hashes(make_demo_data(str(tmp_path / 'other'), seed=1, sizes=TINY)['root'])
    assert set(other) == set(reference)  # same layout ...
    differing = [p for p in reference if other[p] != reference[p]]
    assert any(p.endswith('.jpg') for p in differing)  # ... different content
    assert any(p.endswith('.mp4') for p in differing)


# ----------------------------------------------------------------------------- class lists

def test_class_lists_are_compositional_with_covered_novel_set():
    assert len(DET_CLASSES) == len(COLOURS) * len(SHAPES) == len(set(DET_CLASSES))
    assert set(NOVEL_CLASSES) < set(DET_CLASSES)
    assert len(NOVEL_CLASSES) == len(COLOURS)
    assert set(BASE_CLASSES) == set(DET_CLASSES) - set(NOVEL_CLASSES)
    # Every word of a novel name must be learnable from base classes.
    assert {name.split('_')[0] for name in BASE_CLASSES} == set(COLOURS)
    assert {name.split('_')[1] for name in BASE_CLASSES} == set(SHAPES)
    assert SEG_CLASSES == DET_CLASSES


# ----------------------------------------------------------------------------- LVIS detection

def test_lvis_api_loads_both_splits(demo):
    for key, count in (('lvis_train_ann', TINY['det_train']), ('lvis_val_ann', TINY['det_val'])):
        api = lvis.LVIS(demo[key])
        assert len(api.get_img_ids()) == count
        assert api.get_cat_ids() == list(range(1, len(DET_CLASSES) + 1))
        assert len(api.get_ann_ids()) > 0


def test_lvis_files_follow_the_lvis_v1_schema(demo):
    train = _load_json(demo['lvis_train_ann'])
    val = _load_json(demo['lvis_val_ann'])
    assert train['categories'] == val['categories']
    ids = [img['id'] for img in train['images'] + val['images']]
    assert len(set(ids)) == len(ids)  # train and val ids are disjoint, as in LVIS
    for split, data in (('train', train), ('val', val)):
        for img in data['images']:
            assert 'file_name' not in img
            assert img['coco_url'] == (f'http://images.cocodataset.org/{split}2017/'
                                       f'{img["id"]:012d}.jpg')
            assert os.path.isfile(os.path.join(demo['lvis_root'], f'{split}2017',
                                               f'{img["id"]:012d}.jpg'))
            assert img['not_exhaustive_category_ids'] == []
            present = {a['category_id'] for a in data['annotations']
                       if a['image_id'] == img['id']}
            assert set(img['neg_category_ids']) == set(range(1, 31)) - present
    for cat in train['categories']:
        assert cat['name'] == DET_CLASSES[cat['id'] - 1]
        assert cat['synset'] == cat['name'] + '.n.01'
        assert cat['def'] and cat['synonyms'][0] == cat['name'].replace('_', ' ')


def test_novel_classes_absent_from_train_and_present_in_val(demo):
    train = _load_json(demo['lvis_train_ann'])
    val = _load_json(demo['lvis_val_ann'])
    novel_ids = {DET_CLASSES.index(name) + 1 for name in NOVEL_CLASSES}
    assert not novel_ids & {a['category_id'] for a in train['annotations']}
    assert novel_ids <= {a['category_id'] for a in val['annotations']}
    counts = {}
    for ann in train['annotations']:
        counts[ann['category_id']] = counts.get(ann['category_id'], 0) + 1
    for cat in train['categories']:
        assert (cat['frequency'] == 'r') == (cat['id'] in novel_ids)
        assert cat['instance_count'] == counts.get(cat['id'], 0)
        if cat['id'] in novel_ids:
            assert cat['image_count'] == 0


def test_boxes_enclose_polygons_and_areas_are_consistent(demo):
    for key in ('lvis_train_ann', 'lvis_val_ann'):
        annotations = _load_json(demo[key])['annotations']
        assert annotations
        for ann in annotations:
            x, y, w, h = ann['bbox']
            assert ann['area'] > 0 and w >= 1 and h >= 1
            assert 0 <= x and 0 <= y and x + w <= IMAGE_SIZE and y + h <= IMAGE_SIZE
            assert ann['area'] <= w * h
            assert ann['segmentation']
            for poly in ann['segmentation']:
                assert len(poly) >= 6 and len(poly) % 2 == 0
                xs, ys = np.asarray(poly[0::2]), np.asarray(poly[1::2])
                assert xs.min() >= x and xs.max() <= x + w
                assert ys.min() >= y and ys.max() <= y + h
            # Polygons sit 1/8 px inside the mask's pixel edges: very slightly smaller.
            poly_area = sum(_polygon_area(p) for p in ann['segmentation'])
            assert 0.8 * ann['area'] <= poly_area <= ann['area']


def test_polygons_rasterise_back_to_the_annotated_area(demo):
    for ann in _load_json(demo['lvis_val_ann'])['annotations']:
        rle = mask_utils.merge(mask_utils.frPyObjects(ann['segmentation'], IMAGE_SIZE,
                                                      IMAGE_SIZE))
        mask = mask_utils.decode(rle).astype(bool)
        assert mask.sum() == ann['area']  # what mmdet and LVIS evaluation will see
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann['bbox']
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)


def test_mmdet_lvis_v1_dataset_loads(demo):
    from mmdet.datasets import LVISV1Dataset
    dataset = LVISV1Dataset(
        data_root=demo['lvis_root'], ann_file='annotations/lvis_v1_val.json',
        data_prefix=dict(img=''), metainfo=dict(classes=DET_CLASSES), test_mode=False,
        pipeline=[])
    assert len(dataset) == TINY['det_val']
    item = dataset[0]
    assert os.path.isfile(item['img_path'])
    assert item['instances']
    for inst in item['instances']:
        x1, y1, x2, y2 = inst['bbox']
        assert 0 <= x1 < x2 <= IMAGE_SIZE and 0 <= y1 < y2 <= IMAGE_SIZE
        assert 0 <= inst['bbox_label'] < len(DET_CLASSES)
        assert inst['mask']


# ----------------------------------------------------------------------------- ADE segmentation

def test_ade_label_maps_hold_only_allowed_classes(demo):
    novel_labels = {SEG_CLASSES.index(name) + 1 for name in NOVEL_CLASSES}
    seen_val = set()
    for folder, count in (('training', TINY['seg_train']), ('validation', TINY['seg_val'])):
        maps = sorted(os.listdir(os.path.join(demo['ade_root'], 'annotations', folder)))
        images = sorted(os.listdir(os.path.join(demo['ade_root'], 'images', folder)))
        assert len(maps) == count
        assert [m[:-4] for m in maps] == [i[:-4] for i in images]
        for name in maps:
            labels = np.asarray(PIL_Image.open(
                os.path.join(demo['ade_root'], 'annotations', folder, name)))
            assert labels.dtype == np.uint8 and labels.shape == (IMAGE_SIZE, IMAGE_SIZE)
            values = set(np.unique(labels).tolist())
            assert 0 in values and values <= set(range(len(SEG_CLASSES) + 1))
            if folder == 'training':
                assert not values & novel_labels
            else:
                seen_val |= values
    assert novel_labels <= seen_val


def test_mmseg_base_seg_dataset_loads(demo):
    from mmseg.datasets import BaseSegDataset
    dataset = BaseSegDataset(
        data_root=demo['ade_root'],
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
        metainfo=dict(classes=SEG_CLASSES), pipeline=[])
    assert len(dataset) == TINY['seg_train']
    item = dataset[0]
    assert os.path.isfile(item['img_path']) and os.path.isfile(item['seg_map_path'])
    assert item['reduce_zero_label'] is True


# ----------------------------------------------------------------------------- videos

def _read_frames(path):
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def _video_list(demo, split):
    with open(demo[f'video_{split}_list'], encoding='utf-8') as f:
        return [line.split() for line in f.read().splitlines()]


def test_novel_actions_have_no_training_clip_and_every_action_a_test_clip(demo):
    novel = {ACTION_CLASSES.index(name) for name in NOVEL_ACTIONS}
    base = set(range(len(ACTION_CLASSES))) - novel
    train = [int(label) for _, label in _video_list(demo, 'train')]
    assert set(train) == base and len(train) == TINY['video_train_per_class'] * len(base)
    assert {int(label) for _, label in _video_list(demo, 'val')} == base | novel
    # one novel action per motion and each motion seen in the other colours; the
    # vocabulary marks the split that the configs select with novel_classes='novel'
    motions = [name.split('_', 1)[1] for name in NOVEL_ACTIONS]
    assert sorted(motions) == sorted(MOTIONS)
    vocab = _load_json(demo['vocab_action'])['classes']
    assert {c['name'] for c in vocab if c['split'] == 'novel'} == set(NOVEL_ACTIONS)


def test_video_lists_and_clips_read_back(demo):
    for split in ('train', 'val'):
        lines = _video_list(demo, split)
        labels = {int(label) for _, label in lines}
        assert len(lines) == TINY[f'video_{split}_per_class'] * len(labels)
        for relative, _ in lines:
            assert relative.startswith(f'{split}/') and relative.endswith('.mp4')
            frames = _read_frames(os.path.join(demo['video_root'], relative))
            assert len(frames) == VIDEO_FRAMES
            assert frames[0].shape == (VIDEO_SIZE, VIDEO_SIZE, 3)
            # Something moves or changes: the clip is not a still image.
            assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1


def test_mmaction_video_dataset_loads(demo):
    require_mmaction()
    from mmaction.datasets import VideoDataset
    dataset = VideoDataset(ann_file=demo['video_train_list'],
                           data_prefix=dict(video=demo['video_root']), pipeline=[])
    base = len(ACTION_CLASSES) - len(NOVEL_ACTIONS)
    assert len(dataset) == TINY['video_train_per_class'] * base
    assert os.path.isfile(dataset[0]['filename'])


# ----------------------------------------------------------------------------- vocabularies

def test_vocabularies_and_manifest(demo):
    expected = {'vocab_det': DET_CLASSES, 'vocab_seg': SEG_CLASSES,
                'vocab_action': ACTION_CLASSES}
    for key, names in expected.items():
        vocab = _load_json(demo[key])
        assert vocab['source'] == 'ovdense demo generator' and vocab['name']
        assert [c['name'] for c in vocab['classes']] == list(names)
        for cls in vocab['classes']:
            assert cls['synonyms'] and cls['description']
    det = _load_json(demo['vocab_det'])
    from ovdense.text.vocabulary import load_vocabulary
    vocabulary = load_vocabulary(demo['vocab_det'])
    assert vocabulary.names == DET_CLASSES
    assert vocabulary[0].phrases[0] == DET_CLASSES[0].replace('_', ' ')
    assert {c['name'] for c in det['classes'] if c['frequency'] == 'r'} == set(NOVEL_CLASSES)
    manifest = _load_json(demo['manifest'])
    assert manifest['seed'] == 0 and manifest['sizes'] == {**demo_data.DEFAULT_SIZES, **TINY}
    assert manifest['det']['novel_classes'] == list(NOVEL_CLASSES)
    assert manifest['action']['classes'] == list(ACTION_CLASSES)


# ----------------------------------------------------------------------------- reuse & safety

def test_reuse_does_not_rewrite_and_force_regenerates(tmp_path):
    root = str(tmp_path / 'data')
    paths = make_demo_data(root, sizes=TINY)
    before = _tree_stats(root)
    assert make_demo_data(root, sizes=TINY) == paths
    assert _tree_stats(root) == before

    make_demo_data(root, sizes=TINY, force=True)
    after = _tree_stats(root)
    assert set(after) == set(before)
    assert all(after[p][1] != before[p][1] for p in before)  # every file is a new one

    make_demo_data(root, seed=3, sizes=TINY)  # a different request replaces the old copy
    assert _load_json(paths['manifest'])['seed'] == 3
    assert [p for p in os.listdir(tmp_path) if p != 'data'] == []  # no staging leftovers


def test_refuses_to_overwrite_a_foreign_directory(tmp_path):
    root = tmp_path / 'precious'
    root.mkdir()
    (root / 'notes.txt').write_text('keep me')
    with pytest.raises(FileExistsError):
        make_demo_data(str(root), sizes=TINY)
    assert (root / 'notes.txt').read_text() == 'keep me'


def test_interrupted_run_leaves_no_partial_dataset(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_data, '_write_videos', fail)
    with pytest.raises(KeyboardInterrupt):
        make_demo_data(str(tmp_path / 'data'), sizes=TINY)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('sizes', [dict(det_train=0), dict(unknown=3), dict(det_val=2.5)])
def test_rejects_bad_sizes(tmp_path, sizes):
    with pytest.raises(ValueError):
        make_demo_data(str(tmp_path / 'data'), sizes=sizes)
