"""TextI3DHead (ovdense/models/heads/text_i3d_head.py): mmaction's I3DHead with the text
classifier, its size checks, novel classes left out of training with a shared class-embedding
component, a vocabulary swap, and the iCAR image->text projection that makes an inflated
recognizer reproduce the 2D zero-shot scores (skipped without the "action" extra)."""
import pytest
import torch

import ovdense  # noqa: F401
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.optional import require_mmaction

require_mmaction(module_level=True)  # absent: skipped; installed but broken: fails

from ovdense.apis import set_model_vocabulary  # noqa: E402
from ovdense.testing.inputs import action_clips  # noqa: E402
from ovdense.testing.models import build_model  # noqa: E402
from ovdense.utils.cli import ConfigError  # noqa: E402
from ovdense.utils.io import OvdenseFileError  # noqa: E402


VOCAB4 = 'running,jumping,swimming,dancing'


def _head(tmp_path, **kwargs):
    args = dict(in_channels=8, dropout_ratio=0.0, average_clips='prob',
                text_classifier=dict(vocabulary=VOCAB4,
                                     text_tower=tiny_text_tower_cfg(str(tmp_path))))
    args.update(kwargs)
    return build_model('mmaction', dict(type='TextI3DHead', **args))


def test_text_head_keeps_i3d_head_and_checks_sizes(tmp_path):
    head = _head(tmp_path, num_classes=4)
    head.init_weights()
    stock = build_model('mmaction', dict(type='I3DHead', in_channels=8, num_classes=4,
                                         dropout_ratio=0.0))
    assert isinstance(head, type(stock))
    assert [n for n, _ in head.named_parameters() if not n.startswith('fc_cls.')] == [
        n for n, _ in stock.named_parameters() if not n.startswith('fc_cls.')]
    scores = head.eval()(torch.randn(3, 8, 2, 4, 4))
    assert scores.shape == (3, 4)
    assert _head(tmp_path).num_classes == 4  # num_classes may be omitted
    with pytest.raises(ConfigError, match='num_classes=400 but vocabulary.*has 4 classes'):
        _head(tmp_path, num_classes=400)
    with pytest.raises(ConfigError, match='needs text_classifier'):
        build_model('mmaction', dict(type='TextI3DHead', in_channels=8, num_classes=4))
    with pytest.raises(ConfigError, match='text_classifier.out_features is set by the head'):
        _head(tmp_path, text_classifier=dict(vocabulary=VOCAB4, out_features=4,
                                             text_tower=tiny_text_tower_cfg(str(tmp_path))))


def _recognizer_with_shared_embeddings(tmp_path, novel_classes):
    return build_model('mmaction', dict(
        type='WithClassEmbeddings', base_type='Recognizer3D',
        class_embeddings=dict(type='TrainedTowerClassEmbeddings', vocabulary=VOCAB4,
                              novel_classes=novel_classes,
                              text_tower=tiny_text_tower_cfg(str(tmp_path))),
        backbone=dict(type='ICARSwin3D', checkpoint=None, window_size=(2, 2, 2),
                      arch=dict(embed_dims=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1]),
                      text_embed_dims=None, drop_path_rate=0.0),
        cls_head=dict(type='TextI3DHead', in_channels=64, dropout_ratio=0.0,
                      average_clips='prob', text_classifier=dict(scale=20.0)),
        data_preprocessor=dict(type='ActionDataPreprocessor', format_shape='NCTHW')))


