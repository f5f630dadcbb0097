"""A ``StandardRoIHead`` that lets a text box head score RoIs chunk by chunk at test time.

mmdet's RoI heads take the box head's full (N, K + 1) logits from its forward and then
post-process them. With an open vocabulary (K = 21,000 and 1000 RoIs: 84 MB of float32) that
matrix dominates test-time memory, and writing it out and reading it back costs more than the
product itself. ``TextStandardRoIHead`` asks the box head for the embedded (N, D) RoI
features instead and lets it make, activate and threshold the logits a chunk of RoIs at a
time (``TextClassifierMixin.predict_embedded``): the same detections, with memory that grows
with K x D only.

Training, test-time augmentation (no ``rcnn_test_cfg``), box heads without the text
classifier and heads without box regression run ``StandardRoIHead`` unchanged. Cascade and
HTC heads average or arg-max the logits of several stages, so they keep the full logits (and
still threshold before pairing boxes with classes).
"""
from typing import List, Tuple

import torch
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList

from ...registry import register
from .bbox_heads import TextClassifierMixin


@register('MODELS', scopes=('mmdet',))
class TextStandardRoIHead(StandardRoIHead):
    """``StandardRoIHead`` (Faster / Mask R-CNN) whose text box head scores RoIs in chunks
    at test time. A config adopts it by renaming ``roi_head.type``."""

    def predict_bbox(self, x: Tuple[torch.Tensor], batch_img_metas: List[dict],
                     rpn_results_list: InstanceList, rcnn_test_cfg: ConfigType,
                     rescale: bool = False) -> InstanceList:
        proposals = [res.bboxes for res in rpn_results_list]
        if not self._scores_in_chunks(rcnn_test_cfg, proposals):
            return super().predict_bbox(x, batch_img_metas, rpn_results_list, rcnn_test_cfg,
                                        rescale)
        rois = bbox2roi(proposals)
        # StandardRoIHead._bbox_forward, with the box head stopping at embedded features
        bbox_feats = self.bbox_roi_extractor(x[:self.bbox_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            bbox_feats = self.shared_head(bbox_feats)
        embedded, bbox_pred = self.bbox_head.forward_embedded(bbox_feats)  # (N, D), not logits
        per_image = tuple(len(p) for p in proposals)
        return [self.bbox_head.predict_embedded(*image, rescale, rcnn_test_cfg)
                for image in zip(rois.split(per_image), embedded.split(per_image),
                                 bbox_pred.split(per_image), batch_img_metas)]

    def _scores_in_chunks(self, rcnn_test_cfg, proposals) -> bool:
        return (rcnn_test_cfg is not None and not torch.is_grad_enabled()
                and not self.training and isinstance(self.bbox_head, TextClassifierMixin)
                and self.bbox_head.scores_embedded()
                and self.bbox_head.with_cls and self.bbox_head.with_reg
                and sum(len(p) for p in proposals) > 0
                and not torch.onnx.is_in_onnx_export())
