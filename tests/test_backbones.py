"""ICARSwin / OpenCLIPVisionBackbone / ICARSwin3D on tiny random models (CPU, 64 px inputs).

Reference implementations: open_clip's ``encode_image`` (timm Swin trunk), timm's Swin, and
mmdet's ``SwinTransformer`` loading a Microsoft-layout file through its own ``swin_converter``.
"""
import json

import pytest
import torch

import open_clip

from mmdet.models.backbones import SwinTransformer  # noqa: E402
from mmengine.config import ConfigDict  # noqa: E402
from timm.models import register_model  # noqa: E402
from timm.models.convnext import ConvNeXt  # noqa: E402
from timm.models.swin_transformer import SwinTransformer as TimmSwin  # noqa: E402

from ovdense import checkpoints as ck  # noqa: E402
from ovdense.models.backbones import ICARSwin, OpenCLIPVisionBackbone  # noqa: E402
from ovdense.testing.optional import require_mmaction  # noqa: E402

TINY_TIMM = dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=2,
                 patch_size=4)
TINY = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=2)
PROJ_DIM = 12
TEXT_CFG = {'context_length': 8, 'vocab_size': 64, 'width': 16, 'heads': 2, 'layers': 1}


def _timm_kwargs(kwargs):
    return {k: v for k, v in kwargs.items()
            if k not in ('pretrained_cfg', 'pretrained_cfg_overlay', 'cache_dir')}


def _with_cfg(model):
    model.pretrained_cfg = model.default_cfg = {}  # what timm's builder would attach
    return model


@register_model
def ovdense_bb_test_swin(pretrained=False, **kwargs):
    return _with_cfg(TimmSwin(img_size=64, **TINY_TIMM, **_timm_kwargs(kwargs)))


@register_model
def ovdense_bb_test_convnext(pretrained=False, **kwargs):
    return _with_cfg(ConvNeXt(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64), ls_init_value=0.5,
                              **_timm_kwargs(kwargs)))


def register_open_clip(tmp_path, name, vision_cfg, embed_dim=PROJ_DIM):
    path = tmp_path / f'{name}.json'
    path.write_text(json.dumps({'embed_dim': embed_dim, 'vision_cfg': vision_cfg,
                                'text_cfg': TEXT_CFG}))
    open_clip.add_model_config(str(path))
    return str(path)


