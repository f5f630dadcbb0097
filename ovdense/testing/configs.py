"""Shrink a shipped config to test size: tiny backbone, tiny text tower, no checkpoints."""
import copy
import glob
import importlib
import importlib.util
import os.path as osp
import re
from typing import List, Optional, Sequence

from mmengine.config import Config, ConfigDict

from .text import tiny_clip_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_SWIN = dict(embed_dims=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), window_size=4)
TINY_CONVNEXT_DIMS = (40, 80, 160, 320)  # timm convnext_atto

# paramwise_cfg keys of the Swin recipes for a parameter our Swin backbones have only with
# use_abs_pos_embed=True (some iCAR checkpoints): the one key a shipped config may leave unused
OPTIONAL_PARAMWISE_KEYS = frozenset({'absolute_pos_embed'})


def unused_paramwise_keys(model, optim_wrapper) -> List[str]:
    """``unmatched_paramwise_keys`` of a model built by :func:`shrink_config`, less the keys it
    cannot judge there: the optional ones, and keys naming numbered blocks (mmseg's
    Mask2Former recipe lists every Swin block's norm; the shrunk backbone has fewer blocks)."""
    from ..utils.launch import unmatched_paramwise_keys
    return [key for key in unmatched_paramwise_keys(model, optim_wrapper)
            if key not in OPTIONAL_PARAMWISE_KEYS and not re.search(r'\.\d+(\.|$)', key)]


def tiny_open_clip_convnext_config(directory: str) -> str:
    """An open_clip model config with a randomly initialised timm ConvNeXt-atto trunk."""
    import json
    path = osp.join(directory, 'tiny-convnext-clip.json')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump({'embed_dim': 32,
                   'vision_cfg': {'timm_model_name': 'convnext_atto',
                                  'timm_model_pretrained': False, 'timm_pool': '',
                                  'timm_proj': 'linear', 'image_size': 64},
                   'text_cfg': {'context_length': 16, 'vocab_size': 49408, 'width': 32,
                                'heads': 2, 'layers': 1}}, f)
    return path


def shipped_configs(scope: str) -> List[str]:
    """Every config under ``configs/`` and ``projects/*/configs/`` whose default_scope is
    ``scope``, so a new config is tested without touching the tests."""
    paths = glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True) + glob.glob(
        osp.join(REPO, 'projects', '*', 'configs', '*.py'))
    return sorted(p for p in paths if '/_base_/' not in p and _scope_of(p) == scope)


def installed_config(scope: str, relpath: str) -> Config:
    """A stock config shipped inside the installed library (``mmdet``, ``mmseg``), e.g.
    ``installed_config('mmdet', 'rtmdet/rtmdet_tiny_8xb32-300e_coco.py')``, with its backbone's
    pretrained initialisation removed (nothing is downloaded)."""
    package = importlib.import_module(scope)
    cfg = Config.fromfile(osp.join(osp.dirname(package.__file__), '.mim', 'configs', relpath))
    cfg.model.backbone.init_cfg = None
    return cfg


def _scope_of(path: str) -> Optional[str]:
    with open(path, encoding='utf-8') as f:
        if 'mmaction::' in f.read() and importlib.util.find_spec('mmaction') is None:
            return 'mmaction'  # cannot be read without mmaction2 (extra "action")
    return Config.fromfile(path).get('default_scope')


def tiny_icar_checkpoint(directory: str, text_dim: int = 32, seed: int = 0) -> str:
    """An iCAR-layout file of :func:`tiny_icar_image_state`: ``directory/tiny_icar.pth``."""
    import torch
    path = osp.join(directory, 'tiny_icar.pth')
    torch.save({'model': tiny_icar_image_state(text_dim, seed)}, path)
    return path


