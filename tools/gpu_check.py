#!/usr/bin/env python
"""GPU check: proves the CUDA path end to end on a machine with a GPU; one JSON report.

Steps (each recorded with its wall time; a step that fails is recorded and the next runs):

1. ``environment``: GPU, torch, CUDA, mmcv and whether its ops were built with CUDA;
2. ``mmcv_ops``: mmcv's CUDA ops against their CPU results (or the pure-PyTorch reference
   where mmcv has no CPU kernel) on random inputs, forward and backward: nms, batched_nms,
   RoIAlign, ModulatedDeformConv2d, multi-scale deformable attention, sigmoid focal loss;
3. ``classifier_autocast``: the text cosine classifier under fp16 and bf16 autocast on CUDA:
   finite logits for zero and tiny features, the same argmax as fp32; ``dense_head``: a stock
   RTMDet-tiny with the text head, CUDA vs CPU outputs, 20 training steps fp32 and fp16;
   ``family_*``: shipped configs of the other head families, shrunk as the tests shrink them
   (DINO with its denoising queries from the class embeddings, RTMDet-Ins, Mask2Former for
   mmseg, the Video Swin recognizer with novel classes): CUDA vs CPU outputs, 5 training
   steps in fp32 and under fp16 autocast, prediction;
4. ``detection_*`` / ``segmentation_*``: the demo detector and segmenter trained for a short
   schedule with ``tools/train.py`` in fp32 and with ``--amp``, each tested with
   ``tools/test.py`` (the real LVIS evaluator / mmseg's IoUMetric); the fp32 detection
   checkpoint is also tested under fp16 autocast (``tools/test.py --amp``);
5. ``benchmark``: ``tools/benchmark.py --device cuda``.

Steps stop being started once ``--budget`` seconds have passed (recorded as skipped);
``--steps`` runs some of them (e.g. ``--steps environment,mmcv_ops,families``).
Run it through ``tools/gpu_check.sh`` (which first installs the wheels it is given).
"""
import argparse
import contextlib
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time
import traceback

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools'))

DET_CONFIG = 'configs/demo/mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py'
SEG_CONFIG = 'configs/demo/upernet_icar-swin-nano_fcn-aux_2k_ovdense-demo-ade.py'
DET_KEYS = ('lvis/segm_AP', 'lvis/segm_APr', 'lvis/segm_APc', 'lvis/segm_APf', 'lvis/bbox_AP',
            'lvis/bbox_APr')
SEG_KEYS = ('mIoU', 'aAcc')
FAMILY_CONFIGS = {
    'dino': 'configs/detection/dino-4scale_icar-swin-b_rfs-12e_ov-lvis.py',
    'rtmdet_ins': 'configs/detection/rtmdet-ins_icar-swin-b_rfs-36e_ov-lvis.py',
    'mask2former': 'configs/segmentation/mask2former_icar-swin-b_160k_ade20k-640x640.py',
    'action': 'configs/action/video-swin-b_icar_p244-w877_32x2x1-30e_ov-kinetics400-base200.py',
}
STEP_GROUPS = ('environment', 'mmcv_ops', 'classifier_autocast', 'dense_head', 'families',
               'detection', 'benchmark', 'segmentation')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', required=True, help='JSON report path')
    parser.add_argument('--work-dir', default='work_dirs/gpu_check')
    parser.add_argument('--data-root', default='data/ovdense_demo',
                        help='demo data (made here when missing)')
    parser.add_argument('--det-iters', type=int, default=200)
    parser.add_argument('--seg-iters', type=int, default=300)
    parser.add_argument('--workers', type=int, default=4, help='dataloader workers')
    parser.add_argument('--budget', type=float, default=420,
                        help='seconds after which no new step starts')
    parser.add_argument('--bench', choices=('full', 'tiny', 'none'), default='full')
    parser.add_argument('--bench-timeout', type=float, default=150)
    parser.add_argument('--steps', default=','.join(STEP_GROUPS),
                        help=f'comma-separated, among {",".join(STEP_GROUPS)} (default: all)')
    args = parser.parse_args(argv)
    args.steps = [s for s in args.steps.split(',') if s]
    unknown = sorted(set(args.steps) - set(STEP_GROUPS))
    if unknown:
        parser.error(f'--steps: unknown {unknown}; choose among {",".join(STEP_GROUPS)}')
    return args


