"""What ``tools/browse_dataset.py`` does: draw a config's ground truth as the model sees it.

Each sample goes through the config's dataset and pipeline (``{phase}_dataloader.dataset``)
and is drawn with the task's own visualizer (the config's ``visualizer``, or the scope's
default), as mmdet's and mmseg's ``browse_dataset.py`` do; the scope decides the drawing:

- ``mmdet``: boxes, masks and class names (``DetLocalVisualizer``);
- ``mmseg``: the label map overlay with class names (``SegLocalVisualizer``);
- ``mmaction``: a strip of evenly spaced frames of the first clip (``visualization.clips``)
  with the label id and name (``ActionVisualizer``'s canvas).
"""
import copy
import os
import os.path as osp
import sys
import uuid
from typing import Callable, Dict, List, Optional

import numpy as np
from mmengine.config import Config

from ..visualization.clips import captioned, frame_strip
from .cli import ConfigError
from .launch import SCOPES

PHASES = ('train', 'val', 'test')
DEFAULT_VISUALIZERS = {'mmdet': 'DetLocalVisualizer', 'mmseg': 'SegLocalVisualizer',
                       'mmaction': 'ActionVisualizer'}
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')


def has_display() -> bool:
    """False on a Linux machine without an X or Wayland display (a window cannot open)."""
    if not sys.platform.startswith('linux'):
        return True
    return bool(os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY'))


def browse_dataset(cfg: Config, phase: str = 'train', output_dir: Optional[str] = None,
                   max_images: Optional[int] = None, show: bool = False,
                   wait_time: float = 2.0, progress: bool = True) -> List[str]:
    """Draw the ground truth of the first ``max_images`` samples (all when None).

    Writes one image per sample to ``output_dir`` (``NNNN_<source name>.<jpg|png>``) and/or
    shows it for ``wait_time`` seconds. Returns the paths written.
    """
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ConfigError(f'default_scope must be one of {SCOPES}, got {scope!r}')
    if phase not in PHASES:
        raise ConfigError(f'phase must be one of {PHASES}, got {phase!r}')
    if max_images is not None and max_images < 1:
        raise ConfigError(f'max_images must be a positive number, got {max_images}')
    if output_dir is None and not show:
        raise ConfigError('nothing to do: give an output directory or show the images')
    _import_scope(cfg, scope)
    dataset = build_dataset(cfg, phase)
    visualizer = build_visualizer(cfg, dataset.metainfo)
    count = len(dataset) if max_images is None else min(max_images, len(dataset))
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
    draw = _DRAWERS[scope]
    written = []
    bar = _progress_bar(count) if progress else None
    for index in range(count):
        item = dataset[index]
        name = _output_name(index, item, dataset, scope)
        out_file = osp.join(output_dir, name) if output_dir is not None else None
        draw(visualizer, item, name, out_file=out_file, show=show, wait_time=wait_time)
        if out_file is not None:
            written.append(out_file)
        if bar is not None:
            bar.update()
    return written


def build_dataset(cfg: Config, phase: str):
    """The ``{phase}_dataloader.dataset`` of ``cfg``, built in its scope's registry."""
    key = f'{phase}_dataloader'
    loader = cfg.get(key)
    if not isinstance(loader, dict) or not isinstance(loader.get('dataset'), dict):
        raise ConfigError(f'the config has no {key}.dataset to browse')
    return _registry(cfg.default_scope).DATASETS.build(copy.deepcopy(loader['dataset']))


def build_visualizer(cfg: Config, dataset_meta: dict):
    """The config's visualizer (or the scope's default) without storage backends: only the
    files this tool names are written. A fresh name each time, so an earlier visualizer
    instance (mmengine keeps them by name) is never reused for another config."""
    scope = cfg.default_scope
    spec = dict(copy.deepcopy(cfg.get('visualizer') or dict(type=DEFAULT_VISUALIZERS[scope])))
    spec.pop('vis_backends', None)
    spec.update(save_dir=None, name=f'browse_dataset_{uuid.uuid4().hex[:12]}')
    visualizer = _registry(scope).VISUALIZERS.build(spec)
    meta = dict(dataset_meta or {})
    if scope == 'mmseg' and meta.get('classes') and not meta.get('palette'):
        meta['palette'] = _random_palette(len(meta['classes']))
    visualizer.dataset_meta = meta
    return visualizer


# ----------------------------------------------------------------------------- scopes

def _import_scope(cfg: Config, scope: str) -> None:
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings
    if scope == 'mmaction':
        from ..compat import import_mmaction
        if import_mmaction() is None:
            raise ConfigError('this is an mmaction config, but mmaction2 is not installed '
                              '(pip install "ovdense[action]")')
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(scope)


def _registry(scope: str):
    import importlib
    return importlib.import_module(f'{scope}.registry')


# ----------------------------------------------------------------------------- naming

def _first_view(item: dict):
    """``(inputs, data_sample)``; of a test-time-augmentation pipeline, the first view."""
    inputs, sample = item['inputs'], item['data_samples']
    if isinstance(inputs, (list, tuple)):
        inputs, sample = inputs[0], sample[0]
    return inputs, sample


def _output_name(index: int, item: dict, dataset, scope: str) -> str:
    _, sample = _first_view(item)
    source = sample.metainfo.get('img_path') or sample.metainfo.get('filename')
    if source is None:  # mmaction packs no file name by default
        try:
            info = dataset.get_data_info(index)
            source = info.get('filename') or info.get('img_path') or info.get('frame_dir')
        except Exception:  # a dataset without per-index info: the index alone names it
            source = None
    stem, ext = osp.splitext(osp.basename(str(source))) if source else ('sample', '')
    ext = ext.lower() if ext.lower() in IMAGE_EXTENSIONS and scope != 'mmaction' else '.png'
    return f'{index:04d}_{stem}{ext}'


# ----------------------------------------------------------------------------- drawing

def _chw_to_rgb(inputs, bgr: bool) -> np.ndarray:
    image = inputs.detach().cpu().numpy() if hasattr(inputs, 'detach') else np.asarray(inputs)
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ConfigError(f'browse_dataset draws 1- or 3-channel images, got inputs of '
                          f'shape {tuple(image.shape)}')
    image = np.ascontiguousarray(image.transpose(1, 2, 0))
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif bgr:
        image = image[..., ::-1]
    return np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))