def tiny_icar_image_state(text_dim: int = 32, seed: int = 0) -> dict:
    """iCAR's image-tower keys (the tiny Swin that :func:`shrink_config` builds, under
    ``visual_model.backbone.`` in iCAR's Swin naming, with the image->text projection
    ``visual_model.projector.weight``); random weights."""
    import torch

    from ..checkpoints import swin_mmdet_to_microsoft
    from ..models.backbones import ICARSwin
    from .backbones import icar_image_state
    torch.manual_seed(seed)
    swin = ICARSwin(arch=dict(TINY_SWIN), pretrain_img_size=64, text_embed_dims=None)
    state = icar_image_state(swin_mmdet_to_microsoft(swin.state_dict()))
    state['visual_model.projector.weight'] = torch.randn(text_dim, swin.num_features[-1])
    return state


def shrink_config(path: str, tmp_dir: str, vocabulary: Optional[str] = None,
                  icar_checkpoint: Optional[str] = None) -> Config:
    """Load ``path`` and replace everything large or external by tiny local stand-ins; the
    iCAR backbones load ``icar_checkpoint`` (:func:`tiny_icar_checkpoint`) when given.
    Vocabulary and class-frequency files are replaced whether or not they exist where the
    tests run. For a config with its real settings, see :mod:`ovdense.testing.worlds`."""
    cfg = Config.fromfile(path)
    tower = tiny_clip_config(tmp_dir)
    for node in _walk(cfg.model):
        _shrink_backbone(node, tmp_dir, icar_checkpoint)
        if isinstance(node.get('init_cfg'), dict) and node.init_cfg.get('type') == 'Pretrained':
            node['init_cfg'] = None  # tests never fetch weights
        if _is_file(node.get('class_frequencies_file')):
            node['class_frequencies_file'] = None
        classifier = _class_embeddings_node(node)
        if classifier is not None:
            if classifier.get('type') == 'FileClassEmbeddings':
                classifier['type'] = 'FrozenTowerClassEmbeddings'
            classifier['text_tower'] = dict(model=tower)
            # one template: LVIS x 80 templates through even a tiny tower dominates a smoke test
            if classifier.get('type') != 'RandomClassEmbeddings':  # the others use prompts
                classifier['prompts'] = dict(classifier.get('prompts') or {}, templates='single')
            classifier.pop('embeddings_file', None)
            stand_in = None
            if vocabulary is not None:
                stand_in = vocabulary
            elif _is_file(classifier.get('vocabulary')):  # vocabularies made with datasets
                # heads may leave num_classes to the vocabulary: the config's own count then
                count = node.get('num_classes') or cfg.get('num_classes')
                if not count:
                    raise ValueError(f'{path}: vocabulary file {classifier.get("vocabulary")!r} '
                                     'and no num_classes saying how many stand-in classes to '
                                     'make')
                stand_in = [f'class {i}' for i in range(count)]
            if stand_in is not None:
                classifier['vocabulary'] = stand_in
                # bare names carry no frequency / split to select novel classes by
                classifier.pop('novel_classes', None)
    if cfg.model.get('num_queries'):  # DETR family: test images have fewer encoder tokens
        cfg.model.num_queries = min(cfg.model.num_queries, 10)  # than DINO's 900 proposals
    _shrink_neck(cfg.model)
    _shrink_proposals(cfg.model)
    _shrink_decode_heads(cfg.model)
    _shrink_cls_head(cfg.model)
    return cfg


def _class_embeddings_node(node: ConfigDict) -> Optional[ConfigDict]:
    """The settings in ``node`` that say where class embeddings come from: a head's
    ``text_classifier`` (unless it takes the model's shared ones), a classifier, or a
    class-embedding component (``WithClassEmbeddings.class_embeddings``)."""
    from ..text.class_embeddings import SOURCES
    if node.get('type') in SOURCES:
        return node
    classifier = node.get('text_classifier', node if node.get('type') == 'TextCosineClassifier'
                          else None)
    if isinstance(classifier, dict) and classifier.get('vocabulary'):
        return classifier
    return None