def open_clip_model(name, seed=0):
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None).eval()
    with torch.no_grad():  # BatchNorm statistics away from their identity defaults
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def image(h=64, w=64, b=2, seed=1):
    return torch.randn(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def icar_file(tmp_path, seed=0):
    """An iCAR checkpoint built from a random timm Swin; returns (timm model, projector, path)."""
    torch.manual_seed(seed)
    model = TimmSwin(img_size=64, num_classes=0, **TINY_TIMM).eval()
    proj = torch.randn(PROJ_DIM, 128)
    state = {f'visual_model.{k}': v for k, v in
             ck.swin_timm_to_microsoft(model.state_dict()).items()}
    state['visual_model.projector.weight'] = proj
    state['sentence_model.projector.weight'] = torch.randn(PROJ_DIM, 8)
    path = str(tmp_path / f'icar_{seed}.pth')
    torch.save({'model': state}, path)
    return model, proj, path


def assert_clean_load(backbone, new=()):
    report = backbone.load_report
    assert report.missing == [] and report.unexpected == [], report
    assert sorted({k.split('.')[0] for k in report.new_modules}) == sorted(new)


# ---------------------------------------------------------------------------- ICARSwin 2D

def test_icar_layout_matches_reference(tmp_path):
    model, proj, path = icar_file(tmp_path)
    backbone = ICARSwin.from_checkpoint(path).eval()
    assert backbone.text_projection.weight.shape == (PROJ_DIM, 128)
    assert_clean_load(backbone, new=('norm0', 'norm1', 'norm2'))
    x = image()
    with torch.no_grad():
        feats = model.forward_features(x)  # NHWC, after the final norm
        ref = feats.mean(dim=(1, 2)) @ proj.t()
        outs = backbone(x)
        emb = backbone.pool_and_project(outs)
    assert [o.shape[1:] for o in outs] == [(16, 16, 16), (32, 8, 8), (64, 4, 4), (128, 2, 2)]
    torch.testing.assert_close(outs[3], feats.permute(0, 3, 1, 2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(emb, ref, atol=1e-5, rtol=1e-5)
    # region / pixel features into the text space
    dense = backbone.project_to_text(outs[3])
    assert dense.shape == (2, PROJ_DIM, 2, 2)
    torch.testing.assert_close(dense.mean(dim=(2, 3)), ref, atol=1e-5, rtol=1e-5)


def test_open_clip_layout_matches_encode_image(tmp_path):
    register_open_clip(tmp_path, 'ovdense-bb-oc-swin',
                       {'timm_model_name': 'ovdense_bb_test_swin', 'timm_pool': 'avg',
                        'timm_proj': 'linear', 'image_size': 64})
    model = open_clip_model('ovdense-bb-oc-swin')
    path = str(tmp_path / 'oc.pth')
    torch.save({'epoch': 1, 'state_dict': {'module.' + k: v
                                           for k, v in model.state_dict().items()}}, path)
    backbone = ICARSwin(arch='auto', text_embed_dims='auto',
                        init_cfg=dict(type='Pretrained', checkpoint=path))
    backbone.init_weights()
    backbone.eval()
    assert_clean_load(backbone, new=('norm0', 'norm1', 'norm2'))
    x = image()
    with torch.no_grad():
        torch.testing.assert_close(backbone.encode_image(x), model.encode_image(x),
                                   atol=1e-5, rtol=1e-5)


def test_microsoft_layout_equals_mmdet_swin_with_its_converter(tmp_path):
    torch.manual_seed(0)
    mm = SwinTransformer(**TINY, drop_path_rate=0.)
    mm.init_weights()
    with torch.no_grad():
        for p in mm.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    ms = ck.swin_mmdet_to_microsoft(mm.state_dict(), final_norm='norm')
    ms['head.weight'], ms['head.bias'] = torch.randn(10, 128), torch.randn(10)
    ms['layers.0.blocks.1.attn_mask'] = torch.zeros(64, 4, 4)
    path = str(tmp_path / 'swin_ms.pth')
    torch.save({'model': ms}, path)

    # the reference: mmdet's own loader + swin_converter
    ref = SwinTransformer(**TINY, drop_path_rate=0., convert_weights=True,
                          init_cfg=ConfigDict(type='Pretrained', checkpoint=path))
    ref.init_weights()
    with torch.no_grad():  # mmdet has no place for Microsoft's final 'norm'; ovdense maps it
        ref.norm3.weight.copy_(ms['norm.weight'])
        ref.norm3.bias.copy_(ms['norm.bias'])
    ref.eval()
    backbone = ICARSwin(arch=None, checkpoint=path, single_window_shift=True, **TINY,
                        drop_path_rate=0.)
    backbone.init_weights()
    backbone.eval()
    assert backbone.text_projection is None
    assert_clean_load(backbone, new=('norm0', 'norm1', 'norm2'))
    for x in (image(), image(70, 100, b=1)):  # also non-square, not a multiple of 32
        with torch.no_grad():
            for a, b in zip(backbone(x), ref(x)):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_converted_file_loads_identically(tmp_path):
    _, _, path = icar_file(tmp_path)
    dst = str(tmp_path / 'converted.pth')
    ck.convert_file(path, dst)
    a = ICARSwin.from_checkpoint(path).eval()
    b = ICARSwin.from_checkpoint(dst).eval()
    assert_clean_load(b, new=('norm0', 'norm1', 'norm2'))
    x = image()
    with torch.no_grad():
        for u, v in zip(a(x), b(x)):
            assert torch.equal(u, v)


def test_presets_and_arbitrary_sizes():
    backbone = ICARSwin(arch=dict(TINY), out_indices=(1, 2, 3)).eval()
    with torch.no_grad():
        outs = backbone(image(70, 100, b=1))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 9, 13), (1, 64, 5, 7), (1, 128, 3, 4)]
    assert backbone.out_channels == [32, 64, 128]
    base = ICARSwin(arch='base')
    assert (base.num_features, base.stages[2].blocks[0].attn.window_size) == (
        [128, 256, 512, 1024], 7)
    assert ICARSwin(arch='large', depths=(1, 1, 1, 1)).stages[0].blocks[0].attn.window_size == 12
    with pytest.raises(ValueError, match='unknown Swin arch'):
        ICARSwin(arch='huge')
    with pytest.raises(ValueError, match="arch='auto'"):
        ICARSwin(arch='auto')


def test_frozen_stages_freeze_exactly_those(tmp_path):
    backbone = ICARSwin(arch=dict(TINY), frozen_stages=1, text_embed_dims=PROJ_DIM)
    backbone.train()
    frozen = {n for n, p in backbone.named_parameters() if not p.requires_grad}
    expected = {n for n, _ in backbone.named_parameters()
                if n.startswith(('patch_embed.', 'stages.0.', 'norm0.'))}
    assert frozen == expected
    assert not backbone.stages[0].training and backbone.stages[1].training
    backbone = ICARSwin(arch=dict(TINY), text_embed_dims=PROJ_DIM, freeze_text_projection=True)
    assert {n for n, p in backbone.named_parameters() if not p.requires_grad} == {
        'text_projection.weight'}


def test_with_cp_gives_same_outputs_and_grads(tmp_path):
    _, _, path = icar_file(tmp_path)
    outs, grads = [], []
    for with_cp in (False, True):
        backbone = ICARSwin.from_checkpoint(path, with_cp=with_cp, drop_path_rate=0.)
        backbone.train()
        out = backbone(image())
        sum(o.square().mean() for o in out).backward()
        outs.append([o.detach() for o in out])
        grads.append({n: p.grad.clone() for n, p in backbone.named_parameters()
                      if p.grad is not None})
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], atol=1e-6, rtol=1e-5)


