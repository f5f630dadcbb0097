#!/usr/bin/env python
"""`make demo`: the package's main jobs on the embedded default dataset, end to end.

For each task (detection: open-vocabulary instance segmentation on LVIS-format data;
segmentation: open-vocabulary semantic segmentation on ADE20K-format data; action:
open-vocabulary action recognition on mmaction2 video lists):

1. generate the synthetic data (first run only) and the demo text tower files;
2. tools/train.py the model on base classes (novel classes never appear in training);
3. tools/test.py on all classes with the task's real evaluator (LVIS; mmseg's IoU plus
   mIoU on novel / base classes; mmaction2's accuracy plus top-1 on novel / base classes);
   print one table per task;
4. draw predictions for a few test images, with the dataset vocabulary and with a custom
   vocabulary given on the command line;
5. with --control: the same model with fixed random class embeddings, side by side.
"""
import argparse
import glob
import json
import os.path as osp
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = 'configs/demo/mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py'
CONTROL_CONFIG = 'configs/demo/mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis_random-emb.py'
SEG_CONFIG = 'configs/demo/upernet_icar-swin-nano_fcn-aux_2k_ovdense-demo-ade.py'
SEG_CONTROL_CONFIG = 'configs/demo/upernet_icar-swin-nano_fcn-aux_2k_ovdense-demo-ade_random-emb.py'
ACTION_CONFIG = 'configs/demo/video-swin-nano_icar_8x1x1_1k_ovdense-demo-action.py'
ACTION_CONTROL_CONFIG = ('configs/demo/'
                         'video-swin-nano_icar_8x1x1_1k_ovdense-demo-action_random-emb.py')
CUSTOM_VOCAB = 'red_star,blue_cross,green_circle,yellow_square'
# four novel actions, drawn; the custom vocabulary names them in words that are not their
# vocabulary names, each beside the opposite motion in the same colour
ACTION_PICTURE_CLASSES = ('red_growing', 'green_shrinking', 'blue_moving_up',
                          'yellow_moving_down')
ACTION_CUSTOM_VOCAB = ('red shape getting bigger,red shape getting smaller,'
                       'green shape getting bigger,green shape getting smaller,'
                       'blue shape rising,blue shape falling,'
                       'yellow shape rising,yellow shape falling')
