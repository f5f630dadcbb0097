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
    # mask-classification heads get their own text variant through the same entry point
    from mmseg.models.decode_heads import Mask2FormerHead
    from mmseg.registry import MODELS
    assert text_decode_head(Mask2FormerHead) is MODELS.get('TextMask2FormerHead')
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


def test_heads_that_classify_otherwise_are_refused_in_one_line(tmp_path):
    """Stock heads without a 1x1 conv_seg (PointHead: fc_seg over the coarse K-way
    prediction; Segmenter: LayerNorm over K): one line naming the head, no AttributeError."""
    from ovdense.utils.cli import ConfigError
    text = dict(vocabulary=VOCAB3, text_tower=tiny_text_tower_cfg(str(tmp_path)))
    point = dict(type='TextDecodeHead', base_type='PointHead', in_channels=[8], in_index=[0],
                 channels=8, num_fcs=1, text_classifier=text)
    segmenter = dict(type='TextDecodeHead', base_type='SegmenterMaskTransformerHead',
                     in_channels=8, channels=8, num_layers=1, num_heads=2, embed_dims=8,
                     text_classifier=text)
    for cfg, name in ((point, 'TextPointHead'), (segmenter, 'TextSegmenterMaskTransformerHead')):
        with pytest.raises(ConfigError, match=f'^{name}: the stock head has no 1x1 conv_seg'):
            build_model('mmseg', cfg)



def test_per_class_loss_weights_must_match_the_vocabulary(tmp_path):
    """A loss's class_weight (e.g. mmseg's Cityscapes configs: 19 weights) with another
    vocabulary size, at build time and after a vocabulary swap: one line, not torch's
    'weight tensor should be defined either for all or no classes'."""
    from ovdense.apis import set_model_vocabulary
    from ovdense.utils.cli import ConfigError
    text = dict(vocabulary=VOCAB3, text_tower=tiny_text_tower_cfg(str(tmp_path)))
    fcn = dict(type='TextFCNHead', in_channels=8, channels=16, num_convs=1, text_classifier=text)
    weighted = dict(type='CrossEntropyLoss', loss_weight=1.0, class_weight=[1.0, 2.0, 0.5])
    with pytest.raises(ConfigError, match=r'class_weight has 19 entries.*3 output columns'):
        build_model('mmseg', dict(fcn, loss_decode=dict(weighted, class_weight=[1.0] * 19)))
    head = build_model('mmseg', dict(fcn, loss_decode=weighted))
    samples = seg_inputs(3, size=(8, 8))['data_samples']
    for sample in samples:  # mmseg's class-weighted mean cannot take ignored pixels
        sample.gt_sem_seg.data %= 3
    losses = head.loss_by_feat(head([torch.randn(2, 8, 8, 8)]), samples)
    assert torch.isfinite(losses['loss_ce'])
    set_model_vocabulary(head, 'cat,dog,bird,fish')
    with pytest.raises(ConfigError, match=r'class_weight has 3 entries.*4 output columns'):
        head.loss_by_feat(head([torch.randn(2, 8, 8, 8)]), samples)


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


def _knet(tmp_path, vocabulary=VOCAB3, **text):
    """mmseg's stock K-Net (FCN kernel generate head, 3 kernel update stages) at test size,
    its decode head renamed TextIterativeDecodeHead with a text_classifier."""
    from mmengine.model import revert_sync_batchnorm

    from ovdense.testing.configs import installed_config
    cfg = installed_config('mmseg', 'knet/knet-s3_r50-d8_fcn_8xb2-adamw-80k_ade20k-512x512.py')
    model = cfg.model
    model.pretrained = None
    model.backbone.depth = 18
    model.auxiliary_head = None
    model.data_preprocessor.size = (32, 32)
    head = model.decode_head
    head.type = 'TextIterativeDecodeHead'
    head.text_classifier = dict(vocabulary=vocabulary,
                                text_tower=tiny_text_tower_cfg(str(tmp_path)), **text)
    head.kernel_generate_head.update(in_channels=512, channels=16, num_classes=None)
    for stage in head.kernel_update_head:
        stage.update(in_channels=16, out_channels=16, feedforward_channels=32, num_heads=2)
        stage.kernel_updator_cfg.update(in_channels=16, feat_channels=16, out_channels=16)
    built = revert_sync_batchnorm(build_model('mmseg', model))
    built.init_weights()
    return built


