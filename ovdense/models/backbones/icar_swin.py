"""The jointly trained (iCAR) Swin image tower as an mmdet / mmseg backbone."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.backbones.swin import ShiftWindowMSA, SwinTransformer
from mmengine.logging import MMLogger
from mmengine.model.weight_init import constant_init, trunc_normal_, trunc_normal_init

from ... import checkpoints as ckpt_lib
from ...registry import register

ARCH_SETTINGS = {
    'tiny': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7,
                 pretrain_img_size=224),
    'small': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), window_size=7,
                  pretrain_img_size=224),
    'base': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), window_size=7,
                 pretrain_img_size=224),
    'large': dict(embed_dims=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48),
                  window_size=12, pretrain_img_size=384),
}
ARCH_ALIASES = {'t': 'tiny', 's': 'small', 'b': 'base', 'l': 'large'}


def resolve_checkpoint_arg(checkpoint: Optional[str], init_cfg, pretrained: Optional[str],
                           owner: str) -> Optional[str]:
    """One checkpoint path from ``checkpoint=``, ``init_cfg=dict(type='Pretrained', ...)`` or
    mmdet's deprecated ``pretrained=``; anything else in ``init_cfg`` is refused."""
    paths = []
    if checkpoint:
        paths.append(checkpoint)
    if pretrained:
        paths.append(pretrained)
    if init_cfg is not None:
        cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
        for cfg in cfgs:
            if not isinstance(cfg, dict) or cfg.get('type') != 'Pretrained' or \
                    not cfg.get('checkpoint'):
                raise ValueError(
                    f"{owner} only accepts init_cfg=dict(type='Pretrained', checkpoint=PATH) "
                    f'(got {cfg!r}); without a checkpoint it initialises like mmdet Swin')
            paths.append(cfg['checkpoint'])
    if len(set(paths)) > 1:
        raise ValueError(f'{owner} got several checkpoints: {paths}')
    return paths[0] if paths else None


class OriginalShiftWindowMSA(ShiftWindowMSA):
    """mmdet's ``ShiftWindowMSA`` with the original Swin rule for small maps.

    The original Swin (and timm, Video Swin, the iCAR training code) does not shift windows
    along a dimension the feature map fits in (size <= window); mmdet's ``SwinTransformer``
    always shifts, which masks a single window into pieces. At the pretraining resolution the
    last stage is exactly one window (7x7 at 224 px), so this rule is needed to reproduce the
    iCAR / open_clip image embedding. Everything else (padding, masking, weights) is mmdet's.
    """

    def forward(self, query, hw_shape):
        B, L, C = query.shape
        H, W = hw_shape
        assert L == H * W, 'input feature has wrong size'
        ws = self.window_size
        sh = self.shift_size if H > ws else 0
        sw = self.shift_size if W > ws else 0
        query = query.view(B, H, W, C)
        pad_r = (ws - W % ws) % ws
        pad_b = (ws - H % ws) % ws
        query = F.pad(query, (0, 0, 0, pad_r, 0, pad_b))
        H_pad, W_pad = query.shape[1], query.shape[2]

        if sh or sw:
            shifted_query = torch.roll(query, shifts=(-sh, -sw), dims=(1, 2))
            img_mask = torch.zeros((1, H_pad, W_pad, 1), device=query.device)
            h_slices = ((slice(0, -ws), slice(-ws, -sh), slice(-sh, None)) if sh
                        else (slice(0, None),))
            w_slices = ((slice(0, -ws), slice(-ws, -sw), slice(-sw, None)) if sw
                        else (slice(0, None),))
            cnt = 0
            for h in h_slices:
                for w in w_slices:
                    img_mask[:, h, w, :] = cnt
                    cnt += 1
            mask_windows = self.window_partition(img_mask).view(-1, ws * ws)
            attn_mask = mask_windows.unsqueeze(1) - mask_windows.unsqueeze(2)
            attn_mask = attn_mask.masked_fill(attn_mask != 0, float(-100.0)).masked_fill(
                attn_mask == 0, float(0.0))
        else:
            shifted_query = query
            attn_mask = None

        query_windows = self.window_partition(shifted_query).view(-1, ws * ws, C)
        attn_windows = self.w_msa(query_windows, mask=attn_mask).view(-1, ws, ws, C)
        shifted_x = self.window_reverse(attn_windows, H_pad, W_pad)
        if sh or sw:
            x = torch.roll(shifted_x, shifts=(sh, sw), dims=(1, 2))
        else:
            x = shifted_x
        if pad_r > 0 or pad_b:
            x = x[:, :H, :W, :].contiguous()
        x = x.view(B, H * W, C)
        return self.drop(x)