METRIC_ROWS = (('bbox', 'lvis/bbox_AP'), ('segm', 'lvis/segm_AP'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data-root', default='data/ovdense_demo')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--tasks', default=','.join(TASKS),
                        help=f'comma list of {sorted(TASKS)} (default: %(default)s)')
    parser.add_argument('--control', action='store_true',
                        help='also run the random-embedding control and compare')
    parser.add_argument('--max-iters', type=int, default=None,
                        help='shorter training (tests); default: each task\'s demo schedule')
    parser.add_argument('--sizes', default=None,
                        help='demo data sizes as JSON (tests), e.g. {"det_train": 16}')
    parser.add_argument('--pictures', type=int, default=4, help='test images to draw')
    args = parser.parse_args(argv)
    args.tasks = [t.strip() for t in args.tasks.split(',') if t.strip()]
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown or not args.tasks:
        parser.error(f'--tasks: unknown {unknown}; choose from {sorted(TASKS)}')
    return args


def prepare_data(data_root: str, sizes=None) -> dict:
    from ovdense.demo.data import make_demo_data
    from ovdense.demo.text_tower import prepare_demo_text_tower
    paths = make_demo_data(data_root, seed=0, sizes=sizes)
    prepare_demo_text_tower(data_root)
    return paths


def prepare_action_tower(data_root: str) -> str:
    from ovdense.demo.text_tower import prepare_action_text_tower
    return prepare_action_text_tower(data_root)


def run_tool(script: str, *args: str) -> None:
    command = [sys.executable, osp.join(REPO, 'tools', script), *args]
    print('+', ' '.join(command), flush=True)
    subprocess.run(command, check=True, cwd=REPO)


def latest_metrics(work_dir: str) -> dict:
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.json')), key=osp.getmtime)
    if not logs:
        raise FileNotFoundError(f'no metrics log under {work_dir!r}')
    with open(logs[-1], encoding='utf-8') as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return {k: v for line in lines for k, v in line.items()}


def data_options(data_root: str) -> list:
    """--cfg-options that point every data path of the detection demo config at
    ``data_root`` (a config variable like data_root is substituted when the file is read,
    so the keys are set)."""
    root = osp.abspath(data_root)
    classifier = 'model.roi_head.bbox_head.text_classifier'
    options = [f'train_dataloader.dataset.data_root={root}/lvis/',
               f'{classifier}.vocabulary={root}/vocab_det.json',
               f'{classifier}.text_tower.hf_dir={root}/text_tower']
    for split in ('val', 'test'):
        options += [f'{split}_dataloader.dataset.data_root={root}/lvis/',
                    f'{split}_evaluator.ann_file={root}/lvis/annotations/lvis_v1_val.json']
    return options


def seg_data_options(data_root: str) -> list:
    """The same for the segmentation demo config (both heads, datasets and evaluator)."""
    root = osp.abspath(data_root)
    vocab = f'{root}/vocab_seg.json'
    options = []
    for head in ('decode_head', 'auxiliary_head'):
        options += [f'model.{head}.text_classifier.vocabulary={vocab}',
                    f'model.{head}.text_classifier.text_tower.hf_dir={root}/text_tower']
    for split in ('train', 'val', 'test'):
        options += [f'{split}_dataloader.dataset.data_root={root}/ade/',
                    f'{split}_dataloader.dataset.vocabulary={vocab}']
    return options + [f'{split}_evaluator.vocabulary={vocab}' for split in ('val', 'test')]


def action_data_options(data_root: str) -> list:
    """The same for the action demo config (classifier, video lists and evaluator)."""
    from ovdense.demo.text_tower import ACTION_TOWER_CHECKPOINT
    root = osp.abspath(data_root)
    vocab = f'{root}/vocab_action.json'
    classifier = 'model.cls_head.text_classifier'
    tower = f'{root}/text_tower'
    options = [f'{classifier}.vocabulary={vocab}', f'{classifier}.text_tower.hf_dir={tower}',
               f'{classifier}.text_tower.checkpoint={tower}/{ACTION_TOWER_CHECKPOINT}']
    for split in ('train', 'val', 'test'):
        list_split = 'train' if split == 'train' else 'val'
        options += [f'{split}_dataloader.dataset.vocabulary={vocab}',
                    f'{split}_dataloader.dataset.ann_file={root}/videos/{list_split}_list.txt',
                    f'{split}_dataloader.dataset.data_prefix.video={root}/videos']
    return options + [f'{split}_evaluator.vocabulary={vocab}' for split in ('val', 'test')]


def schedule_options(max_iters: int) -> list:
    """--cfg-options for a shorter run: warm-up, cosine decay and checkpoint follow."""
    warmup = max(1, min(50, max_iters // 4))
    return [f'train_cfg.max_iters={max_iters}', f'param_scheduler.0.end={warmup}',
            f'param_scheduler.1.begin={warmup}', f'param_scheduler.1.end={max_iters}',
            f'default_hooks.checkpoint.interval={max_iters}']


def train_and_test(config: str, work_dir: str, options: List[str], max_iters) -> dict:
    options = options + (schedule_options(max_iters) if max_iters else [])
    run_tool('train.py', config, '--work-dir', work_dir, '--cfg-options', *options)
    checkpoint = osp.join(work_dir, 'iter_{}.pth'.format(max_iters or _config_iters(config)))
    test_dir = osp.join(work_dir, 'test')
    run_tool('test.py', config, checkpoint, '--work-dir', test_dir, '--cfg-options', *options)
    return dict(checkpoint=checkpoint, options=options, metrics=latest_metrics(test_dir))


def _config_iters(config: str) -> int:
    from mmengine.config import Config
    return Config.fromfile(osp.join(REPO, config)).train_cfg.max_iters


def action_picture_clips(data_root: str) -> List[int]:
    """Test-list indices of the first clip of each of ACTION_PICTURE_CLASSES."""
    from ovdense.text import load_vocabulary
    names = load_vocabulary(osp.join(data_root, 'vocab_action.json')).names
    with open(osp.join(data_root, 'videos', 'val_list.txt'), encoding='utf-8') as f:
        labels = [names[int(line.split()[1])] for line in f if line.strip()]
    return [labels.index(name) for name in ACTION_PICTURE_CLASSES]


def draw_pictures(config: str, run: dict, work_dir: str, count: int, custom_vocab: str,
                  clips: Optional[List[int]] = None) -> list:
    """Draw the first ``count`` test images, or the first ``count`` of ``clips``."""
    chosen = '[' + ','.join(str(i) for i in clips[:count]) + ']' if clips else count
    picks = [f'test_dataloader.dataset.indices={chosen}']
    out_dirs = []
    for name, extra in (('dataset_vocabulary', []), ('custom_vocabulary',
                                                       ['--vocab', custom_vocab])):
        show_dir = osp.join(work_dir, 'pictures', name)
        run_tool('test.py', config, run['checkpoint'], '--work-dir',
                 osp.join(work_dir, 'pictures_' + name), '--show-dir', osp.abspath(show_dir),
                 *extra, '--cfg-options', *run['options'], *picks)
        out_dirs.append(show_dir)
    return out_dirs


def det_table(rows: Dict[str, dict]) -> str:
    header = f'{"run":<22}{"":>6}{"AP":>7}{"APr(novel)":>12}{"APc":>7}{"APf":>7}'
    lines = [header, '-' * len(header)]
    for run, metrics in rows.items():
        for kind, prefix in METRIC_ROWS:
            values = [metrics.get(prefix + suffix, float('nan')) * 100
                      for suffix in ('', 'r', 'c', 'f')]
            lines.append(f'{run:<22}{kind:>6}' + ''.join(
                f'{v:>{w}.1f}' for v, w in zip(values, (7, 12, 7, 7))))
    return '\n'.join(lines)


def column_table(rows: Dict[str, dict], columns, scale: float = 1.0, digits: int = 2,
                 width: int = 13) -> str:
    """One line per run: ``columns`` = (title, metric key) pairs, values times ``scale``."""
    header = f'{"run":<22}' + ''.join(f'{title:>{width}}' for title, _ in columns)
    lines = [header, '-' * len(header)]
    for run, metrics in rows.items():
        lines.append(f'{run:<22}' + ''.join(
            f'{metrics.get(key, float("nan")) * scale:>{width}.{digits}f}' for _, key in columns))
    return '\n'.join(lines)


def seg_table(rows: Dict[str, dict]) -> str:
    return column_table(rows, (('mIoU', 'mIoU'), ('mIoU(novel)', 'mIoU_novel'),
                               ('mIoU(base)', 'mIoU_base'), ('mAcc', 'mAcc')))


def action_table(rows: Dict[str, dict]) -> str:
    columns = (('top-1', 'top1'), ('novel', 'novel_top1'), ('novel only', 'novel_only_top1'),
               ('base', 'base_top1'), ('mean(novel)', 'novel_mean1'),
               ('mean(base)', 'base_mean1'))
    return column_table(rows, [(title, 'acc/' + key) for title, key in columns], scale=100,
                        digits=1, width=12)


@dataclass(frozen=True)
class DemoTask:
    title: str
    config: str
    control: str
    data_options: Callable[[str], List[str]]
    table: Callable[[Dict[str, dict]], str]
    iters: Optional[int] = None  # None: the config's schedule
    options: Tuple[str, ...] = ()  # more --cfg-options (the demo's schedule)
    custom_vocab: str = CUSTOM_VOCAB  # the second picture run's --vocab
    prepare: Optional[Callable[[str], object]] = None  # more set-up from the data root
    pictures: Optional[Callable[[str], List[int]]] = None  # test indices to draw (data root)


TASKS = {
    'det': DemoTask('Open-vocabulary instance segmentation (LVIS evaluator; novel = frequency '
                    'r, never annotated in training)', DEMO_CONFIG, CONTROL_CONFIG,
                    data_options, det_table),
    # Inside `make demo`'s 15-minute budget: 800 iterations at twice the config's learning
    # rate (the config's own schedule, 2,000 at 1e-3, takes 10 minutes alone).
    'seg': DemoTask('Open-vocabulary semantic segmentation (mmseg IoU; novel = frequency r, '
                    'absent from training images)', SEG_CONFIG, SEG_CONTROL_CONFIG,
                    seg_data_options, seg_table, iters=800,
                    options=('optim_wrapper.optimizer.lr=2e-3',)),
    'action': DemoTask('Open-vocabulary action recognition (mmaction2 top-1 / mean class '
                       'accuracy, in %; novel = no training clip, each clip among all 24 '
                       'actions; novel only: among the 6 novel ones)', ACTION_CONFIG,
                       ACTION_CONTROL_CONFIG, action_data_options, action_table,
                       custom_vocab=ACTION_CUSTOM_VOCAB, prepare=prepare_action_tower,
                       pictures=action_picture_clips),
}


def run_task(task: DemoTask, name: str, args) -> dict:
    start = time.time()
    work_dir = osp.join(args.work_dir, name)
    if task.prepare is not None:
        task.prepare(args.data_root)
    options = task.data_options(args.data_root) + list(task.options)
    iters = args.max_iters or task.iters
    runs = {'text classifier': train_and_test(task.config, osp.join(work_dir, 'text'),
                                              options, iters)}
    clips = task.pictures(args.data_root) if task.pictures else None
    pictures = draw_pictures(task.config, runs['text classifier'],
                             osp.join(work_dir, 'text'), args.pictures, task.custom_vocab, clips)
    if args.control:
        runs['random embeddings'] = train_and_test(task.control, osp.join(work_dir, 'control'),
                                                   options, iters)
    return dict(metrics={run: result['metrics'] for run, result in runs.items()},
                pictures=pictures, seconds=time.time() - start)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    sizes = json.loads(args.sizes) if args.sizes else None
    prepare_data(args.data_root, sizes)
    results = {name: run_task(TASKS[name], name, args) for name in args.tasks}
    for name, result in results.items():
        print(f'\n[{name}] {TASKS[name].title}:')
        print(TASKS[name].table(result['metrics']))
        print(f'pictures: {", ".join(result["pictures"])} (custom vocabulary: '
              f'{TASKS[name].custom_vocab})')
        print(f'[{name}] wall time: {result["seconds"]:.0f} s')
    print(f'\ndemo wall time: {time.time() - start:.0f} s')
    with open(osp.join(args.work_dir, 'demo_metrics.json'), 'w', encoding='utf-8') as f:
        json.dump({name: result['metrics'] for name, result in results.items()}, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
