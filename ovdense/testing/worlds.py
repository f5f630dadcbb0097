"""A shipped config in a world of its own, for tests that build everything it defines.

:func:`config_world` reads a config inside a new working directory and writes there every file
the config names, small but in its real format and layout: the iCAR checkpoint
(``visual_model.*`` + ``sentence_model.*``), the RoBERTa directory, open_clip checkpoints,
COCO / LVIS annotation files with their images, segmentation image and label-map folders,
video lists with their videos (and, for the demo configs, the demo data from its own
generator). Only sizes change in the config (backbone arch, channels, queries, layers,
proposals, detections per image, image scales, clip length, batch sizes), plus test-time score
thresholds of 0 and no initialisation from the network; every setting that defines the config
stays: templates, descriptions, novel classes, class-frequency files, pipelines, dataset
classes, evaluators, optimizer wrappers, schedulers, hooks. Nothing outside the directory is
read.
"""
import json
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional

import numpy as np
from mmengine.config import Config

from .configs import (TINY_SWIN, _shrink_cls_head, _shrink_decode_heads, _shrink_neck,
                      _shrink_proposals, _walk, tiny_open_clip_convnext_config)
from .text import tiny_clip_config, tiny_roberta_dir

SCALE_DIVISOR = 8     # image scales, crops and padded sizes of the pipelines and preprocessors
CLIP_LEN = 4          # frames per sampled clip
IMAGES = 2            # images (or clips) per split
IMAGE_SIZE = (48, 64)  # height, width of written images
PIPELINE_SIZE_KEYS = ('scale', 'scales', 'img_scale', 'crop_size', 'size', 'max_size')


def config_world(path: str, root: str) -> Config:
    """``path`` read with ``root`` as the working directory (which it must be: the config's
    relative paths land there), its sizes shrunk, and every file it names written under
    ``root``. Returns the config, ready for ``Runner.from_cfg`` (work_dir ``root/work``)."""
    if osp.realpath(os.getcwd()) != osp.realpath(root):
        raise RuntimeError(f'config_world: run it with {root!r} as the working directory')
    cfg = Config.fromfile(path)
    shrink_sizes(cfg, root)
    write_datasets(cfg)  # first: the demo generator wants its folder to itself
    write_model_files(cfg)
    cfg.work_dir = osp.join(root, 'work')
    cfg.launcher = 'none'
    cfg.load_from, cfg.resume = None, False
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=0)
    return cfg


# -- sizes -------------------------------------------------------------------------------------
def shrink_sizes(cfg: Config, root: str) -> None:
    """Shrink what is large, nothing else (and see :func:`_shrink_test_cfg`)."""
    model = cfg.model
    _tiny_architectures(model, root)
    _no_downloads(model)
    if model.get('num_queries'):
        model.num_queries = min(model.num_queries, 10)
    _shrink_neck(model)
    _shrink_proposals(model)
    _shrink_test_cfg(model)
    preprocessor = model.get('data_preprocessor') or {}
    for node in [preprocessor, *(preprocessor.get('batch_augments') or [])]:
        if node.get('size'):
            node['size'] = tuple(_scaled(s) for s in node['size'])
    _shrink_decode_heads(model, size=preprocessor.get('size') or (64, 64))
    _shrink_cls_head(model, keep_projection=True)
    _shrink_data(cfg)


def _tiny_architectures(model, root: str) -> None:
    """Tiny Swins; tiny open_clip models of the same kind (a timm ConvNeXt trunk, a
    text-only CLIP) for the image and text towers named by open_clip model name."""
    open_clip_models = {}
    for node in _walk(model):
        kind = node.get('type')
        if kind == 'ICARSwin':
            node.update(arch=dict(TINY_SWIN), pretrain_img_size=64)
        elif kind == 'ICARSwin3D':
            node.update(arch={k: TINY_SWIN[k] for k in ('embed_dims', 'depths', 'num_heads')},
                        window_size=(2, 4, 4))
        elif kind == 'OpenCLIPVisionBackbone':
            open_clip_models[node.model_name] = tiny_open_clip_convnext_config(root)
            node.model_name = open_clip_models[node.model_name]
    for tower in _text_towers(model):  # Hugging Face towers take their size from hf_dir
        if not tower.get('hf_dir') and tower.model not in open_clip_models:
            open_clip_models[tower.model] = tiny_clip_config(root)
        tower['model'] = open_clip_models.get(tower.model, tower.model)


