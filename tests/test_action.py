"""Action recognition (mmaction2): every shipped mmaction config trains one step and predicts
at tiny size; TextI3DHead (novel classes left out of training, shared class embeddings,
vocabulary swap, iCAR projection);
VocabVideoDataset; OpenCV decoding of unreadable files; end to end with tools/train.py and
tools/test.py (top-1, --vocab) on tiny demo videos."""
import glob
import json
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

import ovdense  # noqa: F401
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.configs import (REPO, load_tool, parameters_without_gradient,
                                     shipped_configs, shrink_config, unused_paramwise_keys)
from ovdense.testing.optional import require_mmaction

require_mmaction(module_level=True)  # absent: skipped; installed but broken: fails

import cv2  # noqa: E402

from ovdense.apis import set_model_vocabulary  # noqa: E402
from ovdense.datasets import UnreadableVideoError, VocabVideoDataset  # noqa: E402
from ovdense.evaluation import OpenVocabAccMetric  # noqa: E402
from ovdense.models.heads import TextI3DHead  # noqa: E402
from ovdense.text import VocabularyError  # noqa: E402
from ovdense.utils.cli import ConfigError  # noqa: E402
from ovdense.utils.io import OvdenseFileError  # noqa: E402

DEMO_CONFIG = osp.join('configs', 'demo', 'video-swin-nano_icar_8x2x1_1k_ovdense-demo-action.py')
VOCAB4 = 'running,jumping,swimming,dancing'


def action_configs():
    found = shipped_configs('mmaction')
    assert len(found) >= 3, f'action configs not found: {found}'
    return found


def _build(cfg_model):
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    return MODELS.build(cfg_model)


def _clips(labels, batch=2, frames=8, size=64, seed=0):
    """``batch`` random clips labelled in turn with ``labels`` (label ids)."""
    from mmaction.structures import ActionDataSample
    gen = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (1, 3, frames, size, size), generator=gen,
                            dtype=torch.uint8) for _ in range(batch)]
    samples = [ActionDataSample().set_gt_label(int(labels[i % len(labels)]))
               for i in range(batch)]
    return dict(inputs=inputs, data_samples=samples)


def _head(tmp_path, **kwargs):
    args = dict(in_channels=8, dropout_ratio=0.0, average_clips='prob',
                text_classifier=dict(vocabulary=VOCAB4,
                                     text_tower=tiny_text_tower_cfg(str(tmp_path))))
    args.update(kwargs)
    return _build(dict(type='TextI3DHead', **args))


# ----------------------------------------------------------------------------- configs


K400_CONFIG = osp.join(REPO, 'configs', 'action',
                       'video-swin-b_icar_p244-w877_32x2x1-30e_kinetics400-rgb.py')
OV_CONFIG = osp.join(REPO, 'configs', 'action',
                     'video-swin-b_icar_p244-w877_32x2x1-30e_ov-kinetics400-base200.py')


# ----------------------------------------------------------------------------- the head


def _recognizer_with_shared_embeddings(tmp_path, novel_classes):
    return _build(dict(
        type='WithClassEmbeddings', base_type='Recognizer3D',
        class_embeddings=dict(type='TrainedTowerClassEmbeddings', vocabulary=VOCAB4,
                              novel_classes=novel_classes,
                              text_tower=tiny_text_tower_cfg(str(tmp_path))),
        backbone=dict(type='ICARSwin3D', checkpoint=None, window_size=(2, 2, 2),
                      arch=dict(embed_dims=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1]),
                      text_embed_dims=None, drop_path_rate=0.0),
        cls_head=dict(type='TextI3DHead', in_channels=64, dropout_ratio=0.0,
                      average_clips='prob', text_classifier=dict(scale=20.0)),
        data_preprocessor=dict(type='ActionDataPreprocessor', format_shape='NCTHW')))


