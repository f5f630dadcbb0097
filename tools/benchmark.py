#!/usr/bin/env python
"""``make bench``: what the text-generated classifier costs, side by side with stock heads.

Every row is the ratio of two things measured in the same run, interleaved: after warm-up,
the two (or three) variants run in alternating order (A B, B A, A B, ...), so a slow spell of a
shared machine hits both; a row reports the median of the per-repetition ratios B/A with their
min and max, and each variant's median / min / max time.

Rows (the issue "the text-generated classifier must cost (almost) nothing"):

1. detection head overhead: Mask R-CNN, stock ``Shared2FCBBoxHead`` (Linear classifier) vs
   ``TextShared2FCBBoxHead`` (text cosine classifier, embeddings from the disk cache), K = 1203:
   training step and inference, and the peak memory of each;
2. vocabulary scaling: inference with the text head at K = 80, 1203, 21,000 vs K = 80, plus the
   classifier alone against a bare GEMM of the same shape (the N x D x K limit); 2b: the whole
   text scoring path (projection, normalisation, chunked logits, softmax, threshold) against
   the bare products it cannot avoid, (N x C) x (C x D) and (N x D) x (D x K), with random
   features (most rows ruled out before their softmax) and in the worst case (the bound
   test rules no row out, every row's softmax runs); 2c: the peer a
   user would otherwise run, the stock head with a K-way Linear loaded from a weight file and
   mmdet's post-processing, at K = 21,000 (time and peak memory);
3. segmentation head overhead: UperNet with stock ``conv_seg`` vs the text cosine classifier
   on the same UPerHead features, K = 150 and 847;
4. classifier build: LVIS-1203 x 80 templates, ovdense's ``build_class_embeddings`` vs
   open_clip's ``build_zero_shot_classifier`` on the same built tower (in interleaved chunks of
   classes that together make the full build), and warm (cache hit) vs cold (cache miss in a
   new ``FrozenTextEmbedder``: key, tower construction, encoding, cache write);
5. joint text-tower training: training step with the tower trainable (one sampled prompt per
   class) vs frozen cached embeddings, K = 1203, with the demo's softmax loss (the target) and
   with the LVIS configs' federated sigmoid loss (only the scored classes are encoded);
6. one-stage and DETR-family heads: mmdet's stock FCOS and DINO-4scale configs on the same
   backbone, their own heads vs the text heads, K = 1203, training step and inference, and the
   text FCOS head's peak inference memory at K = 21,000 over K = 80.

Timing rules: the optimizers run with lr = 0 and every step re-seeds the RNG, so each
repetition does exactly the same work (same proposals, same sampled RoIs). Peak memory is
the peak of the live tensor bytes during one step over those live when it starts: on CPU from
the profiler's memory timeline, on CUDA ``max_memory_allocated`` over ``memory_allocated``.

    python tools/benchmark.py                   # nano sizes, every row (~10 min on 2 cores)
    python tools/benchmark.py --size realistic  # ICARSwin-T Mask R-CNN 800x1333, D = 256,
                                                # UperNet 512x512: rows 1-3 (~15 min)
    python tools/benchmark.py --tiny            # the harness at tiny sizes (seconds)
"""
import argparse
import contextlib
import copy
import gc
import json
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # runnable from a source checkout without installing the package
# the demo Mask R-CNN (nano ICARSwin): configs/demo/mask-rcnn_icar-swin-nano_fpn_<schedule>_
# ovdense-demo-lvis.py (only its model is used)
DEMO_DET_CONFIG_PATTERN = osp.join(REPO, 'configs', 'demo',
                                   'mask-rcnn_icar-swin-nano_fpn_*_ovdense-demo-lvis.py')
ROW_IDS = ('det_train', 'det_infer', 'vocab_mid', 'vocab_large', 'scoring_vs_bare_k0',
           'scoring_vs_bare_mid', 'scoring_vs_bare_large', 'scoring_vs_bare_worst_k0',
           'scoring_vs_bare_worst_mid', 'scoring_vs_bare_worst_large', 'vocab_large_test_scale',
           'peer_head', 'peer_infer', 'seg_small_infer',
           'seg_small_train', 'seg_large_infer', 'seg_large_train', 'build_vs_open_clip',
           'build_warm_vs_cold', 'joint_train', 'joint_train_federated', 'dense_train',
           'dense_infer', 'detr_train', 'detr_infer')
SCORE_THR_NO_DETECTIONS = 1.01  # above any softmax score: see Sizes.det_test_note


@dataclass(frozen=True)
class Sizes:
    """Everything that sets the amount of work; printed with the results."""
    name: str = 'full'
    # 'demo': the demo's Mask R-CNN (nano ICARSwin, FPN 64, fc 256); 'swin-t': mmdet's Swin-T
    # Mask R-CNN (FPN 256, fc 1024) on ICARSwin arch 'tiny' (UperNet: 512 channels)
    model: str = 'demo'
    text_dim: Optional[int] = None               # None: the tower config's (64)
    det_class_counts: Tuple[int, ...] = (1203,)  # detection rows: text vs stock at each K
    step_peaks: bool = True                      # peak memory of the detection steps
    peer_classes: int = 21000                    # the peer row: stock linear head at this K
    # detection (rows 1, 2, 5): the demo's Mask R-CNN with a nano ICARSwin, mmdet's stock
    # Mask R-CNN RoI numbers (512 sampled RoIs / image in training, 1000 proposals at test)
    det_train_images: int = 2
    det_train_hw: Tuple[int, int] = (320, 320)
    det_test_hw: Tuple[int, int] = (320, 320)
    det_gt_per_image: int = 5
    det_train_proposals: int = 1000
    det_rcnn_samples: int = 512
    det_test_proposals: int = 1000
    det_classes: int = 1203                      # LVIS v1
    vocab_sizes: Tuple[int, int, int] = (80, 1203, 21000)  # COCO, LVIS, synthetic names
    # the largest vs the smallest vocabulary once more on an image of mmdet's test scale
    # (1333 x 800): the same RoIs and classifier against a backbone with real work to do
    vocab_test_scale_hw: Tuple[int, int] = (800, 1333)
    det_test_note: str = (
        'score_thr is set above 1, so every variant ends with an empty detection set: NMS and '
        'the class-agnostic mask branch (K-independent, the same in every variant) do not run '
        'and the ratios are upper bounds; an untrained model would otherwise keep different '
        'numbers of boxes at different K')
    # segmentation (row 3): UperNet on the same nano ICARSwin
    seg_classes: Tuple[int, int] = (150, 847)    # ADE20K-150, ADE20K-847
    seg_channels: int = 128
    seg_test_hw: Tuple[int, int] = (192, 192)
    seg_train_images: int = 2
    seg_train_hw: Tuple[int, int] = (128, 128)
    seg_train: bool = True                       # also the training-step rows
    # text tower of the cached embeddings and of joint training (rows 1-3, 5): the demo's
    # iCAR architecture at nano size (RoBERTa encoder, mean pooling, Linear -> embed_dim)
    tower_hidden: int = 64
    tower_layers: int = 2
    prompt_templates: str = 'single'             # for the cached embeddings (cost: setup only)
    # classifier build (row 4): an open_clip native text tower
    build_classes: Optional[int] = None          # None: all of LVIS v1
    build_templates: int = 80                    # the first N ImageNet templates
    build_width: int = 64
    build_layers: int = 1
    build_context: int = 20                      # LVIS x ImageNet prompts: <= 20 tokens
    build_embed_dim: int = 64
    build_batch: int = 256                       # ovdense's encode batch size
    build_openclip_classes_per_batch: int = 10   # open_clip's default
    # one-stage and DETR-family heads (row 6): mmdet's stock FCOS and DINO-4scale configs on
    # the same backbone, at det_classes; the dense head's memory also at peer_classes
    dense_config: str = 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
    detr_config: str = 'dino/dino-4scale_r50_8xb2-12e_coco.py'
    detr_queries: Optional[int] = None           # None: the config's (900)
    detr_layers: Optional[int] = None            # None: the config's (6 encoder, 6 decoder)
    # repetitions
    warmup: int = 2
    reps: int = 8
    reps_secondary: int = 4                      # rows without a target (seg K = 847)
    build_reps: int = 2                          # cold cache misses (full vocabulary)
    build_chunks: int = 12                       # open_clip vs ovdense: interleaved chunks
    micro_reps: int = 15

    def describe(self) -> Dict:
        return asdict(self)


FULL = Sizes()
# What users run (issue "Benchmarks at the sizes users run"): ICARSwin-T Mask R-CNN on one
# 800 x 1333 image, 1000 proposals, D = 256; UperNet on ICARSwin-T at 512 x 512.
REALISTIC = Sizes(name='realistic', model='swin-t', text_dim=256, det_train_images=1,
                  det_train_hw=(800, 1333), det_test_hw=(800, 1333),
                  det_train_proposals=1000, det_class_counts=(80, 1203), step_peaks=False,
                  vocab_test_scale_hw=(800, 1333), seg_channels=512, seg_test_hw=(512, 512),
                  seg_train=False, warmup=1, reps=3,
                  reps_secondary=2, micro_reps=5)
TINY = Sizes(name='tiny', det_train_images=1, det_train_hw=(64, 64), det_test_hw=(64, 64),
             det_gt_per_image=2, det_train_proposals=64, det_rcnn_samples=32,
             det_test_proposals=64, vocab_sizes=(80, 1203, 2000),
             vocab_test_scale_hw=(96, 128), seg_channels=32,
             seg_test_hw=(64, 64), seg_train_images=2, seg_train_hw=(64, 64), tower_hidden=32,
             tower_layers=1, build_classes=24, build_templates=4, build_width=32,
             build_context=20, build_embed_dim=32, warmup=1, reps=2, reps_secondary=2,
             build_reps=1, build_chunks=2,
             micro_reps=2, peer_classes=2000, detr_queries=30, detr_layers=1)