class Report:
    def __init__(self, path: str, budget: float):
        self.path, self.budget, self.start = path, budget, time.time()
        self.data = {'started': time.strftime('%Y-%m-%d %H:%M:%S'), 'steps': {}}

    def step(self, name: str, fn, *args) -> None:
        elapsed = time.time() - self.start
        if elapsed > self.budget:
            self.data['steps'][name] = {'status': 'skipped',
                                        'why': f'budget spent ({elapsed:.0f} s)'}
            print(f'[gpu_check] {name}: skipped (budget)', flush=True)
        else:
            print(f'[gpu_check] {name} ...', flush=True)
            t0 = time.time()
            try:
                result = {'status': 'ok', **fn(*args)}
            except Exception as exc:  # noqa: BLE001  the report records every failure
                result = {'status': 'failed', 'error': f'{type(exc).__name__}: {exc}',
                          'traceback': traceback.format_exc()[-3000:]}
            result['seconds'] = round(time.time() - t0, 1)
            self.data['steps'][name] = result
            print(f'[gpu_check] {name}: {result["status"]} ({result["seconds"]} s)', flush=True)
        self.write()

    def write(self) -> None:
        self.data['wall_s'] = round(time.time() - self.start, 1)
        tmp = self.path + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(self.data, f, indent=1)
        os.replace(tmp, self.path)


def environment() -> dict:
    import mmcv
    import torch
    if not torch.cuda.is_available():
        raise RuntimeError('torch sees no CUDA device')
    kind = subprocess.run(['bash', osp.join(REPO, 'tools', 'build_mmcv.sh'), '--installed',
                           sys.executable], capture_output=True, text=True).stdout.split()
    # in a child process: mmcv 2.1.0's get_compiling_cuda_version() crashed (SIGSEGV) in a
    # CUDA 13 build
    probe = subprocess.run([sys.executable, '-c', 'from mmcv.ops import get_compiling_cuda_'
                            'version as v; print(v())'], capture_output=True, text=True)
    return {'gpu': torch.cuda.get_device_name(0),
            'capability': '%d.%d' % torch.cuda.get_device_capability(0),
            'torch': torch.__version__, 'torch_cuda': torch.version.cuda,
            'mmcv': mmcv.__version__, 'mmcv_ops': kind[-1] if kind else 'unknown',
            'mmcv_get_compiling_cuda_version': probe.stdout.strip() if probe.returncode == 0
            else f'crashed (exit {probe.returncode})',
            'python': sys.version.split()[0], 'cpu_count': os.cpu_count()}


def _max_error(a, b) -> float:
    return float((a.detach().float().cpu() - b.detach().float().cpu()).abs().max())