def _shrink_backbone(node: ConfigDict, tmp_dir: str, icar_checkpoint: Optional[str]) -> None:
    if node.get('type') == 'ICARSwin':
        node.update(arch=dict(TINY_SWIN), checkpoint=icar_checkpoint, pretrained=None,
                    init_cfg=None, pretrain_img_size=64)
        if not icar_checkpoint:
            node['text_embed_dims'] = None
    elif node.get('type') == 'OpenCLIPVisionBackbone':
        node.update(model_name=tiny_open_clip_convnext_config(tmp_dir), checkpoint=None)
    elif node.get('type') == 'ICARSwin3D':
        node.update(arch={k: TINY_SWIN[k] for k in ('embed_dims', 'depths', 'num_heads')},
                    checkpoint=None, pretrained=None, init_cfg=None, text_embed_dims=None,
                    window_size=(2, 4, 4))


def _is_file(spec) -> bool:
    """A path (replaced whether or not it exists here: no dependence on the checkout)."""
    return isinstance(spec, str) and spec.endswith(('.json', '.txt', '.yaml', '.yml'))


def _shrink_neck(model: ConfigDict) -> None:
    """The neck reads the tiny backbone's channels of the stages the backbone outputs."""
    neck, backbone = model.get('neck'), model.get('backbone', {})
    channels = _tiny_backbone_channels(backbone)
    if isinstance(neck, dict) and 'in_channels' in neck and channels:
        stages = backbone.get('out_indices', range(len(neck['in_channels'])))
        neck['in_channels'] = [channels[i] for i in stages]


def _shrink_proposals(model: ConfigDict) -> None:
    """Two-stage detectors: at most 100 proposals per image and 64 sampled RoIs per stage
    (the stock 1000 / 512 make a test image's step several times slower)."""
    for phase in ('train_cfg', 'test_cfg'):
        settings = model.get(phase)
        if not isinstance(settings, dict):
            continue
        for key in ('rpn_proposal', 'rpn'):
            if isinstance(settings.get(key), dict) and 'max_per_img' in settings[key]:
                settings[key].update(nms_pre=min(settings[key].get('nms_pre', 200), 200),
                                     max_per_img=min(settings[key].max_per_img, 100))
        stages = settings.get('rcnn')
        for stage in stages if isinstance(stages, (list, tuple)) else [stages]:
            if isinstance(stage, dict) and isinstance(stage.get('sampler'), dict):
                stage.sampler['num'] = min(stage.sampler.get('num', 64), 64)


def _shrink_cls_head(model: ConfigDict, keep_projection: bool = False) -> None:
    """mmaction: the recognition head reads the tiny 3D backbone's last stage; no pretrained
    projection is loaded unless ``keep_projection``."""
    head, backbone = model.get('cls_head'), model.get('backbone', {})
    if isinstance(head, dict) and backbone.get('type') == 'ICARSwin3D':
        head['in_channels'] = TINY_SWIN['embed_dims'] * 8
        if 'projection_checkpoint' in head and not keep_projection:
            head['projection_checkpoint'] = None


def _tiny_backbone_channels(backbone) -> Optional[list]:
    kind = backbone.get('type') if isinstance(backbone, dict) else None
    if kind == 'ICARSwin':
        return [TINY_SWIN['embed_dims'] * 2 ** i for i in range(4)]
    if kind == 'OpenCLIPVisionBackbone':
        return list(TINY_CONVNEXT_DIMS)
    return None


