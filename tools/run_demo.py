#!/usr/bin/env python
"""`make demo`: the package's main job on the embedded default dataset, end to end.

1. generate the synthetic LVIS-format data (first run only) and the demo text tower files;
2. tools/train.py the open-vocabulary detector on base classes;
3. tools/test.py on all classes with the real LVIS evaluator; print APr (novel) / APc / APf;
4. draw predictions for a few test images, once with the dataset vocabulary and once with a
   custom vocabulary given on the command line.
"""
import argparse
import glob
import json
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = 'configs/demo/mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py'
CONTROL_CONFIG = 'configs/demo/mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis_random-emb.py'
CUSTOM_VOCAB = 'red_star,blue_cross,green_circle,yellow_square'
METRIC_ROWS = (('bbox', 'lvis/bbox_AP'), ('segm', 'lvis/segm_AP'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data-root', default='data/ovdense_demo')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--control', action='store_true',
                        help='also run the random-embedding control and compare')
    parser.add_argument('--max-iters', type=int, default=None,
                        help='shorter training (tests); default: the config\'s schedule')
    parser.add_argument('--sizes', default=None,
                        help='demo data sizes as JSON (tests), e.g. {"lvis_train": 16}')
    parser.add_argument('--pictures', type=int, default=4, help='test images to draw')
    return parser.parse_args(argv)


def prepare_data(data_root: str, sizes=None) -> dict:
    from ovdense.datasets.demo_data import make_demo_data
    from ovdense.datasets.demo_text import prepare_demo_text_tower
    paths = make_demo_data(data_root, seed=0, sizes=sizes)
    prepare_demo_text_tower(data_root)
    return paths


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
    """--cfg-options that point every data path of the demo config at ``data_root`` (a config
    variable like data_root is substituted when the file is read, so the keys are set)."""
    root = osp.abspath(data_root)
    classifier = 'model.roi_head.bbox_head.text_classifier'
    options = [f'train_dataloader.dataset.data_root={root}/lvis/',
               f'{classifier}.vocabulary={root}/vocab_det.json',
               f'{classifier}.text_tower.hf_dir={root}/text_tower']
    for split in ('val', 'test'):
        options += [f'{split}_dataloader.dataset.data_root={root}/lvis/',
                    f'{split}_evaluator.ann_file={root}/lvis/annotations/lvis_v1_val.json']
    return options


def schedule_options(max_iters: int) -> list:
    """--cfg-options for a shorter run: warm-up, cosine decay and checkpoint follow."""
    warmup = max(1, min(50, max_iters // 4))
    return [f'train_cfg.max_iters={max_iters}', f'param_scheduler.0.end={warmup}',
            f'param_scheduler.1.begin={warmup}', f'param_scheduler.1.end={max_iters}',
            f'default_hooks.checkpoint.interval={max_iters}']


def train_and_test(config: str, work_dir: str, data_root: str, max_iters) -> dict:
    options = data_options(data_root) + (schedule_options(max_iters) if max_iters else [])
    run_tool('train.py', config, '--work-dir', work_dir, '--cfg-options', *options)
    checkpoint = osp.join(work_dir, 'iter_{}.pth'.format(max_iters or _config_iters(config)))
    test_dir = osp.join(work_dir, 'test')
    run_tool('test.py', config, checkpoint, '--work-dir', test_dir, '--cfg-options', *options)
    return dict(checkpoint=checkpoint, options=options, metrics=latest_metrics(test_dir))


def _config_iters(config: str) -> int:
    from mmengine.config import Config
    return Config.fromfile(osp.join(REPO, config)).train_cfg.max_iters


def draw_pictures(config: str, run: dict, work_dir: str, count: int) -> list:
    picks = [f'test_dataloader.dataset.indices={count}']
    out_dirs = []
    for name, extra in (('dataset_vocabulary', []), ('custom_vocabulary',
                                                       ['--vocab', CUSTOM_VOCAB])):
        show_dir = osp.join(work_dir, 'pictures', name)
        run_tool('test.py', config, run['checkpoint'], '--work-dir',
                 osp.join(work_dir, 'pictures_' + name), '--show-dir', osp.abspath(show_dir),
                 *extra, '--cfg-options', *run['options'], *picks)
        out_dirs.append(show_dir)
    return out_dirs


def table(rows: dict) -> str:
    header = f'{"run":<22}{"":>6}{"AP":>7}{"APr(novel)":>12}{"APc":>7}{"APf":>7}'
    lines = [header, '-' * len(header)]
    for run, metrics in rows.items():
        for kind, prefix in METRIC_ROWS:
            values = [metrics.get(prefix + suffix, float('nan')) * 100
                      for suffix in ('', 'r', 'c', 'f')]
            lines.append(f'{run:<22}{kind:>6}' + ''.join(
                f'{v:>{w}.1f}' for v, w in zip(values, (7, 12, 7, 7))))
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    sizes = json.loads(args.sizes) if args.sizes else None
    prepare_data(args.data_root, sizes)
    runs = {'text classifier': train_and_test(DEMO_CONFIG, osp.join(args.work_dir, 'text'),
                                              args.data_root, args.max_iters)}
    pictures = draw_pictures(DEMO_CONFIG, runs['text classifier'],
                             osp.join(args.work_dir, 'text'), args.pictures)
    if args.control:
        runs['random embeddings'] = train_and_test(
            CONTROL_CONFIG, osp.join(args.work_dir, 'control'), args.data_root, args.max_iters)
    summary = {name: run['metrics'] for name, run in runs.items()}
    print('\nOpen-vocabulary instance segmentation on the demo data (LVIS evaluator; '
          'novel = frequency r, never annotated in training):')
    print(table(summary))
    print(f'\npictures: {", ".join(pictures)}\ncustom vocabulary: {CUSTOM_VOCAB}')
    print(f'demo wall time: {time.time() - start:.0f} s')
    with open(osp.join(args.work_dir, 'demo_metrics.json'), 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
