"""Tiny random image towers and the checkpoints made from them (CPU, 64 px inputs): a timm
Swin (also registered in timm as ``ovdense_bb_test_swin``, and a ConvNeXt as
``ovdense_bb_test_convnext``, for open_clip model configs), open_clip models from such
configs, and iCAR-layout checkpoints. Importing this module registers the two timm models."""
import json
from typing import Dict, Tuple

import torch
from timm.models import is_model, register_model
from timm.models.convnext import ConvNeXt
from timm.models.swin_transformer import SwinTransformer as TimmSwin

from .. import checkpoints as ck

# timm Swin arguments and the same tower in mmdet / ICARSwin arguments
TINY_TIMM_SWIN = dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=2,
                      patch_size=4)
TINY_MM_SWIN = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=2)
PROJ_DIM = 12  # the image -> text projection's output
TEXT_CFG = {'context_length': 8, 'vocab_size': 64, 'width': 16, 'heads': 2, 'layers': 1}


def _timm_kwargs(kwargs):
    return {k: v for k, v in kwargs.items()
            if k not in ('pretrained_cfg', 'pretrained_cfg_overlay', 'cache_dir')}


def _with_cfg(model):
    model.pretrained_cfg = model.default_cfg = {}  # what timm's builder would attach
    return model


def ovdense_bb_test_swin(pretrained=False, **kwargs):
    return _with_cfg(TimmSwin(img_size=64, **TINY_TIMM_SWIN, **_timm_kwargs(kwargs)))


def ovdense_bb_test_convnext(pretrained=False, **kwargs):
    return _with_cfg(ConvNeXt(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64), ls_init_value=0.5,
                              **_timm_kwargs(kwargs)))


for _model in (ovdense_bb_test_swin, ovdense_bb_test_convnext):
    if not is_model(_model.__name__):
        register_model(_model)


def register_open_clip(directory, name: str, vision_cfg: Dict, embed_dim: int = PROJ_DIM) -> str:
    """An open_clip model config ``name`` (``vision_cfg`` and a tiny text tower) written to
    ``directory`` and registered with open_clip; returns its path."""
    import open_clip
    path = directory / f'{name}.json'
    path.write_text(json.dumps({'embed_dim': embed_dim, 'vision_cfg': vision_cfg,
                                'text_cfg': TEXT_CFG}))
    open_clip.add_model_config(str(path))
    return str(path)


def open_clip_model(name: str, seed: int = 0):
    """A random open_clip model ``name`` in eval mode, BatchNorm statistics moved away from
    their identity defaults."""
    import open_clip
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None).eval()
    with torch.no_grad():  # BatchNorm statistics away from their identity defaults
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def random_image(h: int = 64, w: int = 64, b: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def icar_image_state(microsoft: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A Swin state dict in Microsoft naming as a real iCAR file holds it: under
    ``visual_model.backbone.`` with iCAR's names (``attn.rel_pos_embed_table``,
    ``attn.relative_coords``, ``downsample.channel_reduction``; see
    ``ovdense/resources/checkpoint_layouts/icar_swin-b_roberta-base.json``)."""
    state = {}
    for key, value in microsoft.items():
        for icar, ms in ck._ICAR_SWIN_NAMES:
            key = key.replace(ms, icar)
        state[f'visual_model.backbone.{key}'] = value
    return state


def icar_file(directory, seed: int = 0) -> Tuple[torch.nn.Module, torch.Tensor, str]:
    """An iCAR checkpoint built from a random timm Swin; returns (timm model, projector, path)."""
    torch.manual_seed(seed)
    model = TimmSwin(img_size=64, num_classes=0, **TINY_TIMM_SWIN).eval()
    proj = torch.randn(PROJ_DIM, 128)
    state = icar_image_state(ck.swin_timm_to_microsoft(model.state_dict()))
    state['visual_model.projector.weight'] = proj
    state['sentence_model.projector.weight'] = torch.randn(PROJ_DIM, 8)
    path = str(directory / f'icar_{seed}.pth')
    torch.save({'model': state}, path)
    return model, proj, path


def assert_clean_load(backbone, new=()) -> None:
    """Every checkpoint key used, none missing; the modules the checkpoint has no weights
    for are exactly ``new`` (by their first name component)."""
    report = backbone.load_report
    assert report.missing == [] and report.unexpected == [], report
    assert sorted({k.split('.')[0] for k in report.new_modules}) == sorted(new)


def timm_swin(seed: int = 0, **kw) -> torch.nn.Module:
    """The tiny timm Swin (no classifier head), random, in eval mode."""
    torch.manual_seed(seed)
    return TimmSwin(img_size=64, num_classes=0, **dict(TINY_TIMM_SWIN, **kw)).eval()


def icar_state(seed: int = 0):
    """An iCAR checkpoint dict (image tower as :func:`icar_image_state`, projector, text);
    returns (timm model, checkpoint dict)."""
    model = timm_swin(seed)
    ms = ck.swin_timm_to_microsoft(model.state_dict())
    g = torch.Generator().manual_seed(seed + 1)
    state = icar_image_state(ms)
    state['visual_model.projector.weight'] = torch.randn(PROJ_DIM, 128, generator=g)
    state['sentence_model.backbone.embeddings.word_embeddings.weight'] = torch.randn(
        50, 8, generator=g)
    state['sentence_model.projector.weight'] = torch.randn(PROJ_DIM, 8, generator=g)
    state['logit_scale'] = torch.tensor(2.5)
    return model, {'model': state, 'epoch': 3, 'config': 'icar-test'}


def write_checkpoint(path, obj) -> str:
    """``torch.save(obj, path)``; returns the path as a string."""
    torch.save(obj, str(path))
    return str(path)
