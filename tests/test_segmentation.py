"""Semantic segmentation: every shipped mmseg config trains one step and predicts at tiny
size; the text classifier on stock decode heads; A-847 / PC-459 loading; end to end with
tools/train.py, tools/test.py (IoUMetric, --vocab) and tools/demo.py on tiny demo data."""
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

import ovdense  # noqa: F401
from ovdense.apis import set_model_vocabulary
from ovdense.apis.vocabulary import text_classifiers
from ovdense.datasets import (ADE20K847Dataset, LoadUInt16SegAnnotations,
                              PascalContext459Dataset, VocabSegDataset, ZeroLabelAsBackground)
from ovdense.models.decode_heads import TextUPerHead, text_decode_head
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.configs import (REPO, load_tool, parameters_without_gradient,
                                     shipped_configs, shrink_config, tiny_icar_checkpoint,
                                     unused_paramwise_keys)
from ovdense.utils.cli import ConfigError
from ovdense.utils.io import OvdenseFileError

DEMO_CONFIG = osp.join(REPO, 'configs', 'demo',
                       'upernet_icar-swin-nano_fcn-aux_2k_ovdense-demo-ade.py')
VOCAB3 = 'red circle,blue star,green square'


def segmentation_configs():
    found = shipped_configs('mmseg')
    assert len(found) >= 5, f'segmentation configs not found: {found}'
    return found


def _build(cfg_model):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    return MODELS.build(cfg_model)


def _seg_inputs(num_labels, batch=2, size=(64, 64), ignore_index=255, seed=0):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, *size), generator=gen, dtype=torch.uint8))
        labels = torch.randint(0, num_labels, (1, *size), generator=gen)
        labels[:, :4] = ignore_index
        sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size))
        sample.gt_sem_seg = PixelData(data=labels)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


# ----------------------------------------------------------------------------- configs


# ----------------------------------------------------------------------------- mechanism
STOCK_HEADS = {
    'FCNHead': dict(in_channels=8, in_index=0, channels=16, num_convs=1),
    'UPerHead': dict(in_channels=[8, 16, 32, 64], in_index=[0, 1, 2, 3], channels=16,
                     pool_scales=(1, 2)),
    'ASPPHead': dict(in_channels=64, in_index=3, channels=16, dilations=(1, 2)),
    'SegformerHead': dict(in_channels=[8, 16, 32, 64], in_index=[0, 1, 2, 3], channels=16),
    'PSPHead': dict(in_channels=64, in_index=3, channels=16, pool_scales=(1, 2)),
}