@contextlib.contextmanager
def exact_float32():
    """TF32 off for CUDA vs CPU comparisons: with PyTorch's default TF32 convolutions the
    logits, at scale 20, differed from the CPU's by 2.0e-3 on an H100."""
    import torch
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def mmcv_ops() -> dict:
    import torch
    from mmcv.ops import ModulatedDeformConv2d, RoIAlign, batched_nms, nms, sigmoid_focal_loss
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
    torch.manual_seed(0)
    cuda, results = torch.device('cuda'), {}

    def boxes(n, size=64.0):
        xy = torch.rand(n, 2) * size
        return torch.cat([xy, xy + 4 + torch.rand(n, 2) * size / 2], dim=1)

    b, s = boxes(500), torch.rand(500)
    keep_cpu, keep_gpu = nms(b, s, 0.5)[1], nms(b.to(cuda), s.to(cuda), 0.5)[1]
    results['nms'] = {'same_kept_boxes': bool(torch.equal(keep_cpu, keep_gpu.cpu()))}
    idx = torch.randint(0, 5, (500,))
    cpu_dets = batched_nms(b, s, idx, dict(type='nms', iou_threshold=0.5))[1]
    gpu_dets = batched_nms(b.to(cuda), s.to(cuda), idx.to(cuda),
                           dict(type='nms', iou_threshold=0.5))[1]
    results['batched_nms'] = {'same_kept_boxes': bool(torch.equal(cpu_dets, gpu_dets.cpu()))}

    feats = torch.randn(2, 8, 32, 32)
    rois = torch.cat([torch.randint(0, 2, (64, 1)).float(), boxes(64, 24.0)], dim=1)
    for name, op in (('roi_align_adaptive', RoIAlign(7, 0.5, 0)),
                     ('roi_align_2x2', RoIAlign(7, 0.5, 2))):
        results[name] = _forward_backward(op, op, feats, rois)
    # Not compared: RoIPool, which has no CPU kernel in mmcv; torchvision's differs by design
    # (rounded box corners; mmcv's kernel uses continuous corners and x2 + 1).

    dcn = ModulatedDeformConv2d(8, 8, 3, padding=1, deform_groups=1)
    x = torch.randn(2, 8, 16, 16)
    offset, mask = torch.randn(2, 18, 16, 16) * 2, torch.rand(2, 9, 16, 16)
    dcn_gpu = ModulatedDeformConv2d(8, 8, 3, padding=1, deform_groups=1).to(cuda)
    dcn_gpu.load_state_dict(dcn.state_dict())
    results['modulated_deform_conv2d'] = _forward_backward(
        lambda a, o, m: dcn(a, o, m), lambda a, o, m: dcn_gpu(a, o, m), x, offset, mask)

    value_shapes = torch.tensor([[16, 16], [8, 8]])
    start = torch.cat([value_shapes.new_zeros(1), value_shapes.prod(1).cumsum(0)[:-1]])
    value = torch.randn(2, 16 * 16 + 8 * 8, 4, 8)
    locations = torch.rand(2, 30, 4, 2, 4, 2)
    weights = torch.rand(2, 30, 4, 2, 4).softmax(-1)
    from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction as msda
    results['multi_scale_deformable_attn'] = _forward_backward(
        lambda v, l, w: multi_scale_deformable_attn_pytorch(v, value_shapes, l, w),
        lambda v, l, w: msda.apply(v, value_shapes.to(cuda), start.to(cuda), l, w, 64),
        value, locations, weights)
    results['multi_scale_deformable_attn']['reference'] = \
        "mmcv's multi_scale_deformable_attn_pytorch on CPU"

    logits, labels = torch.randn(200, 20), torch.randint(0, 21, (200,))
    one_hot = torch.nn.functional.one_hot(labels, 21)[:, :20].float()
    results['sigmoid_focal_loss'] = _forward_backward(
        lambda p: py_sigmoid_focal_loss(p, one_hot, reduction='sum'),
        lambda p: sigmoid_focal_loss(p, labels.to(cuda), 2.0, 0.25, None, 'sum'), logits)
    results['sigmoid_focal_loss']['reference'] = "mmdet's py_sigmoid_focal_loss on CPU"
    failures = [name for name, r in results.items()
                if not r.get('same_kept_boxes', True) or r.get('max_error', 0) > 1e-3]
    if failures:
        raise AssertionError(f'CUDA results differ from CPU for {failures}: {results}')
    return {'ops': results}


def _forward_backward(cpu_fn, gpu_fn, *inputs) -> dict:
    """Max abs difference of outputs and input gradients, CUDA vs CPU (float32)."""
    import torch
    cpu_in = [t.clone().requires_grad_(t.is_floating_point()) for t in inputs]
    gpu_in = [t.clone().cuda().requires_grad_(t.is_floating_point()) for t in inputs]
    out_cpu, out_gpu = cpu_fn(*cpu_in), gpu_fn(*gpu_in)
    grad = torch.randn_like(out_cpu)
    out_cpu.backward(grad)
    out_gpu.backward(grad.cuda())
    errors = [_max_error(out_cpu, out_gpu)] + [
        _max_error(a.grad, b.grad) for a, b in zip(cpu_in, gpu_in)
        if a.grad is not None and b.grad is not None]
    return {'max_error': max(errors), 'output_max_error': errors[0]}


