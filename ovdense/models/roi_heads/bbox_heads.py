"""mmdet's R-CNN box heads with the text cosine classifier as their final classifier.

Everything of the stock head is kept (shared convs/fcs, regression, losses); only ``fc_cls``
is built as ``TextCosineClassifier`` from one key, ``text_classifier`` (through mmdet's own
``cls_predictor_cfg``). A stock config adopts it by renaming the head's ``type``
(``TextShared2FCBBoxHead``, ...) or, for any other box head that builds ``fc_cls`` from
``cls_predictor_cfg`` (``BBoxHead``, ``SCNetBBoxHead``, ...),
``type='TextBBoxHead', base_type='SCNetBBoxHead'``, and adding that key.

At test time the heads threshold the scores before pairing boxes with classes
(:mod:`.postprocess`): the same detections as mmdet's ``multiclass_nms``, without its
N x K expansion of boxes and labels, which dominates inference with a large vocabulary.
"""
import inspect
from typing import Dict, Optional

import torch
from mmdet.models.roi_heads.bbox_heads import (BBoxHead, ConvFCBBoxHead, Shared2FCBBoxHead,
                                               Shared4Conv1FCBBoxHead)
from mmdet.structures.bbox import get_box_tensor, scale_boxes
from mmengine.structures import InstanceData

from ...registry import register
from ...text import TextCosineClassifier
from ...text.classifier import spec_vocabulary, text_classifier_spec
from ...utils.cli import ConfigError
from ..text_variants import (base_type_builder, defining_class, stock_base, text_variant,
                             without_init_overrides)
from .postprocess import (keep_top_scores, nms_pairs, pair_boxes, scored_pairs,
                          scored_pairs_of_embedded, softmax_rows)

