"""MMAction2 recognition head whose classifier is the text cosine classifier (iCAR).

:class:`TextI3DHead` is mmaction2's ``I3DHead`` (spatio-temporal average pooling, dropout, one
classifier over the clip feature) with the final ``fc_cls`` built as
:class:`~ovdense.text.TextCosineClassifier` from one key::

    cls_head=dict(type='TextI3DHead', in_channels=1024, num_classes=400,
                  spatial_type='avg', dropout_ratio=0.5, average_clips='prob',
                  text_classifier=dict(vocabulary='kinetics_400',
                                       text_tower=dict(model='icar-roberta-base', ...),
                                       prompts=dict(templates='action')))

Everything else of the stock head is kept (loss, label smoothing, top-k training accuracy,
multi-clip averaging). Open-vocabulary training: ``train_classes`` makes the classifier score
only those classes while the head is in training mode (the training dataset's labels index
that selection, see ``VocabVideoDataset(classes=...)``) and the whole vocabulary in eval mode
(validation / test). ``set_model_vocabulary`` / ``tools/test.py --vocab`` take precedence.
"""
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmaction.models.heads import I3DHead
from mmengine.logging import MMLogger

from ... import checkpoints as ckpt_lib
from ...registry import register
from ...text import TextCosineClassifier, Vocabulary
from ...text.class_selection import select_classes
from ...text.classifier import head_num_classes, spec_vocabulary, text_classifier_spec
from ...utils.cli import ConfigError
from ...utils.io import OvdenseFileError


