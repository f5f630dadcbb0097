"""Any open_clip image tower as a multi-scale mmdet / mmseg backbone."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.model import BaseModule

from ... import checkpoints as ckpt_lib
from ...registry import register
from ...utils.open_clip_configs import load_open_clip_config as _load_config
from .icar_swin import resolve_checkpoint_arg


def load_open_clip_config(model_name: str) -> dict:
    """The open_clip model config (with an image tower) of a name or JSON file."""
    return _load_config(model_name, 'vision_cfg')


def build_open_clip_vision_tower(cfg: dict) -> nn.Module:
    """Only the image tower of an open_clip config, never downloading weights."""
    from open_clip.model import _build_vision_tower

    vision_cfg = dict(cfg['vision_cfg'])
    if vision_cfg.get('timm_model_name'):
        vision_cfg['timm_model_pretrained'] = False
    return _build_vision_tower(cfg['embed_dim'], vision_cfg,
                               quick_gelu=cfg.get('quick_gelu', False), cast_dtype=None)


class _LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


@register('MODELS', scopes=('mmdet', 'mmseg'))
class OpenCLIPVisionBackbone(BaseModule):
    """An open_clip image tower exposing four multi-scale maps (strides 4, 8, 16, 32).

    * timm trunks (ConvNeXt, Swin, ...): the trunk's stage outputs (``forward_intermediates``).
    * ModifiedResNet (RN50 family): ``layer1`` .. ``layer4``.
    * plain ViT: ViTDet's simple feature pyramid from the last block's (``ln_post``-normalised)
      patch map at stride ``p`` (the patch size): two deconvolutions (stride p/4), one (p/2),
      identity (p), max-pool (2p). These pyramid layers are new and stay trainable.

    Args:
        model_name: a registered open_clip model name, or the path of a JSON model config.
        checkpoint: a local open_clip checkpoint (read with ``weights_only=True``); same as
            ``init_cfg=dict(type='Pretrained', checkpoint=PATH)``. Loaded by ``init_weights()``.
        out_indices: which of the four maps to return.
        frozen: freeze the open_clip tower (kept in eval mode, BN statistics included).
            Unfrozen, every part the maps come from trains; the image-embedding head (what
            :meth:`encode_image` adds after the trunk: open_clip's image head, the ResNet
            attention pool, the ViT ``proj``) stays frozen either way: the maps do not use it,
            so it would get no gradient (which stops DDP with ``find_unused_parameters=False``).
    """

    def __init__(self, model_name: str, checkpoint: Optional[str] = None,
                 out_indices: Sequence[int] = (0, 1, 2, 3), frozen: bool = True,
                 init_cfg=None, pretrained: Optional[str] = None):
        super().__init__(init_cfg=None)
        self.init_cfg = init_cfg
        self.checkpoint = resolve_checkpoint_arg(checkpoint, init_cfg, pretrained,
                                                 type(self).__name__)
        self.model_name = model_name
        cfg = load_open_clip_config(model_name)
        self.embed_dim = int(cfg['embed_dim'])
        self.visual = build_open_clip_vision_tower(cfg)
        self.out_indices = tuple(out_indices)
        if not all(0 <= i < 4 for i in self.out_indices):
            raise ValueError(f'out_indices must be within 0..3, got {out_indices}')
        from open_clip.modified_resnet import ModifiedResNet
        from open_clip.timm_model import TimmModel
        from open_clip.transformer import VisionTransformer

        if isinstance(self.visual, TimmModel):
            self.kind = 'timm'
            info = self.visual.trunk.feature_info
            if len(info) < 4:
                raise ValueError(f'the timm trunk of {model_name!r} has {len(info)} stages; '
                                 'four are needed')
            self._timm_indices = list(range(len(info) - 4, len(info)))
            channels = [int(info[i]['num_chs']) for i in self._timm_indices]
        elif isinstance(self.visual, ModifiedResNet):
            self.kind = 'resnet'
            channels = [int(getattr(self.visual, f'layer{i}')[-1].conv3.out_channels)
                        for i in range(1, 5)]
        elif isinstance(self.visual, VisionTransformer):
            self.kind = 'vit'
            width = int(self.visual.conv1.out_channels)
            self.pyramid = nn.ModuleList([
                nn.Sequential(nn.ConvTranspose2d(width, width // 2, 2, 2),
                              _LayerNorm2d(width // 2), nn.GELU(),
                              nn.ConvTranspose2d(width // 2, width // 4, 2, 2)),
                nn.ConvTranspose2d(width, width // 2, 2, 2),
                nn.Identity(),
                nn.MaxPool2d(2, 2),
            ])
            channels = [width // 4, width // 2, width, width]
        else:
            raise TypeError(f'unsupported open_clip image tower {type(self.visual).__name__}')
        self.all_channels = channels
        self.frozen = frozen
        self._freeze()

    @property
    def out_channels(self) -> List[int]:
        return [self.all_channels[i] for i in self.out_indices]

    # ------------------------------------------------------------------ weights / modes
    def init_weights(self):
        if self.checkpoint is not None:
            state = ckpt_lib.read_open_clip_state_dict(self.checkpoint)
            visual = {k[len('visual.'):]: v for k, v in state.items() if k.startswith('visual.')}
            self.load_report = ckpt_lib.load_state_into(
                self.visual, visual, source=self.checkpoint,
                logger=MMLogger.get_current_instance())
        else:
            MMLogger.get_current_instance().warning(
                f'{type(self).__name__}: no checkpoint, the open_clip tower keeps its random '
                'initialisation')
        self._is_init = True

    def _freeze(self):
        if self.frozen:
            self.visual.eval()
        for param in (self.visual.parameters() if self.frozen
                      else self._embedding_head_parameters()):
            param.requires_grad = False

    def _embedding_head_parameters(self) -> List[nn.Parameter]:
        """The parameters of the image-embedding head, which the maps do not pass through."""
        v = self.visual
        loose = []  # parameters that are not inside a module of their own
        if self.kind == 'timm':
            heads = [getattr(v.trunk, 'head', None), v.head]
        elif self.kind == 'resnet':
            heads = [v.attnpool]
        else:  # the maps pass ln_post only when there is no attention pool
            heads = [v.attn_pool, v.ln_post] if v.attn_pool is not None else []
            loose = [v.proj] if v.proj is not None else []
        return loose + [p for h in heads if h is not None for p in h.parameters()]

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze()
        return self

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return self._features(x, pooled=False)[0]

    def encode_image(self, x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """The open_clip image embedding (``model.encode_image``); at the configured image size
        it is exactly open_clip's, other sizes interpolate the positional embeddings."""
        pooled = self.forward_features(x)[1]
        return F.normalize(pooled, dim=-1) if normalize else pooled

    def forward_features(self, x: torch.Tensor
                         ) -> Tuple[Tuple[torch.Tensor, ...], torch.Tensor]:
        """``(maps for out_indices, pooled image embedding)`` in one pass."""
        return self._features(x, pooled=True)

    def _features(self, x: torch.Tensor, pooled: bool):
        """The maps, and the pooled image embedding when ``pooled`` (else None)."""
        forward = {'timm': self._forward_timm, 'resnet': self._forward_resnet,
                   'vit': self._forward_vit}[self.kind]
        maps, embedding = forward(x, pooled)
        return tuple(maps[i] for i in self.out_indices), embedding

    def _forward_timm(self, x, pooled: bool):
        trunk = self.visual.trunk
        final, maps = trunk.forward_intermediates(
            x, indices=self._timm_indices, norm=False, output_fmt='NCHW')
        return list(maps), self.visual.head(trunk.forward_head(final)) if pooled else None

    def _forward_resnet(self, x, pooled: bool):
        v = self.visual
        x = v.stem(x)
        maps = []
        for i in range(1, 5):
            x = getattr(v, f'layer{i}')(x)
            maps.append(x)
        return maps, self._attnpool(x) if pooled else None

    def _attnpool(self, x):
        """open_clip's ``AttentionPool2d``, with its positional embedding resized to ``x``."""
        pool = self.visual.attnpool
        pos = pool.positional_embedding
        grid = int(round((pos.shape[0] - 1) ** 0.5))
        if (x.shape[2], x.shape[3]) == (grid, grid):
            return pool(x)
        pos = _resize_pos(pos, (grid, grid), x.shape[2:])
        x = x.flatten(2).permute(2, 0, 1)  # (HW)NC
        x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)
        x = x + pos[:, None, :].to(x.dtype)
        x, _ = F.multi_head_attention_forward(
            query=x, key=x, value=x, embed_dim_to_check=x.shape[-1],
            num_heads=pool.num_heads, q_proj_weight=pool.q_proj.weight,
            k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight,
            in_proj_weight=None,
            in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.,
            out_proj_weight=pool.c_proj.weight, out_proj_bias=pool.c_proj.bias,
            use_separate_proj_weight=True, training=self.training, need_weights=False)
        return x[0]

    def _forward_vit(self, x, pooled: bool):
        v = self.visual
        ph, pw = v.patch_size
        pad_h, pad_w = (-x.shape[2]) % ph, (-x.shape[3]) % pw
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = v.conv1(x)
        B, C, gh, gw = x.shape
        x = x.flatten(2).transpose(1, 2)
        cls = v.class_embedding.view(1, 1, -1).expand(B, -1, -1).to(x.dtype)
        x = torch.cat([cls, x], dim=1)
        pos = v.positional_embedding
        if (gh, gw) != tuple(v.grid_size):
            pos = _resize_pos(pos, v.grid_size, (gh, gw))
        x = x + pos.to(x.dtype)
        x = v.ln_pre(x)  # patch dropout is skipped: dense outputs need every patch
        x = v.transformer(x)
        embedding = None
        if pooled:
            embedding, _ = v._pool(x)
            if v.proj is not None:
                embedding = embedding @ v.proj
        tokens = v.ln_post(x[:, 1:]) if v.attn_pool is None else x[:, 1:]
        fmap = tokens.transpose(1, 2).reshape(B, C, gh, gw)
        maps = [layer(fmap) for layer in self.pyramid]
        return maps, embedding

    # ------------------------------------------------------------------ text space
    def project_to_text(self, x: torch.Tensor) -> torch.Tensor:
        """Map last-map features ``(B, C, H, W)`` (or ``(..., C)``) into the text space.

        ViT: the tower's ``proj`` (maps are already ``ln_post``-normalised). timm trunks: the
        trunk's pre-logits norm (if any) per location, then open_clip's image head. ResNet:
        the attention pool's value and output projections (MaskCLIP-style dense projection).
        """
        if x.dim() not in (2, 4):
            raise ValueError(f'expected (B, C, H, W) maps or (N, C) vectors, got {tuple(x.shape)}')
        spatial = x.dim() == 4
        y = x if spatial else x[:, :, None, None]
        y_nhwc = None
        if self.kind == 'timm':
            trunk = self.visual.trunk
            head_norm = getattr(getattr(trunk, 'head', None), 'norm', None)
            if head_norm is not None and not isinstance(head_norm, nn.Identity):
                y = head_norm(y)  # e.g. ConvNeXt: LayerNorm2d after pooling, applied per location
                y_nhwc = y.permute(0, 2, 3, 1)
            else:
                y_nhwc = y.permute(0, 2, 3, 1)
                norm = getattr(trunk, 'norm', None)  # e.g. Swin: final norm before pooling
                if norm is not None and getattr(trunk, 'output_fmt', 'NCHW') == 'NHWC':
                    y_nhwc = norm(y_nhwc)
            y_nhwc = self.visual.head(y_nhwc)
        elif self.kind == 'vit':
            y_nhwc = y.permute(0, 2, 3, 1)
            if self.visual.proj is not None:
                y_nhwc = y_nhwc @ self.visual.proj
        else:
            pool = self.visual.attnpool
            y_nhwc = pool.c_proj(pool.v_proj(y.permute(0, 2, 3, 1)))
        if spatial:
            return y_nhwc.permute(0, 3, 1, 2).contiguous()
        return y_nhwc[:, 0, 0]


def _resize_pos(pos: torch.Tensor, old_grid, new_grid) -> torch.Tensor:
    """Bicubic resize of a ``(1 + H*W, C)`` positional embedding (class token first)."""
    cls, grid = pos[:1], pos[1:]
    C = grid.shape[-1]
    grid = grid.reshape(1, int(old_grid[0]), int(old_grid[1]), C).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=tuple(int(s) for s in new_grid), mode='bicubic',
                         align_corners=False).to(pos.dtype)
    return torch.cat([cls, grid.permute(0, 2, 3, 1).reshape(-1, C)], dim=0)