class TextClassifierMixin:
    """Builds ``fc_cls`` from ``text_classifier`` (TextCosineClassifier settings), and
    post-processes test-time scores threshold-first."""

    def __init__(self, *args, text_classifier: Optional[Dict] = None, **kwargs):
        name = type(self).__name__
        if 'cls_predictor_cfg' in kwargs:
            raise ConfigError(f'{name} builds its classifier from text_classifier=...; remove '
                              'cls_predictor_cfg from the config')
        spec = text_classifier_spec(text_classifier, name)
        vocab, shared = spec_vocabulary(spec)
        if shared:  # the model's class list: the head's class count follows it
            kwargs['num_classes'] = len(vocab)
        kwargs['cls_predictor_cfg'] = dict(spec, type='TextCosineClassifier')
        super().__init__(*args, **kwargs)
        if not isinstance(self._modules.get('fc_cls'), TextCosineClassifier):
            raise ConfigError(
                f'{name}: the stock head does not build fc_cls from cls_predictor_cfg (it makes '
                'its own classifier, or none), so the text classifier cannot replace it; '
                'not supported')
        # The stock Normal(0.01) override of fc_cls would also hit a trainable text tower.
        self.init_cfg = without_init_overrides(self.init_cfg, {'fc_cls'})
        # A loss that scores a sampled subset of classes per step (federated) needs only
        # those classes' prompts encoded by a jointly trained tower: see loss().
        self.fc_cls.encode_scored_classes_only = bool(
            getattr(self.loss_cls, 'samples_classes', False))

    def loss(self, cls_score, bbox_pred, rois, labels, *args, **kwargs) -> dict:
        """mmdet's loss; with a class-sampling loss and a jointly trained tower, the classes
        are sampled first and only their logit columns are computed through the tower (the
        other columns carry no gradient, so loss and gradients are unchanged; the logged
        accuracy sees the other columns as of their last encoding)."""
        if not (self.training and self.fc_cls.encode_scored_classes_only
                and self.fc_cls.train_text_tower):
            return super().loss(cls_score, bbox_pred, rois, labels, *args, **kwargs)
        mask = self.loss_cls.class_mask(labels, self.num_classes)
        cls_score = self.fc_cls.score_classes(cls_score, mask.nonzero().squeeze(1))
        with self.loss_cls.pinned_class_mask(mask):
            return super().loss(cls_score, bbox_pred, rois, labels, *args, **kwargs)

    def _predict_by_feat_single(self, roi, cls_score, bbox_pred, img_meta, rescale=False,
                                rcnn_test_cfg=None) -> InstanceData:
        """mmdet's results (same boxes, scores, labels and order), thresholding first.

        Without a test_cfg (aug test: raw boxes and all scores), without box regression, or
        for a head with its own post-processing, mmdet's own path runs.
        """
        if (not self._stock_postprocessing() or rcnn_test_cfg is None or roi.shape[0] == 0
                or cls_score is None or bbox_pred is None or torch.onnx.is_in_onnx_export()):
            return super()._predict_by_feat_single(roi, cls_score, bbox_pred, img_meta,
                                                   rescale, rcnn_test_cfg)
        pairs = scored_pairs(cls_score, self._score_activation(), rcnn_test_cfg.score_thr)
        return self._results_of_pairs(pairs, roi, bbox_pred, img_meta, rescale, rcnn_test_cfg)

    def _stock_postprocessing(self) -> bool:
        """Whether the stock head post-processes with ``BBoxHead._predict_by_feat_single``
        (which :meth:`_results_of_pairs` restates threshold-first)."""
        base = stock_base(type(self), TextClassifierMixin)
        return defining_class(base, '_predict_by_feat_single') is BBoxHead

    def scores_embedded(self) -> bool:
        """Whether :meth:`forward_embedded` + :meth:`predict_embedded` give this head's
        detections: its post-processing is ``BBoxHead``'s and its forward returns
        ``fc_cls``'s output untouched (``BBoxHead`` / ``ConvFCBBoxHead``)."""
        forward = defining_class(stock_base(type(self), TextClassifierMixin), 'forward')
        return self._stock_postprocessing() and forward in (BBoxHead, ConvFCBBoxHead)

    def forward_embedded(self, x: torch.Tensor):
        """``(embedded (N, D) RoI features, box deltas)``: the stock forward, in which the
        classifier's first step (:meth:`TextCosineClassifier.embed`) stands in for the
        classifier, so that the N x K logits are made later, a chunk of RoIs at a time."""
        classifier = self._modules['fc_cls']
        self._modules['fc_cls'] = _Embedder(classifier)
        try:
            return self.forward(x)
        finally:
            self._modules['fc_cls'] = classifier

    def predict_embedded(self, roi, embedded, bbox_pred, img_meta, rescale, rcnn_test_cfg
                         ) -> InstanceData:
        """:meth:`_predict_by_feat_single` from the classifier's embedded RoI features
        (:meth:`forward_embedded`): the logits are made, activated
        and thresholded a chunk of RoIs at a time, so the N x K logits never exist at once.
        ``rcnn_test_cfg`` and ``bbox_pred`` are required (see ``TextStandardRoIHead``)."""
        pairs = self.scored_pairs_of_embedded(embedded, rcnn_test_cfg.score_thr)
        return self._results_of_pairs(pairs, roi, bbox_pred, img_meta, rescale, rcnn_test_cfg)

    def scored_pairs_of_embedded(self, embedded, score_thr: float):
        """(RoI index, label, score) of every pair above ``score_thr``, from embedded RoI
        features: logits made, activated and thresholded a chunk of RoIs at a time."""
        return scored_pairs_of_embedded(self.fc_cls, embedded, self._score_activation(),
                                        score_thr)

    def _results_of_pairs(self, pairs, roi, bbox_pred, img_meta, rescale, rcnn_test_cfg
                          ) -> InstanceData:
        """Detections from the (RoI, label, score) pairs above the threshold: optional
        ``nms_pre`` cap, the pairs' boxes, NMS, ``max_per_img``."""
        roi_index, labels, scores = keep_top_scores(rcnn_test_cfg.get('nms_pre'), *pairs)
        boxes, box_dim = self._decoded_boxes(roi, bbox_pred, img_meta, rescale)
        dets, labels = nms_pairs(pair_boxes(boxes, roi_index, labels, box_dim), scores,
                                 labels, rcnn_test_cfg.nms, rcnn_test_cfg.max_per_img)
        results = InstanceData()
        results.bboxes = dets[:, :-1]
        results.scores = dets[:, -1]
        results.labels = labels
        return results

    def _decoded_boxes(self, roi, bbox_pred, img_meta, rescale):
        """``(boxes, box_dim)``: every RoI's box(es) decoded, clipped and rescaled exactly as
        in mmdet's ``BBoxHead._predict_by_feat_single``; (N, box_dim) when class-agnostic,
        else (N, K * box_dim)."""
        num_classes = 1 if self.reg_class_agnostic else self.num_classes
        rois = roi.repeat_interleave(num_classes, dim=0)
        boxes = self.bbox_coder.decode(rois[..., 1:],
                                       bbox_pred.view(-1, self.bbox_coder.encode_size),
                                       max_shape=img_meta['img_shape'])
        if rescale and boxes.size(0) > 0:
            boxes = scale_boxes(boxes, [1 / s for s in img_meta['scale_factor']])
        boxes = get_box_tensor(boxes)
        return boxes.view(roi.shape[0], num_classes * boxes.size(-1)), boxes.size(-1)

    def _score_activation(self):
        """What mmdet applies to the logits: the loss's own activation, or softmax."""
        if self.custom_cls_channels:
            return self.loss_cls.get_activation
        return softmax_rows