@register('MODELS', scopes=('mmaction',))
class TextI3DHead(I3DHead):
    """``I3DHead`` + text cosine classifier.

    Args:
        num_classes: may be omitted (then the vocabulary size); when given it must equal the
            size of ``text_classifier.vocabulary`` (the label ids index the vocabulary).
        in_channels: channels of the backbone's last stage (1024 for Swin-B).
        text_classifier: ``TextCosineClassifier`` arguments except ``in_features`` /
            ``out_features`` (set by the head). Required.
        train_classes: None, or the classes (label ids of the vocabulary and/or names) the
            classifier scores while training; evaluation scores the whole vocabulary.
        projection_checkpoint: an iCAR (or any :mod:`ovdense.checkpoints` layout) file whose
            image->text projection initialises the classifier's projection (``init_weights``),
            so pooled video features land in the pretrained text space from the start.
        check_labels: training raises a clear error when a label is not a class id.
        Other arguments (``spatial_type``, ``dropout_ratio``, ``loss_cls``, ``label_smooth_eps``,
        ``topk``, ``average_clips``, ``init_cfg``) are those of ``I3DHead`` / ``BaseHead``.
    """

    def __init__(self, num_classes: Optional[int] = None, in_channels: Optional[int] = None,
                 text_classifier: Optional[Dict] = None,
                 train_classes: Optional[Union[str, Sequence]] = None,
                 projection_checkpoint: Optional[str] = None,
                 check_labels: bool = True, **kwargs):
        name = type(self).__name__
        if in_channels is None:
            raise ConfigError(f'{name} needs in_channels (the backbone\'s output channels)')
        spec = self._classifier_spec(text_classifier, projection_checkpoint)
        num_classes = head_num_classes(name, spec, num_classes)
        vocab, shared = spec_vocabulary(spec)
        train_vocab = None
        if train_classes is not None:
            if spec.get('embeddings_file') or shared:
                raise ConfigError(f'{name}: train_classes cannot be used with '
                                  'text_classifier.embeddings_file (a file holds embeddings '
                                  'for one class list) or shared class embeddings; use the '
                                  'head\'s own text tower')
            train_vocab = select_classes(vocab, train_classes)[1]
        super().__init__(num_classes, in_channels, **kwargs)
        self.fc_cls = TextCosineClassifier(in_features=in_channels, out_features=num_classes,
                                           **spec)
        if self.fc_cls.background is not None:
            raise ConfigError(f'{name}: action recognition has no background class; remove '
                              'text_classifier.background')
        self._eval_vocab: Vocabulary = vocab
        self._train_vocab: Optional[Vocabulary] = train_vocab
        self._managed: Vocabulary = vocab  # what the head itself last gave the classifier
        self.projection_checkpoint = projection_checkpoint
        self.check_labels = check_labels

    @staticmethod
    def _classifier_spec(text_classifier, projection_checkpoint) -> Dict:
        name = 'TextI3DHead'
        spec = text_classifier_spec(text_classifier, name)
        if projection_checkpoint is not None:
            if spec.get('projection', 'auto') is False:
                raise ConfigError(f'{name}: projection_checkpoint needs the classifier\'s '
                                  'projection; remove text_classifier.projection=False')
            spec['projection'] = True
        return spec

    # -- classes ---------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Classes scored now: follows the classifier (training subset, vocabulary swaps)."""
        classifier = self._modules.get('fc_cls') if '_modules' in self.__dict__ else None
        if isinstance(classifier, TextCosineClassifier):
            return classifier.num_classes
        return self._num_classes

    @num_classes.setter
    def num_classes(self, value: int) -> None:
        self._num_classes = value  # BaseHead and set_model_vocabulary assign it

    @property
    def text_classifier(self) -> TextCosineClassifier:
        return self.fc_cls

    def vocabulary_for(self, training: bool) -> Vocabulary:
        """The classes scored in training / eval mode (after an outside vocabulary swap, the
        swapped one in both)."""
        if self.fc_cls.vocabulary is not self._managed:
            return self.fc_cls.vocabulary
        if training and self._train_vocab is not None:
            return self._train_vocab
        return self._eval_vocab

    def _sync_vocabulary(self) -> None:
        if self._train_vocab is None or self.fc_cls.vocabulary is not self._managed:
            return  # one vocabulary, or swapped from outside (--vocab): leave it alone
        target = self.vocabulary_for(self.training)
        if self.fc_cls.vocabulary is not target:
            self.fc_cls.set_vocabulary(target)
            self._managed = target

    # -- weights ---------------------------------------------------------------------------
    def init_weights(self) -> None:
        # Not I3DHead's normal_init(fc_cls): the classifier initialises itself (projection,
        # and a trainable text tower back to its pretrained state).
        self.fc_cls.init_weights()
        if self.projection_checkpoint is not None:
            self.load_projection(self.projection_checkpoint)

    def load_projection(self, path: str) -> None:
        """Copy the checkpoint's image->text projection (``D x C``, bias-free as in iCAR)
        into the classifier's projection."""
        projection = ckpt_lib.load_converted(path)['text_projection']
        target = self.fc_cls.projection
        if not projection:
            raise OvdenseFileError(f'{path!r} has no image->text projection to initialise '
                                   f'{type(self).__name__}; drop projection_checkpoint')
        if 'bias' in projection:
            raise OvdenseFileError(f'{path!r}: its image->text projection has a bias, but the '
                                   'text classifier\'s projection is bias-free')
        weight = projection['weight']
        if tuple(weight.shape) != tuple(target.weight.shape):
            raise OvdenseFileError(
                f'{path!r}: image->text projection is {weight.shape[1]} -> {weight.shape[0]} '
                f'but {type(self).__name__} projects {target.in_features} -> '
                f'{target.out_features} (in_channels -> text embedding dim)')
        with torch.no_grad():
            target.weight.copy_(weight.to(target.weight.dtype))
        MMLogger.get_current_instance().info(
            f'{type(self).__name__}: classifier projection initialised from {path}')

    # -- forward / loss --------------------------------------------------------------------
    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        self._sync_vocabulary()
        return super().forward(x, **kwargs)

    def loss_by_feat(self, cls_scores: torch.Tensor, data_samples) -> Dict:
        if self.check_labels:
            self._check_labels(data_samples, cls_scores.shape[-1])
        return super().loss_by_feat(cls_scores, data_samples)

    def _check_labels(self, data_samples, num_classes: int) -> None:
        for sample in data_samples:
            label = sample.gt_label
            if label.is_floating_point():  # soft / one-hot labels (mixup, multi-class)
                if label.numel() != num_classes:
                    raise ValueError(f'{type(self).__name__}: a soft label has {label.numel()} '
                                     f'entries but the classifier scores {num_classes} classes')
                continue
            bad = label[(label < 0) | (label >= num_classes)]
            if bad.numel():
                vocab = self.vocabulary_for(True)
                raise ValueError(
                    f'{type(self).__name__}: ground-truth label {int(bad[0])} is not a class id '
                    f'of the {num_classes} training classes ({vocab.source}); the dataset '
                    'labels must index the head\'s vocabulary (train_classes), e.g. '
                    'VocabVideoDataset(vocabulary=..., classes=<the same train_classes>)')

    def extra_repr(self) -> str:
        train = (f', train_classes={len(self._train_vocab)}'
                 if self._train_vocab is not None else '')
        return f'vocabulary={self._eval_vocab.source!r} ({len(self._eval_vocab)}){train}'


def text_head_of(model: nn.Module) -> Optional[TextI3DHead]:
    """The model's ``TextI3DHead`` (through DDP wrappers), or None."""
    model = getattr(model, 'module', model)
    head = getattr(model, 'cls_head', None)
    return head if isinstance(head, TextI3DHead) else None
