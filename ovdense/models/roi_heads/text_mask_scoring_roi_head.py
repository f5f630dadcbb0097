"""Mask Scoring R-CNN with the text classifier: class-agnostic masks and mask IoU.

mmdet's ``MaskScoringRoIHead`` picks, for each RoI, its class's channel of the mask head and
of the MaskIoU head (``preds[range(n), labels]``). Both are K-way layers that cannot follow an
open vocabulary, and with the class-agnostic mask head that the text classifier needs, the
one-channel predictions are indexed by class labels (``IndexError``). Here both heads have one
channel, and they read every RoI's label as 0; the box head's labels are kept in the results.
"""
from typing import List

from mmdet.models.roi_heads import MaskScoringRoIHead
from mmdet.utils import ConfigType, InstanceList

from ...registry import register
from ...utils.cli import ConfigError
from .text_standard_roi_head import TextStandardRoIHead


@register('MODELS', scopes=('mmdet',))
class TextMaskScoringRoIHead(TextStandardRoIHead, MaskScoringRoIHead):
    """``MaskScoringRoIHead`` for text box heads (and ``TextStandardRoIHead``'s chunked
    scoring): ``mask_head.class_agnostic=True`` is required, the MaskIoU head predicts one IoU
    per RoI (its ``num_classes`` is set to 1)."""

    def __init__(self, mask_iou_head: ConfigType, **kwargs):
        mask_head = kwargs.get('mask_head') or {}
        if not mask_head.get('class_agnostic', False):
            raise ConfigError('TextMaskScoringRoIHead: set mask_head.class_agnostic=True '
                              '(per-class mask channels do not follow the text classifier\'s '
                              'vocabulary)')
        super().__init__(mask_iou_head=dict(mask_iou_head, num_classes=1), **kwargs)

    def mask_loss(self, x, sampling_results: List, bbox_feats, batch_gt_instances):
        saved = [res.pos_gt_labels for res in sampling_results]
        for res in sampling_results:
            res.pos_gt_labels = res.pos_gt_labels.new_zeros(res.pos_gt_labels.shape)
        try:
            return super().mask_loss(x, sampling_results, bbox_feats, batch_gt_instances)
        finally:
            for res, labels in zip(sampling_results, saved):
                res.pos_gt_labels = labels

    def predict_mask(self, x, batch_img_metas: List[dict], results_list: InstanceList,
                     rescale: bool = False) -> InstanceList:
        saved = [res.labels for res in results_list]
        for res in results_list:
            res.labels = res.labels.new_zeros(res.labels.shape)
        try:
            results_list = super().predict_mask(x, batch_img_metas, results_list, rescale)
        finally:
            for res, labels in zip(results_list, saved):
                res.labels = labels
        return results_list