def _arch_from(arch, converted: Optional[dict]) -> dict:
    if isinstance(arch, dict):
        return dict(arch)
    if arch is None:
        return {}
    if arch == 'auto':
        if converted is None:
            raise ValueError("arch='auto' reads the architecture from the checkpoint; "
                             'give checkpoint=PATH (or init_cfg=dict(type="Pretrained", ...))')
        a = converted['backbone_arch']
        settings = dict(embed_dims=a['embed_dims'], depths=tuple(a['depths']),
                        num_heads=tuple(a['num_heads']), window_size=a['window_size'],
                        patch_size=a['patch_size'], mlp_ratio=a['mlp_ratio'],
                        qkv_bias=a['qkv_bias'], patch_norm=a['patch_norm'],
                        use_abs_pos_embed=a['use_abs_pos_embed'])
        if isinstance(settings['window_size'], (list, tuple)):
            raise ValueError('the checkpoint uses different window sizes per stage, which '
                             'mmdet SwinTransformer does not support')
        settings['strides'] = (a['patch_size'], 2, 2, 2)[:len(a['depths'])] + \
            (2,) * max(0, len(a['depths']) - 4)
        return settings
    key = ARCH_ALIASES.get(str(arch).lower(), str(arch).lower())
    if key not in ARCH_SETTINGS:
        raise ValueError(f'unknown Swin arch {arch!r}; expected one of '
                         f"{sorted(ARCH_SETTINGS)}, 'auto' or a dict")
    return dict(ARCH_SETTINGS[key])


class TextProjectionFreezeMixin:
    """For Swin backbones (2D and 3D) that carry an image->text projection: freeze it with
    the frozen stages when asked, and keep ``train()`` returning the module."""

    def train(self, mode: bool = True):
        super().train(mode)  # mmdet's and mmaction2's re-freeze stages but return None
        return self

    def _freeze_stages(self):
        super()._freeze_stages()
        projection = getattr(self, 'text_projection', None)
        if projection is not None and getattr(self, 'freeze_text_projection', False):
            projection.eval()
            for param in projection.parameters():
                param.requires_grad = False


