"""Text bbox heads (ovdense/models/roi_heads/bbox_heads.py): a stock head adopts the text
classifier with its type and one key; the forward stopped before the logits (the chunked
scoring API), an image without RoIs, and joint training with a class-sampling loss that
encodes only the scored classes."""
import pytest
import torch

import ovdense  # noqa: F401
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.models import text_bbox_head


def test_stock_head_adopts_text_classifier_with_type_and_one_key(tmp_path):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    stock = dict(type='Shared2FCBBoxHead', in_channels=8, fc_out_channels=16, roi_feat_size=7,
                 num_classes=3, reg_class_agnostic=True)
    head = MODELS.build(dict(stock, type='TextShared2FCBBoxHead', text_classifier=dict(
        vocabulary='red circle,blue star,green square',
        text_tower=tiny_text_tower_cfg(str(tmp_path)))))
    reference = MODELS.build(stock)
    assert type(head.fc_cls).__name__ == 'TextCosineClassifier'
    assert [n for n, _ in head.shared_fcs.named_parameters()] == [
        n for n, _ in reference.shared_fcs.named_parameters()]
    cls_score, bbox_pred = head.eval()(torch.randn(5, 8, 7, 7))
    assert cls_score.shape == (5, 4) and bbox_pred.shape == (5, 4)
    with pytest.raises(ValueError, match='expects 81 outputs but vocabulary'):
        MODELS.build(dict(stock, type='TextShared2FCBBoxHead', num_classes=80,
                          text_classifier=dict(vocabulary='a,b,c',
                                               text_tower=tiny_text_tower_cfg(str(tmp_path)))))


def test_any_box_head_built_from_cls_predictor_cfg_and_one_line_refusals(tmp_path):
    """TextBBoxHead(base_type=...) for any BBoxHead whose fc_cls comes from mmdet's
    cls_predictor_cfg; heads that make their own classifier are refused in one line; a head
    with its own post-processing keeps it (no threshold-first or chunked scoring)."""
    from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    from ovdense.models.roi_heads import text_bbox_head as text_variant
    from ovdense.utils.cli import ConfigError
    init_default_scope('mmdet')
    text = dict(vocabulary='red circle,blue star,green square',
                text_tower=tiny_text_tower_cfg(str(tmp_path)))
    plain = MODELS.build(dict(type='TextBBoxHead', base_type='BBoxHead', in_channels=8,
                              roi_feat_size=7, num_classes=3, reg_class_agnostic=True,
                              with_avg_pool=True, text_classifier=text))
    assert type(plain).__name__ == 'TextBBoxHead' and plain.scores_embedded()
    cls_score, _ = plain.eval()(torch.randn(5, 8, 7, 7))
    assert cls_score.shape == (5, 4)
    scnet = MODELS.build(dict(type='TextBBoxHead', base_type='SCNetBBoxHead', in_channels=8,
                              fc_out_channels=16, roi_feat_size=7, num_classes=3,
                              num_shared_fcs=2, text_classifier=text))
    # BBoxHead's post-processing (threshold-first), but its own forward: no chunked scoring
    assert scnet._stock_postprocessing() and not scnet.scores_embedded()
    assert MODELS.get('TextBBoxHead')  # and the convenience types are the same classes
    assert text_variant(MODELS.get('Shared2FCBBoxHead')) is MODELS.get('TextShared2FCBBoxHead')
    for base_type, extra in (('SABLHead', dict(in_channels=8)),
                             ('DoubleConvFCBBoxHead', dict(in_channels=8, conv_out_channels=8,
                                                           fc_out_channels=8, num_convs=1,
                                                           num_fcs=1)),
                             ('DIIHead', dict(in_channels=8, num_ffn_fcs=2, num_cls_fcs=1,
                                              num_reg_fcs=1, feedforward_channels=16,
                                              dynamic_conv_cfg=dict(
                                                  type='DynamicConv', in_channels=8,
                                                  feat_channels=4, out_channels=8,
                                                  input_feat_shape=7)))):
        with pytest.raises(ConfigError, match=f'{base_type}.*makes its own classifier'):
            MODELS.build(dict(type='TextBBoxHead', base_type=base_type, num_classes=3,
                              text_classifier=text, **extra))

    class OwnPostprocessing(ConvFCBBoxHead):
        def _predict_by_feat_single(self, *args, **kwargs):
            return super()._predict_by_feat_single(*args, **kwargs)

    own = text_variant(OwnPostprocessing)(num_shared_fcs=1, in_channels=8, fc_out_channels=8,
                                          roi_feat_size=7, num_classes=3, text_classifier=text)
    assert not own._stock_postprocessing() and not own.scores_embedded()