def test_novel_classes_are_left_out_of_training_with_a_shared_component(tmp_path):
    """Open-vocabulary action training is said as for detection and segmentation: the
    component's novel_classes; the head scores the whole vocabulary in both modes."""
    from mmaction.structures import ActionDataSample
    from ovdense.engine.hooks import check_dataset_classes
    from ovdense.text.classifier import NOVEL_TRAINING_LOGIT
    model = _recognizer_with_shared_embeddings(tmp_path, ['swimming', 3])  # novel: 2 and 3
    model.init_weights()
    head = model.cls_head
    assert head.fc_cls.class_embeddings is model.class_embeddings
    feats = torch.randn(2, 64, 1, 2, 2)
    model.train()  # the component is the model's, not the head's, child
    train_scores = head(feats)
    assert train_scores.shape == (2, 4) and head.num_classes == 4
    assert (train_scores[:, 2:] == NOVEL_TRAINING_LOGIT).all()
    assert (train_scores[:, :2] > NOVEL_TRAINING_LOGIT).all()
    losses = model.train()(**model.data_preprocessor(action_clips([0, 1]), True), mode='loss')
    assert torch.isfinite(losses['loss_cls'])
    with pytest.raises(ValueError, match="labelled 3 \\('dancing'\\), one of the novel classes"):
        head.loss(feats, [ActionDataSample().set_gt_label(3)] * 2)
    with pytest.raises(ValueError, match='label 7 is not a class id of the 4 classes'):
        head.loss(feats, [ActionDataSample().set_gt_label(7)] * 2)
    head.label_smooth_eps = 0.1
    with pytest.raises(ConfigError, match='use one of label_smooth_eps and novel_classes'):
        head.loss(feats, [ActionDataSample().set_gt_label(0)] * 2)
    head.label_smooth_eps = 0.0
    model.eval()
    eval_scores = head(feats)
    assert eval_scores.shape == (2, 4) and torch.isfinite(eval_scores).all()
    full = tuple(VOCAB4.split(','))
    wrapped = torch.nn.Module()
    wrapped.module = model
    for what in ('training', 'test'):  # one class list in every phase
        assert check_dataset_classes(wrapped, type('D', (), {'metainfo': {'classes': full}})(),
                                     what).names == full
    # an outside swap (tools/test.py --vocab)
    set_model_vocabulary(model, 'flying,falling,sleeping')
    assert head(feats).shape == (2, 3) and head.num_classes == 3
    with pytest.raises(ConfigError, match='train_classes was replaced by novel_classes'):
        _head(tmp_path, train_classes=[0, 1])


def _tiny_icar_2d_file(tmp_path, text_dim=32):
    """A 2D iCAR-style image tower (tiny Swin, window 2) with its image->text projection,
    saved in mmdet layout; returns (model, path)."""
    from ovdense.models.backbones import ICARSwin
    torch.manual_seed(0)
    model = ICARSwin(arch=dict(embed_dims=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2),
                               window_size=2), pretrain_img_size=64, text_embed_dims=text_dim,
                     proj_bias=False)
    model.init_weights()
    path = str(tmp_path / 'icar_2d.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in model.state_dict().items()}},
               path)
    return model.eval(), path


def test_inflated_recognizer_reproduces_2d_zero_shot_scores_on_a_static_clip(tmp_path):
    """iCAR 2D checkpoint -> ICARSwin3D + TextI3DHead(projection_checkpoint): a clip of one
    repeated frame scores exactly like the image tower's embedding against the class names."""
    model2d, path = _tiny_icar_2d_file(tmp_path)
    recognizer = build_model('mmaction', dict(
        type='Recognizer3D',
        backbone=dict(type='ICARSwin3D', checkpoint=path, window_size=(2, 2, 2),
                      text_embed_dims=None, drop_path_rate=0.0),
        cls_head=dict(type='TextI3DHead', in_channels=128, dropout_ratio=0.0,
                      average_clips=None, projection_checkpoint=path,
                      text_classifier=dict(vocabulary=VOCAB4,
                                           text_tower=tiny_text_tower_cfg(str(tmp_path)))),
        data_preprocessor=dict(type='ActionDataPreprocessor', format_shape='NCTHW')))
    recognizer.init_weights()
    recognizer.eval()
    frame = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    clip = frame[:, :, None].repeat(1, 1, 8, 1, 1)
    head = recognizer.cls_head
    with torch.no_grad():
        scores = head(recognizer.backbone(clip))
        image = torch.nn.functional.normalize(model2d.encode_image(frame), dim=-1)
        expected = 20.0 * image @ head.fc_cls.class_embeddings().t()
    torch.testing.assert_close(scores, expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(OvdenseFileError, match='is 128 -> 32 but TextI3DHead projects 64 -> 32'):
        _head(tmp_path, in_channels=64, projection_checkpoint=path).init_weights()