def test_knet_kernels_are_the_class_embeddings(tmp_path):
    """K-Net: the kernel generate head's conv_seg is the text classifier and the initial class
    kernels come from its class embeddings (scale x projection^T at initialisation): the model
    trains (every parameter gets a gradient at every stage), predicts, and the number of
    kernels follows a vocabulary swap (no K-way layer left)."""
    from ovdense.apis import set_model_vocabulary
    from ovdense.apis.vocabulary import text_classifiers
    from ovdense.models.decode_heads import TextIterativeDecodeHead
    from ovdense.testing.configs import backward_of_losses
    model = _knet(tmp_path)
    head = model.decode_head
    assert isinstance(head, TextIterativeDecodeHead) and len(text_classifiers(model)) == 1
    classifier = head.text_classifier
    with torch.no_grad():
        expected = classifier.scale * classifier.class_embeddings.fixed(torch.device('cpu')) \
            @ classifier.projection.weight
        assert torch.allclose(head.class_kernels(2, torch.device('cpu'))[1, :, :, 0, 0],
                              expected, atol=1e-6)
    model.train()
    data = model.data_preprocessor(seg_inputs(3, size=(32, 32)), True)
    losses = model(**data, mode='loss')
    assert {f'decode.loss_ce.s{i}' for i in range(4)} <= set(losses)  # stage 0 + 3 updates
    assert backward_of_losses(model, losses) == []
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(seg_inputs(3, batch=1, size=(32, 32)), False)
        assert model(**data, mode='predict')[0].seg_logits.data.shape[0] == 3
        set_model_vocabulary(model, VOCAB3 + ',yellow cross')
        assert model(**data, mode='predict')[0].seg_logits.data.shape[0] == 4
    assert not [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d,
                torch.nn.Linear)) and 3 in (getattr(m, 'out_channels', None),
                                            getattr(m, 'out_features', None))]


def test_knet_novel_class_kernels_are_left_out_of_training_at_every_stage(tmp_path):
    from ovdense.text.classifier import NOVEL_TRAINING_LOGIT
    model = _knet(tmp_path, novel_classes=['green square'])
    model.train()
    stages = model.decode_head(model.extract_feat(torch.randn(1, 3, 32, 32)))
    assert len(stages) == 4
    for seg in stages:
        assert bool((seg[:, 2] == NOVEL_TRAINING_LOGIT).all())
        assert not bool((seg[:, :2] == NOVEL_TRAINING_LOGIT).any())


def test_knet_through_text_decode_head_and_bad_input(tmp_path):
    from mmseg.models.decode_heads import IterativeDecodeHead

    from ovdense.models.decode_heads import TextIterativeDecodeHead, text_decode_head
    from ovdense.utils.cli import ConfigError
    assert text_decode_head(IterativeDecodeHead) is TextIterativeDecodeHead
    knet = dict(type='TextDecodeHead', base_type='IterativeDecodeHead', num_stages=1,
                kernel_generate_head=dict(type='FCNHead', in_channels=8, channels=8,
                                          num_convs=1),
                kernel_update_head=[dict(
                    type='KernelUpdateHead', in_channels=8, out_channels=8, num_heads=2,
                    feedforward_channels=16, kernel_updator_cfg=dict(
                        type='KernelUpdator', in_channels=8, feat_channels=8, out_channels=8))])
    text = dict(vocabulary=VOCAB3, text_tower=tiny_text_tower_cfg(str(tmp_path)))
    head = build_model('mmseg', dict(knet, text_classifier=text))
    assert isinstance(head, TextIterativeDecodeHead) and head.num_classes == 3
    # the usual decode-head key is the generate head's class count, checked as there
    assert build_model('mmseg', dict(knet, num_classes=3, text_classifier=text)).num_classes == 3
    with pytest.raises(ValueError, match='vocabulary size mismatch.*num_classes=150'):
        build_model('mmseg', dict(knet, num_classes=150, text_classifier=text))
    with pytest.raises(ConfigError, match='background is not supported'):
        build_model('mmseg', dict(knet, text_classifier=dict(text, background='learned')))
