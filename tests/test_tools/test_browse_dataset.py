"""tools/browse_dataset.py: ground truth after the pipeline, drawn for mmdet, mmseg and
mmaction demo configs on tiny demo data (in-process, a few seconds each)."""
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from ovdense.testing.configs import REPO, load_tool

DEMO = osp.join(REPO, 'configs', 'demo')
DET = osp.join(DEMO, 'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py')
SEG = osp.join(DEMO, 'upernet_icar-swin-nano_fcn-aux_2k_ovdense-demo-ade.py')
ACTION = osp.join(DEMO, 'video-swin-nano_icar_8x1x1_1k_ovdense-demo-action.py')
SIZES = dict(det_train=3, det_val=2, seg_train=2, seg_val=2, video_train_per_class=1,
             video_val_per_class=1)




@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    from ovdense.demo.data import make_demo_data
    return make_demo_data(str(tmp_path_factory.mktemp('browse') / 'data'), seed=0, sizes=SIZES)


def _browse(*args) -> int:
    from ovdense.utils.cli import run_cli
    return run_cli(lambda: load_tool('browse_dataset').main(list(args)))


def _images(folder):
    names = sorted(os.listdir(folder))
    return names, [cv2.imread(osp.join(folder, name)) for name in names]


def _changed_fraction(drawn, source_path) -> float:
    source = cv2.imread(source_path)
    assert drawn.shape == source.shape
    return float((np.abs(drawn.astype(int) - source.astype(int)).max(axis=2) > 40).mean())


def test_detection_draws_boxes_and_masks(demo, tmp_path):
    out = tmp_path / 'det'
    lvis = demo['lvis_root']
    assert _browse(DET, '--not-show', '--output-dir', str(out), '--phase', 'val',
                   '--max-images', '2', '--cfg-options',
                   f'val_dataloader.dataset.data_root={lvis}/') == 0
    names, images = _images(out)
    assert names == ['0000_000001000001.jpg', '0001_000001000002.jpg']
    # the val pipeline keeps the 160 px image: the drawing is the source plus ground truth
    source = osp.join(lvis, 'val2017', names[0].split('_', 1)[1])
    assert _changed_fraction(images[0], source) > 0.02


def test_segmentation_draws_label_maps(demo, tmp_path):
    out = tmp_path / 'seg'
    ade = demo['ade_root']
    assert _browse(SEG, '--not-show', '--output-dir', str(out), '--cfg-options',
                   f'train_dataloader.dataset.data_root={ade}/',
                   f'train_dataloader.dataset.vocabulary={demo["vocab_seg"]}') == 0
    names, images = _images(out)  # train phase, whole (2-image) dataset
    assert len(names) == SIZES['seg_train']
    assert all(name.endswith('.jpg') for name in names)
    for image in images:
        assert image is not None and image.shape == (128, 128, 3)  # the RandomCrop size
        assert image.std() > 5


def test_action_draws_a_labelled_frame_strip(demo, tmp_path):
    out = tmp_path / 'action'
    videos = demo['video_root']
    assert _browse(ACTION, '--not-show', '--output-dir', str(out), '--phase', 'val',
                   '--max-images', '1', '--cfg-options',
                   f'val_dataloader.dataset.ann_file={demo["video_val_list"]}',
                   f'val_dataloader.dataset.data_prefix.video={videos}',
                   f'val_dataloader.dataset.vocabulary={demo["vocab_action"]}') == 0
    names, images = _images(out)
    assert len(names) == 1 and names[0].endswith('.png')
    height, width, _ = images[0].shape
    assert width == 4 * height  # 4 square frames side by side


def test_nothing_to_do_is_one_line(capsys):
    assert _browse(DET, '--not-show') == 2
    assert capsys.readouterr().err.strip() == (
        'error: --not-show needs --output-dir: nothing would be drawn')


def test_missing_dataloader_is_one_line(demo, tmp_path, capsys):
    from mmengine.config import Config
    cfg = Config.fromfile(DET)
    cfg.pop('test_dataloader')
    path = tmp_path / 'no_test.py'
    cfg.dump(str(path))
    assert _browse(str(path), '--not-show', '--output-dir', str(tmp_path / 'x'),
                   '--phase', 'test') == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        'error: the config has no test_dataloader.dataset to browse')


def test_missing_config_exits_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, 'tools/browse_dataset.py', 'configs/missing.py', '--not-show',
         '--output-dir', str(tmp_path / 'out')],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last == "error: config file not found: 'configs/missing.py'", result.stderr[-800:]
    assert 'Traceback' not in result.stderr
    assert not (tmp_path / 'out').exists()
