"""Text decode heads (ovdense/models/decode_heads/text_decode_heads.py): the text classifier on
stock mmseg decode heads (by a Text* type or the generic TextDecodeHead) follows the class
embeddings, the optional learned background column, and refusals of bad settings and
labels."""
import pytest
import torch

import ovdense  # noqa: F401
from ovdense.models.decode_heads import TextUPerHead, text_decode_head
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.inputs import seg_inputs
from ovdense.testing.models import build_model


VOCAB3 = 'red circle,blue star,green square'
STOCK_HEADS = {
    'FCNHead': dict(in_channels=8, in_index=0, channels=16, num_convs=1),
    'UPerHead': dict(in_channels=[8, 16, 32, 64], in_index=[0, 1, 2, 3], channels=16,
                     pool_scales=(1, 2)),
    'ASPPHead': dict(in_channels=64, in_index=3, channels=16, dilations=(1, 2)),
    'SegformerHead': dict(in_channels=[8, 16, 32, 64], in_index=[0, 1, 2, 3], channels=16),
    'PSPHead': dict(in_channels=64, in_index=3, channels=16, pool_scales=(1, 2)),
}


def _features(batch=2, size=16):
    return [torch.randn(batch, c, size // 2 ** i, size // 2 ** i)
            for i, c in enumerate([8, 16, 32, 64])]


@pytest.mark.parametrize('stock', sorted(STOCK_HEADS))
def test_text_classifier_on_stock_head_follows_class_embeddings(stock, tmp_path):
    args = dict(STOCK_HEADS[stock], num_classes=3,
                norm_cfg=dict(type='BN', requires_grad=True))
    text = dict(vocabulary=VOCAB3, text_tower=tiny_text_tower_cfg(str(tmp_path)))
    head_type = (dict(type=f'Text{stock}') if stock != 'PSPHead'
                 else dict(type='TextDecodeHead', base_type='PSPHead'))  # the generic route
    head = build_model('mmseg', dict(args, **head_type, text_classifier=text))
    head.init_weights()
    reference = build_model('mmseg', dict(args, type=stock))
    assert type(head).__name__ == f'Text{stock}' and isinstance(head, type(reference))
    assert [n for n, _ in head.named_parameters() if not n.startswith('conv_seg.')] == [
        n for n, _ in reference.named_parameters() if not n.startswith('conv_seg.')]
    head.eval()

    # Pixel features are one-hot class codes and the projection maps code k onto class k's
    # text embedding: every pixel's argmax must then be the class whose embedding it equals.
    classifier = head.conv_seg
    embeddings = classifier.class_embeddings()  # (3, D), unit norm
    with torch.no_grad():
        classifier.projection.weight.zero_()
        classifier.projection.weight[:, :3] = embeddings.t()
    target = {}

    def one_hot_codes(module, args_):
        b, _, h, w = args_[0].shape
        labels = torch.randint(0, 3, (b, h, w), generator=torch.Generator().manual_seed(1))
        target['labels'] = labels
        codes = torch.zeros_like(args_[0])
        codes.scatter_(1, labels[:, None], 1.0)
        return (codes,)

    classifier.register_forward_pre_hook(one_hot_codes)
    with torch.no_grad():
        logits = head(_features())
    assert logits.shape[:2] == (2, 3) and logits.dim() == 4
    assert torch.equal(logits.argmax(1), target['labels'])
    assert torch.allclose(logits.amax(1), torch.full_like(logits.amax(1), 20.0), atol=1e-3)


def test_background_column_trains_and_is_optional_in_predictions(tmp_path):
    text = dict(vocabulary=VOCAB3, text_tower=tiny_text_tower_cfg(str(tmp_path)),
                background='learned')
    args = dict(type='TextFCNHead', in_channels=8, channels=16, num_convs=1,
                text_classifier=text)
    head = build_model('mmseg', args)  # num_classes comes from the vocabulary
    assert head.num_classes == 3 and head.out_channels == 3 and head.background_index == 3
    logits = head([torch.randn(2, 8, 8, 8)])
    assert logits.shape == (2, 4, 8, 8)
    data = seg_inputs(4, size=(8, 8))  # labels 0..3, 3 = background
    losses = head.loss_by_feat(logits, data['data_samples'])
    losses['loss_ce'].backward()
    assert head.conv_seg.background_embedding.grad.abs().sum() > 0
    metas = [dict(img_shape=(8, 8), pad_shape=(8, 8))]
    assert head.predict_by_feat(logits[:1], metas).shape[1] == 3
    keep = build_model('mmseg', dict(args, predict_background=True))
    assert keep.out_channels == 4 and keep.predict_by_feat(logits[:1], metas).shape[1] == 4
    with pytest.raises(ValueError, match='needs a background column'):
        build_model('mmseg', dict(args, predict_background=True,
                                  text_classifier=dict(text, background=None)))


def test_text_decode_head_for_any_head_and_bad_input(tmp_path):
    from mmseg.models.decode_heads import FCNHead, PSAHead
    assert text_decode_head(FCNHead).__name__ == 'TextFCNHead'
    assert text_decode_head(PSAHead) is text_decode_head(PSAHead)
    assert text_decode_head(TextUPerHead) is TextUPerHead
    with pytest.raises(TypeError, match='not an mmseg decode head'):
        text_decode_head(torch.nn.Conv2d)
    text = dict(vocabulary=VOCAB3, text_tower=tiny_text_tower_cfg(str(tmp_path)))
    fcn = dict(type='TextFCNHead', in_channels=8, channels=16, num_convs=1)
    with pytest.raises(ValueError, match='vocabulary size mismatch.*num_classes=150.*3 classes'):
        build_model('mmseg', dict(fcn, num_classes=150, text_classifier=text))
    with pytest.raises(ValueError, match='needs text_classifier'):
        build_model('mmseg', dict(fcn, num_classes=3))
    with pytest.raises(ValueError, match='out_channels=1 is not supported'):
        build_model('mmseg', dict(fcn, num_classes=3, out_channels=1, text_classifier=text))
    head = build_model('mmseg', dict(fcn, text_classifier=text))
    logits = head([torch.randn(2, 8, 8, 8)])
    samples = _with_label(seg_inputs(3, size=(8, 8))['data_samples'], 7)
    with pytest.raises(ValueError, match=r'label values \[7\] are outside the vocabulary'):
        head.loss_by_feat(logits, samples)


def _with_label(samples, value):
    samples[0].gt_sem_seg.data[0, 5, 5] = value
    return samples


def test_danet_attention_branches_score_with_the_same_class_embeddings(tmp_path):
    """DANet's position and channel attention branches have their own 1x1 classifiers
    (auxiliary losses): they become text classifiers of the one class-embedding component,
    train, and follow a vocabulary swap with conv_seg."""
    from ovdense.apis import set_model_vocabulary
    from ovdense.testing.configs import parameters_without_gradient
    text = dict(vocabulary=VOCAB3, text_tower=tiny_text_tower_cfg(str(tmp_path)))
    head = build_model('mmseg', dict(type='TextDecodeHead', base_type='DAHead', in_channels=16,
                                     in_index=0, channels=8, pam_channels=4,
                                     norm_cfg=dict(type='BN', requires_grad=True),
                                     text_classifier=text))
    head.init_weights()
    classifiers = [head.conv_seg, head.pam_conv_seg, head.cam_conv_seg]
    assert all(type(c).__name__ == 'TextCosineClassifier' for c in classifiers)
    assert len({id(c.class_embeddings) for c in classifiers}) == 1
    assert not [n for n, m in head.named_modules()
                if isinstance(m, torch.nn.Conv2d) and m.out_channels == 3]
    outputs = head([torch.randn(2, 16, 8, 8)])
    assert [tuple(o.shape) for o in outputs] == [(2, 3, 8, 8)] * 3
    losses = head.loss_by_feat(outputs, seg_inputs(3, size=(8, 8))['data_samples'])
    assert {'pam_cam.loss_ce', 'pam.loss_ce', 'cam.loss_ce'} <= set(losses)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert parameters_without_gradient(head) == []
    set_model_vocabulary(head, VOCAB3 + ',yellow cross')
    assert head.num_classes == 4
    assert [o.shape[1] for o in head([torch.randn(1, 16, 8, 8)])] == [4, 4, 4]
