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
@pytest.mark.parametrize('config', segmentation_configs(), ids=lambda p: osp.relpath(p, REPO))
def test_config_trains_one_step_and_predicts(config, tmp_path):
    """From an iCAR-layout checkpoint (with its image->text projection): one training step
    gives every trainable parameter a gradient (what DDP's default wrapper needs)."""
    cfg = shrink_config(config, str(tmp_path),
                        icar_checkpoint=tiny_icar_checkpoint(str(tmp_path)))
    model = _build(cfg.model)
    model.init_weights()
    head = model.decode_head
    for each in (head, getattr(model, 'auxiliary_head', None)):
        assert each is None or text_classifiers(each)  # every head classifies with text
    assert unused_paramwise_keys(model, cfg.get('optim_wrapper')) == []
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    data = model.data_preprocessor(_seg_inputs(head.out_channels), True)
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert parameters_without_gradient(model) == []
    optimizer.step()
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(_seg_inputs(head.num_classes, 1), False),
                        mode='predict')
    pred = results[0].pred_sem_seg.data
    assert pred.shape == (1, 64, 64) and int(pred.max()) < head.out_channels
    assert results[0].seg_logits.data.shape[0] == head.out_channels == model.out_channels


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


def test_end_to_end_train_test_and_other_vocabulary(demo_run):
    root = demo_run['root']
    assert osp.isfile(demo_run['checkpoint'])
    options = ['--cfg-options', *demo_run['test_options']]
    assert _test(demo_run, '--work-dir', 'test_own', *options) == 0
    metrics = _metrics(str(root / 'test_own'))
    assert 0.0 <= metrics['mIoU'] <= 100.0 and 'aAcc' in metrics

    # the same classes given as another spec (a comma list): evaluation still runs
    names = ','.join(json.load(open(demo_run['paths']['vocab_seg']))['classes'][i]['name']
                     for i in range(30))
    assert _test(demo_run, '--work-dir', 'test_same', '--vocab', names, *options) == 0
    assert 'mIoU' in _metrics(str(root / 'test_same'))

    # other names: pictures only (--show-dir), predictions over the new vocabulary
    show = root / 'pictures'
    assert _test(demo_run, '--work-dir', 'test_other', '--show-dir', str(show), '--vocab',
                 'red star,blue cross,green circle,yellow square', *options) == 0
    drawn = glob.glob(str(show / '**' / '*.png'), recursive=True)
    assert len(drawn) == 3
    assert Image.open(drawn[0]).size == (160, 160)  # prediction only: the gt ids are not ours

    # OVSegVisualizationHook needs no training data (mmseg's hook builds the training loop)
    show = root / 'pictures_no_train_data'
    assert _test(demo_run, '--work-dir', 'test_no_train', '--show-dir', str(show), '--vocab',
                 'red star,blue cross', *options,
                 'train_dataloader.dataset.data_root=/nonexistent/') == 0
    assert len(glob.glob(str(show / '**' / '*.png'), recursive=True)) == 3

    # one image from the command line with a custom vocabulary: overlay + legend
    image = glob.glob(osp.join(demo_run['paths']['ade_root'], 'images', 'validation', '*.jpg'))[0]
    out_dir = root / 'overlays'
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert load_tool('demo').main([image, DEMO_CONFIG, demo_run['checkpoint'], '--vocab',
                                   'red star,blue cross,green circle',
                                   '--out-dir', str(out_dir)]) == 0
    finally:
        os.chdir(cwd)
    drawing = np.asarray(Image.open(glob.glob(str(out_dir / '*.png'))[0]))
    assert drawing.shape[0] >= 160 and drawing.shape[1] > 160  # image + legend panel


def test_end_to_end_test_time_augmentation(demo_run, tmp_path):
    """tools/test.py --tta: mmseg's SegTTAModel around the text segmentor (two scales x flip)
    gives a full-size mIoU; a config without tta_pipeline is refused with one line."""
    tta = tmp_path / 'demo_tta.py'
    tta.write_text(f"_base_ = [{DEMO_CONFIG!r}]\n"
                   "tta_pipeline = [dict(type='LoadImageFromFile'), dict(type='TestTimeAug', "
                   "transforms=[[dict(type='Resize', scale=(160, 160), keep_ratio=True), "
                   "dict(type='Resize', scale=(200, 200), keep_ratio=True)], "
                   "[dict(type='RandomFlip', prob=0.0, direction='horizontal'), "
                   "dict(type='RandomFlip', prob=1.0, direction='horizontal')], "
                   "[dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]])]\n")
    options = ['--cfg-options', *demo_run['test_options']]
    cwd = os.getcwd()
    os.chdir(demo_run['root'])
    try:
        from mmseg.visualization import SegLocalVisualizer
        SegLocalVisualizer._instance_dict.pop('visualizer', None)
        assert load_tool('test').main([str(tta), demo_run['checkpoint'], '--tta',
                                       '--work-dir', 'test_tta', *options]) == 0
        with pytest.raises(ConfigError, match='defines no tta_model / tta_pipeline'):
            load_tool('test').main([DEMO_CONFIG, demo_run['checkpoint'], '--tta',
                                    '--work-dir', 'test_no_tta', *options])
    finally:
        os.chdir(cwd)
    metrics = _metrics(str(demo_run['root'] / 'test_tta'))
    assert 0.0 <= metrics['mIoU'] <= 100.0