def classifier_autocast() -> dict:
    import torch
    from ovdense.testing.autocast import classifier_autocast_report
    report = classifier_autocast_report('cuda', (torch.float16, torch.bfloat16))
    bad = [k for k, v in report.items() if isinstance(v, dict)
           and (not v['finite'] or v['argmax_agreement'] < 1.0)]
    if bad or not report['float32_argmax_is_label']:
        raise AssertionError(f'autocast {bad}: {report}')
    return report


def dense_head() -> dict:
    """A stock RTMDet-tiny (installed mmdet config) with ``TextRTMDetSepBNHead``: the head's
    outputs on CUDA against the CPU, then training steps on CUDA in fp32 and under fp16
    autocast with a dynamic loss scale (as ``--amp``), then prediction."""
    import torch
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.registry import init_default_scope
    from ovdense.testing import tiny_text_tower_cfg
    from ovdense.testing.configs import installed_config
    init_default_scope('mmdet')
    cfg = installed_config('mmdet', 'rtmdet/rtmdet_tiny_8xb32-300e_coco.py')
    cfg.model.data_preprocessor.pop('batch_augments', None)
    cfg.model.bbox_head.update(type='TextRTMDetSepBNHead', num_classes=4, text_classifier=dict(
        vocabulary='red circle,blue star,green square,yellow ring',
        text_tower=tiny_text_tower_cfg(osp.join(REPO, 'work_dirs', 'gpu_check', 'tower'),
                                       embed_dim=512)))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    x = tuple(torch.randn(1, 96, s, s) for s in (40, 20, 10))
    with exact_float32(), torch.no_grad():
        cpu = model.bbox_head(x)[0]
        model.cuda()
        gpu = model.bbox_head(tuple(t.cuda() for t in x))[0]
    result = {'cls_score_max_error_cuda_vs_cpu': max(_max_error(a, b)
                                                     for a, b in zip(cpu, gpu))}
    inputs = demo_mm_inputs(batch_size=4, image_shapes=[(3, 320, 320)] * 4, num_items=[4] * 4,
                            num_classes=4)
    for amp in (False, True):
        losses, seconds = _train_steps(model, inputs, 20, amp, lr=1e-3)
        result['amp' if amp else 'fp32'] = {
            'first_loss': round(losses[0], 4), 'last_loss': round(losses[-1], 4),
            'finite': all(map(math.isfinite, losses)), 's_per_step': seconds}
    model.eval()
    with torch.no_grad():
        predicted = model(**model.data_preprocessor(inputs, False), mode='predict')
    result['predicted_per_image'] = [len(r.pred_instances) for r in predicted]
    if result['cls_score_max_error_cuda_vs_cpu'] > 1e-3 or not (
            result['fp32']['finite'] and result['amp']['finite']):
        raise AssertionError(f'dense head on CUDA: {result}')
    return result


