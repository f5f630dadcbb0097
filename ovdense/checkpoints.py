"""Checkpoint layouts of the jointly trained image tower, and their conversion.

This module is the one place in ovdense that knows checkpoint layouts. Every loader (the 2D and
3D Swin backbones, ``tools/convert_checkpoint.py``, the text-tower loader) goes through it.

Recognised source layouts (detected automatically, see :func:`detect_layout`):

``icar``
    An iCAR checkpoint: ``{'model': {...}}`` (or a bare state dict) whose image tower is under
    ``visual_model.*`` in Microsoft Swin naming, whose image->text projection is
    ``visual_model.projector.weight`` (``D x C``, no bias) and whose text tower is under
    ``sentence_model.*``.
``open_clip``
    An open_clip state dict (optionally under ``'state_dict'``, optionally ``module.``-prefixed)
    with a timm Swin trunk: ``visual.trunk.*`` and the projection ``visual.head.proj.weight``
    (or, for ``timm_proj='none'`` models, the trunk classifier ``visual.trunk.head.fc.*``).
    Everything outside ``visual.*`` is the text tower.
``swin``
    A Swin classification checkpoint: Microsoft naming (``{'model': {'layers.N.blocks...'}}``,
    patch merging at the end of stage N) or timm naming (patch merging at the start of
    stage N+1). No projection, no text tower; the classifier ``head.*`` is dropped.
``mmdet``
    mmdet ``SwinTransformer`` naming (``backbone.stages.N...`` or ``stages.N...``), e.g. a trained
    detector; ``backbone.text_projection.*`` is picked up when present.
``ovdense``
    A file written by :func:`save_converted` / ``tools/convert_checkpoint.py``.

Converted layout (a plain dict, loadable with ``torch.load(weights_only=True)``)::

    {
      'ovdense_format':     'ovdense-vl-checkpoint',      # str marker
      'format_version':     1,                            # int
      'source_layout':      'icar' | 'open_clip' | 'swin' | 'mmdet',
      'source_naming':      'microsoft' | 'timm' | 'mmdet', # image-tower naming in the source
      'source_file':        str,                          # basename of the source ('' if unknown)
      'source_model_name':  str,                          # e.g. the open_clip model name ('' if
                                                          # not given to the converter)
      'backbone_naming':    'mmdet_swin',
      'backbone_arch':      {'embed_dims': int, 'depths': [int], 'num_heads': [int],
                             'window_size': int, 'patch_size': int, 'mlp_ratio': float,
                             'qkv_bias': bool, 'patch_norm': bool, 'use_abs_pos_embed': bool},
      'backbone':           {mmdet SwinTransformer key (no 'backbone.' prefix): Tensor},
      'text_projection':    {'weight': Tensor[D, C]} (+ 'bias': Tensor[D]) or {} if none,
      'text_tower_layout':  'icar' | 'open_clip' | 'none',
      'text_tower':         {source key, verbatim: Tensor},  # everything outside the image tower
      'dropped_keys':       [str],                        # source keys not carried over
    }

``backbone`` keys follow mmdet's ``SwinTransformer``: ``patch_embed.projection.*``,
``stages.N.blocks.M.attn.w_msa.*``, ``stages.N.blocks.M.ffn.layers.{0.0,1}.*``,
``stages.N.downsample.*`` (in mmdet's unfold channel order), and the final Swin norm as
``norm{last}`` (``norm3`` for 4 stages). Derived buffers (``relative_position_index``,
``attn_mask``) are never stored.
"""
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .utils.io import OvdenseFileError, atomic_write, refuse_non_finite, safe_torch_load

FORMAT = 'ovdense-vl-checkpoint'
FORMAT_VERSION = 1
SOURCE_LAYOUTS = ('icar', 'open_clip', 'swin', 'mmdet')
LAYOUTS = SOURCE_LAYOUTS + ('ovdense',)

