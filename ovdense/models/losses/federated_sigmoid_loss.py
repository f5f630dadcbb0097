"""Sigmoid classification loss for long-tailed vocabularies (LVIS), as Detic trains.

Per class binary cross-entropy instead of a softmax; with ``federated=True`` each step only
scores the classes present in the batch plus negatives sampled by frequency^power, because
LVIS annotations are not exhaustive for absent classes.
"""
import contextlib
import json
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import register


def lvis_class_frequencies(ann_file: str) -> torch.Tensor:
    """Per-class image counts, in category-id order, from an LVIS annotation file."""
    with open(ann_file, encoding='utf-8') as f:
        categories = sorted(json.load(f)['categories'], key=lambda c: c['id'])
    missing = [c['name'] for c in categories if 'image_count' not in c]
    if missing:
        raise ValueError(f'{ann_file!r}: categories without image_count: {missing[:5]}')
    return torch.tensor([float(c['image_count']) for c in categories])


@register('MODELS', scopes=('mmdet',))
class FederatedSigmoidLoss(nn.Module):
    """Sigmoid CE over K classes of (N, K+1) scores; the last column (background) is unused.

    Args:
        class_frequencies_file: LVIS annotation file whose ``image_count`` weights negative
            sampling; None samples negatives uniformly.
        federated: score only positives + ``num_sample_classes`` sampled classes per step.
        frequency_power: sampling weight = image_count ** power (Detic: 0.5).
    """
    custom_cls_channels = True
    custom_activation = True
    custom_accuracy = True

    def __init__(self, class_frequencies_file: Optional[str] = None, federated: bool = True,
                 num_sample_classes: int = 50, frequency_power: float = 0.5,
                 loss_weight: float = 1.0):
        super().__init__()
        self.federated = federated
        self.num_sample_classes = num_sample_classes
        self.loss_weight = loss_weight
        weights = None
        if class_frequencies_file is not None:
            weights = lvis_class_frequencies(class_frequencies_file) ** frequency_power
        self.register_buffer('sampling_weights', weights, persistent=False)
        self._pinned_mask: Optional[torch.Tensor] = None

    @property
    def samples_classes(self) -> bool:
        """Whether a training step scores a sampled subset of the classes: a head with a
        jointly trained text tower then encodes only those classes' prompts."""
        return self.federated

    @contextlib.contextmanager
    def pinned_class_mask(self, mask: torch.Tensor):
        """Score exactly ``mask``'s classes in the calls inside: the head sampled them
        before computing the loss, to encode only their prompts."""
        self._pinned_mask = mask
        try:
            yield
        finally:
            self._pinned_mask = None

    def get_cls_channels(self, num_classes: int) -> int:
        return num_classes + 1

    def get_activation(self, cls_score: torch.Tensor) -> torch.Tensor:
        """Per-class sigmoid; the background column scores 0 (it is not a class here)."""
        scores = cls_score.sigmoid()
        if scores.requires_grad:  # sigmoid's backward reads its output: no in-place edit
            return torch.cat([scores[:, :-1], scores.new_zeros(len(scores), 1)], dim=1)
        scores[:, -1] = 0  # in place: no second (N, K + 1) buffer at inference
        return scores

    def get_accuracy(self, cls_score: torch.Tensor, labels: torch.Tensor) -> Dict:
        num_classes = cls_score.shape[1] - 1
        foreground = labels < num_classes
        if not foreground.any():
            return {'acc_fg': cls_score.new_tensor(0.0)}
        predicted = cls_score[foreground, :num_classes].argmax(1)
        return {'acc_fg': (predicted == labels[foreground]).float().mean() * 100}

    def class_mask(self, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
        """1 for the classes scored this step: present ones plus sampled negatives."""
        if self._pinned_mask is not None:
            return self._pinned_mask
        if not (self.federated and self.training):
            return labels.new_ones(num_classes, dtype=torch.float)
        present = labels[labels < num_classes].unique()
        weights = (self.sampling_weights.clone() if self.sampling_weights is not None
                   and len(self.sampling_weights) == num_classes
                   else labels.new_ones(num_classes, dtype=torch.float))
        weights[present] = 0
        mask = labels.new_zeros(num_classes, dtype=torch.float)
        mask[present] = 1
        extra = min(max(self.num_sample_classes - len(present), 0), int((weights > 0).sum()))
        if extra:
            mask[torch.multinomial(weights.to(mask.device), extra, replacement=False)] = 1
        return mask

    def forward(self, cls_score: torch.Tensor, labels: torch.Tensor,
                label_weights: Optional[torch.Tensor] = None, avg_factor=None,
                reduction_override=None) -> torch.Tensor:
        num_classes = cls_score.shape[1] - 1
        if cls_score.numel() == 0:
            return cls_score.sum() * 0
        target = F.one_hot(labels.clamp(max=num_classes), num_classes + 1)[:, :num_classes]
        loss = F.binary_cross_entropy_with_logits(cls_score[:, :num_classes],
                                                  target.float(), reduction='none')
        loss = loss * self.class_mask(labels, num_classes)[None]
        if label_weights is not None:
            loss = loss * label_weights[:, None].float()
        return self.loss_weight * loss.sum() / max(len(cls_score), 1)
