"""The demo run (tools/run_demo.py), shortened: demo data -> tools/train.py -> tools/test.py
with the real LVIS evaluator -> pictures with the dataset and a custom vocabulary."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from ovdense.testing.configs import REPO, load_tool
from ovdense.utils.cli import ConfigError

sys.path.insert(0, REPO + '/tools')
from run_demo import data_options  # noqa: E402

SIZES = {'det_train': 24, 'det_val': 8, 'seg_train': 4, 'seg_val': 2,
         'video_train_per_class': 1, 'video_val_per_class': 1}
DEMO_CONFIG_NAME = 'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py'
KEYS = [f'lvis/{kind}_AP{suffix}' for kind in ('bbox', 'segm') for suffix in ('', 'r', 'c', 'f')]


@pytest.mark.slow
def test_short_demo_runs_end_to_end(tmp_path, capsys):
    work_dir = tmp_path / 'work'
    # the data run_demo would make, with a 2-step action text pretraining (run_demo's own
    # is 600 steps, ~20 s): the same sizes, so run_demo reuses both
    from ovdense.demo.data import make_demo_data
    from ovdense.demo.text_tower import prepare_action_text_tower
    make_demo_data(str(tmp_path / 'data'), seed=0, sizes=SIZES)
    prepare_action_text_tower(str(tmp_path / 'data'), steps=2)
    result = subprocess.run(
        [sys.executable, 'tools/run_demo.py', '--data-root', str(tmp_path / 'data'),
         '--work-dir', str(work_dir), '--max-iters', '3', '--sizes', json.dumps(SIZES),
         '--pictures', '2'], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(work_dir / 'demo_metrics.json') as f:
        metrics = json.load(f)
    for key in KEYS:
        assert key in metrics['det']['text classifier'], key
    for key in ('mIoU', 'mIoU_novel', 'mIoU_base', 'mAcc'):
        assert key in metrics['seg']['text classifier'], key
    for key in ('top1', 'novel_top1', 'novel_only_top1', 'base_top1', 'novel_mean1',
                'base_mean1'):
        assert 'acc/' + key in metrics['action']['text classifier'], key
    assert 'APr(novel)' in result.stdout and 'mIoU(novel)' in result.stdout
    assert 'novel only' in result.stdout
    for task in ('det', 'seg', 'action'):
        assert f'[{task}] wall time' in result.stdout
    for task in ('det', 'seg', 'action'):
        for name in ('dataset_vocabulary', 'custom_vocabulary'):
            folder = work_dir / task / 'text' / 'pictures' / name
            pictures = [f for _, _, files in os.walk(folder)
                        for f in files if f.endswith(('.jpg', '.png'))]
            assert len(pictures) == 2, (task, name)

    # In-process from here (no new interpreter per tool run: the test stays short).
    # Metrics with a vocabulary that is not the dataset's: refused with one line.
    config = osp.join(REPO, 'configs', 'demo', DEMO_CONFIG_NAME)
    checkpoint = str(work_dir / 'det' / 'text' / 'iter_3.pth')
    options = ['--cfg-options', *data_options(str(tmp_path / 'data'))]
    with pytest.raises(ConfigError, match="metrics need the dataset's own class list"):
        load_tool('test').main([config, checkpoint, '--vocab', 'red_star,blue_cross',
                                '--work-dir', str(tmp_path / 'refused'), *options])

    # InMaP proxies from the unlabeled training images, then tested as the classifier file
    proxies = tmp_path / 'proxies.npy'
    assert load_tool('learn_vision_proxies').main(
        [config, checkpoint, '--images', str(tmp_path / 'data' / 'lvis' / 'train2017'),
         '--out', str(proxies), '--min-foreground', '0', '--iters', '20', *options]) == 0
    assert f'from {24 * 16} features of 24 inputs' in capsys.readouterr().out
    assert load_tool('test').main(
        [config, checkpoint, '--vocab', str(tmp_path / 'data' / 'vocab_det.json'),
         '--vocab-embeddings', str(proxies), '--work-dir', str(tmp_path / 'proxies'),
         *options]) == 0