def _tiny_icar_2d_file(tmp_path, text_dim=32):
    """A 2D iCAR-style image tower (tiny Swin, window 2) with its image->text projection,
    saved in mmdet layout; returns (model, path)."""
    from ovdense.models.backbones import ICARSwin
    torch.manual_seed(0)
    model = ICARSwin(arch=dict(embed_dims=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2),
                               window_size=2), pretrain_img_size=64, text_embed_dims=text_dim,
                     proj_bias=False)
    model.init_weights()
    path = str(tmp_path / 'icar_2d.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in model.state_dict().items()}},
               path)
    return model.eval(), path


# ----------------------------------------------------------------------------- data
def _write_list(path, lines):
    with open(path, 'w') as f:
        f.write(''.join(f'{line}\n' for line in lines))
    return str(path)


def test_vocab_video_dataset_selects_and_relabels_classes(tmp_path):
    ann = _write_list(tmp_path / 'list.txt', ['a.mp4 0', 'b.mp4 1', 'c.mp4 2', 'd.mp4 3'])
    full = VocabVideoDataset(ann_file=ann, pipeline=[], vocabulary=VOCAB4,
                             data_prefix=dict(video=str(tmp_path)))
    assert full.metainfo['classes'] == tuple(VOCAB4.split(',')) and len(full) == 4
    part = VocabVideoDataset(ann_file=ann, pipeline=[], vocabulary=VOCAB4,
                             classes=['dancing', 1], data_prefix=dict(video=str(tmp_path)))
    assert part.metainfo['classes'] == ('dancing', 'jumping')
    infos = [part.get_data_info(i) for i in range(len(part))]
    assert [(osp.basename(i['filename']), i['label']) for i in infos] == [
        ('b.mp4', 1), ('d.mp4', 0)]
    bad = _write_list(tmp_path / 'bad.txt', ['a.mp4 0', 'b.mp4 7'])
    with pytest.raises(OvdenseFileError,
                       match=r"bad.txt' line 2 \('.*b.mp4'\): label 7 is not a class id"):
        VocabVideoDataset(ann_file=bad, pipeline=[], vocabulary=VOCAB4)
    with pytest.raises(ConfigError, match='on_unreadable'):
        VocabVideoDataset(ann_file=ann, pipeline=[], vocabulary=VOCAB4, on_unreadable='ignore')
    for classes, message in (([9], r'classes: label id 9 is outside .*\(0..3\)'),
                             (['flying', 0], r"classes: \['flying'\] are neither label ids"),
                             ([0, 'running'], r"repeat \['running'\]"),
                             ([], 'the selection is empty')):
        with pytest.raises(VocabularyError, match=message):
            VocabVideoDataset(ann_file=ann, pipeline=[], vocabulary=VOCAB4, classes=classes)


def test_vocab_video_dataset_drops_novel_clips_while_training_only(tmp_path):
    ann = _write_list(tmp_path / 'list.txt', ['a.mp4 0', 'b.mp4 1', 'c.mp4 2', 'd.mp4 3'])
    args = dict(ann_file=ann, pipeline=[], vocabulary=VOCAB4, novel_classes=[1, 'dancing'],
                data_prefix=dict(video=str(tmp_path)))
    train, test = VocabVideoDataset(**args), VocabVideoDataset(**args, test_mode=True)
    assert train.metainfo['classes'] == test.metainfo['classes'] == tuple(VOCAB4.split(','))
    labels = [[d.get_data_info(i)['label'] for i in range(len(d))] for d in (train, test)]
    assert labels == [[0, 2], [0, 1, 2, 3]]  # labels index the whole vocabulary
    with pytest.raises(VocabularyError, match=r'novel_classes: label id 4 is outside .*\(0..3\)'):
        VocabVideoDataset(**dict(args, novel_classes=[4]))
    only_novel = _write_list(tmp_path / 'novel.txt', ['b.mp4 1'])
    with pytest.raises(OvdenseFileError, match='no clip of the 2 trained'):
        VocabVideoDataset(**dict(args, ann_file=only_novel))


def _write_video(path, frames=16, size=32, seed=0):
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 8, (size, size))
    assert writer.isOpened()
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    writer.release()
    return str(path)


def _pipeline(checked=True):
    prefix = 'Checked' if checked else ''
    return [dict(type=f'{prefix}OpenCVInit'),
            dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1,
                 test_mode=True),
            dict(type=f'{prefix}OpenCVDecode')]


