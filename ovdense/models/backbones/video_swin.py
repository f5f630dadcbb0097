"""The 2D iCAR image tower inflated into MMAction2's Video Swin (``SwinTransformer3D``).

A config only names the 2D checkpoint (any layout of :mod:`ovdense.checkpoints`)::

    backbone=dict(type='ICARSwin3D', checkpoint='icar_swin_b.pth', window_size=(8, 7, 7))

Inflation follows Video Swin: the patch-embedding kernel is inflated over time (``'center'``:
the 2D kernel in the middle frame, zeros elsewhere; ``'average'``: the 2D kernel / T in every
frame), each relative position bias table is repeated over the ``2*Wd-1`` temporal offsets (so
the bias ignores the temporal offset), everything else is copied.

Why a static clip reproduces the 2D features per frame: with both inflations a repeated frame
gives every temporal position the 2D patch embedding; inside a 3D window each 2D key then
appears once per frame with the same score (same key, bias independent of the temporal
offset), so softmax weights split evenly over the copies and the output is the 2D attention
output. Temporal shifts only restrict which (identical) frames are attended. This holds exactly
when no zero padding is added along time, i.e. the token depth (``T / patch_t``) is a multiple
of the temporal window or not larger than it, and, spatially, when each stage map is a multiple
of the window or exactly one window (Video Swin shrinks a larger window to a smaller map with a
truncated bias index, mmdet pads instead).
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MMLogger

from ... import checkpoints as ckpt_lib
from ...compat import import_mmaction
from ...registry import register
from .icar_swin import TextProjectionFreezeMixin, resolve_checkpoint_arg

INFLATE_MODES = ('center', 'average')


def inflate_swin_state(backbone: dict, patch_size: Sequence[int], window_size: Sequence[int],
                       inflate: str = 'center') -> dict:
    """An ovdense-converted (mmdet naming) Swin state dict -> ``SwinTransformer3D`` state dict."""
    if inflate not in INFLATE_MODES:
        raise ValueError(f'inflate must be one of {INFLATE_MODES}, got {inflate!r}')
    state = ckpt_lib.swin_mmdet_to_microsoft(backbone, final_norm='keep')
    key = 'patch_embed.proj.weight'
    weight = state[key]
    t = int(patch_size[0])
    if inflate == 'average':
        state[key] = weight.unsqueeze(2).repeat(1, 1, t, 1, 1) / t
    else:
        inflated = weight.new_zeros(weight.shape[:2] + (t,) + weight.shape[2:])
        inflated[:, :, t // 2] = weight
        state[key] = inflated
    wd, wh, ww = (int(w) for w in window_size)
    spatial_len = (2 * wh - 1) * (2 * ww - 1)
    for k in [k for k in state if k.endswith('relative_position_bias_table')]:
        table = state[k]
        if table.shape[0] != spatial_len:
            if wh != ww:
                raise ValueError(f'{k}: cannot resize a square-window table to window {wh}x{ww}')
            table = ckpt_lib.resize_rel_pos_bias_table(table, spatial_len)
        state[k] = table.repeat(2 * wd - 1, 1)
    return state


def _patch(size) -> tuple:
    return tuple(size) if isinstance(size, (list, tuple)) else (size, size, size)


_mmaction = import_mmaction()
if _mmaction is not None:
    from mmaction.models.backbones.swin import SwinTransformer3D

    @register('MODELS', scopes=('mmaction',))
    class ICARSwin3D(TextProjectionFreezeMixin, SwinTransformer3D):
        """MMAction2's ``SwinTransformer3D`` initialised by inflating a 2D iCAR image tower.

        Args:
            checkpoint: 2D checkpoint in any layout of :mod:`ovdense.checkpoints` (or
                ``init_cfg=dict(type='Pretrained', checkpoint=PATH)``); loaded by
                ``init_weights()``.
            arch: ``'auto'`` (from the checkpoint; default), an MMAction2 arch name
                (``'tiny'`` ...) or a dict with ``embed_dims``, ``depths``, ``num_heads``.
            inflate: ``'center'`` or ``'average'`` inflation of the patch-embedding kernel.
            window_size: ``(Wd, Wh, Ww)``; None: ``(8, w, w)`` with the checkpoint's window
                ``w`` (7 without a checkpoint).
            text_embed_dims / proj_bias / freeze_text_projection: the image->text projection,
                as in :class:`ICARSwin` (default None: none; the recognition head's classifier
                projects, see ``TextI3DHead(projection_checkpoint=...)``; ``'auto'``: the
                checkpoint's, for :meth:`encode_video`).
            Other arguments go to ``SwinTransformer3D`` (``patch_size``, ``out_indices``,
            ``frozen_stages``, ``with_cp``, ``drop_path_rate``...).
        """

        def __init__(self, checkpoint: Optional[str] = None,
                     arch: Union[str, dict] = 'auto',
                     layout: str = 'auto',
                     inflate: str = 'center',
                     window_size: Optional[Sequence[int]] = None,
                     patch_size: Union[int, Sequence[int]] = (2, 4, 4),
                     text_embed_dims: Union[str, int, None] = None,
                     proj_bias: Optional[bool] = None,
                     freeze_text_projection: bool = False,
                     init_cfg=None,
                     pretrained: Optional[str] = None,
                     **kwargs):
            if inflate not in INFLATE_MODES:
                raise ValueError(f'inflate must be one of {INFLATE_MODES}, got {inflate!r}')
            path = resolve_checkpoint_arg(checkpoint, init_cfg, pretrained, 'ICARSwin3D')
            converted = ckpt_lib.load_converted(path, layout) if path else None
            if arch == 'auto':
                if converted is None:
                    raise ValueError("arch='auto' needs a checkpoint")
                a = converted['backbone_arch']
                arch = dict(embed_dims=a['embed_dims'], depths=list(a['depths']),
                            num_heads=list(a['num_heads']))
                for name in ('mlp_ratio', 'qkv_bias', 'patch_norm'):
                    kwargs.setdefault(name, a[name])
            if window_size is None:
                w = converted['backbone_arch']['window_size'] if converted else 7
                window_size = (8, w, w)
            patch_size = _patch(patch_size)
            super().__init__(arch=arch, pretrained=None, pretrained2d=False,
                             patch_size=patch_size, window_size=tuple(window_size), **kwargs)
            self.checkpoint = path
            self.layout = layout
            self.inflate = inflate
            projection = converted['text_projection'] if converted is not None else {}
            if text_embed_dims == 'auto':
                text_embed_dims = int(projection['weight'].shape[0]) if projection else None
            if proj_bias is None:
                proj_bias = 'bias' in projection
            self.text_embed_dims = int(text_embed_dims) if text_embed_dims else None
            self.text_projection = (
                nn.Linear(self.num_features[-1], self.text_embed_dims, bias=bool(proj_bias))
                if self.text_embed_dims else None)
            self.freeze_text_projection = freeze_text_projection
            self._freeze_stages()
            self.load_report = None
            del converted  # init_weights reads the file again (see ICARSwin)

        def init_weights(self):
            # MMAction2's default random init (TruncNormal linears, constant LayerNorms) ...
            self.pretrained2d = False
            self.pretrained = None
            super().init_weights()
            # ... then the inflated 2D weights.
            if self.checkpoint is not None:
                self.load_checkpoint(self.checkpoint, layout=self.layout)

        def load_checkpoint(self, path: str, layout: str = 'auto', logger=None):
            logger = logger or MMLogger.get_current_instance()
            converted = ckpt_lib.load_converted(path, layout)
            state = inflate_swin_state(converted['backbone'], self.patch_size,
                                       self.window_size, self.inflate)
            for k in [k for k in state if k.startswith('norm') and k.split('.')[0][4:].isdigit()
                      and int(k.split('.')[0][4:]) not in self.out_indices]:
                del state[k]
            new_patterns = [r'^norm\d+\.']
            projection = converted['text_projection']
            if self.text_projection is not None:
                if projection:
                    for name, tensor in projection.items():
                        state[f'text_projection.{name}'] = tensor
                else:
                    new_patterns.append(r'^text_projection\.')
            report = ckpt_lib.load_state_into(
                self, state, source=path, new_module_patterns=new_patterns, logger=logger,
                arch_hint=converted['backbone_arch'])
            self.load_report = report
            return report

        def encode_video(self, x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
            """Average pool of the normalised last stage over (T, H, W), then the projection."""
            last = self.num_layers - 1
            if last not in self.out_indices:
                raise ValueError(f'encode_video needs the last stage ({last}) in out_indices')
            outs = self(x)
            outs = outs if isinstance(outs, tuple) else (outs,)
            pooled = outs[list(self.out_indices).index(last)].mean(dim=(2, 3, 4))
            if self.text_projection is not None:
                pooled = self.text_projection(pooled)
            return F.normalize(pooled, dim=-1) if normalize else pooled

        def project_to_text(self, x: torch.Tensor) -> torch.Tensor:
            """``(B, C, T, H, W)`` maps (channel dim 1) or ``(..., C)`` vectors -> text space."""
            if self.text_projection is None:
                raise RuntimeError('ICARSwin3D has no text projection (text_embed_dims is None)')
            if x.dim() == 5:
                return self.text_projection(x.movedim(1, -1)).movedim(-1, 1).contiguous()
            return self.text_projection(x)
else:  # pragma: no cover - mmaction2 not installed
    ICARSwin3D = None