class _Embedder(torch.nn.Module):
    """What a box head's forward calls in place of its classifier in
    :meth:`TextClassifierMixin.forward_embedded`."""

    def __init__(self, classifier):
        super().__init__()
        self.embed = classifier.embed

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.embed(features)


@register('MODELS', scopes=('mmdet',))
class TextConvFCBBoxHead(TextClassifierMixin, ConvFCBBoxHead):
    """``ConvFCBBoxHead`` + text cosine classifier."""


@register('MODELS', scopes=('mmdet',))
class TextShared2FCBBoxHead(TextClassifierMixin, Shared2FCBBoxHead):
    """``Shared2FCBBoxHead`` (Faster/Mask/Cascade R-CNN) + text cosine classifier."""


@register('MODELS', scopes=('mmdet',))
class TextShared4Conv1FCBBoxHead(TextClassifierMixin, Shared4Conv1FCBBoxHead):
    """``Shared4Conv1FCBBoxHead`` (HTC, GN+WS recipes) + text cosine classifier."""


_TEXT_HEADS: Dict[type, type] = {ConvFCBBoxHead: TextConvFCBBoxHead,
                                 Shared2FCBBoxHead: TextShared2FCBBoxHead,
                                 Shared4Conv1FCBBoxHead: TextShared4Conv1FCBBoxHead}


def text_bbox_head(base: type) -> type:
    """The ``Text*`` class of any mmdet R-CNN box head class (made once, then reused)."""
    if not (isinstance(base, type) and issubclass(base, BBoxHead)):
        raise TypeError(f'{base!r} is not an mmdet R-CNN box head (a BBoxHead subclass)')
    parameters = inspect.signature(base.__init__).parameters.values()
    if not any(p.name == 'cls_predictor_cfg' or p.kind is p.VAR_KEYWORD for p in parameters):
        raise TypeError(f'{base.__name__} makes its own classifier (it takes no '
                        'cls_predictor_cfg); not supported')
    return text_variant(TextClassifierMixin, base, _TEXT_HEADS, __name__)


TextBBoxHead = base_type_builder('TextBBoxHead', 'mmdet', text_bbox_head)  # noqa: N816