def family(config: str, work_dir: str, steps: int = 5) -> dict:
    """A shipped config, shrunk as the tests shrink it (tiny Swin loaded from an iCAR-layout
    file, tiny text tower, the config's heads, class-embedding component and novel classes):
    its outputs on CUDA against the CPU (TF32 off), ``steps`` training steps in fp32 and under
    fp16 autocast with a dynamic loss scale (as ``--amp``), then prediction."""
    import torch
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, init_default_scope
    from ovdense.testing.configs import shrink_config, tiny_icar_checkpoint
    from ovdense.testing.inputs import training_batch
    os.makedirs(work_dir, exist_ok=True)
    cfg = shrink_config(osp.join(REPO, config), work_dir,
                        icar_checkpoint=tiny_icar_checkpoint(work_dir))
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))  # SyncBN needs a process group
    model.init_weights()
    inputs = training_batch(model, cfg.default_scope)
    model.eval()
    with exact_float32(), torch.no_grad():
        cpu = _family_outputs(model, cfg.default_scope, inputs)
        model.cuda()
        gpu = _family_outputs(model, cfg.default_scope, inputs)
    result = {'outputs_max_error_cuda_vs_cpu': max(_max_error(a, b) for a, b in zip(cpu, gpu)),
              'outputs_compared': len(cpu)}
    for amp in (False, True):
        losses, seconds = _train_steps(model, inputs, steps, amp, lr=1e-4)
        result['amp' if amp else 'fp32'] = {
            'losses': [round(v, 4) for v in losses], 'finite': all(map(math.isfinite, losses)),
            's_per_step': seconds}
    model.eval()
    with torch.no_grad():
        predicted = model(**model.data_preprocessor(inputs, False), mode='predict')
    result['predicted'] = len(predicted)
    if result['outputs_max_error_cuda_vs_cpu'] > 1e-3 or not (
            result['fp32']['finite'] and result['amp']['finite']):
        raise AssertionError(f'{config} on CUDA: {result}')
    return result


def _train_steps(model, inputs, steps: int, amp: bool, lr: float):
    """``steps`` AdamW steps on CUDA, under fp16 autocast with a dynamic loss scale when
    ``amp`` (as ``--amp``); returns (losses, seconds per step)."""
    import torch
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    scaler = torch.amp.GradScaler('cuda', enabled=amp)
    losses, t0 = [], time.time()
    for _ in range(steps):
        with torch.autocast('cuda', dtype=torch.float16, enabled=amp):
            loss, _ = model.parse_losses(model(**model.data_preprocessor(inputs, True),
                                               mode='loss'))
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(float(loss.detach()))
    torch.cuda.synchronize()
    return losses, round((time.time() - t0) / steps, 4)


def _family_outputs(model, scope: str, inputs) -> list:
    """The tensors to compare: mmdet's ``tensor`` mode (every decoder layer's / level's
    scores and boxes); mmseg's and mmaction's predicted logits / scores."""
    import torch
    data = model.data_preprocessor(inputs, False)
    if scope == 'mmdet':
        out = model(**data, mode='tensor')
        flat = []
        stack = [out]
        while stack:
            item = stack.pop()
            if isinstance(item, torch.Tensor):
                flat.append(item)
            elif isinstance(item, (list, tuple)):
                stack.extend(reversed(item))
        return flat
    samples = model(**data, mode='predict')
    if scope == 'mmseg':
        return [s.seg_logits.data for s in samples]
    return [s.pred_score for s in samples]


def _run(command, log_path, timeout=None) -> None:
    with open(log_path, 'w', encoding='utf-8') as log:
        proc = subprocess.run([sys.executable, *command], cwd=REPO, stdout=log,
                              stderr=subprocess.STDOUT, timeout=timeout)
    if proc.returncode:
        with open(log_path, encoding='utf-8') as f:
            tail = f.read()[-2000:]
        raise RuntimeError(f'{" ".join(command[:2])} exited {proc.returncode}:\n{tail}')


def _train_and_test(config, work_dir, options, amp, keys, test_amp=True) -> dict:
    from run_demo import latest_metrics
    os.makedirs(work_dir, exist_ok=True)
    t0 = time.time()
    _run(['tools/train.py', config, '--work-dir', work_dir, *(['--amp'] if amp else []),
          '--cfg-options', *options], osp.join(work_dir, 'train.log'))
    train_s = time.time() - t0
    checkpoints = sorted((f for f in os.listdir(work_dir) if f.startswith('iter_')),
                         key=lambda f: int(f[5:-4]))
    checkpoint = osp.join(work_dir, checkpoints[-1])
    result = {'train_s': round(train_s, 1), 'checkpoint': checkpoint,
              'final_loss': _final_loss(work_dir)}
    for name, extra in (('test', []), ('test_amp', ['--amp'])):
        if name == 'test_amp' and (amp or not test_amp):
            continue
        t0 = time.time()
        test_dir = osp.join(work_dir, name)
        _run(['tools/test.py', config, checkpoint, '--work-dir', test_dir, *extra,
              '--cfg-options', *options], osp.join(work_dir, name + '.log'))
        metrics = latest_metrics(test_dir)
        result[name] = {k: metrics[k] for k in keys if k in metrics}
        result[name]['seconds'] = round(time.time() - t0, 1)
    return result


