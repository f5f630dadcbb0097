"""Action recognition end to end on tiny demo videos: tools/train.py, then tools/test.py
(top-1, --vocab), tools/learn_vision_proxies.py over a video list, an unreadable video named,
and --show / --tta refused in one line (skipped without the "action" extra)."""
import json
import os
import os.path as osp
import pickle

import pytest

import ovdense  # noqa: F401
from ovdense.testing.configs import REPO, load_tool
from ovdense.testing.optional import require_mmaction

require_mmaction(module_level=True)  # absent: skipped; installed but broken: fails

from ovdense.datasets import UnreadableVideoError  # noqa: E402
from ovdense.demo.data import ACTION_CLASSES, NOVEL_ACTIONS  # noqa: E402
from ovdense.testing.data import write_list  # noqa: E402
from ovdense.testing.runs import read_metrics  # noqa: E402
from ovdense.utils.cli import ConfigError  # noqa: E402


DEMO_CONFIG = osp.join('configs', 'demo', 'video-swin-nano_icar_8x1x1_1k_ovdense-demo-action.py')
TEST_OPTIONS = ['test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
                'test_dataloader.batch_size=4']


@pytest.fixture(scope='module')
def action_run(tmp_path_factory):
    """Tiny demo videos (1 clip per action and split) under <tmp>/data/ovdense_demo (the
    config's relative data_root) and a 3-iteration tools/train.py run."""
    from ovdense.demo.data import make_demo_data
    from ovdense.demo.text_tower import prepare_action_text_tower
    root = tmp_path_factory.mktemp('action_e2e')
    paths = make_demo_data(str(root / 'data' / 'ovdense_demo'), seed=0, sizes=dict(
        det_train=1, det_val=1, seg_train=1, seg_val=1, video_train_per_class=1,
        video_val_per_class=1))
    prepare_action_text_tower(paths['root'], steps=2)  # the config loads its file
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


@pytest.mark.slow
def test_end_to_end_train_test_and_other_vocabulary(action_run):
    root = action_run['root']
    assert osp.isfile(action_run['checkpoint'])
    assert _test(action_run, '--work-dir', 'test_own', '--out', str(root / 'own.pkl'),
                 '--cfg-options', *TEST_OPTIONS) == 0
    metrics = read_metrics(str(root / 'test_own'))
    assert 0.0 <= metrics['acc/top1'] <= 1.0 and 'acc/mean1' in metrics
    with open(root / 'own.pkl', 'rb') as f:
        own = pickle.load(f)
    n = len(ACTION_CLASSES)  # one test clip per action
    assert len(own) == n and all(p['pred_score'].shape == (n,) for p in own)

    # another vocabulary: three of the actions, reordered; the test set keeps their clips
    names = ['blue_growing', 'red_moving_left', 'green_moving_up']
    assert _test(action_run, '--work-dir', 'test_other', '--vocab', ','.join(names),
                 '--out', str(root / 'other.pkl'), '--cfg-options', *TEST_OPTIONS,
                 f'test_dataloader.dataset.classes=[{",".join(names)}]') == 0
    assert 'acc/top1' in read_metrics(str(root / 'test_other'))
    with open(root / 'other.pkl', 'rb') as f:
        other = pickle.load(f)
    assert len(other) == 3 and all(p['pred_score'].shape == (3,) for p in other)
    assert sorted(int(p['gt_label']) for p in other) == [0, 1, 2]

    # metrics with names the dataset does not have: refused, naming the problem
    with pytest.raises(ConfigError, match='metrics need the dataset'):
        _test(action_run, '--work-dir', 'test_refused', '--vocab', 'hopping,waving',
              '--cfg-options', *TEST_OPTIONS)