def test_swin_b_checkpoint_into_swin_t_names_key_and_shapes(tmp_path):
    # a (partial) Swin-B file in Microsoft layout; enough for the shape check
    state = {'patch_embed.proj.weight': torch.zeros(128, 3, 4, 4),
             'patch_embed.proj.bias': torch.zeros(128),
             'layers.0.blocks.0.attn.relative_position_bias_table': torch.zeros(169, 4),
             'layers.0.downsample.reduction.weight': torch.zeros(256, 512),
             'layers.0.downsample.norm.weight': torch.zeros(512)}
    path = str(tmp_path / 'swin_b.pth')
    torch.save({'model': state}, path)
    backbone = ICARSwin(arch='tiny', checkpoint=path, text_embed_dims=None)
    with pytest.raises(ck.CheckpointShapeError) as err:
        backbone.init_weights()
    msg = str(err.value)
    assert 'patch_embed.projection.weight: checkpoint (128, 3, 4, 4) vs model (96, 3, 4, 4)' in msg
    assert ('stages.0.blocks.0.attn.w_msa.relative_position_bias_table: checkpoint (169, 4) '
            'vs model (169, 3)') in msg
    assert 'embed_dims=128' in msg


def test_window_size_change_resizes_bias_table(tmp_path):
    _, _, path = icar_file(tmp_path)
    backbone = ICARSwin(arch='auto', checkpoint=path, window_size=4)
    backbone.init_weights()
    assert backbone.load_report.resized and backbone.load_report.missing == []


