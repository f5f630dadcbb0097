"""Reliability: interrupted training resumes exactly, a failing rank ends a distributed job,
concurrent builders of one text-embedding cache agree, and bad input is refused by name with
nothing half-written left behind."""
import importlib.util
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time
from typing import Optional

import pytest
import torch

from ovdense.testing.configs import REPO, load_tool, shrink_config, with_shared_class_embeddings

DET_CONFIG = osp.join(REPO, 'configs', 'demo',
                      'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py')
SEG_CONFIG = osp.join(REPO, 'configs', 'demo',
                      'upernet_icar-swin-nano_fcn-aux_2k_ovdense-demo-ade.py')
SIZES = {'det_train': 8, 'det_val': 2, 'seg_train': 8, 'seg_val': 2,
         'video_train_per_class': 1, 'video_val_per_class': 1}
MAX_ITERS = 6
KILL_AFTER = 4  # iteration of the checkpoint after which run B is killed
# One thread per process: the interrupted and the uninterrupted runs then reduce in the same
# order and agree bit for bit.
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    from ovdense.demo.data import make_demo_data
    return make_demo_data(str(tmp_path_factory.mktemp('reliability') / 'data'), seed=0,
                          sizes=SIZES)


def tiny_train_config(task: str, data: dict, directory: str, max_iters: int = MAX_ITERS,
                      test: bool = False, **overrides) -> str:
    """The demo config of ``task`` shrunk to test size (tiny backbone and text tower), a short
    iteration-based schedule with a checkpoint every 2 iterations, deterministic on CPU, no
    validation (``test``: a test split for tools/test.py); written to ``directory``."""
    os.makedirs(directory, exist_ok=True)
    cfg = shrink_config(DET_CONFIG if task == 'det' else SEG_CONFIG, directory)
    options = {
        'train_cfg.max_iters': max_iters, 'param_scheduler.0.end': 2,
        'param_scheduler.1.begin': 2, 'param_scheduler.1.end': max_iters,
        'default_hooks.checkpoint.interval': 2, 'default_hooks.checkpoint.max_keep_ckpts': -1,
        'default_hooks.logger.interval': 1,
        'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'randomness': dict(seed=0, deterministic=True)}
    if task == 'det':
        options.update({
            'train_dataloader.dataset.data_root': data['lvis_root'] + '/',
            'model.roi_head.bbox_head.text_classifier.vocabulary': data['vocab_det']})
    else:
        options.update({
            'train_dataloader.dataset.data_root': data['ade_root'] + '/',
            'train_dataloader.dataset.vocabulary': data['vocab_seg'],
            'model.decode_head.text_classifier.vocabulary': data['vocab_seg'],
            'model.auxiliary_head.text_classifier.vocabulary': data['vocab_seg']})
    if test and task == 'det':
        options.update({'test_dataloader.dataset.data_root': data['lvis_root'] + '/',
                        'test_evaluator.ann_file': data['lvis_val_ann']})
    elif test:
        options.update({'test_dataloader.dataset.data_root': data['ade_root'] + '/',
                        'test_dataloader.dataset.vocabulary': data['vocab_seg']})
    if test:
        options.update({'test_dataloader.num_workers': 0,
                        'test_dataloader.persistent_workers': False})
    options.update(overrides)
    cfg.merge_from_dict(options)
    for split in ('val', 'test') if not test else ('val',):
        cfg[f'{split}_dataloader'] = cfg[f'{split}_cfg'] = cfg[f'{split}_evaluator'] = None
    path = osp.join(directory, f'tiny_{task}.py')
    cfg.dump(path)
    return path


def train_command(config: str, work_dir: str, *extra: str) -> list:
    return [sys.executable, 'tools/train.py', config, '--work-dir', work_dir, *extra]


def start(command: list, log_path: str) -> subprocess.Popen:
    log = open(log_path, 'w')
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=log,
                               stderr=subprocess.STDOUT)
    log.close()
    return process


def finish(process: subprocess.Popen, log_path: str, timeout: float = 600) -> str:
    process.wait(timeout=timeout)
    with open(log_path) as f:
        log = f.read()
    assert process.returncode == 0, log[-4000:]
    return log