def _features(batch=2, size=16):
    return [torch.randn(batch, c, size // 2 ** i, size // 2 ** i)
            for i, c in enumerate([8, 16, 32, 64])]


def test_zero_label_as_background_and_reduce_zero_label():
    seg = np.array([[0, 1, 2], [30, 255, 0]], np.uint8)
    out = ZeroLabelAsBackground(background_index=30)(
        dict(gt_seg_map=seg, reduce_zero_label=False))['gt_seg_map']
    assert out.tolist() == [[30, 0, 1], [29, 255, 30]] and out.dtype == np.uint8
    with pytest.raises(ValueError, match='reduce_zero_label=False'):
        ZeroLabelAsBackground(background_index=30)(dict(gt_seg_map=seg, reduce_zero_label=True))


def _with_label(samples, value):
    samples[0].gt_sem_seg.data[0, 5, 5] = value
    return samples


# ----------------------------------------------------------------------------- datasets
def _write_pair(root, split_img, split_ann, stem, labels, ext):
    os.makedirs(osp.join(root, split_img), exist_ok=True)
    os.makedirs(osp.join(root, split_ann), exist_ok=True)
    Image.fromarray(np.zeros(labels.shape + (3,), np.uint8)).save(
        osp.join(root, split_img, stem + '.jpg'))
    Image.fromarray(labels).save(osp.join(root, split_ann, stem + ext))


def test_ade20k_847_and_pascal_context_459_keep_16_bit_labels(tmp_path):
    labels = np.array([[0, 300, 846], [65535, 255, 12]], np.uint16)
    root = str(tmp_path / 'ADE20K_2021_17_01')
    _write_pair(root, 'images_detectron2/validation', 'annotations_detectron2/validation',
                'ADE_val_00000001', labels, '.tif')
    pipeline = [dict(type='LoadUInt16SegAnnotations')]
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    ade = ADE20K847Dataset(data_root=root, pipeline=pipeline, data_prefix=dict(
        img_path='images_detectron2/validation',
        seg_map_path='annotations_detectron2/validation'))
    assert len(ade.metainfo['classes']) == 847 and ade.metainfo['classes'][1] == \
        'building, edifice'
    gt = ade[0]['gt_seg_map']
    assert gt.dtype == np.uint16 and gt.tolist() == labels.tolist()  # 255 is a class here
    remapped = LoadUInt16SegAnnotations(ignore_index=1000)(dict(
        seg_map_path=ade.get_data_info(0)['seg_map_path'], reduce_zero_label=False,
        seg_fields=[]))['gt_seg_map']
    assert remapped[1, 0] == 1000 and remapped[0, 1] == 300
    pc_root = str(tmp_path / 'pcontext_full')
    _write_pair(pc_root, 'val/image', 'val/label', '2008_000002',
                np.array([[458, 65535]], np.uint16), '.tif')
    pc = PascalContext459Dataset(data_root=pc_root, pipeline=pipeline,
                                 data_prefix=dict(img_path='val/image', seg_map_path='val/label'))
    assert len(pc.metainfo['classes']) == 459 and pc[0]['gt_seg_map'].tolist() == [[458, 65535]]
    subset = PascalContext459Dataset(data_root=pc_root, pipeline=pipeline, data_prefix=dict(
        img_path='val/image', seg_map_path='val/label'), metainfo=dict(classes=('wool',)))
    assert subset[0]['gt_seg_map'].tolist() == [[0, 65535]]  # removed classes -> ignore


def test_vocab_seg_dataset_takes_classes_from_a_vocabulary(tmp_path):
    root = str(tmp_path / 'seg')
    _write_pair(root, 'img', 'ann', 'a', np.array([[0, 1]], np.uint8), '.png')
    vocab = tmp_path / 'v.txt'
    vocab.write_text('red circle\nblue star\n')
    ds = VocabSegDataset(vocabulary=str(vocab), data_root=root,
                         data_prefix=dict(img_path='img', seg_map_path='ann'), pipeline=[])
    assert ds.metainfo['classes'] == ('red circle', 'blue star') and len(ds) == 1
    with pytest.raises(ValueError, match='differ from vocabulary'):
        VocabSegDataset(vocabulary=str(vocab), data_root=root, metainfo=dict(classes=('x',)),
                        data_prefix=dict(img_path='img', seg_map_path='ann'), pipeline=[])


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    """Tiny demo data under <tmp>/data/ovdense_demo (the config's relative data_root) and a
    3-iteration training run."""
    from ovdense.demo.data import make_demo_data
    from ovdense.demo.text_tower import prepare_demo_text_tower
    root = tmp_path_factory.mktemp('seg_e2e')
    paths = make_demo_data(str(root / 'data' / 'ovdense_demo'), seed=0, sizes=dict(
        det_train=1, det_val=1, seg_train=6, seg_val=3, video_train_per_class=1,
        video_val_per_class=1))
    prepare_demo_text_tower(paths['root'])
    cwd = os.getcwd()
    os.chdir(root)
    try:
        options = ['train_cfg.max_iters=3', 'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
                   'param_scheduler.1.end=3', 'default_hooks.checkpoint.interval=3',
                   'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
                   'train_dataloader.persistent_workers=False',
                   'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False']
        assert load_tool('train').main([DEMO_CONFIG, '--work-dir', 'work', '--cfg-options',
                                    *options[:8]]) == 0
    finally:
        os.chdir(cwd)
    return dict(root=root, paths=paths, checkpoint=str(root / 'work' / 'iter_3.pth'),
                test_options=options[8:])


def _test(demo_run, *args):
    from mmseg.visualization import SegLocalVisualizer
    # In one process, mmengine reuses the visualizer named 'visualizer' of an earlier runner
    # (with that runner's save_dir); a fresh command line process never has one.
    SegLocalVisualizer._instance_dict.pop('visualizer', None)
    cwd = os.getcwd()
    os.chdir(demo_run['root'])
    try:
        return load_tool('test').main([DEMO_CONFIG, demo_run['checkpoint'], *args])
    finally:
        os.chdir(cwd)


def _metrics(work_dir):
    found = {}
    for path in glob.glob(osp.join(work_dir, '*', '*.json')):
        with open(path) as f:
            for line in f:
                found.update(json.loads(line))
    return found


def _learn_proxies(demo_run, *args, config=DEMO_CONFIG):
    cwd = os.getcwd()
    os.chdir(demo_run['root'])
    try:
        return load_tool('learn_vision_proxies').main(
            [config, demo_run['checkpoint'], '--iters', '20', '--per-image', '16', *args])
    finally:
        os.chdir(cwd)


def _rows(tmp_path, count):
    path = tmp_path / f'rows{count}.npy'
    np.save(path, np.eye(count, 64, dtype=np.float32))
    return path


def test_open_vocab_iou_metric_splits_novel_and_base_classes():
    """mIoU as mmseg computes it, plus the means over novel / base classes (a class with no
    labelled and no predicted pixel is skipped, as in mIoU)."""
    from ovdense.evaluation import OpenVocabIoUMetric
    vocab = [dict(name='cat', frequency='f'), dict(name='dog', frequency='r'),
             dict(name='cow', frequency='c'), dict(name='owl', frequency='r')]
    metric = OpenVocabIoUMetric(vocabulary=vocab, novel_classes='r', iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=('cat', 'dog', 'cow', 'owl'))
    # per image: (intersect, union, pred area, label area) per class; owl never occurs
    first = [torch.tensor(v, dtype=torch.float64) for v in
             ([6, 1, 0, 0], [8, 4, 2, 0], [7, 2, 1, 0], [7, 3, 1, 0])]
    second = [torch.tensor(v, dtype=torch.float64) for v in
              ([2, 1, 1, 0], [4, 4, 2, 0], [3, 2, 2, 0], [3, 3, 1, 0])]
    metrics = metric.compute_metrics([first, second])
    iou = {'cat': 8 / 12, 'dog': 2 / 8, 'cow': 1 / 4}
    assert metrics['mIoU_novel'] == round(iou['dog'] * 100, 2)  # owl: skipped, not 0
    assert metrics['mIoU_base'] == round((iou['cat'] + iou['cow']) / 2 * 100, 2)
    assert metrics['mIoU'] == round(sum(iou.values()) / 3 * 100, 2)
    with pytest.raises(ConfigError, match='selects no class'):
        OpenVocabIoUMetric(vocabulary=vocab, novel_classes=[])