def _shrink_decode_heads(model: ConfigDict, channels: int = 16, size=(64, 64)) -> None:
    """mmseg: decode / auxiliary heads get the tiny backbone's channels and few of their own;
    the training crop and a sliding test window become ``size``-sized."""
    if 'decode_head' not in model:
        return
    dims = _tiny_backbone_channels(model.get('backbone'))
    for key in ('decode_head', 'auxiliary_head'):
        heads = model.get(key)
        for head in heads if isinstance(heads, (list, tuple)) else [heads]:
            if not isinstance(head, dict):
                continue
            index = head.get('in_index', -1)
            if isinstance(head.get('in_channels'), (list, tuple)) and 'in_index' not in head:
                index = list(range(len(head['in_channels'])))  # Mask2Former: every level
            if dims is not None and 'in_channels' in head:
                head['in_channels'] = ([dims[i] for i in index]
                                       if isinstance(index, (list, tuple)) else dims[index])
            if 'channels' in head and head.get('num_convs', 1) > 0:
                head['channels'] = channels
            _shrink_query_head(head)
    preprocessor = model.get('data_preprocessor')
    if isinstance(preprocessor, dict) and preprocessor.get('size'):
        preprocessor['size'] = tuple(size)
    test_cfg = model.get('test_cfg')
    if isinstance(test_cfg, dict) and test_cfg.get('mode') == 'slide':
        test_cfg.update(crop_size=tuple(s * 3 // 4 for s in size),
                        stride=tuple(s // 2 for s in size))


def _shrink_query_head(head: ConfigDict) -> None:
    """Mask2Former-style heads: few queries, decoder / pixel-decoder layers and mask points."""
    if 'transformer_decoder' not in head:
        return
    head['num_queries'] = min(head.get('num_queries', 10), 10)
    head.transformer_decoder['num_layers'] = 2
    encoder = (head.get('pixel_decoder') or {}).get('encoder')
    if isinstance(encoder, dict):
        encoder['num_layers'] = 1
    if isinstance(head.get('train_cfg'), dict) and 'num_points' in head.train_cfg:
        head.train_cfg['num_points'] = 256


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _walk(value)


def with_shared_class_embeddings(model: dict, base_type: str, heads: Sequence[str]) -> dict:
    """A classic model config whose ``heads`` each carry the same ``text_classifier``
    settings, rewritten as ``WithClassEmbeddings``: the class-list settings move to one
    model-level component (its source chosen by the same flags), the heads keep their
    classifier settings and take their class count from it."""
    from ..text.class_embeddings import SOURCE_KEYS, class_embeddings_cfg
    specs = [dict(model[head]['text_classifier']) for head in heads]
    sources = [{k: v for k, v in spec.items() if k in SOURCE_KEYS} for spec in specs]
    if any(source != sources[0] for source in sources):
        raise ValueError(f'the heads {list(heads)} do not score the same class embeddings')
    out = dict(model, type='WithClassEmbeddings', base_type=base_type,
               class_embeddings=class_embeddings_cfg(**sources[0]))
    for head, spec in zip(heads, specs):
        out[head] = dict(model[head], num_classes=None, text_classifier={
            k: v for k, v in spec.items() if k not in SOURCE_KEYS})
    return out


def parameters_without_gradient(model) -> List[str]:
    """Trainable parameters that the last backward gave no gradient: under mmengine's default
    DDP wrapper (``find_unused_parameters=False``) any of them stops multi-GPU training."""
    return [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]


def backward_of_losses(model, losses: dict) -> List[str]:
    """Sums a model's loss terms (a list term by its sum), requires the total to be finite,
    runs backward and returns :func:`parameters_without_gradient`."""
    import torch
    total = sum(sum(v) if isinstance(v, (list, tuple)) else v for k, v in losses.items()
                if 'loss' in k)
    if not torch.isfinite(total):
        raise AssertionError(f'the total loss is not finite: {losses}')
    total.backward()
    return parameters_without_gradient(model)


def cpu_optim_wrapper(optim_wrapper: dict) -> dict:
    """The config's optimizer wrapper as it runs on a CPU: ``AmpOptimWrapper`` (CUDA only)
    becomes ``OptimWrapper``; optimizer and parameter groups are unchanged."""
    optim = dict(optim_wrapper)
    if optim.get('type') == 'AmpOptimWrapper':
        optim.update(type='OptimWrapper')
        optim.pop('loss_scale', None)
    return optim


def copy_config(cfg: Config) -> Config:
    return copy.deepcopy(cfg)


def load_tool(name: str):
    """``tools/<name>.py`` as a module, so tests call its ``main`` in-process."""
    spec = importlib.util.spec_from_file_location(f'ovdense_tool_{name}',
                                                  osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