def _learn_proxies(demo_run, *args, config=DEMO_CONFIG):
    cwd = os.getcwd()
    os.chdir(demo_run['root'])
    try:
        return load_tool('learn_vision_proxies').main(
            [config, demo_run['checkpoint'], '--iters', '20', '--per-image', '16', *args])
    finally:
        os.chdir(cwd)


def test_end_to_end_vision_proxies(demo_run, tmp_path):
    """tools/learn_vision_proxies.py on the unlabeled training images, then tools/test.py
    with the proxies as the classifier file."""
    from ovdense.text import load_classifier_file
    training = osp.join(demo_run['paths']['ade_root'], 'images', 'training')
    vocab = demo_run['paths']['vocab_seg']
    names = [c['name'] for c in json.load(open(vocab))['classes']]
    out = tmp_path / 'proxies.npy'
    assert _learn_proxies(demo_run, '--images', training, '--out', str(out)) == 0
    proxies, meta = load_classifier_file(str(tmp_path / 'proxies.pt'), len(names), 64, names)
    assert torch.equal(proxies, load_classifier_file(str(out), len(names))[0])
    assert meta['measured']['inputs'] == 6 and meta['measured']['features'] == 6 * 16
    assert meta['checkpoint'] == demo_run['checkpoint'] and meta['options']['iters'] == 20
    options = ['--cfg-options', *demo_run['test_options']]
    assert _test(demo_run, '--work-dir', 'test_proxies', '--vocab', vocab,
                 '--vocab-embeddings', str(out), *options) == 0
    assert 'mIoU' in _metrics(str(demo_run['root'] / 'test_proxies'))

    # refusals: one line each, no file written
    bad = tmp_path / 'bad.npy'
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ConfigError, match='holds no image files'):
        _learn_proxies(demo_run, '--images', str(empty), '--out', str(bad))
    with pytest.raises(OvdenseFileError, match='3 class embeddings but the vocabulary has 30'):
        _learn_proxies(demo_run, '--images', training, '--out', str(bad), '--vocab', vocab,
                       '--vocab-embeddings', str(_rows(tmp_path, 3)))
    stock = tmp_path / 'stock_uperhead.py'  # the demo model with mmseg's linear classifier
    stock.write_text(f"_base_ = [{DEMO_CONFIG!r}]\n"
                     "model = dict(auxiliary_head=None, decode_head=dict(_delete_=True, "
                     "type='UPerHead', in_channels=[32, 64, 128, 256], in_index=[0, 1, 2, 3], "
                     "channels=64, num_classes=30))\n")
    with pytest.raises(ConfigError, match='EncoderDecoder has no TextCosineClassifier'):
        _learn_proxies(demo_run, '--images', training, '--out', str(bad), config=str(stock))
    assert not list(tmp_path.glob('bad.*'))


def _rows(tmp_path, count):
    path = tmp_path / f'rows{count}.npy'
    np.save(path, np.eye(count, 64, dtype=np.float32))
    return path


def test_end_to_end_bad_input(demo_run):
    options = ['--cfg-options', *demo_run['test_options']]
    # --vocab of another size (names differ) cannot be evaluated against the dataset
    with pytest.raises(ValueError, match='differs from the classes'):
        _test(demo_run, '--work-dir', 'bad_vocab', '--vocab', 'a,b,c', *options)
    # a config whose vocabulary size differs from the dataset's classes
    with pytest.raises(ValueError, match='vocabulary size mismatch.*5 classes.*30 classes'):
        _test(demo_run, '--work-dir', 'bad_size', *options,
              'model.decode_head.text_classifier.vocabulary=[a,b,c,d,e]',
              'model.decode_head.num_classes=5',
              'model.auxiliary_head.text_classifier.vocabulary=[a,b,c,d,e]',
              'model.auxiliary_head.num_classes=5')
    # label values outside the vocabulary in a ground-truth map
    ann_dir = osp.join(demo_run['paths']['ade_root'], 'annotations', 'validation')
    first = sorted(glob.glob(osp.join(ann_dir, '*.png')))[0]
    original = Image.open(first).copy()
    try:
        broken = np.asarray(original).copy()
        broken[:4, :4] = 200  # -> 199 after reduce_zero_label; only 30 classes
        Image.fromarray(broken).save(first)
        with pytest.raises(ValueError, match=r'values \[199\] are outside the 30 classes'):
            _test(demo_run, '--work-dir', 'bad_labels', *options)
    finally:
        original.save(first)


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