# preset -> (sizes, row groups; None: all)
PRESETS = {'nano': (FULL, None), 'tiny': (TINY, None),
           'realistic': (REALISTIC, ('detection', 'vocabulary', 'peer', 'segmentation'))}



# ------------------------------------------------------------------------------------------
# measurement
# ------------------------------------------------------------------------------------------
class Device:
    """Where the benchmark runs, how to wait for it, and how to read peak memory."""

    def __init__(self, name: str = 'auto'):
        if name == 'auto':
            name = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.torch = torch.device(name)
        self.is_cuda = self.torch.type == 'cuda'

    def sync(self) -> None:
        if self.is_cuda:
            torch.cuda.synchronize(self.torch)

    def describe(self) -> str:
        if self.is_cuda:
            return f'cuda ({torch.cuda.get_device_name(self.torch)})'
        return f'cpu ({platform.processor() or platform.machine()}, ' \
               f'{torch.get_num_threads()} torch threads, {os.cpu_count()} cores visible)'

    # -- memory ----------------------------------------------------------------------------
    @property
    def memory_method(self) -> str:
        if self.is_cuda:
            return 'cuda max_memory_allocated - memory_allocated before the step'
        return ('cpu tensor memory (torch.profiler memory timeline: peak of the live tensor '
                'bytes during the step - those live when it starts; what max_memory_allocated '
                'reports on CUDA)')

    def peak_bytes(self, fn: Callable[[], None]) -> int:
        """Extra tensor memory one call of ``fn`` needs at its peak."""
        gc.collect()
        if self.is_cuda:
            self.sync()
            torch.cuda.reset_peak_memory_stats(self.torch)
            before = torch.cuda.memory_allocated(self.torch)
            fn()
            self.sync()
            return int(torch.cuda.max_memory_allocated(self.torch) - before)
        return _cpu_tensor_peak_bytes(fn)


def _cpu_tensor_peak_bytes(fn: Callable[[], None]) -> int:
    """Peak of the live CPU tensor bytes during one call of ``fn`` over those live when it
    starts. Tensor bytes, not the resident set: the resident set of one inference varied by
    10 MB between identical calls (glibc keeps and reuses freed blocks), more than the
    effects measured here. Memory that BLAS allocates for itself is not seen."""
    from torch.profiler import ProfilerActivity, profile

    # kineto otherwise prints its start/stop lines, and on a machine without a GPU an
    # "ERROR ... gpuGetDeviceCount failed", between the rows of the report
    os.environ.setdefault('KINETO_LOG_LEVEL', '6')
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                 with_stack=True) as prof:
        # the timeline starts after its first event: let that be a 1-byte allocation
        start_marker = torch.empty(1, dtype=torch.uint8)
        fn()
        del start_marker
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'memory_timeline.json')
        prof.export_memory_timeline(path, device='cpu')
        with open(path) as f:
            _, bytes_by_category = json.load(f)
    live = [sum(categories) for categories in bytes_by_category]
    return int(max(live) - live[0]) if live else 0


def interleave(variants: Dict[str, Callable[[], None]], reps: int, warmup: int,
               device: Device) -> Dict[str, List[float]]:
    """Seconds per call of each variant: warm-up rounds, then ``reps`` rounds in alternating
    order (forward, backward, ...), so neighbouring calls of different variants share the
    machine's state."""
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    device.sync()
    times: Dict[str, List[float]] = {name: [] for name in names}
    gc.collect()
    gc.disable()  # no collector pauses inside a timed call
    try:
        for rep in range(reps):
            for name in (names if rep % 2 == 0 else names[::-1]):
                start = time.perf_counter()
                variants[name]()
                device.sync()
                times[name].append(time.perf_counter() - start)
    finally:
        gc.enable()
    return times


def time_stats(seconds: Sequence[float]) -> Dict:
    ms = [s * 1e3 for s in seconds]
    return {'median_ms': statistics.median(ms), 'min_ms': min(ms), 'max_ms': max(ms),
            'n': len(ms), 'all_ms': [round(v, 3) for v in ms]}


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> Dict:
    """Per-repetition ratios b_i / a_i: median (the row's value), min and max; and, as
    cross-checks, the ratio of medians and the ratio of minima."""
    pairs = [tb / ta for ta, tb in zip(a, b)]
    return {'ratio': statistics.median(pairs), 'ratio_min': min(pairs),
            'ratio_max': max(pairs),
            'ratio_of_medians': statistics.median(b) / statistics.median(a),
            'ratio_of_mins': min(b) / min(a)}


def make_row(row_id: str, group: str, label: str, a_label: str, b_label: str,
             a_times: Sequence[float], b_times: Sequence[float],
             target: Optional[Tuple[str, float]] = None, speedup: bool = False,
             extra: Optional[Dict] = None) -> Dict:
    """A result row. ``speedup=False``: value = time(B) / time(A) (an overhead); ``True``:
    value = time(A) / time(B) (how many times faster B is)."""
    stats = paired_ratio(b_times, a_times) if speedup else paired_ratio(a_times, b_times)
    met = None
    if target is not None:
        op, value = target
        met = bool(stats['ratio'] <= value if op == '<=' else stats['ratio'] >= value)
    return {'id': row_id, 'group': group, 'label': label, 'a': a_label, 'b': b_label,
            'value_kind': 'speedup time(A)/time(B)' if speedup else 'time ratio time(B)/time(A)',
            **stats, 'a_time': time_stats(a_times), 'b_time': time_stats(b_times),
            'target': None if target is None else f'{target[0]} {target[1]:g}',
            'target_op': None if target is None else target[0],
            'target_value': None if target is None else target[1], 'met': met,
            'extra': extra or {}}