_LAYOUT_HELP = (
    "  - icar:      'visual_model.backbone.*' image keys in iCAR's Swin naming "
    "(or Microsoft's under 'visual_model.'), 'visual_model.projector.weight', "
    "'sentence_model.*' text keys\n"
    "  - open_clip: 'visual.trunk.*' (timm Swin trunk), 'visual.head.proj.weight', "
    "open_clip text keys\n"
    "  - swin:      Microsoft Swin classification {'model': {'layers.N.blocks...'}} "
    "or timm Swin 'layers.N.blocks...'\n"
    "  - mmdet:     mmdet SwinTransformer 'backbone.stages.N...' / 'stages.N...'\n"
    "  - ovdense:   a file written by tools/convert_checkpoint.py")

_DERIVED_SUFFIXES = ('relative_position_index', 'attn_mask')


class CheckpointLayoutError(OvdenseFileError):
    """The checkpoint is readable but not in a layout ovdense knows (or not the one asked for)."""


class CheckpointShapeError(ValueError):
    """A checkpoint tensor does not fit the model it is loaded into."""


# --------------------------------------------------------------------------------------------
# reading and unwrapping

def read_checkpoint(path: str, what: str = 'checkpoint') -> dict:
    """Load ``path`` with ``weights_only=True``; it must hold a dict."""
    obj = safe_torch_load(path, map_location='cpu', what=what)
    if not isinstance(obj, dict):
        raise CheckpointLayoutError(
            f'{what} {path!r} holds a {type(obj).__name__}, not a dict of tensors; '
            f'recognised layouts:\n{_LAYOUT_HELP}')
    return obj


def is_converted(obj) -> bool:
    return isinstance(obj, dict) and obj.get('ovdense_format') == FORMAT


def unwrap_state_dict(obj: dict) -> Dict[str, torch.Tensor]:
    """The flat ``{key: tensor}`` of a checkpoint: looks under ``state_dict`` / ``model`` /
    ``module``, strips a ``module.`` prefix shared by all keys and drops non-tensor entries."""
    state = obj
    for wrapper in ('state_dict', 'model', 'module'):
        inner = state.get(wrapper) if isinstance(state, dict) else None
        if isinstance(inner, dict) and inner and _looks_like_state_dict(inner):
            state = inner
            break
    state = {k: v for k, v in state.items() if isinstance(k, str) and torch.is_tensor(v)}
    if state and all(k.startswith('module.') for k in state):
        state = {k[len('module.'):]: v for k, v in state.items()}
    return state


def _looks_like_state_dict(d: dict) -> bool:
    values = list(d.values())[:16]
    return any(torch.is_tensor(v) for v in values)


# --------------------------------------------------------------------------------------------
# naming of Swin image towers

_STAGE_RE = re.compile(r'^layers\.(\d+)\.')


def swin_naming(state: Dict[str, torch.Tensor]) -> Optional[str]:
    """``'microsoft'``, ``'timm'`` or ``'mmdet'`` for a (prefix-free) Swin state dict, else None.

    Microsoft and timm both use ``layers.N.blocks``; they differ in where patch merging lives:
    Microsoft puts it at the end of stage N (``layers.0.downsample`` exists), timm at the start
    of stage N+1 (``layers.0`` never has one).
    """
    if any(k.startswith('stages.') and '.blocks.' in k for k in state) and \
            any(k.startswith('patch_embed.projection.') for k in state):
        return 'mmdet'
    if not any(k.startswith('layers.') and '.blocks.' in k and
               k.endswith('attn.relative_position_bias_table') for k in state):
        return None
    if any(k.startswith('layers.0.downsample.') for k in state):
        return 'microsoft'
    if any(re.match(r'^layers\.[1-9]\d*\.downsample\.', k) for k in state):
        return 'timm'
    return 'microsoft'  # a single-stage model: both namings coincide