def kill_after_checkpoint(process: subprocess.Popen, work_dir: str, iteration: int,
                          log_path: str, timeout: float = 600) -> None:
    """SIGKILL ``process`` as soon as mmengine has recorded ``iter_<iteration>.pth`` as its
    latest checkpoint (it writes ``last_checkpoint`` after the file is complete)."""
    marker = osp.join(work_dir, 'last_checkpoint')
    wanted = f'iter_{iteration}.pth'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if osp.isfile(marker):
            with open(marker) as f:
                if f.read().strip().endswith(wanted):
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    return
        if process.poll() is not None:
            with open(log_path) as f:
                pytest.fail(f'training ended before {wanted} was written:\n{f.read()[-4000:]}')
        time.sleep(0.02)
    process.kill()
    pytest.fail(f'no {wanted} within {timeout} s')


def load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def logged_scalars(work_dir: str, runs=None) -> dict:
    """{iteration: scalars} from the vis_data/scalars.json of every run under ``work_dir``
    (or of the ``runs`` given, e.g. ``[-1]``: the last one); a resumed run's lines overwrite
    nothing the interrupted run logged for later iterations."""
    found = {}
    names = sorted(n for n in os.listdir(work_dir)
                   if osp.isfile(osp.join(work_dir, n, 'vis_data', 'scalars.json')))
    for run in (names if runs is None else [names[i] for i in runs]):
        with open(osp.join(work_dir, run, 'vis_data', 'scalars.json')) as f:
            for line in f:
                record = json.loads(line)
                record.pop('time', None), record.pop('data_time', None)
                found[record['iter']] = record
    return found


