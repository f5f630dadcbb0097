"""DINO whose denoising label queries come from the class embeddings.

mmdet's DINO trains with "contrastive denoising" queries: ground-truth boxes and labels, with
noise, fed to the decoder; each label becomes a query through a K-way ``nn.Embedding``. With
the text classifier that table would be the one per-class parameter of the model: it ties a
checkpoint to one class list and cannot follow a vocabulary swap. :class:`TextDINO` makes a
label query from the label's class embedding (the model's one component, as every decoder
layer's classifier reads it) through a learned ``D -> embed_dims`` projection; noisy labels
are drawn among the classes training scores (never a novel class). Test time is unchanged
(DINO builds no denoising queries there)::

    model = dict(type='TextDINO', ...stock DINO args...,
                 bbox_head=dict(type='TextDINOHead', ..., text_classifier=dict(...)))

or ``dict(type='WithClassEmbeddings', base_type='TextDINO', class_embeddings=..., ...)``.
"""
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmdet.models.detectors import DINO
from mmdet.models.layers.transformer.dino_layers import CdnQueryGenerator

from ...registry import register
from ...text import TextCosineClassifier
from ...text.class_embeddings import ClassEmbeddings
from ...utils.cli import ConfigError


class ClassEmbeddingQueries(nn.Module):
    """``labels -> (..., embed_dims)``: the labels' class embeddings, projected. Stands in for
    the generator's ``nn.Embedding``; reads the component without owning it (the head or the
    model does: one copy in the state dict)."""

    def __init__(self, embeddings: ClassEmbeddings, embed_dims: int):
        super().__init__()
        self.projection = nn.Linear(embeddings.embed_dim, embed_dims)
        self.__dict__['embeddings'] = embeddings  # not a child module

    @property
    def weight(self) -> torch.Tensor:
        # DINO adds label_embedding.weight[0, 0] * 0 to its outputs when a batch has no
        # ground truth, so that the parameter always takes part in the loss (DDP)
        return self.projection.weight

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        weights = self.embeddings(labels.device)  # this step's rows while training
        dtype = self.projection.weight.dtype
        # in the parameters' dtype, as an nn.Embedding gives it under autocast too: DINO
        # copies the queries into a float32 buffer
        return self.projection(weights.to(dtype)[labels]).to(dtype)


class TextCdnQueryGenerator(CdnQueryGenerator):
    """``CdnQueryGenerator`` with :class:`ClassEmbeddingQueries` as its label embedding; its
    class count follows the vocabulary and noisy labels are trained classes only."""

    def __init__(self, embeddings: ClassEmbeddings, **kwargs):
        self.__dict__['_embeddings'] = embeddings
        super().__init__(**kwargs)
        self.label_embedding = ClassEmbeddingQueries(embeddings, self.embed_dims)

    @property
    def num_classes(self) -> int:
        return self._embeddings.num_classes

    @num_classes.setter
    def num_classes(self, value: int) -> None:
        pass  # the stock __init__ assigns the build-time count; the vocabulary's is read

    def generate_dn_label_query(self, gt_labels: torch.Tensor,
                                num_groups: int) -> torch.Tensor:
        # the stock noise (a random class at label_noise_scale / 2 of the positions), drawn
        # among the classes training scores
        labels = gt_labels.repeat(2 * num_groups, 1).view(-1)
        chosen = torch.nonzero(torch.rand_like(labels.float()) <
                               self.label_noise_scale * 0.5).view(-1)
        trained = self._trained_classes().to(labels.device)
        noise = trained[torch.randint(0, len(trained), chosen.shape, device=labels.device)]
        return self.label_embedding(labels.scatter(0, chosen, noise))

    def _trained_classes(self) -> torch.Tensor:
        embeddings = self._embeddings
        if embeddings.leaves_classes_out:
            return embeddings.trained_class_ids()
        return torch.arange(embeddings.num_classes)


@register('MODELS', scopes=('mmdet',))
class TextDINO(DINO):
    """``DINO`` + denoising label queries from the class embeddings of its text head
    (``TextDINOHead``). Arguments are DINO's."""

    def __init__(self, *args, dn_cfg: Optional[Dict] = None, **kwargs):
        stock_dn_cfg = dict(dn_cfg or {})  # DINO fills in three keys of the dict it is given
        super().__init__(*args, dn_cfg=dn_cfg, **kwargs)
        classifier = next((m for m in self.bbox_head.modules()
                           if isinstance(m, TextCosineClassifier)), None)
        if classifier is None:
            raise ConfigError(f'TextDINO: bbox_head {type(self.bbox_head).__name__} has no '
                              'text classifier; use TextDINOHead (or type=DINO for a stock '
                              'head)')
        self.dn_query_generator = TextCdnQueryGenerator(
            classifier.class_embeddings, **stock_dn_cfg, num_classes=self.bbox_head.num_classes,
            embed_dims=self.embed_dims, num_matching_queries=self.num_queries)