def _final_loss(work_dir):
    from run_demo import latest_metrics
    try:
        return latest_metrics(work_dir).get('loss')
    except FileNotFoundError:
        return None


def _loader_options(workers):
    return [f'{split}_dataloader.num_workers={workers}' for split in ('train', 'val')]


def detection(args, amp: bool) -> dict:
    from run_demo import data_options, schedule_options
    options = (data_options(args.data_root) + schedule_options(args.det_iters)
               + _loader_options(args.workers))
    name = 'detection_amp' if amp else 'detection_fp32'
    return _train_and_test(DET_CONFIG, osp.join(args.work_dir, name), options, amp, DET_KEYS)


def segmentation(args, amp: bool) -> dict:
    from run_demo import schedule_options
    root = osp.abspath(args.data_root)
    options = [f'{s}_dataloader.dataset.data_root={root}/ade/' for s in ('train', 'val')]
    options += [f'{s}_dataloader.dataset.vocabulary={root}/vocab_seg.json'
                for s in ('train', 'val')]
    for head in ('decode_head', 'auxiliary_head'):
        options += [f'model.{head}.text_classifier.vocabulary={root}/vocab_seg.json',
                    f'model.{head}.text_classifier.text_tower.hf_dir={root}/text_tower']
    options += schedule_options(args.seg_iters)  # the demo's shortening, as for detection
    options.append(f'train_cfg.val_interval={args.seg_iters + 1}')
    options += _loader_options(args.workers)
    name = 'segmentation_amp' if amp else 'segmentation_fp32'
    # the fp32 checkpoint under --amp is tested once, for detection (time budget)
    return _train_and_test(SEG_CONFIG, osp.join(args.work_dir, name), options, amp, SEG_KEYS,
                           test_amp=False)


def benchmark(args) -> dict:
    out = osp.join(osp.abspath(args.work_dir), 'benchmark-cuda.json')
    command = ['tools/benchmark.py', '--device', 'cuda', '--out', out]
    if args.bench == 'tiny':
        command.append('--tiny')
    log = osp.join(args.work_dir, 'benchmark.log')
    _run(command, log, timeout=args.bench_timeout)
    with open(out, encoding='utf-8') as f:
        report = json.load(f)
    with open(log, encoding='utf-8') as f:
        printed = f.read()
    return {'rows': report['rows'], 'memory': report.get('memory'), 'wall_s': report['wall_s'],
            'printed': printed[-6000:]}


def main(argv=None) -> int:
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    report = Report(args.out, args.budget)
    steps = set(args.steps)
    for name, fn in (('environment', environment), ('mmcv_ops', mmcv_ops),
                     ('classifier_autocast', classifier_autocast), ('dense_head', dense_head)):
        if name in steps:
            report.step(name, fn)
    if 'families' in steps:
        for name, config in FAMILY_CONFIGS.items():
            report.step(f'family_{name}', family, config,
                        osp.join(args.work_dir, f'family_{name}'))
    if steps & {'detection', 'segmentation'}:
        from run_demo import prepare_data
        report.step('demo_data', lambda: {'paths': prepare_data(args.data_root)})
    if 'detection' in steps:
        report.step('detection_fp32', detection, args, False)
        report.step('detection_amp', detection, args, True)
    if 'benchmark' in steps and args.bench != 'none':
        report.step('benchmark', benchmark, args)
    if 'segmentation' in steps:
        report.step('segmentation_fp32', segmentation, args, False)
        report.step('segmentation_amp', segmentation, args, True)
    failed = [k for k, v in report.data['steps'].items() if v['status'] == 'failed']
    report.data['failed'] = failed
    report.write()
    print(f'[gpu_check] report: {args.out}; failed steps: {failed or "none"}', flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