def test_chunked_scoring_of_an_image_without_rois(tmp_path):
    from mmengine.config import ConfigDict
    head = text_bbox_head(tmp_path, 7, True)
    cfg = ConfigDict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5), max_per_img=10)
    with torch.no_grad():
        results = head.predict_embedded(torch.zeros(0, 5), torch.zeros(0, head.fc_cls.embed_dim),
                                        torch.zeros(0, 4), dict(img_shape=(90, 100)), False, cfg)
    assert results.bboxes.shape == (0, 4) and results.scores.shape == results.labels.shape == (0,)


def test_forward_embedded_is_the_forward_stopped_before_the_logits(tmp_path):
    """The explicit chunked-scoring API: the box head's forward up to the embedded RoI
    features, then the logits from them; the classifier's own forward is unchanged."""
    head = text_bbox_head(tmp_path, 7, True)
    classifier = head.fc_cls
    features = torch.randn(3, 8, 7, 7)  # RoI features
    with torch.no_grad():
        embedded, deltas = head.forward_embedded(features)
        logits, stock_deltas = head(features)
    assert head.fc_cls is classifier
    assert embedded.shape == (3, classifier.embed_dim)
    torch.testing.assert_close(deltas, stock_deltas, rtol=0, atol=0)
    weights = classifier.inference_weights(embedded)
    torch.testing.assert_close(classifier.logits_of_embedded(embedded, weights), logits,
                               rtol=0, atol=0)
    with pytest.raises(RuntimeError):  # a failing forward still puts the classifier back
        head.forward_embedded(torch.randn(3, 5, 7, 7))
    assert head.fc_cls is classifier


def test_federated_joint_training_encodes_only_the_scored_classes(tmp_path):
    """With a class-sampling loss the tower encodes the scored classes only; the loss and
    every gradient are those of encoding all classes (the other columns get no gradient)."""
    import copy

    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    num_classes = 12
    torch.manual_seed(0)
    sampled = MODELS.build(dict(
        type='TextShared2FCBBoxHead', in_channels=8, fc_out_channels=16, roi_feat_size=7,
        num_classes=num_classes, reg_class_agnostic=True,
        loss_cls=dict(type='FederatedSigmoidLoss', num_sample_classes=5),
        text_classifier=dict(vocabulary=[f'class {i}' for i in range(num_classes)],
                             text_tower=tiny_text_tower_cfg(str(tmp_path)),
                             prompts=dict(templates='single', use_descriptions=False),
                             train_text_tower=True)))
    sampled.init_weights()
    everything = copy.deepcopy(sampled)
    everything.fc_cls.encode_scored_classes_only = False
    assert sampled.fc_cls.encode_scored_classes_only
    feats, rois = torch.randn(20, 8, 7, 7), torch.rand(20, 5) * 30
    labels = torch.tensor([0, 3, 3, 7] + [num_classes] * 16)
    bbox_targets, bbox_weights = torch.randn(20, 4), (labels < num_classes)[:, None].float()

    def step(head):
        encoded = []  # prompts run through the tower with gradients
        head.fc_cls.class_embeddings.tower.encoder.register_forward_pre_hook(
            lambda module, args: encoded.append(args[0].shape[0])
            if torch.is_grad_enabled() else None)
        head.train()
        cls_score, bbox_pred = head(feats)
        torch.manual_seed(1)  # the same sampled negative classes
        losses = head.loss(cls_score, bbox_pred, rois, labels, torch.ones(20), bbox_targets,
                           bbox_weights)
        (losses['loss_cls'] + losses['loss_bbox']).backward()
        grads = {n: p.grad for n, p in head.named_parameters() if p.grad is not None}
        return losses, grads, sum(encoded)

    losses, grads, encoded = step(sampled)
    reference_losses, reference_grads, reference_encoded = step(everything)
    assert (encoded, reference_encoded) == (5, num_classes)  # 3 present + 2 sampled
    for key in ('loss_cls', 'loss_bbox'):
        torch.testing.assert_close(losses[key], reference_losses[key])
    assert set(grads) == set(reference_grads)
    assert any(n.startswith('fc_cls.own_embeddings.tower') for n in grads)
    for name, grad in reference_grads.items():  # float32 sums in another order (threads)
        torch.testing.assert_close(grads[name], grad, atol=1e-5, rtol=1e-4,
                                   msg=lambda m, name=name: f'{name}: {m}')