@register('MODELS', scopes=('mmdet', 'mmseg'))
class ICARSwin(TextProjectionFreezeMixin, SwinTransformer):
    """The iCAR image tower (Swin) as a multi-scale backbone, with its image->text projection.

    A subclass of mmdet's ``SwinTransformer``: every argument of it (``out_indices``,
    ``frozen_stages``, ``drop_path_rate``, ``with_cp``, ``patch_size``, ...) passes through
    ``**kwargs``; ``forward`` returns the same tuple of NCHW maps.

    Args:
        arch: ``'tiny' | 'small' | 'base' | 'large'`` presets (embed_dims / depths / num_heads,
            window 7 at 224 px; large: window 12 at 384 px), ``'auto'`` (read everything from the
            checkpoint), a dict of ``SwinTransformer`` arguments, or None (mmdet defaults plus the
            explicit arguments below).
        checkpoint: local checkpoint in any layout of :mod:`ovdense.checkpoints` (iCAR,
            open_clip with a timm Swin trunk, Microsoft / timm Swin classification, mmdet Swin,
            ovdense-converted). Same as ``init_cfg=dict(type='Pretrained', checkpoint=PATH)``.
            Loaded by ``init_weights()`` (the runner calls it; see also :meth:`from_checkpoint`).
        layout: force a checkpoint layout instead of detecting it (``'auto'``).
        text_embed_dims: output dims of ``text_projection`` (a Linear ``C_last -> D``, used by
            :meth:`encode_image` / :meth:`project_to_text`, not by the feature maps). None /
            0 (default) builds none: a dense head projects to the text space itself (its
            classifier's projection), and a projection no head uses would get no gradient.
            ``'auto'``: the checkpoint's projection size (none if it has no projection, or no
            checkpoint; the :meth:`from_checkpoint` default); an int builds one.
        proj_bias: whether the projection has a bias; None: as in the checkpoint (else False).
        freeze_text_projection: keep ``text_projection`` frozen.
        single_window_shift: False (default) does not shift windows along a dimension the map
            fits in, as the original Swin / iCAR / timm do (needed to reproduce the trained
            image embedding); True is mmdet's ``SwinTransformer`` bit for bit.
        embed_dims, depths, num_heads, window_size, pretrain_img_size: override the preset.
    """

    def __init__(self,
                 arch: Union[str, dict, None] = 'tiny',
                 checkpoint: Optional[str] = None,
                 layout: str = 'auto',
                 text_embed_dims: Union[str, int, None] = None,
                 proj_bias: Optional[bool] = None,
                 freeze_text_projection: bool = False,
                 single_window_shift: bool = False,
                 embed_dims: Optional[int] = None,
                 depths: Optional[Sequence[int]] = None,
                 num_heads: Optional[Sequence[int]] = None,
                 window_size: Optional[int] = None,
                 pretrain_img_size: Optional[Union[int, Tuple[int, int]]] = None,
                 init_cfg=None,
                 pretrained: Optional[str] = None,
                 **kwargs):
        self.checkpoint = resolve_checkpoint_arg(checkpoint, init_cfg, pretrained,
                                                 type(self).__name__)
        self.layout = layout
        converted = None
        if self.checkpoint and (arch == 'auto' or text_embed_dims == 'auto'
                                or (text_embed_dims and proj_bias is None)):
            # the architecture / projection size is read from the file now, weights later
            converted = ckpt_lib.load_converted(self.checkpoint, layout)
        settings = _arch_from(arch, converted)
        for name, value in (('embed_dims', embed_dims), ('depths', depths),
                            ('num_heads', num_heads), ('window_size', window_size),
                            ('pretrain_img_size', pretrain_img_size)):
            if value is not None:
                settings[name] = value
        for name in ('depths', 'num_heads'):
            if name in settings:
                settings[name] = tuple(settings[name])
        settings.update(kwargs)
        self.arch_settings = dict(settings)
        super().__init__(init_cfg=None, **settings)
        self.init_cfg = init_cfg

        if not single_window_shift:
            for stage in self.stages:
                for block in stage.blocks:
                    # same module and state, only the forward differs (see the class above)
                    block.attn.__class__ = OriginalShiftWindowMSA
        self.single_window_shift = single_window_shift

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
        self.load_report: Optional[ckpt_lib.LoadReport] = None
        # Nothing of the file is kept: init_weights reads it again (a model built for testing
        # never calls init_weights and must not hold a second copy of the weights).
        del converted

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_checkpoint(cls, checkpoint: str, arch='auto', text_embed_dims='auto',
                        **kwargs) -> 'ICARSwin':
        """Build the checkpoint's image tower, by default as it was trained (architecture and
        image->text projection), and load it."""
        model = cls(arch=arch, checkpoint=checkpoint, text_embed_dims=text_embed_dims,
                    **kwargs)
        model.init_weights()
        return model

    # ------------------------------------------------------------------ weights
    def _init_from_scratch(self):
        if self.use_abs_pos_embed:
            trunc_normal_(self.absolute_pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_init(m, std=.02, bias=0.)
            elif isinstance(m, nn.LayerNorm):
                constant_init(m, 1.0)

    def init_weights(self):
        self._init_from_scratch()
        if self.checkpoint is None:
            MMLogger.get_current_instance().warning(
                f'No pre-trained weights for {type(self).__name__}, training start from scratch')
        else:
            self.load_checkpoint(self.checkpoint, layout=self.layout)
        self._is_init = True

    def load_checkpoint(self, path: str, layout: str = 'auto',
                        logger=None) -> ckpt_lib.LoadReport:
        """Load the image tower (and projection) of ``path``, any recognised layout.

        Shape mismatches raise :class:`ovdense.checkpoints.CheckpointShapeError` naming the keys
        and both shapes; missing / unexpected keys are logged and returned in the report.
        """
        logger = logger or MMLogger.get_current_instance()
        converted = ckpt_lib.load_converted(path, layout)
        state = dict(converted['backbone'])
        skipped = [k for k in state if k.startswith('norm') and k.split('.')[0][4:].isdigit()
                   and int(k.split('.')[0][4:]) not in self.out_indices]
        for k in skipped:
            del state[k]
        if skipped:
            logger.info(f'{type(self).__name__}: output norms of stages outside out_indices '
                        f'are not used: {skipped}')
        projection = converted['text_projection']
        new_patterns = [r'^norm\d+\.']
        if self.text_projection is not None:
            if projection:
                for name, tensor in projection.items():
                    state[f'text_projection.{name}'] = tensor
            else:
                new_patterns.append(r'^text_projection\.')
        elif projection:
            logger.info(f'{type(self).__name__}: the checkpoint has an image->text projection '
                        'but text_embed_dims is None, so it is not loaded')
        report = ckpt_lib.load_state_into(
            self, state, source=path, new_module_patterns=new_patterns, logger=logger,
            arch_hint=converted['backbone_arch'])
        self.load_report = report
        return report

    # ------------------------------------------------------------------ features
    @property
    def out_channels(self) -> List[int]:
        return [self.num_features[i] for i in self.out_indices]

    def encode_image(self, x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """The image embedding: average pool of the normalised last stage, then the projection
        (without projection: the pooled feature). Equals iCAR's / open_clip's image embedding."""
        return self.pool_and_project(self(x), normalize=normalize)

    def pool_and_project(self, outs: Sequence[torch.Tensor], normalize: bool = False
                         ) -> torch.Tensor:
        """:meth:`encode_image` from already computed ``forward`` outputs."""
        last = len(self.stages) - 1
        if last not in self.out_indices:
            raise ValueError(f'encode_image needs the last stage ({last}) in out_indices '
                             f'(got {self.out_indices}): its output norm is the final Swin norm')
        feat = outs[list(self.out_indices).index(last)]
        pooled = feat.mean(dim=(2, 3))
        if self.text_projection is not None:
            pooled = self.text_projection(pooled)
        return F.normalize(pooled, dim=-1) if normalize else pooled

    def project_to_text(self, x: torch.Tensor) -> torch.Tensor:
        """Map last-stage features into the text embedding space.

        ``x``: ``(B, C, H, W)`` maps (channel dim 1) or ``(..., C)`` vectors (e.g. pooled region
        features); returns the same layout with ``D`` channels.
        """
        if self.text_projection is None:
            raise RuntimeError(f'{type(self).__name__} has no text projection '
                               '(text_embed_dims is None)')
        if x.dim() == 4:
            return self.text_projection(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()
        return self.text_projection(x)