class _NoisyData(torch.utils.data.Dataset):
    """Draws from numpy and python random in the main process (num_workers=0), like an
    augmenting pipeline."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        import random

        import numpy as np
        jitter = float(np.random.rand()) + random.random()
        return dict(inputs=torch.tensor([float(index), jitter]),
                    labels=torch.tensor([index % 2.0]))


def _noisy_model():
    from mmengine.model import BaseModel

    class Noisy(BaseModel):
        """Draws from torch random in every step, like RoI sampling or dropout."""

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, inputs, labels=None, mode='tensor'):
            output = self.linear(torch.stack(inputs) + 0.1 * torch.randn(len(inputs), 2))
            return dict(loss=((output - torch.stack(labels)) ** 2).mean())

    return Noisy()


def _toy_run(work_dir, name, by_epoch, length, exact, resume=False):
    from mmengine.runner import Runner

    from ovdense.engine import ExactResumeHook
    loop = (dict(by_epoch=True, max_epochs=length) if by_epoch
            else dict(by_epoch=False, max_iters=length))
    sampler = 'DefaultSampler' if by_epoch else 'InfiniteSampler'
    runner = Runner(
        model=_noisy_model(), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=dict(dataset=_NoisyData(), batch_size=2, num_workers=0,
                              sampler=dict(type=sampler, shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        train_cfg=loop,
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1 if by_epoch else 2,
                                           by_epoch=by_epoch)),
        custom_hooks=[ExactResumeHook()] if exact else [], resume=resume,
        randomness=dict(seed=0), default_scope='mmengine')
    runner.train()
    return runner.model.linear.weight.detach().clone()


# ------------------------------------------------------------------------------ distributed

TEST_HOOKS = '''"""Test-only hooks, written by tests/test_reliability.py for custom_imports."""
import json
import os.path as osp

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class FailOnRankHook(Hook):
    def __init__(self, rank, iteration):
        self.rank, self.iteration = rank, iteration

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if get_rank() == self.rank and runner.iter == self.iteration:
            raise RuntimeError(f'injected failure on rank {self.rank} at iteration {runner.iter}')


@HOOKS.register_module(force=True)
class RecordLossesHook(Hook):
    """Every rank's own losses, one JSON line per iteration (mmengine logs rank 0's only)."""

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        record = {k: float(v) for k, v in outputs.items()}
        with open(osp.join(runner.work_dir, f'losses_rank{get_rank()}.jsonl'), 'a') as f:
            f.write(json.dumps(dict(record, iter=runner.iter + 1)) + '\\n')
'''


def hooks_options(directory: str, *hooks: dict) -> dict:
    """Config settings that import the test-only hooks from ``directory`` (on PYTHONPATH)."""
    with open(osp.join(directory, 'reliability_test_hooks.py'), 'w') as f:
        f.write(TEST_HOOKS)
    return {'custom_imports': dict(imports=['ovdense', 'reliability_test_hooks'],
                                   allow_failed_imports=False),
            'custom_hooks': list(hooks)}


def torchrun(config: str, work_dir: str, hooks_dir: str, timeout: float,
             nproc: int = 2) -> tuple:
    """tools/train.py under torchrun (gloo on CPU); see :func:`torchrun_program`."""
    return torchrun_program(['tools/train.py', config, '--launcher', 'pytorch', '--work-dir',
                             work_dir], timeout, nproc, hooks_dir)


def torchrun_program(program: list, timeout: float, nproc: int = 2,
                     python_path: Optional[str] = None) -> tuple:
    """``program`` (a script and its arguments, or ``-m module ...``) under torchrun; returns
    (exit code or None on timeout, elapsed seconds, output). On timeout the whole process
    group is killed, not only torchrun."""
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               '--nproc_per_node', str(nproc), *program]
    env = dict(ENV, PYTHONPATH=os.pathsep.join(filter(None, [python_path,
                                                             ENV.get('PYTHONPATH')])))
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        code = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        code = None
    return code, time.monotonic() - started, output


def training_configs() -> list:
    """Every shipped config that trains (test-only configs have no train_dataloader)."""
    from mmengine.config import Config
    from ovdense.testing.configs import shipped_configs
    from ovdense.testing.optional import require_mmaction
    scopes = ['mmdet', 'mmseg']
    if importlib.util.find_spec('mmaction') is not None:
        require_mmaction()  # installed: it must import
        scopes.append('mmaction')
    return [path for scope in scopes for path in shipped_configs(scope)
            if Config.fromfile(path).get('train_dataloader')]


# ------------------------------------------------------------------- concurrent cache builds

CACHE_VOCABULARIES = ['red circle,blue star,green square', 'zebra,lion,tiger,bear',
                      'aerosol can,air conditioner', 'cat,dog,horse,sheep,cow,elephant']


def _cache_builder(barrier, tower_cfg, cache_dir, out_path):
    """Builds each vocabulary's class embeddings through the cache (spawned twice by the test
    below). The tower's encode waits for the other process's: both have then found no cache
    file, both build, and both write the same entry at the same moment."""
    import warnings

    from ovdense.text import PromptStyle, load_vocabulary
    from ovdense.text.embeddings import EmbeddingCache, FrozenTextEmbedder
    embedder = FrozenTextEmbedder(tower_cfg, EmbeddingCache(cache_dir))
    tower = embedder.tower
    encode = tower.encode

    def encode_together(*args, **kwargs):
        barrier.wait(timeout=300)
        return encode(*args, **kwargs)

    tower.encode = encode_together
    results = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        for spec in CACHE_VOCABULARIES:
            embeddings, path = embedder.embeddings(load_vocabulary(spec),
                                                   PromptStyle.build('vild'))
            results.append((embeddings, path))
    torch.save({'results': results, 'warnings': [str(w.message) for w in caught]}, out_path)


# ------------------------------------------------------------------------------ bad input


def _lvis_file(path, categories, images, annotations):
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return str(path)


def _lvis_categories(names):
    return [dict(id=i + 1, name=n, synonyms=[n], synset=f'{n}.n.01', frequency='f',
                 image_count=1, instance_count=1, **{'def': f'a {n}'})
            for i, n in enumerate(names)]


def _lvis_image(image_id, file_name):
    return dict(id=image_id, width=32, height=32, neg_category_ids=[],
                not_exhaustive_category_ids=[],
                coco_url=f'http://images.cocodataset.org/train2017/{file_name}')


def _box(ann_id, image_id, category_id):
    return dict(id=ann_id, image_id=image_id, category_id=category_id, bbox=[2, 2, 10, 10],
                area=100, segmentation=[[2, 2, 12, 2, 12, 12, 2, 12]], iscrowd=0)


def test_lvis_annotation_with_unknown_category_is_named(tmp_path):
    from ovdense.datasets import OVLVISV1Dataset
    from ovdense.utils import OvdenseFileError
    ann = _lvis_file(tmp_path / 'lvis_bad.json', _lvis_categories(['cat', 'dog']),
                     [_lvis_image(1, 'a.jpg'), _lvis_image(2, 'b.jpg')],
                     [_box(10, 1, 1), _box(11, 2, 2), _box(12, 2, 7)])
    with pytest.raises(OvdenseFileError,
                       match=r"lvis_bad\.json'.*annotation 12 of image 2 has category_id 7, "
                             r"which is not among the file's 2 categories"):
        OVLVISV1Dataset(ann_file=ann, data_root=str(tmp_path), pipeline=[],
                        data_prefix=dict(img=''))


def test_coco_annotation_with_unknown_category_is_named(tmp_path):
    """OV-COCO: ids of COCO classes outside the 65 split classes are skipped on purpose; an
    id that is not a category of the file at all is an error."""
    from ovdense.datasets import OVCocoDataset, load_ov_coco_split
    from ovdense.utils import OvdenseFileError
    split = load_ov_coco_split()
    names = list(split['base'] + split['novel']) + ['unicorn']  # a category, not a class
    categories = [dict(id=i + 1, name=n, supercategory='x') for i, n in enumerate(names)]
    images = [dict(id=i, file_name=f'{i}.jpg', width=32, height=32) for i in (1, 2)]
    unicorn = len(names)
    path = tmp_path / 'coco_ok.json'
    with open(path, 'w') as f:
        json.dump(dict(images=images, categories=categories,
                       annotations=[_box(1, 1, 1), _box(2, 2, unicorn)]), f)
    dataset = OVCocoDataset(ann_file=str(path), data_root=str(tmp_path), pipeline=[],
                            data_prefix=dict(img=''), test_mode=True)
    assert sum(len(dataset.get_data_info(i)['instances']) for i in range(len(dataset))) == 1
    with open(path) as f:
        record = json.load(f)
    record['annotations'].append(_box(3, 2, 999))
    bad = tmp_path / 'coco_bad.json'
    with open(bad, 'w') as f:
        json.dump(record, f)
    with pytest.raises(OvdenseFileError, match=r"coco_bad\.json'.*annotation 3 of image 2 has "
                                               r'category_id 999'):
        OVCocoDataset(ann_file=str(bad), data_root=str(tmp_path), pipeline=[],
                      data_prefix=dict(img=''), test_mode=True)


def _write_images(directory, names):
    """A valid JPEG, an empty file and a file of text, under the given names."""
    import numpy as np
    from PIL import Image
    os.makedirs(directory, exist_ok=True)
    good, empty, garbage = (osp.join(directory, n) for n in names)
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(good)
    open(empty, 'wb').close()
    with open(garbage, 'wb') as f:
        f.write(b'not an image at all' * 8)


def _error_text(err: BaseException) -> str:
    return '\n'.join([str(err), *getattr(err, '__notes__', [])])


@pytest.mark.parametrize('ignore_empty', [False, True])
def test_undecodable_detection_images_are_named(tmp_path, ignore_empty):
    """mmcv's convention is kept: loading fails (default), or with ``ignore_empty=True`` a
    file that cannot be read (here: the empty one) is skipped and the dataset draws another
    sample; a file that reads but decodes to nothing fails either way (mmcv 2.1). A failure
    names the file: mmcv does for an undecodable file; for an empty file OpenCV does not, and
    ovdense's datasets add the path as a note."""
    from mmengine.registry import init_default_scope

    from ovdense.datasets import OVLVISV1Dataset
    init_default_scope('mmdet')
    names = ['good.jpg', 'empty.jpg', 'garbage.jpg']
    _write_images(str(tmp_path / 'train2017'), names)
    if ignore_empty:  # a skipped sample is replaced by a random other one: make it the good
        names = names[:2]
    ann = _lvis_file(tmp_path / 'lvis.json', _lvis_categories(['cat']),
                     [_lvis_image(i + 1, n) for i, n in enumerate(names)],
                     [_box(i + 1, i + 1, 1) for i in range(len(names))])
    dataset = OVLVISV1Dataset(
        ann_file=ann, data_root=str(tmp_path), data_prefix=dict(img=''),
        pipeline=[dict(type='LoadImageFromFile', ignore_empty=ignore_empty),
                  dict(type='LoadAnnotations', with_bbox=True), dict(type='PackDetInputs')])
    order = [osp.basename(dataset.get_data_info(i)['img_path']) for i in range(len(names))]
    assert dataset[order.index('good.jpg')]['inputs'].shape == (3, 32, 32)
    for name in names[1:]:
        if ignore_empty:  # skipped: the good image comes back instead
            sample = dataset[order.index(name)]
            assert sample['data_samples'].img_path.endswith('good.jpg')
        else:
            with pytest.raises(Exception) as err:
                dataset[order.index(name)]
            assert str(tmp_path / 'train2017' / name) in _error_text(err.value), name


