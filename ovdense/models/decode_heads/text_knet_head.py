"""K-Net (mmseg's ``IterativeDecodeHead``) with the text classifier.

In K-Net each class has a kernel: the kernel generate head's ``conv_seg`` weights (K x C x 1 x
1) are the initial class kernels, which the kernel update heads refine stage by stage into
each class's mask logits. With the text classifier the generate head is ``Text<Head>`` (its
``conv_seg`` the cosine classifier) and the initial kernels are the classifier's class
embeddings mapped back to the feature space by a learned D -> C map (initialised to
``scale * projection^T``, so a kernel's response is the class logit up to the feature norm).
The number of kernels is the number of class embeddings: it follows a vocabulary swap, and
no K-way layer is left (mmseg's update heads are class-count agnostic).
"""
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from mmseg.models.decode_heads.knet_head import IterativeDecodeHead

from ...registry import register
from ...utils.cli import ConfigError
from ..text_variants import text_variant_of
from .text_decode_heads import _TEXT_HEADS, text_decode_head


@register('MODELS', scopes=('mmseg',))
class TextIterativeDecodeHead(IterativeDecodeHead):
    """``IterativeDecodeHead`` + text cosine classifier.

    Args:
        text_classifier: the generate head's ``TextCosineClassifier`` settings (or give them
            inside ``kernel_generate_head``); its stock type becomes ``Text<Head>``.
        num_classes: optional, as for any decode head: the generate head's class count
            (checked against the vocabulary).
        Other arguments are ``IterativeDecodeHead``'s.
    """

    def __init__(self, num_stages: int, kernel_generate_head: Dict,
                 kernel_update_head: List[Dict], text_classifier: Optional[Dict] = None,
                 **kwargs):
        generate = dict(kernel_generate_head)
        if 'num_classes' in kwargs:  # a decode head's usual key: the generate head's count
            generate['num_classes'] = kwargs.pop('num_classes')
        if text_classifier is not None:
            generate['text_classifier'] = text_classifier
        generate['type'] = _text_head_class(generate['type'])
        super().__init__(num_stages, generate, kernel_update_head, **kwargs)
        classifier = self.kernel_generate_head.conv_seg
        if classifier.background is not None:
            raise ConfigError('TextIterativeDecodeHead: text_classifier.background is not '
                              'supported (K-Net has one kernel per class and no background '
                              'kernel); remove it')
        self.kernel_from_embedding = nn.Linear(classifier.embed_dim, classifier.in_features,
                                               bias=False)

    @property
    def text_classifier(self):
        return self.kernel_generate_head.conv_seg

    def init_weights(self) -> None:
        super().init_weights()
        classifier = self.text_classifier
        with torch.no_grad():
            projection = classifier.projection
            if isinstance(projection, nn.Linear):
                weight = projection.weight.t()
            else:  # identity: features are already in the text space
                weight = torch.eye(classifier.in_features, classifier.embed_dim)
            self.kernel_from_embedding.weight.copy_(weight * classifier.scale)

    def class_kernels(self, batch: int, device: torch.device) -> torch.Tensor:
        """(B, K, C, 1, 1): the class embeddings of this step in the feature space."""
        embeddings = self.text_classifier.class_embeddings(device)  # this step's, or fixed
        kernels = self.kernel_from_embedding(embeddings.to(self.kernel_from_embedding.weight))
        return kernels[None, :, :, None, None].expand(batch, -1, -1, -1, -1)

    def forward(self, inputs):
        generate = self.kernel_generate_head
        feats = generate._forward_feature(inputs)
        sem_seg = generate.cls_seg(feats)  # starts the step's class encoding (joint towers)
        seg_kernels = self.class_kernels(feats.size(0), feats.device)
        stage_segs = [sem_seg]
        for update_head in self.kernel_update_head:
            sem_seg, seg_kernels = update_head(feats, seg_kernels, sem_seg)
            stage_segs.append(self._without_novel_classes(sem_seg))
        return stage_segs if self.training else stage_segs[-1]

    def _without_novel_classes(self, seg: torch.Tensor) -> torch.Tensor:
        """Training with novel classes left out: their kernels' masks get the classifier's
        masking too (they would otherwise be taught as negatives at every stage)."""
        classifier = self.text_classifier
        if not (self.training and classifier.class_embeddings.leaves_classes_out):
            return seg
        return classifier._without_novel_classes(seg.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


# TextDecodeHead(base_type='IterativeDecodeHead') and text_decode_head(IterativeDecodeHead)
# give this class (the generic mixin does not fit a head whose classifier is inside another)
_TEXT_HEADS[IterativeDecodeHead] = TextIterativeDecodeHead


def _text_head_class(head_type) -> type:
    """The text variant of the generate head's type (a registered name or a class)."""
    from mmseg.registry import MODELS
    if isinstance(head_type, type):
        return text_decode_head(head_type)
    return text_variant_of(MODELS, head_type, 'TextIterativeDecodeHead.kernel_generate_head',
                           text_decode_head)
