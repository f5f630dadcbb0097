"""ICARSwin (2D) on tiny random models (CPU, 64 px inputs): the iCAR, open_clip, Microsoft
and converted checkpoint layouts, presets, frozen stages, checkpointing, and loading errors.

Reference implementations: open_clip's ``encode_image`` (timm Swin trunk), timm's Swin, and
mmdet's ``SwinTransformer`` loading a Microsoft-layout file through its own ``swin_converter``.
"""
import pytest
import torch
from mmdet.models.backbones import SwinTransformer
from mmengine.config import ConfigDict

from ovdense import checkpoints as ck
from ovdense.models.backbones import ICARSwin, OpenCLIPVisionBackbone
from ovdense.testing.backbones import (PROJ_DIM, TINY_MM_SWIN, assert_clean_load, icar_file,
                                       open_clip_model, random_image, register_open_clip)


def test_icar_layout_matches_reference(tmp_path):
    model, proj, path = icar_file(tmp_path)
    backbone = ICARSwin.from_checkpoint(path).eval()
    assert backbone.text_projection.weight.shape == (PROJ_DIM, 128)
    assert_clean_load(backbone, new=('norm0', 'norm1', 'norm2'))
    x = random_image()
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
    x = random_image()
    with torch.no_grad():
        torch.testing.assert_close(backbone.encode_image(x), model.encode_image(x),
                                   atol=1e-5, rtol=1e-5)


def test_microsoft_layout_equals_mmdet_swin_with_its_converter(tmp_path):
    torch.manual_seed(0)
    mm = SwinTransformer(**TINY_MM_SWIN, drop_path_rate=0.)
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
    ref = SwinTransformer(**TINY_MM_SWIN, drop_path_rate=0., convert_weights=True,
                          init_cfg=ConfigDict(type='Pretrained', checkpoint=path))
    ref.init_weights()
    with torch.no_grad():  # mmdet has no place for Microsoft's final 'norm'; ovdense maps it
        ref.norm3.weight.copy_(ms['norm.weight'])
        ref.norm3.bias.copy_(ms['norm.bias'])
    ref.eval()
    backbone = ICARSwin(arch=None, checkpoint=path, single_window_shift=True, **TINY_MM_SWIN,
                        drop_path_rate=0.)
    backbone.init_weights()
    backbone.eval()
    assert backbone.text_projection is None
    assert_clean_load(backbone, new=('norm0', 'norm1', 'norm2'))
    for x in (random_image(), random_image(70, 100, b=1)):  # also non-square, not a multiple of 32
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
    x = random_image()
    with torch.no_grad():
        for u, v in zip(a(x), b(x)):
            assert torch.equal(u, v)


def test_presets_and_arbitrary_sizes():
    backbone = ICARSwin(arch=dict(TINY_MM_SWIN), out_indices=(1, 2, 3)).eval()
    with torch.no_grad():
        outs = backbone(random_image(70, 100, b=1))
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
    backbone = ICARSwin(arch=dict(TINY_MM_SWIN), frozen_stages=1, text_embed_dims=PROJ_DIM)
    backbone.train()
    frozen = {n for n, p in backbone.named_parameters() if not p.requires_grad}
    expected = {n for n, _ in backbone.named_parameters()
                if n.startswith(('patch_embed.', 'stages.0.', 'norm0.'))}
    assert frozen == expected
    assert not backbone.stages[0].training and backbone.stages[1].training
    backbone = ICARSwin(arch=dict(TINY_MM_SWIN), text_embed_dims=PROJ_DIM,
                        freeze_text_projection=True)
    assert {n for n, p in backbone.named_parameters() if not p.requires_grad} == {
        'text_projection.weight'}


def test_with_cp_gives_same_outputs_and_grads(tmp_path):
    _, _, path = icar_file(tmp_path)
    outs, grads = [], []
    for with_cp in (False, True):
        backbone = ICARSwin.from_checkpoint(path, with_cp=with_cp, drop_path_rate=0.)
        backbone.train()
        out = backbone(random_image())
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
    backbone = ICARSwin(arch=dict(TINY_MM_SWIN), checkpoint=bad, text_embed_dims=None,
                        proj_bias=False)
    with pytest.raises(ck.OvdenseFileError, match='truncated'):
        backbone.init_weights()
    with pytest.raises(ValueError, match='Pretrained'):
        ICARSwin(arch=dict(TINY_MM_SWIN), init_cfg=dict(type='Kaiming'))


def test_registered_in_mmdet_and_mmseg():
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG

    assert DET.get('ICARSwin') is ICARSwin and SEG.get('ICARSwin') is ICARSwin
    assert DET.get('OpenCLIPVisionBackbone') is OpenCLIPVisionBackbone
    assert SEG.get('OpenCLIPVisionBackbone') is OpenCLIPVisionBackbone
    built = DET.build(dict(type='ICARSwin', _scope_='mmdet', arch=dict(TINY_MM_SWIN),
                           out_indices=(3,)))
    assert isinstance(built, ICARSwin)
