"""OpenCLIPVisionBackbone on tiny random open_clip models (ConvNeXt, ResNet, ViT and Swin
towers; CPU, 64 px inputs): its pooled output equals open_clip's ``encode_image``, its feature
pyramid, text projection, frozen and trainable modes, and loading errors."""
import pytest
import torch

from ovdense import checkpoints as ck
from ovdense.models.backbones import OpenCLIPVisionBackbone
from ovdense.testing.backbones import (PROJ_DIM, open_clip_model, random_image,
                                       register_open_clip)


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
    x = random_image()
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
            other = backbone(random_image(96, 80, b=1))
        assert len(other) == 4 and other[0].shape[-2:] == (24, 20)


def test_open_clip_vision_backbone_trainable_and_errors(tmp_path):
    config_path = register_open_clip(tmp_path, 'ovdense-bb-oc-rn-train',
                                     OPEN_CLIP_TOWERS['rn'][0])
    backbone = OpenCLIPVisionBackbone(model_name=config_path, frozen=False, out_indices=(2, 3))
    backbone.train()
    assert backbone.visual.training
    maps = backbone(random_image())
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
