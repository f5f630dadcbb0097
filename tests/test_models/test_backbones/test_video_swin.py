"""ICARSwin3D (Video Swin) inflated from a tiny random 2D iCAR checkpoint (CPU, 64 px
frames): a static clip gives the 2D tower's per-frame outputs, and the backbone builds from a
path through mmaction's registry (skipped without the "action" extra)."""
import pytest
import torch

from ovdense.models.backbones import ICARSwin
from ovdense.testing.backbones import PROJ_DIM, icar_file, random_image
from ovdense.testing.optional import require_mmaction


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
    frame = random_image(b=1)
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
