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
multi-clip averaging). Open-vocabulary training is said as for detection and segmentation:
``text_classifier.novel_classes`` (or the shared component's) leaves those classes out of the
training logits, ``VocabVideoDataset(novel_classes=...)`` drops their clips from the training
data, and validation / test score the whole vocabulary. Labels always index the vocabulary.
"""
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmaction.models.heads import I3DHead
from mmengine.logging import MMLogger

from ... import checkpoints as ckpt_lib
from ...registry import register
from ...text import TextCosineClassifier
from ...text.classifier import head_num_classes, text_classifier_spec
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
        train_classes: removed (refused in one line): open-vocabulary training is
            ``text_classifier.novel_classes`` + ``VocabVideoDataset(novel_classes=...)``.
        projection_checkpoint: an iCAR (or any :mod:`ovdense.checkpoints` layout) file whose
            image->text projection initialises the classifier's projection (``init_weights``),
            so pooled video features land in the pretrained text space from the start.
        check_labels: training raises a clear error when a label is not a class id.
        Other arguments (``spatial_type``, ``dropout_ratio``, ``loss_cls``, ``label_smooth_eps``,
        ``topk``, ``average_clips``, ``init_cfg``) are those of ``I3DHead`` / ``BaseHead``.
    """

    def __init__(self, num_classes: Optional[int] = None, in_channels: Optional[int] = None,
                 text_classifier: Optional[Dict] = None,
                 train_classes=None, projection_checkpoint: Optional[str] = None,
                 check_labels: bool = True, **kwargs):
        name = type(self).__name__
        if train_classes is not None:
            raise ConfigError(
                f'{name}: train_classes was replaced by novel_classes, said as for detection '
                'and segmentation: text_classifier.novel_classes=<the classes to leave out> '
                '(labels keep indexing the whole vocabulary) and '
                'VocabVideoDataset(novel_classes=<the same>) for the training data')
        if in_channels is None:
            raise ConfigError(f'{name} needs in_channels (the backbone\'s output channels)')
        spec = self._classifier_spec(text_classifier, projection_checkpoint)
        num_classes = head_num_classes(name, spec, num_classes)
        super().__init__(num_classes, in_channels, **kwargs)
        self.fc_cls = TextCosineClassifier(in_features=in_channels, out_features=num_classes,
                                           **spec)
        if self.fc_cls.background is not None:
            raise ConfigError(f'{name}: action recognition has no background class; remove '
                              'text_classifier.background')
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
        """Classes scored now: follows the classifier (vocabulary swaps)."""
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

    # -- loss ------------------------------------------------------------------------------
    def loss_by_feat(self, cls_scores: torch.Tensor, data_samples) -> Dict:
        novel = self._novel_class_ids()
        if novel is not None and self.label_smooth_eps:
            raise ConfigError(f'{type(self).__name__}: label_smooth_eps would put target mass '
                              'on the novel classes, which training leaves out; use one of '
                              'label_smooth_eps and novel_classes')
        if self.check_labels:
            self._check_labels(data_samples, cls_scores.shape[-1], novel)
        return super().loss_by_feat(cls_scores, data_samples)

    def _novel_class_ids(self) -> Optional[set]:
        """Label ids training leaves out (the component's ``novel_classes``), or None."""
        embeddings = self.fc_cls.class_embeddings
        if not embeddings.leaves_classes_out:
            return None
        return set(range(self.num_classes)) - set(embeddings.trained_class_ids().tolist())

    def _check_labels(self, data_samples, num_classes: int, novel: Optional[set]) -> None:
        vocab = self.fc_cls.vocabulary
        for sample in data_samples:
            label = sample.gt_label
            if label.is_floating_point():  # soft / one-hot labels (mixup, multi-class)
                if label.numel() != num_classes:
                    raise ValueError(f'{type(self).__name__}: a soft label has {label.numel()} '
                                     f'entries but the classifier scores {num_classes} classes')
                continue
            bad = label[(label < 0) | (label >= num_classes)]
            if bad.numel():
                raise ValueError(
                    f'{type(self).__name__}: ground-truth label {int(bad[0])} is not a class id '
                    f'of the {num_classes} classes of {vocab.source!r}; the dataset labels must '
                    'index the head\'s vocabulary, e.g. VocabVideoDataset(vocabulary=<the same>)')
            left_out = [int(i) for i in label.flatten() if int(i) in (novel or ())]
            if left_out:
                raise ValueError(
                    f'{type(self).__name__}: a training clip is labelled {left_out[0]} '
                    f'({vocab.names[left_out[0]]!r}), one of the novel classes training leaves '
                    'out; drop their clips with VocabVideoDataset(novel_classes=<the same>)')

    def extra_repr(self) -> str:
        vocab = self.fc_cls.vocabulary
        return f'vocabulary={vocab.source!r} ({len(vocab)})'


def text_head_of(model: nn.Module) -> Optional[TextI3DHead]:
    """The model's ``TextI3DHead`` (through DDP wrappers), or None."""
    model = getattr(model, 'module', model)
    head = getattr(model, 'cls_head', None)
    return head if isinstance(head, TextI3DHead) else None