@pytest.mark.slow
def test_end_to_end_vision_proxies_from_a_video_list(action_run, tmp_path):
    """tools/learn_vision_proxies.py over the unlabeled training clips of a list file (its
    labels are never read), then tools/test.py with the proxies."""
    from ovdense.text import load_classifier_file
    root = action_run['root']
    listing = osp.join(action_run['paths']['root'], 'videos', 'train_list.txt')
    out = tmp_path / 'proxies.npy'
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert load_tool('learn_vision_proxies').main(
            [osp.join(REPO, DEMO_CONFIG), action_run['checkpoint'], '--images', listing,
             '--out', str(out), '--iters', '20']) == 0
    finally:
        os.chdir(cwd)
    vocab = action_run['paths']['vocab_action']
    names = [c['name'] for c in json.load(open(vocab))['classes']]
    _, meta = load_classifier_file(str(tmp_path / 'proxies.pt'), len(names), names=names)
    trained = len(ACTION_CLASSES) - len(NOVEL_ACTIONS)  # one training clip per base action
    assert meta['measured']['inputs'] == trained and meta['measured']['features'] == trained
    assert _test(action_run, '--work-dir', 'test_proxies', '--vocab', vocab,
                 '--vocab-embeddings', str(out), '--cfg-options', *TEST_OPTIONS) == 0
    assert 'acc/top1' in read_metrics(str(root / 'test_proxies'))


@pytest.mark.slow
def test_end_to_end_unreadable_video_names_the_file(action_run, capsys):
    root = action_run['root']
    videos = osp.join(action_run['paths']['root'], 'videos')
    with open(osp.join(videos, 'broken.mp4'), 'wb') as f:
        f.write(b'truncated')
    with open(osp.join(videos, 'val_list.txt')) as f:
        lines = f.read().splitlines()
    ann = write_list(root / 'val_broken.txt', lines[:2] + ['broken.mp4 3'])
    options = [*TEST_OPTIONS, f'test_dataloader.dataset.ann_file={ann}']
    with pytest.raises(UnreadableVideoError, match='broken.mp4'):
        _test(action_run, '--work-dir', 'test_broken', '--cfg-options', *options)
    from ovdense.utils.cli import run_cli
    assert run_cli(lambda: _test(action_run, '--work-dir', 'test_broken2',
                                 '--cfg-options', *options)) == 2
    assert 'broken.mp4' in capsys.readouterr().err


@pytest.mark.slow
def test_show_dir_draws_clips_with_predicted_names(action_run):
    """--show-dir on an action config (mmaction2's runtime has no visualization hook):
    ActionVisualizationHook draws one strip per test clip, named after the video, captioned
    with the predictions in the model's vocabulary; with --vocab, in the new names."""
    import cv2
    root = action_run['root']
    for work_dir, extra in (('show_own', []), ('show_other', ['--vocab', 'hopping,waving'])):
        show_dir = root / ('pictures_' + work_dir)
        assert _test(action_run, '--work-dir', work_dir, '--show-dir', str(show_dir), *extra,
                     '--cfg-options', *TEST_OPTIONS) == 0
        pictures = sorted(osp.join(d, f) for d, _, files in os.walk(show_dir)
                          for f in files if f.endswith('.png'))
        expected = [f'clip_{i:05d}_0.png' for i in range(len(ACTION_CLASSES))]
        assert [osp.basename(p) for p in pictures] == expected
        image = cv2.imread(pictures[0])
        assert image.shape[0] >= 192 and image.shape[1] >= 4 * 192  # 4 enlarged frames


def test_caption_names_label_and_top_predictions():
    import torch
    from mmaction.structures import ActionDataSample

    from ovdense.engine.hooks import ActionVisualizationHook
    sample = ActionDataSample().set_gt_label(1).set_pred_score(torch.tensor([0.1, 0.2, 0.7]))
    hook = ActionVisualizationHook(topk=2)
    assert hook.caption(sample, ['hop', 'wave', 'run']) == (
        'label: wave\npred: run 0.70\npred: wave 0.20')
    del sample.gt_label  # a visual-only --vocab run drops the dataset's labels
    assert hook.caption(sample, None) == 'pred: 2 0.70\npred: 1 0.20'


def test_tta_is_refused_in_one_line(action_run):
    """What the README's action Limitations say: one ConfigError line (exit 2), no run."""
    from ovdense.utils.cli import run_cli
    message = 'the config defines no tta_model / tta_pipeline'
    with pytest.raises(ConfigError, match=message):
        _test(action_run, '--work-dir', 'test_flag', '--tta')
    assert run_cli(lambda: _test(action_run, '--work-dir', 'test_flag', '--tta')) == 2
    assert not osp.exists(osp.join(action_run['root'], 'test_flag'))
