"""The BALLAD detection demo (issue 19): the long-tailed demo data, class-balanced sampling in the
shipped phase-B config, and phase A -> phase B through tools/train.py."""
import collections
import json
import math
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from ovdense.checkpoints import read_checkpoint
from ovdense.demo.data import (DET_CLASSES, F_MIN_IMAGES, R_MAX_IMAGES,
                                        make_demo_data)
from ovdense.demo.text_tower import prepare_demo_text_tower
from ovdense.testing.configs import REPO

sys.path.insert(0, REPO + '/tools')
from run_demo import data_options, schedule_options  # noqa: E402

PHASE_A = 'configs/demo/mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis-lt.py'
PHASE_B = 'configs/demo/ballad_mask-rcnn_icar-swin-nano_fpn_100i_ovdense-demo-lvis-lt.py'
# Detection at its default sizes (the long tail is a property of them); the rest tiny.
OTHER_TASKS_TINY = {'seg_train': 2, 'seg_val': 2, 'video_train_per_class': 1,
                    'video_val_per_class': 1}
ADAPTER_KEYS = ['roi_head.bbox_head.fc_cls.adapter.linear.bias',
                'roi_head.bbox_head.fc_cls.adapter.linear.weight']


@pytest.fixture(scope='module')
def long_tailed(tmp_path_factory):
    paths = make_demo_data(str(tmp_path_factory.mktemp('ballad') / 'data'),
                           sizes=OTHER_TASKS_TINY, profile='long-tailed')
    prepare_demo_text_tower(paths['root'])
    return paths


def _load(path):
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _classes_per_image(ann_file):
    classes = collections.defaultdict(set)
    for ann in _load(ann_file)['annotations']:
        classes[ann['image_id']].add(ann['category_id'])
    return classes


def test_long_tailed_profile_sees_every_class_with_lvis_frequencies(long_tailed):
    per_image = _classes_per_image(long_tailed['lvis_train_ann'])
    images = collections.Counter(c for ids in per_image.values() for c in ids)
    assert sorted(images) == list(range(1, len(DET_CLASSES) + 1))  # every class is seen

    def lvis_rule(count):
        return 'r' if count <= R_MAX_IMAGES else 'c' if count <= F_MIN_IMAGES else 'f'

    categories = _load(long_tailed['lvis_train_ann'])['categories']
    assert [c['frequency'] for c in categories] == [lvis_rule(images[c['id']])
                                                    for c in categories]
    assert [c['frequency'] for c in _load(long_tailed['vocab_det'])['classes']] == \
        [c['frequency'] for c in categories]
    tiers = collections.Counter(c['frequency'] for c in categories)
    assert tiers['r'] >= 8 and tiers['c'] >= 8 and tiers['f'] >= 4, tiers
    manifest = _load(long_tailed['manifest'])
    assert manifest['profile'] == 'long-tailed' and manifest['det']['novel_classes'] == []
    # validation is balanced: every class has enough instances for its AP to mean something
    val = collections.Counter(a['category_id']
                              for a in _load(long_tailed['lvis_val_ann'])['annotations'])
    assert min(val[i] for i in range(1, len(DET_CLASSES) + 1)) >= 5


def test_phase_b_draws_tail_classes_at_the_lvis_repeat_factors(long_tailed):
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    import ovdense  # noqa: F401  (registers the datasets)
    init_default_scope('mmdet')  # ClassBalancedDataset builds the inner dataset by scope
    cfg = Config.fromfile(osp.join(REPO, PHASE_B)).train_dataloader.dataset
    assert cfg.type == 'ClassBalancedDataset'
    cfg.dataset.data_root = long_tailed['lvis_root'] + '/'
    cfg.dataset.pipeline = []
    dataset = DATASETS.build(cfg)

    # expected from the annotation file alone: r(c) = max(1, sqrt(t / f(c))), each image drawn
    # ceil(max over its classes of r(c)) times
    per_image = _classes_per_image(long_tailed['lvis_train_ann'])
    image_ids = [dataset.dataset.get_data_info(i)['img_id'] for i in range(len(dataset.dataset))]
    images_of = collections.Counter(c for i in image_ids for c in per_image[i])
    repeat = {c: max(1.0, math.sqrt(cfg.oversample_thr * len(image_ids) / n))
              for c, n in images_of.items()}
    expected = {i: math.ceil(max(repeat[c] for c in per_image[i])) for i in image_ids}
    drawn = collections.Counter(image_ids[j] for j in dataset.repeat_indices)
    assert drawn == expected
    assert len(dataset) == sum(expected.values())

    def share(weights, frequency):
        ids = {c['id'] for c in _load(long_tailed['lvis_train_ann'])['categories']
               if c['frequency'] == frequency}
        total = sum(len(per_image[i]) * w for i, w in weights.items())
        return sum(len(per_image[i] & ids) * w for i, w in weights.items()) / total

    plain = dict.fromkeys(image_ids, 1)
    assert share(drawn, 'r') >= 2.5 * share(plain, 'r')  # the tail's share of the draws
    assert share(drawn, 'f') < share(plain, 'f')


def _train(config, work_dir, data_root, *options, wrapped_train_set=False):
    """tools/train.py for 2 iterations with every data path of the config under
    ``data_root`` (as ``make demo`` points its configs; the runner builds the val loop too).
    ``wrapped_train_set``: the training set sits inside a dataset wrapper."""
    paths = data_options(data_root)
    if wrapped_train_set:
        paths = [p.replace('train_dataloader.dataset.', 'train_dataloader.dataset.dataset.')
                 for p in paths]
    command = [sys.executable, 'tools/train.py', config, '--work-dir', str(work_dir),
               '--cfg-options', *paths, *schedule_options(2), 'train_dataloader.batch_size=2',
               'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
               *options]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result, read_checkpoint(str(work_dir / 'iter_2.pth'))['state_dict']


@pytest.mark.slow
def test_phase_a_then_phase_b_with_the_shipped_configs(long_tailed, tmp_path):
    _, phase_a = _train(PHASE_A, tmp_path / 'a', long_tailed['root'])
    assert not any('.adapter.' in key for key in phase_a)
    result, phase_b = _train(PHASE_B, tmp_path / 'b', long_tailed['root'],
                             f'load_from={tmp_path / "a" / "iter_2.pth"}',
                             wrapped_train_set=True)
    assert 'TrainOnlyHook: training 2 parameter tensors' in result.stdout + result.stderr
    assert sorted(set(phase_b) - set(phase_a)) == ADAPTER_KEYS
    changed = [key for key in phase_a if not torch.equal(phase_a[key], phase_b[key])]
    assert changed == []  # every phase-A tensor is exactly as loaded
    weight = phase_b[ADAPTER_KEYS[1]]
    assert not torch.equal(weight, torch.eye(weight.shape[0]))  # the adapter did train