# ------------------------------------------------------------------------------------------
# shared set-up
# ------------------------------------------------------------------------------------------
class Context:
    """Files the benchmark makes (tower tokenizer, vocabularies, embedding cache) and the
    settings every row shares."""

    def __init__(self, sizes: Sizes, device: Device, work_dir: str):
        self.sizes = sizes
        self.device = device
        self.work_dir = work_dir
        self.cache_dir = osp.join(work_dir, 'embedding_cache')
        self.setup_seconds: Dict[str, float] = {}
        start = time.perf_counter()
        self.tower_dir = self._make_tower_dir()
        self.setup_seconds['tower tokenizer'] = time.perf_counter() - start
        self.tower_cfg = dict(model=self._tower_model(), hf_dir=self.tower_dir)
        self.prompts = dict(templates=sizes.prompt_templates)
        self._det_cfg = None

    def _make_tower_dir(self) -> str:
        from ovdense.text import load_templates, load_vocabulary
        from ovdense.demo import build_local_roberta_dir
        lines = []
        for name in ('lvis_v1', 'ade20k_847', 'coco'):
            for entry in load_vocabulary(name):
                lines += [entry.readable_name, entry.description]
        lines += [t.format('') for t in load_templates('imagenet')] + ['type']
        return build_local_roberta_dir(
            osp.join(self.work_dir, 'text_tower'), [line for line in lines if line],
            hidden=self.sizes.tower_hidden, layers=self.sizes.tower_layers, heads=2,
            vocab_size=2000, max_positions=40)

    def _tower_model(self) -> str:
        """The demo tower's config, with ``sizes.text_dim`` as its embedding size."""
        if self.sizes.text_dim is None:
            return 'icar-roberta-nano'
        from ovdense.text.towers import load_tower_config
        config = copy.deepcopy(load_tower_config('icar-roberta-nano'))
        config['embed_dim'] = self.sizes.text_dim
        path = osp.join(self.work_dir, f'icar-roberta-nano-{self.sizes.text_dim}.json')
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(config, f)
        return path

    def vocabulary(self, num_classes: int):
        """COCO for 80, LVIS v1 for 1203, otherwise synthetic names (LVIS names + a type
        number: ``'aerosol can type 3'``), written to a file."""
        if num_classes == 80:
            return 'coco'
        if num_classes == 1203:
            return 'lvis_v1'
        from ovdense.text import load_vocabulary
        names = [e.readable_name for e in load_vocabulary('lvis_v1')]
        path = osp.join(self.work_dir, f'synthetic_{num_classes}.txt')
        if not osp.isfile(path):
            with open(path, 'w', encoding='utf-8') as f:
                f.writelines(f'{names[i % len(names)]} type {i // len(names)}\n'
                             for i in range(num_classes))
        return path

    def text_classifier(self, vocabulary, train_text_tower: bool = False, **kwargs) -> Dict:
        return dict(vocabulary=vocabulary, text_tower=dict(self.tower_cfg),
                    prompts=dict(self.prompts), train_text_tower=train_text_tower,
                    cache_dir=self.cache_dir, scale=20.0, **kwargs)

    # -- detection -------------------------------------------------------------------------
    def det_config(self):
        if self._det_cfg is None:
            from mmengine.config import Config
            if self.sizes.model == 'demo':
                self._det_cfg = Config.fromfile(demo_det_config())
            else:
                self._det_cfg = swin_t_det_config()
        return self._det_cfg

    def backbone_cfg(self) -> Dict:
        backbone = copy.deepcopy(self.det_config().model.backbone)
        backbone = backbone.to_dict() if hasattr(backbone, 'to_dict') else dict(backbone)
        backbone.pop('_delete_', None)
        return backbone

    def det_model(self, head: str, num_classes: int, train_text_tower: bool = False,
                  federated: bool = False):
        """The demo Mask R-CNN with ``head`` = ``'stock'`` (Shared2FCBBoxHead) or ``'text'``
        (TextShared2FCBBoxHead), class-agnostic box regression and masks; ``federated``:
        the LVIS configs' FederatedSigmoidLoss (present + sampled classes, 50 per step)
        instead of the demo's softmax cross-entropy."""
        s = self.sizes
        model = copy.deepcopy(self.det_config().model)
        bbox = model.roi_head.bbox_head
        bbox.num_classes = num_classes
        if federated:
            bbox.loss_cls = dict(type='FederatedSigmoidLoss', num_sample_classes=50)
        model.roi_head.mask_head.num_classes = num_classes
        if head == 'stock':
            bbox.type = 'Shared2FCBBoxHead'
            bbox.pop('text_classifier')
        else:
            bbox.text_classifier = self.text_classifier(self.vocabulary(num_classes),
                                                        train_text_tower)
        model.train_cfg.rpn_proposal.update(nms_pre=2000, max_per_img=s.det_train_proposals)
        model.train_cfg.rcnn.sampler.num = s.det_rcnn_samples
        model.test_cfg.rpn.update(nms_pre=1000, max_per_img=s.det_test_proposals)
        model.test_cfg.rcnn.update(score_thr=SCORE_THR_NO_DETECTIONS, max_per_img=100)
        return _build(model.to_dict(), 'mmdet', self.device)

    def det_inputs(self, train: bool, num_classes: int, hw: Optional[Tuple[int, int]] = None
                   ) -> Dict:
        from mmdet.testing import demo_mm_inputs
        s = self.sizes
        batch = s.det_train_images if train else 1
        hw = hw or (s.det_train_hw if train else s.det_test_hw)
        return demo_mm_inputs(batch_size=batch, image_shapes=[(3, *hw)] * batch,
                              num_items=[s.det_gt_per_image] * batch,
                              num_classes=num_classes, with_mask=True)

    # -- one-stage and DETR-family detectors (row 6) ------------------------------------------
    def dense_model(self, relpath: str, head: str, num_classes: int):
        """mmdet's stock config ``relpath`` (FCOS, DINO, ...) on the benchmark's backbone;
        ``head='text'``: the head adopts the text classifier by its type alone, as the README
        says (``TextDenseHead(base_type=...)``; DETR family: ``Text<Head>`` and ``TextDINO``)."""
        from ovdense.testing.configs import installed_config
        s = self.sizes
        model = installed_config('mmdet', relpath).model
        model.data_preprocessor.pop('batch_augments', None)
        channels = [self.backbone_cfg()['arch']['embed_dims'] * 2 ** i for i in range(4)]
        indices = tuple(model.backbone.out_indices)
        model.backbone = dict(self.backbone_cfg(), out_indices=indices)
        model.neck.in_channels = [channels[i] for i in indices]
        if 'encoder' in model:  # DETR family
            model.num_queries = s.detr_queries or model.num_queries
            if s.detr_layers:
                model.encoder.num_layers = model.decoder.num_layers = s.detr_layers
        bbox = model.bbox_head
        bbox.num_classes = num_classes
        if head == 'text':
            if 'encoder' in model:
                bbox.type = 'Text' + bbox.type
                if model.type == 'DINO':
                    model.type = 'TextDINO'  # denoising label queries from the embeddings
            else:
                bbox.base_type, bbox.type = bbox.type, 'TextDenseHead'
            bbox.text_classifier = self.text_classifier(self.vocabulary(num_classes))
        return _build(model.to_dict(), 'mmdet', self.device)

    # -- segmentation ----------------------------------------------------------------------
    def seg_model(self, head: str, num_classes: int):
        """UperNet (EncoderDecoder + UPerHead) on the nano ICARSwin; ``head='text'`` replaces
        the UPerHead's ``conv_seg`` (1x1 conv) by the text cosine classifier, applied to the
        same features (after the same dropout)."""
        s = self.sizes
        channels = [self.backbone_cfg()['arch']['embed_dims'] * 2 ** i for i in range(4)]
        model = dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                                   std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                                   seg_pad_val=255, size_divisor=32),
            backbone=self.backbone_cfg(),
            decode_head=dict(type='UPerHead', in_channels=channels, in_index=[0, 1, 2, 3],
                             pool_scales=(1, 2, 3, 6), channels=s.seg_channels,
                             dropout_ratio=0.1, num_classes=num_classes,
                             norm_cfg=dict(type='BN', requires_grad=True), align_corners=False,
                             loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                              loss_weight=1.0)),
            train_cfg=dict(), test_cfg=dict(mode='whole'))
        if head != 'text':
            return _build(model, 'mmseg', self.device)
        vocabulary = {150: 'ade20k_150', 847: 'ade20k_847'}.get(
            num_classes) or self.vocabulary(num_classes)
        text_classifier = self.text_classifier(vocabulary)
        if seg_text_head_type() == 'TextUPerHead':
            model['decode_head'].update(type='TextUPerHead', text_classifier=text_classifier)
            return _build(model, 'mmseg', self.device)
        # without ovdense's segmentation heads: the same construction by hand
        from ovdense.text import TextCosineClassifier
        built = _build(model, 'mmseg', self.device)
        classifier = TextCosineClassifier(in_features=s.seg_channels, out_features=num_classes,
                                          **text_classifier)
        built.decode_head.conv_seg = classifier.to(self.device.torch)
        return built

    def seg_inputs(self, train: bool, num_classes: int) -> Dict:
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        s = self.sizes
        batch = s.seg_train_images if train else 1
        h, w = s.seg_train_hw if train else s.seg_test_hw
        rng = np.random.RandomState(0)
        inputs, samples = [], []
        for _ in range(batch):
            inputs.append(torch.from_numpy(rng.randint(0, 255, (3, h, w), dtype=np.uint8)))
            # blocky labels (8 x 8 cells), as real masks are regions, not noise
            cells = rng.randint(0, num_classes, (1, (h + 7) // 8, (w + 7) // 8))
            label = np.repeat(np.repeat(cells, 8, axis=1), 8, axis=2)[:, :h, :w]
            sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                                 pad_shape=(h, w), img_path='<benchmark>'))
            sample.gt_sem_seg = PixelData(data=torch.from_numpy(label).long())
            samples.append(sample)
        return dict(inputs=inputs, data_samples=samples)


DETECTORS = {'demo': 'demo Mask R-CNN (nano ICARSwin, FPN 64, fc 256)',
             'swin-t': "mmdet's Swin-T Mask R-CNN on ICARSwin-T (FPN 256, fc 1024)"}
BACKBONES = {'demo': 'nano ICARSwin', 'swin-t': 'ICARSwin-T'}
# ICARSwin 'tiny' with its arch spelled out (the segmentation model reads embed_dims)
SWIN_T_BACKBONE = dict(type='ICARSwin', arch=dict(embed_dims=96, depths=(2, 2, 6, 2),
                                                  num_heads=(3, 6, 12, 24), window_size=7),
                       pretrain_img_size=224, drop_path_rate=0.2, out_indices=(0, 1, 2, 3),
                       checkpoint=None, text_embed_dims=None)


def swin_t_det_config():
    """mmdet's Swin-T Mask R-CNN (``swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py``: FPN 256,
    Shared2FCBBoxHead fc 1024) with the ICARSwin-T backbone (random weights: nothing is
    downloaded), and the demo's text head settings: ``TextStandardRoIHead``, class-agnostic
    boxes and masks (for the stock head as well)."""
    import mmdet
    from mmengine.config import Config
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'swin',
                    'mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py')
    cfg = Config.fromfile(path)
    model = cfg.model
    model.backbone = dict(SWIN_T_BACKBONE)
    model.roi_head.type = 'TextStandardRoIHead'
    model.roi_head.bbox_head.update(type='TextShared2FCBBoxHead', reg_class_agnostic=True,
                                    text_classifier=dict())
    model.roi_head.mask_head.class_agnostic = True
    return cfg


def demo_det_config() -> str:
    import glob
    paths = sorted(glob.glob(DEMO_DET_CONFIG_PATTERN))
    if len(paths) != 1:
        raise FileNotFoundError(f'expected one demo detection config matching '
                                f'{DEMO_DET_CONFIG_PATTERN}, found {paths}')
    return paths[0]


def seg_text_head_type() -> str:
    """``'TextUPerHead'`` (ovdense.models.decode_heads) when registered, else
    ``'UPerHead+swap'``: a stock UPerHead whose conv_seg is replaced by the classifier."""
    import ovdense  # noqa: F401
    from mmseg.registry import MODELS
    return 'TextUPerHead' if MODELS.get('TextUPerHead') is not None else 'UPerHead+swap'


def _build(model_cfg: Dict, scope: str, device: Device):
    from mmengine.registry import init_default_scope
    init_default_scope(scope)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    from mmengine.config import ConfigDict
    torch.manual_seed(0)  # same initial weights for every variant's shared parts
    model = registry.build(ConfigDict(model_cfg))
    model.init_weights()
    return model.to(device.torch)