def _no_downloads(model) -> None:
    """Initialisations from the network (``torchvision://``, ``https://``) are outside the
    world: those modules keep their own initialisation."""
    for node in _walk(model):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained' and \
                '://' in str(init.get('checkpoint')):
            node['init_cfg'] = None


def _shrink_test_cfg(model) -> None:
    """At most 10 detections per image, and score thresholds of 0: an untrained model's
    detections reach the evaluator (COCO's returns no metric at all for no detection)."""
    for node in _walk(model.get('test_cfg') or {}):
        if isinstance(node.get('max_per_img'), int):
            node['max_per_img'] = min(node['max_per_img'], 10)
        if 'score_thr' in node:
            node['score_thr'] = 0.0


def _shrink_data(cfg: Config) -> None:
    """Small batches in the main process, small images and clips, one iteration or epoch."""
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if loader:
            loader.update(batch_size=min(loader.get('batch_size', 1),
                                         2 if key.startswith('train') else 1),
                          num_workers=0, persistent_workers=False)
    shrunk = set()  # a pipeline list may be referenced from several places
    for step in _pipeline_steps(cfg._cfg_dict):
        if id(step) not in shrunk:
            shrunk.add(id(step))
            _shrink_transform(step)
    train_cfg = cfg.get('train_cfg') or {}
    for key in ('max_iters', 'max_epochs'):
        if key in train_cfg:
            train_cfg[key] = 1


def _text_towers(model) -> List[dict]:
    return [node['text_tower'] for node in _walk(model)
            if isinstance(node.get('text_tower'), dict) and node.text_tower.get('model')]


def _pipeline_steps(node, in_pipeline: bool = False) -> Iterator[dict]:
    """Every transform of every pipeline (``*pipeline`` lists and nested ``transforms``)."""
    if isinstance(node, dict):
        if in_pipeline and isinstance(node.get('type'), str):
            yield node
        for key, value in node.items():
            inner = in_pipeline or (isinstance(key, str) and
                                    (key.endswith('pipeline') or key == 'transforms'))
            yield from _pipeline_steps(value, inner)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _pipeline_steps(value, in_pipeline)