def test_checked_opencv_decoding_matches_stock_and_names_unreadable_files(tmp_path):
    from mmaction.registry import TRANSFORMS
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    good = _write_video(tmp_path / 'good.mp4')
    info = dict(filename=good, start_index=0, modality='RGB')
    checked = Compose([TRANSFORMS.build(t) for t in _pipeline(True)])(dict(info))
    stock = Compose([TRANSFORMS.build(t) for t in _pipeline(False)])(dict(info))
    assert len(checked['imgs']) == 4
    assert all(np.array_equal(a, b) for a, b in zip(checked['imgs'], stock['imgs']))
    (tmp_path / 'broken.mp4').write_bytes(b'this is not a video')
    for name, message in (('broken.mp4', 'cannot read video'),
                          ('missing.mp4', 'video file not found')):
        with pytest.raises(UnreadableVideoError, match=f'{message}.*{name}'):
            Compose([TRANSFORMS.build(t) for t in _pipeline(True)])(
                dict(info, filename=str(tmp_path / name)))


def test_unreadable_video_stops_tests_and_is_skipped_in_training_only_if_asked(tmp_path):
    _write_video(tmp_path / 'good.mp4')
    (tmp_path / 'broken.mp4').write_bytes(b'\x00' * 64)
    ann = _write_list(tmp_path / 'list.txt', ['broken.mp4 1', 'good.mp4 0'])
    common = dict(ann_file=ann, vocabulary=VOCAB4, data_prefix=dict(video=str(tmp_path)),
                  pipeline=_pipeline())
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    for kwargs in (dict(test_mode=True, on_unreadable='skip'), dict(test_mode=False)):
        dataset = VocabVideoDataset(**common, **kwargs)
        with pytest.raises(UnreadableVideoError, match='broken.mp4'):
            dataset[0]
    dataset = VocabVideoDataset(**common, on_unreadable='skip')
    sample = dataset[0]  # mmengine draws another index: the good clip
    assert osp.basename(sample['filename']) == 'good.mp4' and len(sample['imgs']) == 4
    assert dataset._skipped == {str(tmp_path / 'broken.mp4')}


# ----------------------------------------------------------------------------- end to end


TEST_OPTIONS = ['test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
                'test_dataloader.batch_size=4']


@pytest.fixture(scope='module')
def action_run(tmp_path_factory):
    """Tiny demo videos (1 clip per action and split) under <tmp>/data/ovdense_demo (the
    config's relative data_root) and a 3-iteration tools/train.py run."""
    from ovdense.demo.data import make_demo_data
    from ovdense.demo.text_tower import prepare_demo_text_tower
    root = tmp_path_factory.mktemp('action_e2e')
    paths = make_demo_data(str(root / 'data' / 'ovdense_demo'), seed=0, sizes=dict(
        det_train=1, det_val=1, seg_train=1, seg_val=1, video_train_per_class=1,
        video_val_per_class=1))
    prepare_demo_text_tower(paths['root'])
    options = ['train_cfg.max_iters=3', 'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
               'param_scheduler.1.end=3', 'default_hooks.checkpoint.interval=3',
               'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
               'train_dataloader.persistent_workers=False']
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert load_tool('train').main([osp.join(REPO, DEMO_CONFIG), '--work-dir', 'work',
                                    '--cfg-options', *options]) == 0
    finally:
        os.chdir(cwd)
    return dict(root=root, paths=paths, checkpoint=str(root / 'work' / 'iter_3.pth'))


def _test(run, *args):
    from mmaction.visualization import ActionVisualizer
    # one process, several runners: mmengine would reuse the first runner's visualizer
    ActionVisualizer._instance_dict.pop('visualizer', None)
    cwd = os.getcwd()
    os.chdir(run['root'])
    try:
        return load_tool('test').main([osp.join(REPO, DEMO_CONFIG), run['checkpoint'], *args])
    finally:
        os.chdir(cwd)


def _metrics(work_dir):
    found = {}
    for path in glob.glob(osp.join(work_dir, '*', '*.json')):
        with open(path) as f:
            for line in f:
                found.update(json.loads(line))
    return found