def test_undecodable_segmentation_image_is_named(tmp_path):
    import numpy as np
    from PIL import Image

    from mmengine.registry import init_default_scope

    from ovdense.datasets import VocabSegDataset
    init_default_scope('mmseg')
    names = ['a.jpg', 'b.jpg', 'c.jpg']
    _write_images(str(tmp_path / 'img'), names)
    os.makedirs(tmp_path / 'ann')
    for name in names:
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(
            tmp_path / 'ann' / name.replace('.jpg', '.png'))
    dataset = VocabSegDataset(vocabulary='cat,dog', data_root=str(tmp_path),
                              data_prefix=dict(img_path='img', seg_map_path='ann'),
                              pipeline=[dict(type='LoadImageFromFile'),
                                        dict(type='LoadAnnotations'),
                                        dict(type='PackSegInputs')])
    order = [osp.basename(dataset.get_data_info(i)['img_path']) for i in range(3)]
    assert dataset[order.index('a.jpg')]['inputs'].shape == (3, 32, 32)
    for name in ('b.jpg', 'c.jpg'):
        with pytest.raises(Exception) as err:
            dataset[order.index(name)]
        assert str(tmp_path / 'img' / name) in _error_text(err.value), name


# ------------------------------------------------------------------------ classifier files
CLASSES = ('cat', 'dog', 'yak', 'zebra')