def _draw_detection(visualizer, item: dict, name: str, out_file, show: bool,
                    wait_time: float) -> None:
    from mmdet.models.utils import mask2ndarray
    from mmdet.structures.bbox import BaseBoxes
    inputs, sample = _first_view(item)
    image = _chw_to_rgb(inputs, bgr=True)  # mmdet loads BGR
    sample = sample.numpy()
    instances = sample.get('gt_instances')
    if instances is not None:
        if isinstance(instances.get('bboxes'), BaseBoxes):
            instances.bboxes = instances.bboxes.tensor
        if instances.get('masks') is not None:
            instances.masks = mask2ndarray(instances.masks).astype(bool)
        sample.gt_instances = instances
    visualizer.add_datasample(name, image, sample, draw_gt=True, draw_pred=False, show=show,
                              wait_time=wait_time, out_file=out_file)


def _draw_segmentation(visualizer, item: dict, name: str, out_file, show: bool,
                       wait_time: float) -> None:
    inputs, sample = _first_view(item)
    image = _chw_to_rgb(inputs, bgr=True)  # mmseg loads BGR
    visualizer.add_datasample(name, image, sample.numpy(), draw_gt=True, draw_pred=False,
                              show=show, wait_time=wait_time, out_file=out_file)


def _draw_action(visualizer, item: dict, name: str, out_file, show: bool,
                 wait_time: float) -> None:
    import mmcv
    inputs, sample = _first_view(item)
    strip, picks, total = frame_strip(inputs)
    drawn = captioned(visualizer, strip, _action_caption(sample, visualizer.dataset_meta,
                                                         picks, total))
    if show:
        visualizer.show(drawn, win_name=name, wait_time=wait_time)
    if out_file is not None:
        mmcv.imwrite(drawn[..., ::-1], out_file)  # RGB canvas -> BGR file


def _action_caption(sample, meta: Optional[dict], picks, total: int) -> str:
    classes = (meta or {}).get('classes')
    label = sample.get('gt_label')
    ids = [] if label is None else np.atleast_1d(np.asarray(label)).astype(int).tolist()
    names = [f'{i} ({classes[i]})' if classes is not None and 0 <= i < len(classes) else
             str(i) for i in ids]
    shown = ', '.join(str(int(i) + 1) for i in picks)
    return f'label: {", ".join(names) or "none"}\nframes {shown} of {total}'


_DRAWERS: Dict[str, Callable] = {'mmdet': _draw_detection, 'mmseg': _draw_segmentation,
                                 'mmaction': _draw_action}


def _random_palette(count: int) -> list:
    rng = np.random.default_rng(42)
    return rng.integers(0, 256, (count, 3)).tolist()


def _progress_bar(count: int):
    from mmengine.utils import ProgressBar
    return ProgressBar(count)