def test_bad_checkpoints_give_clear_errors(tmp_path):
    path = str(tmp_path / 'junk.pth')
    torch.save({'encoder.weight': torch.zeros(1)}, path)
    with pytest.raises(ck.CheckpointLayoutError, match='recognised layouts'):
        ICARSwin(arch='auto', checkpoint=path)
    _, _, good = icar_file(tmp_path)
    with open(good, 'rb') as f:
        data = f.read()
    bad = str(tmp_path / 'truncated.pth')
    with open(bad, 'wb') as f:
        f.write(data[:len(data) // 3])
    backbone = ICARSwin(arch=dict(TINY), checkpoint=bad, text_embed_dims=None,
                        proj_bias=False)
    with pytest.raises(ck.OvdenseFileError, match='truncated'):
        backbone.init_weights()
    with pytest.raises(ValueError, match='Pretrained'):
        ICARSwin(arch=dict(TINY), init_cfg=dict(type='Kaiming'))


def test_registered_in_mmdet_and_mmseg():
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG

    assert DET.get('ICARSwin') is ICARSwin and SEG.get('ICARSwin') is ICARSwin
    assert DET.get('OpenCLIPVisionBackbone') is OpenCLIPVisionBackbone
    assert SEG.get('OpenCLIPVisionBackbone') is OpenCLIPVisionBackbone
    built = DET.build(dict(type='ICARSwin', _scope_='mmdet', arch=dict(TINY), out_indices=(3,)))
    assert isinstance(built, ICARSwin)


# ---------------------------------------------------------------------------- open_clip towers

OPEN_CLIP_TOWERS = {
    'convnext': ({'timm_model_name': 'ovdense_bb_test_convnext', 'timm_pool': '',
                  'timm_proj': 'linear', 'image_size': 64},
                 [(8, 16), (16, 8), (32, 4), (64, 2)]),
    'rn': ({'image_size': 64, 'layers': [1, 1, 1, 1], 'width': 8, 'head_width': 8},
           [(32, 16), (64, 8), (128, 4), (256, 2)]),
    'vit': ({'image_size': 64, 'layers': 2, 'width': 32, 'patch_size': 16, 'head_width': 16},
            [(8, 16), (16, 8), (32, 4), (32, 2)]),
    'swin': ({'timm_model_name': 'ovdense_bb_test_swin', 'timm_pool': 'avg',
              'timm_proj': 'linear', 'image_size': 64},
             [(16, 16), (32, 8), (64, 4), (128, 2)]),
}


@pytest.mark.parametrize('tower', sorted(OPEN_CLIP_TOWERS))
def test_open_clip_vision_backbone_matches_encode_image(tmp_path, tower):
    vision_cfg, shapes = OPEN_CLIP_TOWERS[tower]
    name = f'ovdense-bb-oc-{tower}'
    config_path = register_open_clip(tmp_path, name, vision_cfg)
    model = open_clip_model(name)
    ckpt = str(tmp_path / f'{tower}.pth')
    torch.save(model.state_dict(), ckpt)
    # by JSON path (not relying on the registration) and frozen by default
    backbone = OpenCLIPVisionBackbone(model_name=config_path, checkpoint=ckpt)
    backbone.init_weights()
    backbone.train()
    assert backbone.load_report.missing == [] and backbone.load_report.unexpected == []
    assert not backbone.visual.training
    assert all(not p.requires_grad for p in backbone.visual.parameters())
    if tower == 'vit':
        assert all(p.requires_grad for p in backbone.pyramid.parameters())
    x = image()
    with torch.no_grad():
        maps, pooled = backbone.forward_features(x)
        ref = model.encode_image(x)
    torch.testing.assert_close(pooled, ref, atol=1e-5, rtol=1e-5)
    assert [(m.shape[1], m.shape[2]) for m in maps] == shapes
    assert backbone.out_channels == [c for c, _ in shapes]
    with torch.no_grad():
        dense = backbone.project_to_text(maps[-1])
        vec = backbone.project_to_text(maps[-1].mean(dim=(2, 3)))
    assert dense.shape == (2, PROJ_DIM, shapes[-1][1], shapes[-1][1])
    assert vec.shape == (2, PROJ_DIM)
    if tower != 'swin':  # timm Swin needs its configured input size
        with torch.no_grad():
            other = backbone(image(96, 80, b=1))
        assert len(other) == 4 and other[0].shape[-2:] == (24, 20)


def test_open_clip_vision_backbone_trainable_and_errors(tmp_path):
    config_path = register_open_clip(tmp_path, 'ovdense-bb-oc-rn-train',
                                     OPEN_CLIP_TOWERS['rn'][0])
    backbone = OpenCLIPVisionBackbone(model_name=config_path, frozen=False, out_indices=(2, 3))
    backbone.train()
    assert backbone.visual.training
    maps = backbone(image())
    assert len(maps) == 2
    sum(m.sum() for m in maps).backward()
    # what the maps pass through trains; the image-embedding head (attention pool), which
    # they do not use, is frozen rather than left without gradient
    trainable = {n for n, p in backbone.named_parameters() if p.requires_grad}
    assert trainable == {n for n, p in backbone.named_parameters() if p.grad is not None}
    assert {n for n in dict(backbone.named_parameters()) if n not in trainable} == {
        n for n in dict(backbone.named_parameters()) if '.attnpool.' in n}
    with pytest.raises(ValueError, match='unknown open_clip model'):
        OpenCLIPVisionBackbone(model_name='no-such-model-xyz')
    ckpt = str(tmp_path / 'not_open_clip.pth')
    torch.save({'layers.0.weight': torch.zeros(1)}, ckpt)
    backbone = OpenCLIPVisionBackbone(model_name=config_path, checkpoint=ckpt)
    with pytest.raises(ck.CheckpointLayoutError, match="no 'visual"):
        backbone.init_weights()


# ---------------------------------------------------------------------------- Video Swin

@pytest.mark.parametrize('inflate', ['center', 'average'])
def test_static_clip_matches_2d_per_frame(tmp_path, inflate):
    require_mmaction()
    from ovdense.models.backbones import ICARSwin3D
    _, _, path = icar_file(tmp_path)
    model2d = ICARSwin.from_checkpoint(path).eval()
    # temporal patch 2, 8 frames -> depth 4, temporal window 2: no temporal padding, and the
    # second block of each stage shifts in time as well (see video_swin.py for why this holds)
    model3d = ICARSwin3D(checkpoint=path, inflate=inflate, window_size=(2, 2, 2),
                         text_embed_dims='auto',
                         patch_size=(2, 4, 4), out_indices=(0, 1, 2, 3), drop_path_rate=0.)
    model3d.init_weights()
    assert model3d.eval() is model3d and not model3d.training
    report = model3d.load_report
    assert report.missing == [] and report.unexpected == []
    assert sorted({k.split('.')[0] for k in report.new_modules}) == ['norm0', 'norm1', 'norm2']
    frame = image(b=1)
    clip = frame[:, :, None].repeat(1, 1, 8, 1, 1)
    with torch.no_grad():
        outs2d = model2d(frame)
        outs3d = model3d(clip)
        video_emb = model3d.encode_video(clip)
        image_emb = model2d.encode_image(frame)
    for o2, o3 in zip(outs2d, outs3d):
        assert o3.shape[2] == 4
        for d in range(o3.shape[2]):
            torch.testing.assert_close(o3[:, :, d], o2, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(video_emb, image_emb, atol=2e-5, rtol=1e-4)


def test_video_backbone_registered_and_builds_from_path(tmp_path):
    require_mmaction()
    from ovdense.models.backbones import ICARSwin3D
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')  # not the scope an earlier test left behind

    _, _, path = icar_file(tmp_path)
    model = MODELS.build(dict(type='ICARSwin3D', checkpoint=path, window_size=(2, 2, 2)))
    model.init_weights()
    assert isinstance(model, ICARSwin3D)
    assert model.patch_embed.proj.weight.shape == (16, 3, 2, 4, 4)
    assert model.text_projection is None  # by default the head's classifier projects
    with_projection = MODELS.build(dict(type='ICARSwin3D', checkpoint=path,
                                        window_size=(2, 2, 2), text_embed_dims='auto'))
    assert with_projection.text_projection.weight.shape == (PROJ_DIM, 128)
    table = model.layers[0].blocks[0].attn.relative_position_bias_table
    assert table.shape == (3 * 9, 1)
    with pytest.raises(ValueError, match='inflate'):
        ICARSwin3D(checkpoint=path, inflate='sideways')
