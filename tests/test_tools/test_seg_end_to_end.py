"""Segmentation end to end on tiny demo data: tools/train.py, then tools/test.py (IoUMetric,
--vocab, --show-dir, --tta), tools/demo.py, tools/learn_vision_proxies.py, and bad input
named by the tools."""
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

import ovdense  # noqa: F401
from ovdense.testing.configs import REPO, load_tool
from ovdense.testing.runs import read_metrics
from ovdense.utils.cli import ConfigError
from ovdense.utils.io import OvdenseFileError


DEMO_CONFIG = osp.join(REPO, 'configs', 'demo',
                       'upernet_icar-swin-nano_fcn-aux_2k_ovdense-demo-ade.py')


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


def test_end_to_end_train_test_and_other_vocabulary(demo_run):
    root = demo_run['root']
    assert osp.isfile(demo_run['checkpoint'])
    options = ['--cfg-options', *demo_run['test_options']]
    assert _test(demo_run, '--work-dir', 'test_own', *options) == 0
    metrics = read_metrics(str(root / 'test_own'))
    assert 0.0 <= metrics['mIoU'] <= 100.0 and 'aAcc' in metrics

    # the same classes given as another spec (a comma list): evaluation still runs
    names = ','.join(json.load(open(demo_run['paths']['vocab_seg']))['classes'][i]['name']
                     for i in range(30))
    assert _test(demo_run, '--work-dir', 'test_same', '--vocab', names, *options) == 0
    assert 'mIoU' in read_metrics(str(root / 'test_same'))

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
    metrics = read_metrics(str(demo_run['root'] / 'test_tta'))
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
    assert 'mIoU' in read_metrics(str(demo_run['root'] / 'test_proxies'))

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
