"""Checkpoint layouts (ovdense/checkpoints.py): detection, conversion and loading errors. The
converter tool: tests/test_tools/test_convert_checkpoint.py.

Every checkpoint is a small random model written into tmp_path; nothing is downloaded.
"""
import json

import pytest
import torch

import open_clip
from timm.models import register_model
from timm.models.swin_transformer import SwinTransformer as TimmSwin

from ovdense import checkpoints as ck
from ovdense.testing.backbones import PROJ_DIM, TINY_TIMM_SWIN, icar_state, timm_swin
from ovdense.testing.backbones import write_checkpoint as write
from ovdense.utils.io import OvdenseFileError


@register_model
def ovdense_ck_test_swin(pretrained=False, **kwargs):
    kwargs = {k: v for k, v in kwargs.items()
              if k not in ('pretrained_cfg', 'pretrained_cfg_overlay', 'cache_dir')}
    model = TimmSwin(img_size=64, **TINY_TIMM_SWIN, **kwargs)
    model.pretrained_cfg = model.default_cfg = {}  # what timm's builder would attach
    return model


def test_detect_layouts(tmp_path):
    _, icar = icar_state()
    assert ck.detect_layout(icar) == 'icar'
    timm_sd = timm_swin().state_dict()
    assert ck.detect_layout(timm_sd) == 'swin'
    assert ck.swin_naming(timm_sd) == 'timm'
    ms = {'model': ck.swin_timm_to_microsoft(timm_sd)}
    assert ck.detect_layout(ms) == 'swin'
    assert ck.swin_naming(ck.unwrap_state_dict(ms)) == 'microsoft'
    conv = ck.convert(icar)
    assert ck.detect_layout(conv) == 'ovdense'
    mm = {'state_dict': {'backbone.' + k: v for k, v in conv['backbone'].items()},
          'meta': {'epoch': 1}}
    assert ck.detect_layout(mm) == 'mmdet'
    oc = {'module.visual.trunk.' + k: v for k, v in timm_sd.items()}
    assert ck.detect_layout({'state_dict': oc}) == 'open_clip'


def test_timm_and_microsoft_naming_convert_identically():
    timm_sd = timm_swin().state_dict()
    a = ck.convert(timm_sd)
    b = ck.convert({'model': ck.swin_timm_to_microsoft(timm_sd)})
    assert a['source_naming'] == 'timm' and b['source_naming'] == 'microsoft'
    assert a['backbone'].keys() == b['backbone'].keys()
    for k in a['backbone']:
        assert torch.equal(a['backbone'][k], b['backbone'][k]), k
    assert a['backbone_arch'] == dict(embed_dims=16, depths=[2, 2, 2, 2],
                                      num_heads=[1, 2, 4, 8], window_size=2, patch_size=4,
                                      mlp_ratio=4, qkv_bias=True, patch_norm=True,
                                      use_abs_pos_embed=False)
    assert 'norm3.weight' in a['backbone']
    assert not any(k.endswith(('relative_position_index', 'attn_mask')) for k in a['backbone'])


def test_mmdet_microsoft_round_trip():
    from mmdet.models.backbones import SwinTransformer

    torch.manual_seed(0)
    model = SwinTransformer(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8),
                            window_size=2)
    sd = {k: v for k, v in model.state_dict().items() if 'relative_position_index' not in k}
    ms = ck.swin_mmdet_to_microsoft(sd, final_norm='keep')
    back, dropped = ck.swin_microsoft_to_mmdet(ms)
    assert dropped == []
    assert back.keys() == sd.keys()
    for k in sd:
        assert torch.equal(back[k], sd[k]), k


def test_icar_conversion_layout(tmp_path):
    _, icar = icar_state()
    conv = ck.convert(icar, source=str(tmp_path / 'icar.pth'))
    assert conv['ovdense_format'] == ck.FORMAT and conv['format_version'] == 1
    assert conv['source_layout'] == 'icar' and conv['source_naming'] == 'microsoft'
    assert conv['source_file'] == 'icar.pth'
    assert conv['text_tower_layout'] == 'icar'
    src = icar['model']
    text_keys = {k for k in src if not k.startswith('visual_model.')}
    assert set(conv['text_tower']) == text_keys
    for k in text_keys:
        assert torch.equal(conv['text_tower'][k], src[k])
    assert torch.equal(conv['text_projection']['weight'], src['visual_model.projector.weight'])
    assert set(conv['text_projection']) == {'weight'}
    assert all(k.startswith(('patch_embed.', 'stages.', 'norm3.')) for k in conv['backbone'])


def test_open_clip_conversion_keeps_text_tower(tmp_path):
    cfg = {'embed_dim': PROJ_DIM,
           'vision_cfg': {'timm_model_name': 'ovdense_ck_test_swin', 'timm_pool': 'avg',
                          'timm_proj': 'linear', 'image_size': 64},
           'text_cfg': {'context_length': 8, 'vocab_size': 64, 'width': 16, 'heads': 2,
                        'layers': 1}}
    path = tmp_path / 'ovdense-ck-oc-swin.json'
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(str(path))
    torch.manual_seed(0)
    model = open_clip.create_model('ovdense-ck-oc-swin', pretrained=None)
    sd = model.state_dict()
    conv = ck.convert({'state_dict': {'module.' + k: v for k, v in sd.items()}})
    assert conv['source_layout'] == 'open_clip' and conv['source_naming'] == 'timm'
    text_keys = {k for k in sd if not k.startswith('visual.')}
    assert set(conv['text_tower']) == text_keys and 'text_projection' in text_keys
    for k in text_keys:
        assert torch.equal(conv['text_tower'][k], sd[k])
    assert torch.equal(conv['text_projection']['weight'], sd['visual.head.proj.weight'])


def test_unknown_layout_lists_recognised_layouts(tmp_path):
    path = write(tmp_path / 'weird.pth', {'encoder.weight': torch.zeros(2, 2)})
    with pytest.raises(ck.CheckpointLayoutError) as err:
        ck.load_converted(path)
    msg = str(err.value)
    for name in ('icar', 'open_clip', 'swin', 'mmdet', 'ovdense', 'encoder.weight', path):
        assert name in msg


def test_truncated_and_missing_files(tmp_path):
    _, icar = icar_state()
    path = write(tmp_path / 'icar.pth', icar)
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(OvdenseFileError, match='truncated'):
        ck.load_converted(path)
    with pytest.raises(FileNotFoundError, match='not found'):
        ck.load_converted(str(tmp_path / 'nope.pth'))


def test_unsafe_pickle_is_refused(tmp_path):
    path = str(tmp_path / 'unsafe.pth')
    torch.save({'model': {'x': torch.zeros(1)}, 'obj': _Unsafe()}, path)
    with pytest.raises(OvdenseFileError, match='refusing'):
        ck.load_converted(path)


class _Unsafe:
    pass


def test_open_clip_vit_is_not_a_swin(tmp_path):
    state = {'visual.conv1.weight': torch.zeros(8, 3, 16, 16),
             'visual.class_embedding': torch.zeros(8),
             'token_embedding.weight': torch.zeros(4, 8)}
    with pytest.raises(ck.CheckpointLayoutError, match='OpenCLIPVisionBackbone'):
        ck.convert(state)