def _scaled(value):
    if isinstance(value, bool) or not isinstance(value, int):
        return value  # floats are ratios
    return value if value < 0 else max(1, value // SCALE_DIVISOR)


def _shrink_transform(step: dict) -> None:
    for key in PIPELINE_SIZE_KEYS:
        value = step.get(key)
        if isinstance(value, (list, tuple)):
            step[key] = type(value)(
                type(v)(_scaled(x) for x in v) if isinstance(v, (list, tuple)) else _scaled(v)
                for v in value)
        elif value is not None:
            step[key] = _scaled(value)
    if step['type'] == 'SampleFrames':
        step.update(clip_len=min(step.get('clip_len', CLIP_LEN), CLIP_LEN), num_clips=1)
    if 'max_cached_images' in step:  # mosaic / mix-up caches
        step['max_cached_images'] = min(step['max_cached_images'], 4)


# -- model files -------------------------------------------------------------------------------
def write_model_files(cfg: Config) -> None:
    """The text-tower directories and classifier files, iCAR checkpoints and open_clip
    checkpoints the model names (files already there are kept)."""
    towers = _text_towers(cfg.model)
    for tower in towers:
        if tower.get('hf_dir') and not osp.isfile(osp.join(tower.hf_dir, 'config.json')):
            tiny_roberta_dir(tower.hf_dir)
    hf_dirs = {t.checkpoint: t.hf_dir for t in towers if t.get('checkpoint') and t.get('hf_dir')}
    icar_files = set(hf_dirs)
    for node in _walk(cfg.model):
        if node.get('type') in ('ICARSwin', 'ICARSwin3D') and node.get('checkpoint'):
            icar_files.add(node.checkpoint)
        if node.get('projection_checkpoint'):
            icar_files.add(node.projection_checkpoint)
        if node.get('embeddings_file') and not osp.exists(node.embeddings_file):
            write_classifier_file(node.embeddings_file, node.get('vocabulary'))
    from ..text.towers import load_tower_config
    text_dims = {t.checkpoint: load_tower_config(t.model)['embed_dim'] for t in towers
                 if t.get('checkpoint') in hf_dirs}
    fallback = next(iter(hf_dirs), None)  # the model's text tower, for image-only files
    for path in sorted(p for p in icar_files if not osp.exists(p)):
        write_icar_checkpoint(path, hf_dirs.get(path, hf_dirs.get(fallback)),
                              text_dim=text_dims.get(path, text_dims.get(fallback, 256)))
    clip_files = {t.checkpoint: t.model for t in towers if t.get('checkpoint') and
                  not t.get('hf_dir')}
    clip_files.update({n.checkpoint: n.model_name for n in _walk(cfg.model)
                       if n.get('type') == 'OpenCLIPVisionBackbone' and n.get('checkpoint')})
    for path, model_config in clip_files.items():
        if not osp.exists(path):
            write_open_clip_checkpoint(path, model_config)


def write_classifier_file(path: str, vocabulary, dim: int = 32) -> None:
    """A classifier file as tools/build_text_classifier.py writes it: one random unit row per
    class of ``vocabulary``."""
    import torch

    from ..text import load_vocabulary, save_classifier_file
    names = [entry.name for entry in load_vocabulary(vocabulary)]
    rows = torch.nn.functional.normalize(
        torch.randn(len(names), dim, generator=torch.Generator().manual_seed(0)), dim=-1)
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    save_classifier_file(path, rows, {'class_names': names})


def write_icar_checkpoint(path: str, hf_dir: Optional[str], text_dim: int = 256,
                          seed: int = 0) -> None:
    """One file in iCAR's layout: the tiny Swin image tower under ``visual_model.backbone.``
    (iCAR's Swin naming) with its image->text projection, and, given the RoBERTa directory
    of its text tower, ``sentence_model.backbone.*`` + ``sentence_model.projector.weight``."""
    import torch

    from .configs import tiny_icar_image_state
    from .text import tiny_icar_text_state
    state = tiny_icar_image_state(text_dim, seed)
    if hf_dir is not None:
        state.update(tiny_icar_text_state(hf_dir, text_dim, seed))
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    torch.save({'model': state}, path)


def write_open_clip_checkpoint(path: str, model_config: str, seed: int = 0) -> None:
    """An open_clip state dict (``visual.*`` and the text tower) of the model ``model_config``
    describes, as open_clip_pytorch_model.bin files hold it."""
    import torch
    from open_clip import CLIP

    with open(model_config, encoding='utf-8') as f:
        config = json.load(f)
    torch.manual_seed(seed)
    model = CLIP(config['embed_dim'], config['vision_cfg'], config['text_cfg'])
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    torch.save(model.state_dict(), path)


# -- data ----------------------------------------------------------------------------------------
def write_datasets(cfg: Config) -> None:
    """The files of every dataset of the config's dataloaders, in the dataset class's format."""
    demo_roots = {}
    for dataset in _datasets(cfg):
        demo = _demo_data_root(_path(dataset, dataset.get('ann_file') or ''))
        if demo is not None:
            demo_roots.setdefault(demo, _demo_profile(demo))
            continue
        writer = _writer_for(dataset)
        if writer is None:
            raise ValueError(f'config_world: no writer for dataset type {dataset.get("type")!r}')
        writer(dataset)
    for demo, profile in demo_roots.items():
        from ..demo.data import make_demo_data
        from ..demo.text_tower import prepare_demo_text_tower
        make_demo_data(demo, seed=0, profile=profile, sizes=dict(
            det_train=IMAGES, det_val=IMAGES, seg_train=IMAGES, seg_val=IMAGES,
            video_train_per_class=1, video_val_per_class=1))
        prepare_demo_text_tower(demo)


def _datasets(cfg: Config) -> Iterator[dict]:
    """The datasets of the train / val / test dataloaders, dataset wrappers unwrapped."""
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        stack = [(cfg.get(key) or {}).get('dataset')]
        while stack:
            dataset = stack.pop()
            if not isinstance(dataset, dict):
                continue
            if 'dataset' in dataset or 'datasets' in dataset:
                stack += [dataset.get('dataset'), *(dataset.get('datasets') or [])]
            else:
                yield dataset


def _demo_data_root(path: str) -> Optional[str]:
    """The demo data folder (tools/make_demo_data.py's output) holding ``path``, if any."""
    parts = osp.normpath(path).split(os.sep)
    for i, part in enumerate(parts):
        if part.startswith('ovdense_demo'):
            return os.sep.join(parts[:i + 1])
    return None


def _demo_profile(demo_root: str) -> str:
    from ..demo.data import PROFILES
    return PROFILES[1] if demo_root.endswith('_lt') else PROFILES[0]


def _dataset_class(dataset: dict):
    import importlib
    for scope in ('mmdet', 'mmseg', 'mmaction'):
        try:
            registry = importlib.import_module(f'{scope}.registry').DATASETS
        except ImportError:
            continue
        found = registry.get(dataset['type'])
        if found is not None:
            return found
    return None


def _writer_for(dataset: dict):
    cls = _dataset_class(dataset)
    if cls is None:
        return None
    from mmdet.datasets import CocoDataset, LVISV1Dataset
    from mmseg.datasets import BaseSegDataset
    if issubclass(cls, LVISV1Dataset):
        return _write_lvis
    if issubclass(cls, CocoDataset):
        return _write_coco
    if issubclass(cls, BaseSegDataset):
        return lambda d: _write_segmentation(d, cls)
    try:
        from mmaction.datasets import VideoDataset
    except ImportError:
        return None
    return _write_video_list if issubclass(cls, VideoDataset) else None


def _path(dataset: dict, relative: str) -> str:
    return osp.join(dataset.get('data_root') or '', relative)


def _write_image(path: str, seed: int) -> None:
    from PIL import Image
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, IMAGE_SIZE + (3,), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _instances(labels: List[int], seed: int) -> List[tuple]:
    """One object per label: (label, [x, y, w, h], polygon)."""
    rng = np.random.default_rng(seed)
    height, width = IMAGE_SIZE
    objects = []
    for label in labels:
        w, h = int(rng.integers(width // 2, width)), int(rng.integers(height // 2, height))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        objects.append((label, [x, y, w, h], [x, y, x + w, y, x + w, y + h, x, y + h]))
    return objects


def _base_and_novel(names, lvis: bool):
    """Class indices that open-vocabulary training keeps (LVIS 'f'; OV-COCO base) and that
    it leaves out (LVIS 'r'; OV-COCO novel): training images show the first kind only, test
    images one of each."""
    if lvis:
        from ..text import load_vocabulary
        frequency = [entry.frequency for entry in load_vocabulary('lvis_v1')]
        return ([i for i, f in enumerate(frequency) if f == 'f'],
                [i for i, f in enumerate(frequency) if f == 'r'])
    from ..datasets.ov_coco import load_ov_coco_split
    split = load_ov_coco_split()
    return ([names.index(n) for n in split['base']], [names.index(n) for n in split['novel']])


def _write_json(path: str, content: dict) -> None:
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(content, f)


def _write_coco(dataset: dict, lvis: bool = False) -> None:
    """COCO (or LVIS v1) instance annotations of :data:`IMAGES` images and the images."""
    from mmdet.datasets import CocoDataset, LVISV1Dataset
    ann_file = _path(dataset, dataset['ann_file'])
    if osp.isfile(ann_file):
        return  # the same file serves several splits of the config
    image_dir = _path(dataset, (dataset.get('data_prefix') or {}).get('img', ''))
    names = (LVISV1Dataset if lvis else CocoDataset).METAINFO['classes']
    split = osp.splitext(osp.basename(ann_file))[0].split('_')[-1]  # train2017, val, ...
    base, novel = _base_and_novel(list(names), lvis)
    images, annotations = [], []
    for i in range(1, IMAGES + 1):
        file_name = f'{i:012d}.jpg'
        image = dict(id=i, file_name=file_name, height=IMAGE_SIZE[0], width=IMAGE_SIZE[1])
        if lvis:  # LVIS names its images by their COCO URL (mmdet strips the host)
            folder = 'train2017' if 'train' in split else 'val2017'
            image.update(coco_url=f'http://images.cocodataset.org/{folder}/{file_name}',
                         not_exhaustive_category_ids=[], neg_category_ids=[])
            _write_image(osp.join(image_dir, folder, file_name), seed=i)
        else:
            _write_image(osp.join(image_dir, file_name), seed=i)
        images.append(image)
        labels = [base[i], base[-i]] if 'train' in split else [base[i], novel[i]]
        for label, box, polygon in _instances(labels, seed=i):
            annotations.append(dict(id=len(annotations) + 1, image_id=i, category_id=label + 1,
                                    bbox=box, area=box[2] * box[3], segmentation=[polygon],
                                    iscrowd=0))
    categories = [dict(id=i + 1, name=name, supercategory='thing')
                  for i, name in enumerate(names)]
    if lvis:
        _add_lvis_category_fields(categories, annotations)
    _write_json(ann_file, dict(images=images, annotations=annotations, categories=categories))


def _write_lvis(dataset: dict) -> None:
    _write_coco(dataset, lvis=True)


def _add_lvis_category_fields(categories: List[dict], annotations: List[dict]) -> None:
    """LVIS's per-category fields: frequency, synonyms, definition (from the shipped LVIS
    vocabulary) and the file's own image / instance counts."""
    from ..text import load_vocabulary
    vocabulary = load_vocabulary('lvis_v1')
    images = {}
    for ann in annotations:
        images.setdefault(ann['category_id'], set()).add(ann['image_id'])
    for category, entry in zip(categories, vocabulary):
        seen = images.get(category['id'], set())
        category.update(frequency=entry.frequency, synonyms=list(entry.synonyms),
                        image_count=len(seen),
                        instance_count=sum(a['category_id'] == category['id']
                                           for a in annotations),
                        **{'def': entry.description})


def _seg_settings(dataset: dict, cls) -> dict:
    """img_suffix, seg_map_suffix, reduce_zero_label, ignore_index: the config's, else the
    dataset class's defaults."""
    import inspect
    settings = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        for name, parameter in inspect.signature(init).parameters.items():
            if parameter.default is not inspect.Parameter.empty:
                settings[name] = parameter.default
    settings.update({k: v for k, v in dataset.items() if k in settings})
    return settings


def _write_segmentation(dataset: dict, cls) -> None:
    """Images and label maps (8-bit PNG or 16-bit TIFF, as the suffix says) in the dataset's
    folders, and its split file when it has one."""
    from PIL import Image
    settings = _seg_settings(dataset, cls)
    prefix = dataset.get('data_prefix') or {}
    image_dir = _path(dataset, prefix.get('img_path', ''))
    label_dir = _path(dataset, prefix.get('seg_map_path', ''))
    num_classes = len(cls.METAINFO['classes'])
    wide = settings['seg_map_suffix'].endswith('.tif')
    names = []
    for i in range(IMAGES):
        name = f'image_{i}'
        names.append(name)
        _write_image(osp.join(image_dir, name + settings['img_suffix']), seed=i)
        rng = np.random.default_rng(100 + i)
        labels = rng.integers(0, num_classes, IMAGE_SIZE)
        if settings.get('reduce_zero_label'):
            labels = labels + 1  # 0 is "other" in such files
        labels[:4] = settings.get('ignore_index', 255) if wide else 255
        os.makedirs(label_dir, exist_ok=True)
        Image.fromarray(labels.astype(np.uint16 if wide else np.uint8)).save(
            osp.join(label_dir, name + settings['seg_map_suffix']))
    if dataset.get('ann_file'):
        path = _path(dataset, dataset['ann_file'])
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(''.join(name + '\n' for name in names))


def _write_video_list(dataset: dict) -> None:
    """``<video> <label>`` lines and random videos; training lists name trained classes
    only."""
    train = not dataset.get('test_mode', False)
    from .data import write_list, write_random_video
    video_dir = _path(dataset, (dataset.get('data_prefix') or {}).get('video', ''))
    os.makedirs(video_dir, exist_ok=True)
    lines = []
    for i in range(IMAGES):
        write_random_video(osp.join(video_dir, f'clip_{i}.mp4'), frames=8, size=32, seed=i)
        # even ids are never novel in the configs; test lists show an odd (novel) one too
        lines.append(f'clip_{i}.mp4 {2 * i if train or i == 0 else 1}')
    path = _path(dataset, dataset['ann_file'])
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    write_list(path, lines)


def missing_files(cfg: Config) -> List[str]:
    """Relative paths (under ``checkpoints/``, ``data/`` or ``work_dirs/``) that the config's
    components (model, dataloaders, evaluators, hooks) name and that do not exist: what the
    world forgot to write. Variables a config inherits but no component uses do not count."""
    missing = set()
    for key, value in cfg.items():
        if not (key == 'model' or key.endswith(('_dataloader', '_evaluator', 'hooks'))):
            continue
        for node in _walk(value):
            for item in node.values():
                if isinstance(item, str) and item.startswith(
                        ('checkpoints/', 'data/', 'work_dirs/')) and not osp.exists(item):
                    missing.add(item)
    return sorted(missing)