def swin_timm_to_microsoft(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """timm Swin keys -> Microsoft keys (patch merging moves from stage N+1 to stage N).

    The concatenation order of timm's PatchMerging equals Microsoft's, so values are unchanged.
    ``head.fc.*`` becomes ``head.*``.
    """
    out = {}
    for k, v in state.items():
        m = re.match(r'^layers\.(\d+)\.downsample\.(.*)$', k)
        if m:
            k = f'layers.{int(m.group(1)) - 1}.downsample.{m.group(2)}'
        elif k.startswith('head.fc.'):
            k = 'head.' + k[len('head.fc.'):]
        out[k] = v
    return out


def _num_stages(state: Dict[str, torch.Tensor], prefix: str) -> int:
    idx = [int(m.group(1)) for k in state for m in [re.match(rf'^{prefix}\.(\d+)\.', k)] if m]
    return max(idx) + 1 if idx else 0


def swin_microsoft_to_mmdet(state: Dict[str, torch.Tensor]
                            ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Microsoft Swin keys -> mmdet ``SwinTransformer`` keys, through mmdet's own
    ``swin_converter`` (which also reorders the patch-merging channels for mmdet's unfold).

    The final ``norm`` becomes ``norm{last}`` (mmdet's output norm of the last stage: the same
    LayerNorm that precedes Swin's average pooling). Returns the converted dict and the dropped
    source keys (classifier head, derived buffers).
    """
    from mmdet.models.backbones.swin import swin_converter

    num_stages = _num_stages(state, 'layers')
    dropped = [k for k in state if k.startswith('head') or k.endswith(_DERIVED_SUFFIXES)]
    kept = {k: v for k, v in state.items() if k not in set(dropped)}
    converted = swin_converter(kept)
    out = {}
    for k, v in converted.items():
        k = k[len('backbone.'):]
        if k.startswith('norm.'):
            k = f'norm{num_stages - 1}.' + k[len('norm.'):]
        out[k] = v
    return out, dropped


def swin_mmdet_to_microsoft(state: Dict[str, torch.Tensor], final_norm: str = 'norm'
                            ) -> Dict[str, torch.Tensor]:
    """Inverse of :func:`swin_microsoft_to_mmdet` (used for Video Swin, which keeps Microsoft
    naming, and by tests to write Microsoft-layout files).

    ``final_norm='norm'`` renames ``norm{last}`` to ``norm`` and drops the other per-stage output
    norms (Microsoft layout); ``final_norm='keep'`` keeps every ``normN`` as it is (the naming
    of MMAction2's ``SwinTransformer3D``).
    """
    num_stages = _num_stages(state, 'stages')
    out = {}
    for k, v in state.items():
        if k.endswith(_DERIVED_SUFFIXES):
            continue
        if k.startswith('stages.'):
            k = 'layers.' + k[len('stages.'):]
            if '.attn.w_msa.' in k:
                k = k.replace('.attn.w_msa.', '.attn.')
            elif '.ffn.layers.0.0.' in k:
                k = k.replace('.ffn.layers.0.0.', '.mlp.fc1.')
            elif '.ffn.layers.1.' in k:
                k = k.replace('.ffn.layers.1.', '.mlp.fc2.')
            elif '.downsample.reduction.' in k and v.dim() == 2:
                v = _unfold_to_microsoft_reduction(v)
            elif '.downsample.norm.' in k:
                v = _unfold_to_microsoft_norm(v)
        elif k.startswith('patch_embed.projection.'):
            k = 'patch_embed.proj.' + k[len('patch_embed.projection.'):]
        elif re.match(r'^norm\d+\.', k) and final_norm == 'norm':
            if k.startswith(f'norm{num_stages - 1}.'):
                k = 'norm.' + k.split('.', 1)[1]
            else:
                continue
        out[k] = v
    return out


def _unfold_to_microsoft_reduction(x: torch.Tensor) -> torch.Tensor:
    out_channel, in_channel = x.shape
    x = x.reshape(out_channel, in_channel // 4, 4).transpose(1, 2)
    return x[:, [0, 2, 1, 3], :].reshape(out_channel, in_channel).contiguous()


def _unfold_to_microsoft_norm(x: torch.Tensor) -> torch.Tensor:
    in_channel = x.shape[0]
    x = x.reshape(in_channel // 4, 4).transpose(0, 1)
    return x[[0, 2, 1, 3], :].reshape(in_channel).contiguous()


def infer_swin_arch(backbone: Dict[str, torch.Tensor]) -> dict:
    """Architecture of an mmdet-naming Swin state dict, read from tensor shapes."""
    try:
        proj = backbone['patch_embed.projection.weight']
    except KeyError:
        raise CheckpointLayoutError(
            "cannot infer the Swin architecture: 'patch_embed.projection.weight' is missing")
    embed_dims, patch_size = int(proj.shape[0]), int(proj.shape[-1])
    num_stages = _num_stages(backbone, 'stages')
    depths, num_heads, windows = [], [], []
    for i in range(num_stages):
        blocks = {int(m.group(1)) for k in backbone
                  for m in [re.match(rf'^stages\.{i}\.blocks\.(\d+)\.', k)] if m}
        depths.append(len(blocks))
        table = backbone.get(f'stages.{i}.blocks.0.attn.w_msa.relative_position_bias_table')
        if table is None:
            raise CheckpointLayoutError(f'stage {i} of the Swin checkpoint has no blocks')
        num_heads.append(int(table.shape[1]))
        windows.append(int(round((math.sqrt(table.shape[0]) + 1) / 2)))
    fc1 = backbone.get('stages.0.blocks.0.ffn.layers.0.0.weight')
    mlp_ratio = float(fc1.shape[0]) / embed_dims if fc1 is not None else 4.0
    if mlp_ratio == int(mlp_ratio):
        mlp_ratio = int(mlp_ratio)
    return dict(
        embed_dims=embed_dims, depths=depths, num_heads=num_heads,
        window_size=windows[0] if len(set(windows)) == 1 else windows,
        patch_size=patch_size, mlp_ratio=mlp_ratio,
        qkv_bias='stages.0.blocks.0.attn.w_msa.qkv.bias' in backbone,
        patch_norm='patch_embed.norm.weight' in backbone,
        use_abs_pos_embed='absolute_pos_embed' in backbone)


# --------------------------------------------------------------------------------------------
# layout detection and conversion

def _has_prefix(state, prefix):
    return any(k.startswith(prefix) for k in state)


def _strip(state, prefix):
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def detect_layout(obj: dict, source: str = '') -> str:
    """One of :data:`LAYOUTS` for a loaded checkpoint, or :class:`CheckpointLayoutError`."""
    if is_converted(obj):
        return 'ovdense'
    if isinstance(obj, dict) and isinstance(obj.get('ovdense_format'), str):
        raise CheckpointLayoutError(
            f'{source or "checkpoint"} is an ovdense file of format {obj["ovdense_format"]!r}, '
            f'this version reads {FORMAT!r}')
    state = unwrap_state_dict(obj)
    if _has_prefix(state, 'visual_model.'):
        return 'icar'
    if _has_prefix(state, 'visual.'):
        return 'open_clip'
    if _has_prefix(state, 'backbone.stages.') or swin_naming(state) == 'mmdet':
        return 'mmdet'
    if swin_naming(state) in ('microsoft', 'timm'):
        return 'swin'
    keys = list(state)[:8] if state else list(obj)[:8]
    raise CheckpointLayoutError(
        f'cannot recognise the layout of {source or "the checkpoint"}; recognised layouts:\n'
        f'{_LAYOUT_HELP}\nits first keys are: {keys}')


def convert(obj: dict, layout: str = 'auto', source: str = '', model_name: str = '') -> dict:
    """Convert a loaded checkpoint (any of :data:`LAYOUTS`) to the ovdense layout.

    ``model_name`` is stored as ``source_model_name`` (e.g. the open_clip config the text tower
    needs); an ovdense file keeps its own unless a new one is given.
    """
    if layout not in ('auto',) + LAYOUTS:
        raise ValueError(f'unknown layout {layout!r}; expected auto or one of {LAYOUTS}')
    detected = detect_layout(obj, source)
    if layout != 'auto' and layout != detected:
        raise CheckpointLayoutError(
            f'{source or "checkpoint"} was asked to be read as {layout!r} but looks like '
            f'{detected!r}; recognised layouts:\n{_LAYOUT_HELP}')
    if detected == 'ovdense':
        converted = dict(obj)
    else:
        state = unwrap_state_dict(obj)
        convert_fn = {'icar': _convert_icar, 'open_clip': _convert_open_clip,
                      'mmdet': _convert_mmdet, 'swin': _convert_swin}[detected]
        converted = convert_fn(state, source)
    if model_name or 'source_model_name' not in converted:
        converted['source_model_name'] = model_name
    return converted


def _image_tower_to_mmdet(image: Dict[str, torch.Tensor], what: str
                          ) -> Tuple[Dict[str, torch.Tensor], str, List[str]]:
    naming = swin_naming(image)
    if naming is None:
        raise CheckpointLayoutError(
            f'{what}: the image tower is not a Swin Transformer (no '
            f"'layers.N.blocks.M.attn.relative_position_bias_table' keys); first keys: "
            f'{list(image)[:6]}')
    if naming == 'mmdet':
        dropped = [k for k in image if k.endswith(_DERIVED_SUFFIXES)]
        return {k: v for k, v in image.items() if k not in set(dropped)}, naming, dropped
    if naming == 'timm':
        image = swin_timm_to_microsoft(image)
    backbone, dropped = swin_microsoft_to_mmdet(image)
    return backbone, naming, dropped


def _converted(source_layout, naming, source, backbone, projection, text_layout, text, dropped):
    backbone = {k: _own_storage(v) for k, v in backbone.items()}
    return {
        'ovdense_format': FORMAT,
        'format_version': FORMAT_VERSION,
        'source_layout': source_layout,
        'source_naming': naming,
        'source_file': os.path.basename(source) if source else '',
        'backbone_naming': 'mmdet_swin',
        'backbone_arch': infer_swin_arch(backbone),
        'backbone': backbone,
        'text_projection': {k: _own_storage(v) for k, v in projection.items()},
        'text_tower_layout': text_layout,
        'text_tower': {k: _own_storage(v) for k, v in text.items()},
        'dropped_keys': sorted(dropped),
    }


def _own_storage(t: torch.Tensor) -> torch.Tensor:
    # torch.save writes a view's whole storage; copy views so files hold only what they need.
    if t.untyped_storage().nbytes() != t.numel() * t.element_size():
        return t.clone()
    return t.contiguous()


# iCAR's Swin names what Microsoft's Swin calls otherwise (the authors' own loaders rename
# them: weiyx16/Video-Swin-Transformer, mmaction/models/backbones/swin_transformer.py,
# inflate_weights)
_ICAR_SWIN_NAMES = (('.attn.rel_pos_embed_table', '.attn.relative_position_bias_table'),
                    ('.attn.relative_coords', '.attn.relative_position_index'),
                    ('.downsample.channel_reduction.', '.downsample.reduction.'))


def icar_swin_to_microsoft(image: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """An iCAR file's image tower (``visual_model.`` stripped): ``backbone.*`` in iCAR's
    Swin naming -> Microsoft Swin naming; the projector and Microsoft-named files as they
    are."""
    renamed = {}
    for key, value in image.items():
        if key.startswith('backbone.'):
            key = key[len('backbone.'):]
            for icar, microsoft in _ICAR_SWIN_NAMES:
                key = key.replace(icar, microsoft)
        renamed[key] = value
    return renamed


def _convert_icar(state, source):
    image = icar_swin_to_microsoft(_strip(state, 'visual_model.'))
    projection = {}
    for name in ('weight', 'bias'):
        key = f'projector.{name}'
        if key in image:
            projection[name] = image.pop(key)
    if 'weight' not in projection:
        raise CheckpointLayoutError(
            f"{source or 'iCAR checkpoint'}: no 'visual_model.projector.weight' "
            '(the image->text projection of an iCAR checkpoint)')
    text = {k: v for k, v in state.items() if not k.startswith('visual_model.')}
    backbone, naming, dropped = _image_tower_to_mmdet(image, source or 'iCAR checkpoint')
    return _converted('icar', naming, source, backbone, projection,
                      'icar' if text else 'none', text, ['visual_model.' + k for k in dropped])


def _convert_open_clip(state, source):
    visual = _strip(state, 'visual.')
    if not _has_prefix(visual, 'trunk.'):
        kind = 'a ModifiedResNet' if 'attnpool.c_proj.weight' in visual else (
            'a ViT' if 'conv1.weight' in visual else 'an unknown')
        raise CheckpointLayoutError(
            f'{source or "open_clip checkpoint"}: its image tower is {kind} tower, not a timm '
            'Swin trunk, so it cannot become an ICARSwin backbone; build it with '
            'OpenCLIPVisionBackbone instead')
    trunk = _strip(visual, 'trunk.')
    projection, dropped = {}, []
    if 'head.proj.weight' in visual:
        projection['weight'] = visual['head.proj.weight']
        if 'head.proj.bias' in visual:
            projection['bias'] = visual['head.proj.bias']
    elif any(k.startswith('head.mlp.') for k in visual):
        raise CheckpointLayoutError(
            f"{source or 'open_clip checkpoint'}: an MLP image head (timm_proj='mlp') is not a "
            'linear image->text projection; only linear heads are supported')
    elif 'head.fc.weight' in trunk:  # timm_proj='none': the trunk classifier is the projection
        projection['weight'] = trunk.pop('head.fc.weight')
        if 'head.fc.bias' in trunk:
            projection['bias'] = trunk.pop('head.fc.bias')
    try:
        backbone, naming, dropped = _image_tower_to_mmdet(trunk, source or 'open_clip checkpoint')
    except CheckpointLayoutError as err:
        raise CheckpointLayoutError(
            f'{err}; a non-Swin open_clip timm trunk (e.g. ConvNeXt) is loaded with '
            'OpenCLIPVisionBackbone') from None
    text = {k: v for k, v in state.items() if not k.startswith('visual.')}
    other_visual = [k for k in visual if not k.startswith(('trunk.', 'head.proj.'))]
    return _converted('open_clip', naming, source, backbone, projection,
                      'open_clip' if text else 'none', text,
                      ['visual.trunk.' + k for k in dropped]
                      + ['visual.' + k for k in other_visual])


def _convert_swin(state, source):
    backbone, naming, dropped = _image_tower_to_mmdet(state, source or 'Swin checkpoint')
    return _converted('swin', naming, source, backbone, {}, 'none', {}, dropped)


def _convert_mmdet(state, source):
    if _has_prefix(state, 'backbone.'):
        dropped = [k for k in state if not k.startswith('backbone.')]
        state = _strip(state, 'backbone.')
    else:
        dropped = []
    projection = {}
    for name in ('weight', 'bias'):
        key = f'text_projection.{name}'
        if key in state:
            projection[name] = state.pop(key)
    backbone, naming, more = _image_tower_to_mmdet(state, source or 'mmdet checkpoint')
    return _converted('mmdet', naming, source, backbone, projection, 'none', {}, dropped + more)


def load_converted(path: str, layout: str = 'auto', model_name: str = '') -> dict:
    """Read ``path`` (any recognised layout) and return it in the ovdense layout."""
    obj = read_checkpoint(path)
    refuse_non_finite(obj, path)
    try:
        converted = convert(obj, layout=layout, source=path, model_name=model_name)
    except CheckpointLayoutError as err:
        if path in str(err):
            raise
        raise CheckpointLayoutError(f'{path!r}: {err}') from None
    _validate_converted(converted, path)
    return converted


def _validate_converted(converted: dict, source: str) -> None:
    required = ('backbone', 'backbone_arch', 'text_projection', 'text_tower', 'text_tower_layout')
    missing = [k for k in required if k not in converted]
    if missing or not isinstance(converted.get('backbone'), dict):
        raise CheckpointLayoutError(
            f'{source!r} claims to be an ovdense file but lacks {missing or ["backbone"]}')
    if converted.get('format_version') != FORMAT_VERSION:
        raise CheckpointLayoutError(
            f'{source!r} has ovdense format_version {converted.get("format_version")!r}; '
            f'this version reads {FORMAT_VERSION}')


def save_converted(converted: dict, path: str) -> None:
    """Write a converted dict atomically; the file loads with ``weights_only=True``."""
    _validate_converted(converted, path)
    with atomic_write(path) as f:
        torch.save(converted, f)


def convert_file(src: str, dst: str, layout: str = 'auto', model_name: str = '') -> dict:
    converted = load_converted(src, layout, model_name=model_name)
    save_converted(converted, dst)
    return converted


def summarize(converted: dict) -> str:
    """Human-readable summary: counts and parameters per part, dims."""
    def count(d):
        return len(d), sum(int(v.numel()) for v in d.values())

    arch = converted['backbone_arch']
    nb, pb = count(converted['backbone'])
    nt, pt = count(converted['text_tower'])
    proj = converted['text_projection']
    lines = [
        f"source layout: {converted['source_layout']} ({converted['source_naming']} naming)"
        + (f", file {converted['source_file']}" if converted.get('source_file') else '')
        + (f", model {converted['source_model_name']}"
           if converted.get('source_model_name') else ''),
        f'backbone:        {nb} tensors, {pb:,} values; embed_dims={arch["embed_dims"]} '
        f'depths={list(arch["depths"])} num_heads={list(arch["num_heads"])} '
        f'window_size={arch["window_size"]} patch_size={arch["patch_size"]} '
        f'-> out channels {[arch["embed_dims"] * 2 ** i for i in range(len(arch["depths"]))]}',
    ]
    if proj:
        w = proj['weight']
        lines.append(f'text_projection: {tuple(w.shape[1:])[0]} -> {w.shape[0]}'
                     f'{" (with bias)" if "bias" in proj else " (no bias)"}')
    else:
        lines.append('text_projection: none')
    lines.append(f"text_tower:      {converted['text_tower_layout']}, {nt} tensors, {pt:,} values")
    dropped = converted['dropped_keys']
    lines.append(f'dropped:         {len(dropped)} source keys'
                 + (f' (e.g. {dropped[:3]})' if dropped else ''))
    return '\n'.join(lines)


# --------------------------------------------------------------------------------------------
# open_clip checkpoints (any image tower) for OpenCLIPVisionBackbone

def read_open_clip_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The full open_clip state dict of ``path`` (unwrapped, ``module.`` stripped)."""
    obj = read_checkpoint(path, what='open_clip checkpoint')
    state = unwrap_state_dict(obj)
    if not _has_prefix(state, 'visual.'):
        raise CheckpointLayoutError(
            f"{path!r} is not an open_clip checkpoint: no 'visual.*' keys "
            f'(first keys: {list(state)[:6]})')
    return state


# --------------------------------------------------------------------------------------------
# loading a state dict into a model, with clear errors

@dataclass
class LoadReport:
    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    new_modules: List[str] = field(default_factory=list)  # missing, but expected to be new
    resized: List[str] = field(default_factory=list)


def resize_rel_pos_bias_table(table: torch.Tensor, new_len: int) -> torch.Tensor:
    """Bicubic resize of a square-window ``(2W-1)^2 x nH`` table (as mmdet/Video Swin do)."""
    old_len, num_heads = table.shape
    s1, s2 = int(round(math.sqrt(old_len))), int(round(math.sqrt(new_len)))
    resized = F.interpolate(table.permute(1, 0).reshape(1, num_heads, s1, s1).float(),
                            size=(s2, s2), mode='bicubic', align_corners=False)
    return resized.reshape(num_heads, s2 * s2).permute(1, 0).contiguous().to(table.dtype)


def load_state_into(model: torch.nn.Module, state: Dict[str, torch.Tensor], *, source: str,
                    new_module_patterns: Sequence[str] = (), logger=None,
                    arch_hint: Optional[dict] = None) -> LoadReport:
    """Load ``state`` into ``model`` non-strictly, but refuse any shape mismatch.

    Derived buffers (relative position index, attention masks) are never loaded. A relative
    position bias table of another window size (same number of heads) is resized bicubically.
    Missing keys matching ``new_module_patterns`` (regexes) are reported as new modules at INFO,
    other missing / unexpected keys as warnings.
    """
    if logger is None:
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
    own = {k: v for k, v in model.state_dict().items() if not k.endswith(_DERIVED_SUFFIXES)}
    state = {k: v for k, v in state.items() if not k.endswith(_DERIVED_SUFFIXES)}
    report = LoadReport()
    mismatched = []
    to_load = {}
    for k, v in state.items():
        if k not in own:
            report.unexpected.append(k)
            continue
        if v.shape != own[k].shape:
            if (k.endswith('relative_position_bias_table') and v.dim() == 2 and own[k].dim() == 2
                    and v.shape[1] == own[k].shape[1]):
                v = resize_rel_pos_bias_table(v, own[k].shape[0])
                report.resized.append(k)
            else:
                mismatched.append((k, tuple(v.shape), tuple(own[k].shape)))
                continue
        to_load[k] = v
    if mismatched:
        lines = [f'  {k}: checkpoint {a} vs model {b}' for k, a, b in mismatched[:10]]
        more = f'\n  ... and {len(mismatched) - 10} more' if len(mismatched) > 10 else ''
        hint = ''
        if arch_hint:
            hint = (f'\nthe checkpoint holds embed_dims={arch_hint.get("embed_dims")} '
                    f'depths={list(arch_hint.get("depths", []))} '
                    f'num_heads={list(arch_hint.get("num_heads", []))} '
                    f'window_size={arch_hint.get("window_size")}; build the backbone with that '
                    "architecture (e.g. arch='auto')")
        raise CheckpointShapeError(
            f'{len(mismatched)} tensor(s) of {source!r} do not fit '
            f'{type(model).__name__}:\n' + '\n'.join(lines) + more + hint)
    model.load_state_dict(to_load, strict=False)
    report.loaded = sorted(to_load)
    for k in own:
        if k in to_load:
            continue
        if any(re.match(p, k) for p in new_module_patterns):
            report.new_modules.append(k)
        else:
            report.missing.append(k)
    name = type(model).__name__
    logger.info(f'{name}: loaded {len(report.loaded)} tensors from {source}')
    if report.resized:
        logger.warning(f'{name}: resized relative position bias tables to the model window: '
                       f'{report.resized}')
    if report.new_modules:
        logger.info(f'{name}: not in the checkpoint, initialised fresh (new output norms or '
                    f'heads): {report.new_modules}')
    if report.missing:
        logger.warning(f'{name}: missing keys in {source}: {report.missing}')
    if report.unexpected:
        logger.warning(f'{name}: unexpected keys in {source}: {report.unexpected}')
    return report