def _unit_rows(rows: int = len(CLASSES), dim: int = 32) -> torch.Tensor:
    return torch.nn.functional.normalize(
        torch.randn(rows, dim, generator=torch.Generator().manual_seed(0)), dim=-1)


def _classifier_file(path, embeddings, names=CLASSES) -> str:
    """A classifier file as tools/build_text_classifier.py writes it (the .pt with names)."""
    from ovdense.text import save_classifier_file
    save_classifier_file(str(path), embeddings, {'class_names': list(names)})
    return str(path)


def _file_head(tmp_path):
    """A text classifier on two classes, read from a .npy (no text tower needed)."""
    from ovdense.text import TextCosineClassifier
    return TextCosineClassifier(32, 'a,b', embeddings_file=_classifier_file(
        tmp_path / 'ab.npy', _unit_rows(2)))


def _test_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, osp.join(REPO, 'tools', 'test.py'), *args],
                          capture_output=True, text=True, env=ENV, cwd=REPO)


def _error_lines(result: subprocess.CompletedProcess) -> list:
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith('error:')]


def _vocabulary_state(model, image):
    """What a vocabulary swap changes: names, files, class counts and the logits."""
    from ovdense.apis import text_classifiers
    with torch.no_grad():
        logits = (model(image, mode='tensor'), model.auxiliary_head(model.extract_feat(image)))
    return ([(c.vocabulary.names, c.class_embeddings.embeddings_file)
             for c in text_classifiers(model)],
            [(name, m.num_classes, getattr(m, 'out_channels', None))
             for name, m in model.named_modules() if hasattr(m, 'num_classes')], logits)


def _build_tool_output(tmp_path, out):
    from ovdense.testing import tiny_clip_config
    return subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'build_text_classifier.py'), '--model',
         tiny_clip_config(str(tmp_path)), '--vocab', 'cat,dog', '--out', out],
        capture_output=True, text=True, env=ENV, cwd=REPO)


@pytest.fixture(scope='module')
def det_checkpoints(demo_data, tmp_path_factory):
    """A test config of the tiny detection demo, a checkpoint of its model (never trained:
    only the layout matters here) and one of the tiny segmentation demo model."""
    from mmengine.registry import init_default_scope
    from mmengine.config import Config
    from mmdet.registry import MODELS as DET_MODELS
    from mmseg.registry import MODELS as SEG_MODELS
    directory = tmp_path_factory.mktemp('checkpoints')
    det_config = tiny_train_config('det', demo_data, str(directory), test=True)
    seg_config = tiny_train_config('seg', demo_data, str(directory))
    paths = {'config': det_config}
    for name, config, registry, scope in (('det', det_config, DET_MODELS, 'mmdet'),
                                          ('seg', seg_config, SEG_MODELS, 'mmseg')):
        init_default_scope(scope)
        model = registry.build(Config.fromfile(config).model)
        paths[name] = str(directory / f'{name}.pth')
        torch.save({'meta': {}, 'state_dict': model.state_dict()}, paths[name])
    return paths


def _run_test_tool(det_checkpoints, checkpoint, work_dir, *options):
    from mmdet.visualization import DetLocalVisualizer
    DetLocalVisualizer._instance_dict.pop('visualizer', None)  # one per process otherwise
    out = osp.join(work_dir, 'predictions.pkl')
    args = [det_checkpoints['config'], checkpoint, '--work-dir', work_dir, '--out', out]
    if options:
        args += ['--cfg-options', *options]
    return load_tool('test').main(args), out