def train_step(model, data: Dict) -> Callable[[], None]:
    """One optimisation step (forward, backward, gradient clipping, AdamW) that leaves the
    weights unchanged (lr = 0), so every repetition does the same work."""
    from mmengine.optim import OptimWrapper
    optim = OptimWrapper(torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=0.0, weight_decay=0.05),
        clip_grad=dict(max_norm=10.0, norm_type=2))

    def step():
        model.train()
        torch.manual_seed(0)
        batch = model.data_preprocessor(data, True)
        losses = model(**batch, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim.update_params(loss)
    return step


def infer_step(model, data: Dict) -> Callable[[], None]:
    def step():
        model.eval()
        with torch.no_grad():
            model(**model.data_preprocessor(data, False), mode='predict')
    return step


def _mb(num_bytes: Optional[int]) -> Optional[float]:
    return None if num_bytes is None else round(num_bytes / 2 ** 20, 2)


def _param_bytes(module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def _classifier_bytes(fc_cls) -> Dict:
    """Resident bytes of a box classifier: parameters, and (text) the (K, D) embeddings."""
    out = {'param_bytes': _param_bytes(fc_cls)}
    source = getattr(fc_cls, 'class_embeddings', None)
    embeddings = getattr(source, '_fixed', None)
    if embeddings is not None:
        out['embedding_bytes'] = embeddings.numel() * embeddings.element_size()
    cached = getattr(fc_cls, '_weights_cache', None)  # the (K + 1, D) test-time weights
    if cached is not None and embeddings is not None and (
            embeddings.untyped_storage().data_ptr() != cached[2].untyped_storage().data_ptr()):
        # only when they are a second copy (a shared component keeps its own)
        out['weights_with_background_bytes'] = cached[2].numel() * cached[2].element_size()
    return out


def _count_rois(model) -> Callable[[], int]:
    """How many RoIs reach the box head (recorded by a forward hook on the RoI extractor:
    the chunked test path calls the classifier's embedding step, not the classifier)."""
    seen = {'n': 0}
    model.roi_head.bbox_roi_extractor.register_forward_hook(
        lambda module, args, output: seen.__setitem__('n', int(output.shape[0])))
    return lambda: seen['n']


# ------------------------------------------------------------------------------------------
# rows
# ------------------------------------------------------------------------------------------
def rows_detection(ctx: Context, log: Callable[[str], None]) -> List[Dict]:
    """1. stock Shared2FCBBoxHead vs text cosine head (cached embeddings), at each K of
    ``sizes.det_class_counts``: training step and inference (and their peak memory)."""
    rows = []
    for k in ctx.sizes.det_class_counts:
        rows += _rows_detection_at(ctx, log, k)
    return rows


def _rows_detection_at(ctx: Context, log: Callable[[str], None], k: int) -> List[Dict]:
    s, dev = ctx.sizes, ctx.device
    group = '1. detection head overhead'
    suffix = '' if k == s.det_classes else f'_k{k}'
    models = {'stock': ctx.det_model('stock', k), 'text': ctx.det_model('text', k)}
    train_data, test_data = ctx.det_inputs(True, k), ctx.det_inputs(False, k)
    train = {n: train_step(m, train_data) for n, m in models.items()}
    log(f'  K = {k}: training steps ...')
    times = interleave(train, s.reps, s.warmup, dev)
    infer = {n: infer_step(m, test_data) for n, m in models.items()}
    rois = _count_rois(models['text'])
    log(f'  K = {k}: inference ...')
    times_i = interleave(infer, s.reps, s.warmup, dev)
    extra_train = {}
    extra_infer = {'rois_per_image': rois()}
    if s.step_peaks:
        train_peak = {n: dev.peak_bytes(fn) for n, fn in train.items()}
        infer_peak = {n: dev.peak_bytes(fn) for n, fn in infer.items()}
        classifier = {n: _classifier_bytes(m.roi_head.bbox_head.fc_cls)
                      for n, m in models.items()}
        memory = {n: {'train_step_peak_mb': _mb(train_peak[n]),
                      'inference_peak_mb': _mb(infer_peak[n]),
                      'classifier_resident_bytes': classifier[n]} for n in models}
        extra_train = {'memory': memory, 'peak_mb_ratio_text_vs_stock': _ratio(
            train_peak['text'], train_peak['stock'])}
        extra_infer.update(memory=memory, peak_mb_ratio_text_vs_stock=_ratio(
            infer_peak['text'], infer_peak['stock']))
    a = (f'stock Shared2FCBBoxHead (Linear '
         f'{models["stock"].roi_head.bbox_head.fc_cls.in_features}->{k + 1})')
    b = f'TextShared2FCBBoxHead (cached text embeddings, D={_embed_dim(models["text"])})'
    rows = [make_row('det_train' + suffix, group, f'Mask R-CNN training step, K={k}', a, b,
                     times['stock'], times['text'], ('<=', 1.03) if not suffix else None,
                     extra=extra_train),
            make_row('det_infer' + suffix, group, f'Mask R-CNN inference, K={k}', a, b,
                     times_i['stock'], times_i['text'], ('<=', 1.02) if not suffix else None,
                     extra=extra_infer)]
    del models, train, infer
    gc.collect()
    return rows


def _embed_dim(det_model) -> int:
    return int(det_model.roi_head.bbox_head.fc_cls.embed_dim)


def _ratio(b, a) -> Optional[float]:
    return None if not a or b is None else round(b / a, 4)


def rows_vocabulary(ctx: Context, log: Callable[[str], None]) -> List[Dict]:
    """2. text-head inference at K = 80, 1203, 21000 vs 80; classifier vs bare GEMM."""
    s, dev = ctx.sizes, ctx.device
    group = '2. vocabulary scaling'
    ks = s.vocab_sizes
    start = time.perf_counter()
    models = {k: ctx.det_model('text', k) for k in ks}
    data = {k: ctx.det_inputs(False, k) for k in ks}
    infer = {k: infer_step(models[k], data[k]) for k in ks}
    rois = {k: _count_rois(models[k]) for k in ks}
    for k in ks:  # first call: loads (or builds, then caches) the class embeddings
        infer[k]()
    ctx.setup_seconds['embedding caches for vocabulary scaling'] = time.perf_counter() - start
    log('  inference at K = ' + ', '.join(map(str, ks)) + ' ...')
    times = interleave(infer, s.reps, s.warmup, dev)
    peaks = {k: dev.peak_bytes(infer[k]) for k in ks}
    n_rois = rois[ks[0]]()
    fc = {k: models[k].roi_head.bbox_head.fc_cls for k in ks}
    d = int(fc[ks[0]].embed_dim)
    c = int(fc[ks[0]].in_features)

    # the classifier alone vs the bare (N, D) x (D, K+1) product it cannot avoid
    log('  classifier alone vs bare GEMM ...')
    feats = torch.randn(n_rois, c, device=dev.torch)
    micro = {}
    for k in ks:
        fc[k].eval()
        x = torch.nn.functional.normalize(torch.randn(n_rois, d, device=dev.torch), dim=-1)
        w = torch.nn.functional.normalize(torch.randn(k + 1, d, device=dev.torch), dim=-1)

        def classify(module=fc[k]):
            with torch.no_grad():
                module(feats)

        def gemm(x=x, w=w):
            with torch.no_grad():
                x @ w.t()
        micro[f'classifier_{k}'] = classify
        micro[f'gemm_{k}'] = gemm
        micro[f'path_{k}'] = _scoring_path(models[k].roi_head.bbox_head, feats)
        micro[f'path_worst_{k}'] = _scoring_path_nothing_ruled_out(
            models[k].roi_head.bbox_head, feats)
        projection = torch.randn(c, d, device=dev.torch)

        def bare_products(w=w, projection=projection):  # the text path's two GEMMs
            with torch.no_grad():
                (feats @ projection) @ w.t()
        micro[f'bare_{k}'] = bare_products
    micro_times = interleave(micro, s.micro_reps, s.warmup, dev)
    micro_peaks = {k: dev.peak_bytes(micro[f'classifier_{k}']) for k in ks}

    k0 = ks[0]
    base = statistics.median(times[k0])
    rows = []
    for row_id, k, target in (('vocab_mid', ks[1], None), ('vocab_large', ks[2], ('<=', 1.10))):
        extra_ms = (statistics.median(times[k]) - base) * 1e3
        gemm_extra_ms = (statistics.median(micro_times[f'gemm_{k}'])
                         - statistics.median(micro_times[f'gemm_{k0}'])) * 1e3
        clf_extra_ms = (statistics.median(micro_times[f'classifier_{k}'])
                        - statistics.median(micro_times[f'classifier_{k0}'])) * 1e3
        extra = {
            'rois_per_image': n_rois, 'embed_dim': d, 'in_features': c,
            'macs_classifier_matmul': n_rois * d * (k + 1),
            'extra_inference_ms_vs_k0': round(extra_ms, 3),
            'extra_bare_gemm_ms_vs_k0': round(gemm_extra_ms, 3),
            'extra_classifier_ms_vs_k0': round(clf_extra_ms, 3),
            'classifier_ms': time_stats(micro_times[f'classifier_{k}']),
            'bare_gemm_ms': time_stats(micro_times[f'gemm_{k}']),
            'classifier_vs_bare_gemm': paired_ratio(micro_times[f'gemm_{k}'],
                                                    micro_times[f'classifier_{k}']),
            'inference_peak_mb': _mb(peaks[k]), 'inference_peak_mb_k0': _mb(peaks[k0]),
            'peak_growth_mb_vs_k0': _mb(peaks[k] - peaks[k0]),
            'growth_unit_kd_mb': _mb((k - k0) * d * 4),
            'growth_unit_nk_mb': _mb((k - k0) * n_rois * 4),
            'embedding_resident_mb': _mb(_classifier_bytes(fc[k]).get('embedding_bytes')),
            'classifier_alone_peak_mb': _mb(micro_peaks[k]),
            'classifier_alone_peak_mb_k0': _mb(micro_peaks[k0]),
            'logits_mb': _mb(n_rois * (k + 1) * 4),
            'extra_outside_classifier_ms': round(extra_ms - clf_extra_ms, 3),
        }
        rows.append(make_row(row_id, group, f'text-head inference, K={k} vs K={k0}',
                             f'text head, K={k0}', f'text head, K={k}', times[k0], times[k],
                             target, extra=extra))
    for name, k in zip(('k0', 'mid', 'large'), ks):
        rows.append(make_row(
            f'scoring_vs_bare_{name}', '2b. text scoring vs the bare products',
            f'text scoring path, K={k}',
            f'bare products ({n_rois} x {c}) x ({c} x {d}), then x ({d} x {k + 1})',
            'text scoring path (projection, normalisation, chunked logits, softmax, '
            'threshold 0.05)', micro_times[f'bare_{k}'], micro_times[f'path_{k}'],
            ('<=', 1.3), extra={'macs': n_rois * c * d + n_rois * d * (k + 1)}))
    for name, k in zip(('k0', 'mid', 'large'), ks):
        rows.append(make_row(
            f'scoring_vs_bare_worst_{name}', '2b. text scoring vs the bare products',
            f'the same, no row ruled out, K={k}',
            f'bare products ({n_rois} x {c}) x ({c} x {d}), then x ({d} x {k + 1})',
            'text scoring path whose bound test rules no row out (its cost, then every '
            "row's softmax: the worst case)", micro_times[f'bare_{k}'],
            micro_times[f'path_worst_{k}'], ('<=', 1.3)))
    del micro
    if tuple(s.vocab_test_scale_hw) != tuple(s.det_test_hw):
        rows.append(_row_vocabulary_at_test_scale(
            ctx, log, {k: models[k] for k in (ks[0], ks[2])}, group))
    del models, infer
    gc.collect()
    return rows


def _scoring_path(bbox_head, feats: torch.Tensor, score_thr: float = 0.05
                  ) -> Callable[[], None]:
    """The text head's test-time scoring of (N, C) RoI features, as ``predict_embedded``
    runs it: projection and normalisation, then logits, activation and threshold a chunk of
    RoIs at a time (mmdet's default score_thr; the box decoding and NMS that follow are the
    stock head's too)."""
    def path():
        with torch.no_grad():
            bbox_head.scored_pairs_of_embedded(bbox_head.fc_cls.embed(feats), score_thr)
    return path


def _scoring_path_nothing_ruled_out(bbox_head, feats: torch.Tensor) -> Callable[[], None]:
    """The scoring path's worst case: its bound test runs (its cost is paid) but rules no row
    out, so every row's softmax runs too, as when every RoI may score (random features leave
    most rows to the bound; the benchmark's text tower cannot make rows that score)."""
    from unittest import mock

    from ovdense.models.roi_heads import postprocess
    path = _scoring_path(bbox_head, feats)
    bound_test = postprocess._rows_that_may_score

    def every_row(logits: torch.Tensor, score_thr: float) -> torch.Tensor:
        bound_test(logits, score_thr)
        return torch.arange(logits.shape[0], device=logits.device)

    def worst():
        with mock.patch.object(postprocess, '_rows_that_may_score', every_row):
            path()
    return worst


def _row_vocabulary_at_test_scale(ctx: Context, log, models: Dict[int, object], group: str
                                  ) -> Dict:
    """The largest vs the smallest vocabulary on one image of mmdet's test scale: the
    classifier's work is the same as at the small size (same RoI count), the backbone's is
    that of a real test image."""
    s = ctx.sizes
    (k0, model0), (k, model) = models.items()
    hw = s.vocab_test_scale_hw
    infer = {n: infer_step(m, ctx.det_inputs(False, n, hw)) for n, m in models.items()}
    rois = _count_rois(model)
    log(f'  inference at K = {k0}, {k} on {hw[0]}x{hw[1]} ...')
    times = interleave(infer, s.reps_secondary, s.warmup, ctx.device)
    return make_row('vocab_large_test_scale', group,
                    f'text-head inference, K={k} vs K={k0}, {hw[0]}x{hw[1]} image',
                    f'text head, K={k0}', f'text head, K={k}', times[k0], times[k],
                    extra={'image_hw': list(hw), 'rois_per_image': rois()})


def rows_peer(ctx: Context, log: Callable[[str], None]) -> List[Dict]:
    """2c. What a user would otherwise run for a large vocabulary: the stock
    ``Shared2FCBBoxHead`` whose K-way Linear classifier is loaded from a (K + 1) x C weight
    file (Detic-style: the class weights precomputed, here random), through mmdet's own
    post-processing (softmax over N x (K + 1), ``multiclass_nms``), against the text head at
    the same K: inference time and peak tensor memory."""
    s, dev = ctx.sizes, ctx.device
    k = s.peer_classes
    models = {'stock': ctx.det_model('stock', k), 'text': ctx.det_model('text', k)}
    fc = models['stock'].roi_head.bbox_head.fc_cls
    weights_file = osp.join(ctx.work_dir, f'linear_classifier_{k}.npy')
    rng = np.random.default_rng(0)
    np.save(weights_file, (rng.standard_normal((k + 1, fc.in_features)) /
                           np.sqrt(fc.in_features)).astype(np.float32))
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(np.load(weights_file)))
        fc.bias.zero_()
    data = ctx.det_inputs(False, k)
    infer = {n: infer_step(m, data) for n, m in models.items()}
    for fn in infer.values():  # loads (or builds) the text embeddings
        fn()
    log(f'  K = {k}: inference ...')
    times = interleave(infer, s.reps, s.warmup, dev)
    peaks = {n: dev.peak_bytes(fn) for n, fn in infer.items()}
    head_row = _row_peer_heads(ctx, models, k)
    row = make_row(
        'peer_infer', '2c. peer: stock linear head at a large vocabulary',
        f'Mask R-CNN inference, K={k}',
        f'stock Shared2FCBBoxHead, Linear {fc.in_features}->{k + 1} from a weight file, '
        'mmdet post-processing',
        f'TextShared2FCBBoxHead (D={_embed_dim(models["text"])}) + TextStandardRoIHead',
        times['stock'], times['text'],
        extra={'inference_peak_mb': {n: _mb(v) for n, v in peaks.items()},
               'peak_mb_ratio_text_vs_stock': _ratio(peaks['text'], peaks['stock'])})
    del models, infer
    gc.collect()
    return [head_row, row]


def _row_peer_heads(ctx: Context, models: Dict, k: int) -> Dict:
    """The two box heads alone on the same (N, C) RoI features of one image: the stock
    Linear classifier and mmdet's ``_predict_by_feat_single`` (softmax over N x (K + 1),
    ``multiclass_nms``) vs the text head's ``predict_embedded`` (projection, chunked
    threshold-first scoring, the same NMS), at mmdet's score_thr 0.05."""
    s, dev = ctx.sizes, ctx.device
    stock, text = (models[n].roi_head.bbox_head for n in ('stock', 'text'))
    n, c = s.det_test_proposals, stock.fc_cls.in_features
    h, w = s.det_test_hw
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(n, c, generator=gen).to(dev.torch)
    xy = torch.rand(n, 2, generator=gen) * torch.tensor([w / 2, h / 2])
    roi = torch.cat([torch.zeros(n, 1), xy, xy + torch.tensor([w / 4, h / 4])], 1).to(dev.torch)
    bbox_pred = torch.zeros(n, 4, device=dev.torch)
    meta = dict(img_shape=(h, w), scale_factor=(1.0, 1.0))
    cfg = copy.deepcopy(models['stock'].test_cfg.rcnn)
    cfg.score_thr = 0.05

    def stock_head():
        with torch.no_grad():
            stock._predict_by_feat_single(roi, stock.fc_cls(feats), bbox_pred, meta, False, cfg)

    def text_head():
        with torch.no_grad():
            text.predict_embedded(roi, text.fc_cls.embed(feats), bbox_pred, meta, False, cfg)
    variants = {'stock': stock_head, 'text': text_head}
    times = interleave(variants, s.micro_reps, s.warmup, dev)
    peaks = {name: dev.peak_bytes(fn) for name, fn in variants.items()}
    return make_row(
        'peer_head', '2c. peer: stock linear head at a large vocabulary',
        f'box head scoring + post-processing alone, K={k}',
        f'stock Shared2FCBBoxHead: Linear {c}->{k + 1} from a weight file, mmdet '
        '_predict_by_feat_single',
        f'TextShared2FCBBoxHead predict_embedded (D={_embed_dim(models["text"])})',
        times['stock'], times['text'], ('<=', 0.8),
        extra={'rois': n, 'score_thr': 0.05,
               'peak_mb': {name: _mb(v) for name, v in peaks.items()},
               'peak_mb_ratio_text_vs_stock': _ratio(peaks['text'], peaks['stock'])})


def rows_dense(ctx: Context, log: Callable[[str], None]) -> List[Dict]:
    """6. one-stage and DETR-family heads: mmdet's stock FCOS and DINO with their own heads
    vs the same heads with the text classifier, K = det_classes, training step and inference
    (targets: <= 1.10 and <= 1.05); the text FCOS head's peak inference memory at
    K = peer_classes over K = 80 (the memory check ``dense_large``)."""
    s, dev = ctx.sizes, ctx.device
    group = '6. one-stage and DETR-family heads'
    k = s.det_classes
    rows = []
    for row_id, relpath, name in (('dense', s.dense_config, 'FCOS'),
                                  ('detr', s.detr_config, 'DINO-4scale')):
        models = {'stock': ctx.dense_model(relpath, 'stock', k),
                  'text': ctx.dense_model(relpath, 'text', k)}
        head = type(models['stock'].bbox_head).__name__
        a = f'stock {head} ({relpath})'
        b = f'{type(models["text"].bbox_head).__name__} (cached text embeddings)'
        log(f'  {name}, K = {k}: training steps ...')
        train_data = ctx.det_inputs(True, k)
        times = interleave({n: train_step(m, train_data) for n, m in models.items()},
                           s.reps, s.warmup, dev)
        rows.append(make_row(f'{row_id}_train', group, f'{name} training step, K={k}', a, b,
                             times['stock'], times['text'], ('<=', 1.10)))
        log(f'  {name}, K = {k}: inference ...')
        infer = {n: infer_step(m, ctx.det_inputs(False, k)) for n, m in models.items()}
        times = interleave(infer, s.reps, s.warmup, dev)
        extra = {}
        if row_id == 'dense':
            extra = _dense_memory_growth(ctx, models['text'], infer['text'])
        rows.append(make_row(f'{row_id}_infer', group, f'{name} inference, K={k}', a, b,
                             times['stock'], times['text'], ('<=', 1.05), extra=extra))
        del models, infer
        gc.collect()
    return rows


def _dense_memory_growth(ctx: Context, text_model, infer_k: Callable[[], None]) -> Dict:
    """Peak inference memory of the text dense head at K = 80 and K = peer_classes, with the
    two units of growth: dK x D x 4 B (the class embeddings) and dK x locations x 4 B (the
    scores of every location for every class)."""
    from ovdense.apis.vocabulary import text_classifiers
    s, dev = ctx.sizes, ctx.device
    k_large = s.peer_classes
    peaks = {}
    for k in (80, k_large):
        model = ctx.dense_model(s.dense_config, 'text', k)
        fn = infer_step(model, ctx.det_inputs(False, k))
        fn()  # loads the embeddings: resident, not part of a call's peak
        peaks[k] = dev.peak_bytes(fn)
        embed_dim = int(text_classifiers(model.bbox_head)[0].embed_dim)
        h, w = s.det_test_hw
        locations = sum((h + st - 1) // st * ((w + st - 1) // st)
                        for st in model.bbox_head.strides)
        del model
    dk = k_large - 80
    return {'dense_memory': {
        'k_small': 80, 'k_large': k_large, 'peak_mb_small': _mb(peaks[80]),
        'peak_mb_large': _mb(peaks[k_large]), 'growth_mb': _mb(peaks[k_large] - peaks[80]),
        'growth_unit_kd_mb': round(dk * embed_dim * 4 / 2 ** 20, 2),
        'growth_unit_locations_k_mb': round(dk * locations * 4 / 2 ** 20, 2),
        'locations': locations, 'embed_dim': embed_dim}}


def rows_segmentation(ctx: Context, log: Callable[[str], None]) -> List[Dict]:
    """3. UperNet stock conv_seg vs text cosine classifier, K = 150 and 847."""
    s, dev = ctx.sizes, ctx.device
    group = '3. segmentation head overhead'
    rows = []
    for size_id, k in zip(('small', 'large'), s.seg_classes):
        reps = s.reps if size_id == 'small' else s.reps_secondary
        models = {'stock': ctx.seg_model('stock', k), 'text': ctx.seg_model('text', k)}
        test_data, train_data = ctx.seg_inputs(False, k), ctx.seg_inputs(True, k)
        a = f'UPerHead conv_seg (1x1 conv {s.seg_channels}->{k})'
        b = (f'{seg_text_head_type()} (TextCosineClassifier on the UPerHead features, D='
             f'{models["text"].decode_head.conv_seg.embed_dim}, cached)')
        log(f'  K = {k}: inference ...')
        infer = {n: infer_step(m, test_data) for n, m in models.items()}
        times = interleave(infer, reps, s.warmup, dev)
        extra = _seg_head_only(models, infer, s, dev)
        rows.append(make_row(f'seg_{size_id}_infer', group, f'UperNet inference, K={k}', a, b,
                             times['stock'], times['text'],
                             ('<=', 1.05) if size_id == 'small' else None, extra=extra))
        if s.seg_train:
            log(f'  K = {k}: training steps ...')
            times = interleave({n: train_step(m, train_data) for n, m in models.items()},
                               reps, s.warmup, dev)
            rows.append(make_row(f'seg_{size_id}_train', group,
                                 f'UperNet training step, K={k}', a, b, times['stock'],
                                 times['text']))
        del models
        gc.collect()
    return rows


def _seg_head_only(models: Dict, infer: Dict, s: Sizes, dev: Device) -> Dict:
    """The classifiers alone on the UPerHead features of the test image: conv_seg vs the text
    classifier (whose dense output is a channels-last view), and the text classifier's output
    made contiguous NCHW (the layout conv_seg returns)."""
    seen = {}
    handle = models['stock'].decode_head.conv_seg.register_forward_pre_hook(
        lambda module, args: seen.__setitem__('x', args[0].detach()))
    infer['stock']()
    handle.remove()
    feat = seen['x']
    stock = models['stock'].decode_head.conv_seg.eval()
    text = models['text'].decode_head.conv_seg.eval()

    def run(fn):
        def call():
            with torch.no_grad():
                fn(feat)
        return call
    times = interleave({'conv_seg': run(stock), 'text': run(text),
                        'text_contiguous': run(lambda x: text(x).contiguous())},
                       s.micro_reps, s.warmup, dev)
    with torch.no_grad():
        out = text(feat)
    return {'features_shape': list(feat.shape),
            'text_output_is_contiguous_nchw': bool(out.is_contiguous()),
            'head_only_ms': {n: time_stats(v) for n, v in times.items()},
            'head_only_text_vs_conv_seg': paired_ratio(times['conv_seg'], times['text']),
            'head_only_text_contiguous_vs_conv_seg': paired_ratio(times['conv_seg'],
                                                                  times['text_contiguous'])}


def rows_classifier_build(ctx: Context, log: Callable[[str], None]) -> List[Dict]:
    """4. cold build vs open_clip's build_zero_shot_classifier; warm vs cold."""
    import open_clip

    from ovdense.testing import tiny_clip_config
    from ovdense.text import PromptStyle, load_templates, load_vocabulary
    from ovdense.text.embeddings import EmbeddingCache, FrozenTextEmbedder
    s, dev = ctx.sizes, ctx.device
    group = '4. classifier build'
    vocab = load_vocabulary('lvis_v1')
    if s.build_classes:
        vocab = vocab.subset(vocab.names[:s.build_classes])
    templates = list(load_templates('imagenet'))[:s.build_templates]
    style = PromptStyle.build(templates=templates, use_descriptions=False, use_synonyms=False)
    classnames = [e.readable_name for e in vocab]
    name = f'ovdense-bench-clip-{s.name}'
    config = tiny_clip_config(ctx.work_dir, name=name, embed_dim=s.build_embed_dim,
                              width=s.build_width, layers=s.build_layers,
                              context_length=s.build_context)
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    clip = open_clip.create_model(name).to(dev.torch).eval()
    tokenizer = open_clip.get_tokenizer(name)
    checkpoint = osp.join(ctx.work_dir, name + '.pt')
    torch.save(clip.state_dict(), checkpoint)
    tower_cfg = dict(model=config, checkpoint=checkpoint)
    num_prompts = len(vocab) * len(templates)
    results = {}
    counter = {'cold': 0}

    def ovdense_cold():  # a new process's view with an empty cache: builds the tower
        counter['cold'] += 1
        cache = EmbeddingCache(osp.join(ctx.work_dir, f'build_cache_{counter["cold"]}'))
        embedder = FrozenTextEmbedder(tower_cfg, cache)
        results['ovdense'], results['path'] = embedder.embeddings(
            vocab, style, dev.torch, batch_size=s.build_batch)
        results['tower'] = embedder.tower

    def ovdense_warm():  # a new process's view with the cache filled: no tower built
        embedder = FrozenTextEmbedder(tower_cfg, EmbeddingCache(osp.dirname(results['path'])))
        results['warm'], path = embedder.embeddings(vocab, style, dev.torch)
        if path != results['path'] or embedder.tower_built:
            raise RuntimeError(f'warm build missed the cache written by the cold build '
                               f'({path} vs {results["path"]})')

    def tower_construction():
        from ovdense.text import TextTower
        TextTower(**tower_cfg).requires_grad_(False).eval().to(dev.torch)

    def checkpoint_hash():
        from ovdense.utils.io import sha256_of_file
        sha256_of_file(checkpoint)

    from ovdense.text import TextTower, build_class_embeddings
    tower = TextTower(**tower_cfg).requires_grad_(False).eval().to(dev.torch)
    # The full vocabulary in chunks of classes, each built by both sides back to back (order
    # alternating): a slow spell of the machine then hits both sides of a pair, which two
    # 15-second builds in a row cannot guarantee. Together the chunks are the full build.
    size = -(-len(vocab) // s.build_chunks)
    chunks = [vocab.subset(vocab.names[i:i + size]) for i in range(0, len(vocab), size)]
    chunk_outputs = {'open_clip': [], 'ovdense': []}

    def open_clip_build(part):
        chunk_outputs['open_clip'].append(open_clip.build_zero_shot_classifier(
            clip, tokenizer, [e.readable_name for e in part], templates,
            num_classes_per_batch=s.build_openclip_classes_per_batch, device=dev.torch).t())

    def ovdense_build(part):  # what a cache miss runs, on the same built tower as open_clip
        chunk_outputs['ovdense'].append(build_class_embeddings(tower, part, style,
                                                               s.build_batch))

    log(f'  {len(vocab)} classes x {len(templates)} templates = {num_prompts} prompts: '
        f'open_clip vs ovdense in {len(chunks)} interleaved chunks, then {s.build_reps} cold '
        'cache misses (+ warm hits) ...')
    # warm-up on a slice (first-call allocations), not the full build
    open_clip.build_zero_shot_classifier(clip, tokenizer, classnames[:20], templates,
                                         device=dev.torch)
    tower.encode([t.format(c) for c in classnames[:20] for t in templates], s.build_batch)
    tower_construction()
    parts = {k: statistics.median(v) for k, v in interleave(
        {'tower_construction': tower_construction, 'checkpoint_hash': checkpoint_hash},
        3, 1, dev).items()}
    times = {'open_clip': [], 'ovdense': []}
    calls = {'open_clip': open_clip_build, 'ovdense': ovdense_build}
    for index, part in enumerate(chunks):
        for name in (list(calls) if index % 2 == 0 else list(calls)[::-1]):
            gc.collect()
            start = time.perf_counter()
            calls[name](part)
            dev.sync()
            times[name].append(time.perf_counter() - start)
    cold, warm = [], []
    for _ in range(s.build_reps):
        gc.collect()
        start = time.perf_counter()
        ovdense_cold()
        dev.sync()
        cold.append(time.perf_counter() - start)
        warm.append(statistics.median(interleave({'warm': ovdense_warm},
                                                 max(3, s.micro_reps // 3), 1, dev)['warm']))
    reference = torch.cat(chunk_outputs['open_clip'])
    agreement = max(float((other.to(reference.device) - reference).abs().max())
                    for other in (torch.cat(chunk_outputs['ovdense']), results['ovdense'],
                                  results['warm']))
    tower_params = sum(p.numel() for p in tower.parameters())
    total = {name: sum(v) for name, v in times.items()}
    extra = {'classes': len(vocab), 'templates': len(templates), 'prompts': num_prompts,
             'unique_prompts': len(set(t.format(c) for c in classnames for t in templates)),
             'chunks': len(chunks), 'classes_per_chunk': size,
             'full_build_ms': {name: round(v * 1e3, 1) for name, v in total.items()},
             'full_build_speedup': total['open_clip'] / total['ovdense'],
             'tower': f'open_clip native text transformer: width {s.build_width}, '
                      f'{s.build_layers} layer(s), 2 heads, context {s.build_context}, '
                      f'embed_dim {s.build_embed_dim}, {tower_params / 1e6:.2f} M parameters',
             'max_abs_diff_vs_open_clip': agreement,
             'ovdense_batch_size': s.build_batch,
             'open_clip_classes_per_batch': s.build_openclip_classes_per_batch}
    cold_extra = {
        'cold_includes': 'cache key (checkpoint file hash), tower construction + checkpoint '
                         'load, encoding, cache write',
        'warm_includes': 'cache key (checkpoint file hash) + cache file load',
        'cold_vs_open_clip_full_build': statistics.median(cold) / total['open_clip'],
        'tower_construction_ms': round(parts['tower_construction'] * 1e3, 2),
        'checkpoint_hash_ms': round(parts['checkpoint_hash'] * 1e3, 2),
        'checkpoint_mb': _mb(osp.getsize(checkpoint))}
    return [make_row('build_vs_open_clip', group,
                     f'cold build, LVIS {len(vocab)} x {len(templates)} (per chunk of {size})',
                     'open_clip.build_zero_shot_classifier',
                     'ovdense build_class_embeddings (what a cache miss runs), same built tower',
                     times['open_clip'], times['ovdense'], ('>=', 1.0), speedup=True,
                     extra=extra),
            make_row('build_warm_vs_cold', group, 'warm build (cache hit) vs cold',
                     'ovdense cold: new FrozenTextEmbedder, empty cache (full vocabulary)',
                     'ovdense warm: new FrozenTextEmbedder, cache hit (tower not built)',
                     cold, warm, ('>=', 100.0), speedup=True, extra=cold_extra)]


def rows_joint_training(ctx: Context, log: Callable[[str], None]) -> List[Dict]:
    """5. training step with the text tower trainable vs frozen cached embeddings: with the
    demo's softmax loss (every class scored: every class encoded), and with the LVIS configs'
    federated sigmoid loss (only the ~50 scored classes encoded)."""
    s, dev = ctx.sizes, ctx.device
    group = '5. joint text-tower training'
    k = s.det_classes
    models = {'frozen': ctx.det_model('text', k),
              'joint': ctx.det_model('text', k, train_text_tower=True),
              'frozen_federated': ctx.det_model('text', k, federated=True),
              'joint_federated': ctx.det_model('text', k, train_text_tower=True,
                                               federated=True)}
    data = ctx.det_inputs(True, k)
    steps = {n: train_step(m, data) for n, m in models.items()}
    log('  training steps (softmax and federated losses) ...')
    times = interleave(steps, s.reps, s.warmup, dev)
    peaks = {n: dev.peak_bytes(fn) for n, fn in steps.items()}
    tower = models['joint'].roi_head.bbox_head.fc_cls.class_embeddings.tower
    description = (f'icar-roberta-nano: RoBERTa hidden {s.tower_hidden}, {s.tower_layers} '
                   f'layers, mean pooling, Linear -> {tower.embed_dim}; '
                   f'{sum(p.numel() for p in tower.parameters()) / 1e6:.2f} M parameters')
    rows = []
    for row_id, suffix, loss, encoded, target in (
            ('joint_train', '', 'softmax cross-entropy', k, ('<=', 1.5)),
            ('joint_train_federated', '_federated', 'federated sigmoid, 50 classes/step',
             '~50 (the scored classes)', None)):
        extra = {'tower': description, 'loss': loss, 'prompts_encoded_per_step': encoded,
                 'train_step_peak_mb': {n: _mb(peaks[n + suffix])
                                        for n in ('frozen', 'joint')}}
        label = f'Mask R-CNN training step, K={k}' + (', federated' if suffix else '')
        rows.append(make_row(row_id, group, label, f'frozen tower, cached embeddings ({loss})',
                             'tower trained jointly (1 prompt/class)', times['frozen' + suffix],
                             times['joint' + suffix], target, extra=extra))
    del models, steps
    gc.collect()
    return rows


def memory_checks(rows: Sequence[Dict]) -> List[Dict]:
    """Peak-memory lines derived from the rows: each head's peak (rows 1) and the growth with
    the vocabulary (row 2) against the target "memory growth proportional to K x D only":
    met when the per-call peak grows by at most 2 x dK x D x 4 bytes (room for copies of
    the class weights) + the test-time score chunks, whose size is fixed, not N x K (two
    buffers of ``SCORE_CHUNK_ELEMENTS`` floats) + 2 MB."""
    from ovdense.models.roi_heads.postprocess import SCORE_CHUNK_ELEMENTS
    chunks_mb = 2 * SCORE_CHUNK_ELEMENTS * 4 / 2 ** 20
    by_id = {row['id']: row for row in rows}
    checks = []
    for row_id, key in (('det_train', 'train_step_peak_mb'), ('det_infer', 'inference_peak_mb')):
        row = by_id.get(row_id)
        if row and 'memory' in row['extra']:
            mem = row['extra']['memory']
            checks.append({'id': row_id + '_memory', 'label': row['label'] + ': peak memory',
                           'a_mb': mem['stock'][key], 'b_mb': mem['text'][key],
                           'ratio': row['extra']['peak_mb_ratio_text_vs_stock'],
                           'target': None, 'met': None})
    for row_id, key in (('peer_head', 'peak_mb'), ('peer_infer', 'inference_peak_mb')):
        row = by_id.get(row_id)
        if row:
            peaks, ratio = row['extra'][key], row['extra']['peak_mb_ratio_text_vs_stock']
            target = row_id == 'peer_head'  # the "<= 0.5x the stock head's peak"
            checks.append({'id': row_id + '_memory', 'label': row['label'] + ': peak memory',
                           'a_mb': peaks['stock'], 'b_mb': peaks['text'], 'ratio': ratio,
                           'target': '<= 0.5 (text / stock)' if target else None,
                           'met': bool(ratio <= 0.5) if target and ratio is not None
                           else None})
    row = by_id.get('dense_infer')
    if row and 'dense_memory' in row['extra']:
        e = row['extra']['dense_memory']
        allowed = round(2 * e['growth_unit_kd_mb'] + 2, 2)
        checks.append({
            'id': 'dense_large_memory',
            'label': f'FCOS text head inference, K={e["k_small"]} -> {e["k_large"]}: peak '
                     'memory growth',
            'a_mb': e['peak_mb_small'], 'b_mb': e['peak_mb_large'],
            'growth_mb': e['growth_mb'], 'growth_unit_kd_mb': e['growth_unit_kd_mb'],
            'growth_unit_locations_k_mb': e['growth_unit_locations_k_mb'],
            'allowed_growth_mb': allowed, 'target': 'growth ~ K x D only',
            'met': bool(e['growth_mb'] <= allowed)})
    for row_id in ('vocab_mid', 'vocab_large'):
        row = by_id.get(row_id)
        if row:
            e = row['extra']
            growth, unit = e['peak_growth_mb_vs_k0'], e['growth_unit_kd_mb']
            allowed = round(2 * unit + chunks_mb + 2, 2)
            met = bool(growth <= allowed)
            checks.append({
                'id': row_id + '_memory', 'label': row['label'] + ': peak memory growth',
                'a_mb': e['inference_peak_mb_k0'], 'b_mb': e['inference_peak_mb'],
                'growth_mb': growth, 'growth_unit_kd_mb': unit,
                'growth_unit_nk_mb': e['growth_unit_nk_mb'],
                'growth_in_nk_units': round(growth / e['growth_unit_nk_mb'], 2)
                if e['growth_unit_nk_mb'] else None,
                'classifier_alone_growth_mb': round(
                    e['classifier_alone_peak_mb'] - e['classifier_alone_peak_mb_k0'], 2),
                'resident_growth_mb': e['embedding_resident_mb'],
                'allowed_growth_mb': allowed,
                'target': 'growth ~ K x D only' if row_id == 'vocab_large' else None,
                'met': met if row_id == 'vocab_large' else None})
    return checks


ROW_GROUPS = {'detection': rows_detection, 'vocabulary': rows_vocabulary, 'peer': rows_peer,
              'segmentation': rows_segmentation, 'build': rows_classifier_build,
              'joint': rows_joint_training, 'dense': rows_dense}


# ------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------
def _fmt_time(stats: Dict) -> str:
    return f'{stats["median_ms"]:.1f} [{stats["min_ms"]:.1f}-{stats["max_ms"]:.1f}]'


def format_table(report: Dict) -> str:
    header = ('row', 'A: ms median [min-max]', 'B: ms median [min-max]',
              'value [min-max]', 'target', 'met')
    lines = []
    body = []
    for row in report['rows']:
        kind = 'x faster' if row['value_kind'].startswith('speedup') else 'x'
        value = f'{row["ratio"]:.3f}{kind} [{row["ratio_min"]:.3f}-{row["ratio_max"]:.3f}]'
        met = '-' if row['met'] is None else ('yes' if row['met'] else 'MISSED')
        body.append((row['label'], _fmt_time(row['a_time']), _fmt_time(row['b_time']), value,
                     row['target'] or '-', met))
    widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
    fmt = ' | '.join('{:<%d}' % w for w in widths)
    current = None
    lines.append(fmt.format(*header))
    lines.append('-+-'.join('-' * w for w in widths))
    for row, cells in zip(report['rows'], body):
        if (row['group'], row['a'], row['b']) != current:
            title = row['group'] if current is None or row['group'] != current[0] else ' ' * 3
            current = (row['group'], row['a'], row['b'])
            lines.append(f'{title}:  A = {row["a"]};  B = {row["b"]}')
        lines.append(fmt.format(*cells))
    return '\n'.join(lines)


def format_memory(report: Dict) -> str:
    if not report.get('memory'):
        return ''
    lines = ['peak memory (growth of one call over the memory before it):']
    for check in report.get('memory', []):
        met = '' if check['met'] is None else (
            f'; target {check["target"]}: {"yes" if check["met"] else "MISSED"}')
        if 'growth_unit_locations_k_mb' in check:
            lines.append(
                f'  {check["label"]}: {check["a_mb"]} -> {check["b_mb"]} MB, growth '
                f'{check["growth_mb"]} MB; dK x D x 4 B = {check["growth_unit_kd_mb"]} MB, '
                f'dK x locations x 4 B = {check["growth_unit_locations_k_mb"]} MB; allowed '
                f'{check["allowed_growth_mb"]} MB{met}')
        elif 'growth_mb' in check:
            lines.append(
                f'  {check["label"]}: {check["a_mb"]} -> {check["b_mb"]} MB, growth '
                f'{check["growth_mb"]} MB = {check["growth_in_nk_units"]} x (dK x N x 4 B = '
                f'{check["growth_unit_nk_mb"]} MB); dK x D x 4 B = '
                f'{check["growth_unit_kd_mb"]} MB = the resident growth (embeddings '
                f'{check["resident_growth_mb"]} MB); allowed {check["allowed_growth_mb"]} MB; '
                f'the classifier\'s full-logits forward (Cascade, HTC) grows '
                f'{check["classifier_alone_growth_mb"]} MB{met}')
        else:
            lines.append(f'  {check["label"]}: stock {check["a_mb"]} MB, text '
                         f'{check["b_mb"]} MB (text/stock {check["ratio"]}){met}')
    return '\n'.join(lines)


def format_details(report: Dict) -> str:
    lines = []
    by_id = {row['id']: row for row in report['rows']}
    for row_id in ('vocab_mid', 'vocab_large'):
        row = by_id.get(row_id)
        if row:
            e = row['extra']
            lines.append(
                f'{row["label"]}: {e["rois_per_image"]} RoIs x D={e["embed_dim"]}: extra '
                f'{e["extra_inference_ms_vs_k0"]:.1f} ms per image; bare GEMM extra '
                f'{e["extra_bare_gemm_ms_vs_k0"]:.1f} ms, classifier forward (full logits) '
                f'extra {e["extra_classifier_ms_vs_k0"]:.1f} ms (classifier / bare GEMM '
                f'{e["classifier_vs_bare_gemm"]["ratio"]:.2f}x); the rest (score activation '
                f'and threshold, box post-processing) '
                f'{e["extra_outside_classifier_ms"]:.1f} ms')
    for row_id in ('seg_small_infer', 'seg_large_infer'):
        row = by_id.get(row_id)
        if row and 'head_only_ms' in row['extra']:
            e = row['extra']
            ms = {n: v['median_ms'] for n, v in e['head_only_ms'].items()}
            lines.append(
                f'{row["label"]}: classifier alone on {e["features_shape"]} features: conv_seg '
                f'{ms["conv_seg"]:.2f} ms, text {ms["text"]:.2f} ms '
                f'({e["head_only_text_vs_conv_seg"]["ratio"]:.2f}x), text made contiguous '
                f'{ms["text_contiguous"]:.2f} ms '
                f'({e["head_only_text_contiguous_vs_conv_seg"]["ratio"]:.2f}x); text output '
                f'{"is" if e["text_output_is_contiguous_nchw"] else "is not"} contiguous NCHW')
    row = by_id.get('build_vs_open_clip')
    if row:
        e = row['extra']
        cold = by_id.get('build_warm_vs_cold', {}).get('extra', {})
        full = e['full_build_ms']
        lines.append(f'classifier build: {e["prompts"]} prompts ({e["unique_prompts"]} unique), '
                     f'{e["tower"]}; full build (sum of {e["chunks"]} chunks): open_clip '
                     f'{full["open_clip"] / 1e3:.1f} s, ovdense {full["ovdense"] / 1e3:.1f} s '
                     f'({e["full_build_speedup"]:.3f}x); max |ovdense - open_clip| = '
                     f'{e["max_abs_diff_vs_open_clip"]:.2e}; cold cache miss (new embedder: '
                     f'key, tower construction {cold.get("tower_construction_ms")} ms, encoding, '
                     f'save) = {cold.get("cold_vs_open_clip_full_build", 0):.3f}x open_clip\'s '
                     f'full build time; warm = checkpoint hash ({cold.get("checkpoint_hash_ms")}'
                     f' ms for {cold.get("checkpoint_mb")} MB) + cache load')
    for row_id in ('joint_train', 'joint_train_federated'):
        row = by_id.get(row_id)
        if row:
            e = row['extra']
            lines.append(f'joint training ({e["loss"]}): {e["tower"]}; prompts encoded per '
                         f'step: {e["prompts_encoded_per_step"]}; peak step memory '
                         f'{e["train_step_peak_mb"]} MB')
    return '\n'.join(lines)


def format_report(report: Dict) -> str:
    s = report['sizes']
    head = [
        f'ovdense {report["ovdense_version"]} benchmark ({s["name"]} sizes) on '
        f'{report["device"]}; torch {report["torch"]}; wall {report["wall_s"]:.0f} s',
        f'detection: {DETECTORS[s["model"]]}, train {s["det_train_images"]} x '
        f'{s["det_train_hw"][0]}x{s["det_train_hw"][1]} ({s["det_rcnn_samples"]} RoIs/image), '
        f'test 1 x {s["det_test_hw"][0]}x{s["det_test_hw"][1]} ({s["det_test_proposals"]} '
        f'proposals); {s["det_test_note"]}',
        f'segmentation: UperNet ({BACKBONES[s["model"]]}, UPerHead channels '
        f'{s["seg_channels"]}), test 1 x '
        f'{s["seg_test_hw"][0]}x{s["seg_test_hw"][1]}, ' + (
            f'train {s["seg_train_images"]} x {s["seg_train_hw"][0]}x{s["seg_train_hw"][1]}'
            if s['seg_train'] else 'no training rows'),
        f'text tower (cached embeddings, joint training): icar-roberta-nano hidden '
        f'{s["tower_hidden"]}, {s["tower_layers"]} layers; optimizer AdamW lr=0 (same work '
        'every step)',
        f'memory: {report["memory_method"]}',
        f'each value: median of the per-repetition ratios over {s["reps"]} interleaved '
        f'repetitions ({s["reps_secondary"]} for rows without a target; the build row: per '
        f'chunk of classes), after {s["warmup"]} warm-up rounds; [min-max] of those ratios',
        '']
    sections = [format_table(report), format_memory(report), format_details(report)]
    return '\n'.join(head) + '\n\n'.join(part for part in sections if part)


def run(sizes: Sizes = FULL, device: str = 'auto', out: Optional[str] = None,
        work_dir: Optional[str] = None, groups: Optional[Sequence[str]] = None,
        threads: Optional[int] = 1, log: Callable[[str], None] = print) -> Dict:
    """Run the benchmark; returns the report (and writes it as JSON to ``out``)."""
    import ovdense  # noqa: F401  (registers the components)
    from mmengine.logging import MMLogger
    MMLogger.get_instance('ovdense-benchmark', log_level='WARNING')
    dev = Device(device)
    if threads and not dev.is_cuda:
        torch.set_num_threads(threads)
    started = time.time()
    report = {'ovdense_version': _version(), 'torch': torch.__version__,
              'device': dev.describe(), 'memory_method': dev.memory_method,
              'sizes': sizes.describe(), 'started': time.strftime('%Y-%m-%d %H:%M:%S'),
              'rows': [], 'group_seconds': {}}
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix='ovdense-bench-'))
        os.makedirs(work_dir, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            ctx = Context(sizes, dev, work_dir)
            for group in groups or ROW_GROUPS:
                log(f'[{group}]')
                start = time.perf_counter()
                report['rows'] += ROW_GROUPS[group](ctx, log)
                report['group_seconds'][group] = round(time.perf_counter() - start, 1)
                log(f'  ({report["group_seconds"][group]:.0f} s)')
        report['setup_seconds'] = {k: round(v, 1) for k, v in ctx.setup_seconds.items()}
    report['wall_s'] = time.time() - started
    report['memory'] = memory_checks(report['rows'])
    report['all_targets_met'] = all(r['met'] for r in report['rows'] + report['memory']
                                    if r['met'] is not None)
    if out:
        from ovdense.utils.io import atomic_write
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        with atomic_write(out, 'w') as f:  # an interrupted run keeps the previous report
            json.dump(report, f, indent=1)
    return report


def _version() -> str:
    from ovdense.version import __version__
    return __version__


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Cost of the text-generated classifier vs stock heads: a table of ratios '
                    'measured in one run (see docs/benchmarks.md).')
    parser.add_argument('--size', choices=sorted(PRESETS), default='nano',
                        help="nano (default): the demo's nano detector, every row group; "
                        "realistic: ICARSwin-T Mask R-CNN at 800x1333, D=256, UperNet at "
                        "512x512 (about 15 min); tiny: the harness in a minute, timings "
                        "meaningless")
    parser.add_argument('--tiny', action='store_true', help='the same as --size tiny')
    parser.add_argument('--device', default='auto', help="'auto' (cuda if available), 'cpu', "
                        "'cuda', 'cuda:1', ...")
    parser.add_argument('--out', default=None,
                        help='JSON output (default bench_results/benchmark[-tiny]-<device>.json)')
    parser.add_argument('--only', nargs='+', choices=sorted(ROW_GROUPS),
                        help='run only these row groups')
    parser.add_argument('--reps', type=int, help='timed repetitions per variant')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (default 1: on a shared machine multi-threaded '
                        'timings follow the other processes\' load; 0: torch\'s default)')
    parser.add_argument('--work-dir', help='keep the generated files (tokenizer, caches) here')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    preset = 'tiny' if args.tiny else args.size
    sizes, groups = PRESETS[preset]
    if args.reps:
        sizes = replace(sizes, reps=args.reps)
    dev_type = 'cuda' if (args.device == 'auto' and torch.cuda.is_available()) \
        else args.device.split(':')[0].replace('auto', 'cpu')
    suffix = '' if preset == 'nano' else '-' + preset
    out = args.out or osp.join(REPO, 'bench_results', f'benchmark{suffix}-{dev_type}.json')
    report = run(sizes, args.device, out, args.work_dir, args.only or groups, args.threads,
                 log=lambda msg: print(msg, flush=True))
    print()
    print(format_report(report))
    print(f'\nJSON: {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
