"""Test-time vocabulary swap for any model built with TextCosineClassifier heads."""
from typing import Optional

import torch.nn as nn

from ..text import TextCosineClassifier, Vocabulary, load_classifier_file, load_vocabulary


def text_classifiers(model: nn.Module):
    return [m for m in model.modules() if isinstance(m, TextCosineClassifier)]


def set_model_vocabulary(model: nn.Module, vocabulary,
                         embeddings_file: Optional[str] = None) -> Vocabulary:
    """Point every text classifier of ``model`` at a new vocabulary and update the
    ``num_classes`` of the heads that own them. No retraining, no rebuilding.

    Raises a clear error when a part of the model is tied to the old class count
    (class-specific box regression or masks), or when ``embeddings_file`` does not fit;
    everything is checked before anything changes, so a refused call leaves the model as
    it was.
    """
    model = getattr(model, 'module', model)  # DDP / model wrappers
    vocab = load_vocabulary(vocabulary)
    classifiers = text_classifiers(model)
    if not classifiers:
        raise ValueError(f'{type(model).__name__} has no TextCosineClassifier: a vocabulary '
                         'can only be swapped on heads built with the text classifier')
    old = classifiers[0].num_classes
    _check_class_agnostic(model, old)
    _check_stuff_counts(model, len(vocab))
    if embeddings_file:  # once per embedding dim, before the first classifier switches
        for dim in sorted({classifier.embed_dim for classifier in classifiers}):
            load_classifier_file(embeddings_file, len(vocab), dim, vocab.names)
    sources = {id(c.class_embeddings): c.class_embeddings for c in classifiers}
    for source in sources.values():  # a shared component once, however many heads read it
        source.set_vocabulary(vocab, embeddings_file)
    for module in model.modules():
        if isinstance(module, TextCosineClassifier) or not hasattr(module, 'num_classes'):
            continue
        if any(isinstance(m, TextCosineClassifier) for m in module.modules()):
            module.num_classes = len(vocab)
            # mmseg heads and segmentors size outputs by out_channels: K, or K + 1 with a
            # predicted background column.
            extra = getattr(module, 'out_channels', None)
            if isinstance(extra, int) and extra - old in (0, 1):
                module.out_channels = len(vocab) + extra - old
    _follow_panoptic_counts(model, len(vocab))
    return vocab


def _follow_panoptic_counts(model: nn.Module, num_classes: int) -> None:
    """mmdet's panoptic fusion heads (no classifier of their own) count the things and stuff
    of the head they post-process: the new class count, the same stuff count."""
    for module in model.modules():
        if _is_fusion_head(module):
            module.num_things_classes = num_classes - module.num_stuff_classes
            module.num_classes = num_classes


def _is_fusion_head(module: nn.Module) -> bool:
    """A module that counts things and stuff but has no classifier (mmdet's panoptic
    fusion heads); the heads with one update their own counts."""
    return hasattr(module, 'num_things_classes') and hasattr(module, 'num_stuff_classes') \
        and not any(isinstance(m, TextCosineClassifier) for m in module.modules())


def _check_stuff_counts(model: nn.Module, num_classes: int) -> None:
    """Panoptic heads keep their stuff count through a swap (the vocabulary's last
    ``num_stuff_classes`` names are stuff): a vocabulary must have at least that many."""
    for name, module in model.named_modules():
        if _is_fusion_head(module) or getattr(module, '_has_stuff_split', lambda: False)():
            if num_classes < module.num_stuff_classes:
                stuff = module.num_stuff_classes
                raise ValueError(f'{name} ({type(module).__name__}) keeps its {stuff} stuff '
                                 f'classes as the vocabulary\'s last {stuff} names; a '
                                 f'vocabulary of {num_classes} classes has fewer')


def _check_class_agnostic(model: nn.Module, num_classes: int) -> None:
    for name, module in model.named_modules():
        if getattr(module, 'num_classes', None) != num_classes:
            continue
        if getattr(module, 'reg_class_agnostic', True) is False:
            raise ValueError(f'{name} ({type(module).__name__}) regresses boxes per class '
                             f'({num_classes} classes); set reg_class_agnostic=True to '
                             'change the vocabulary at test time')
        if getattr(module, 'class_agnostic', True) is False:
            raise ValueError(f'{name} ({type(module).__name__}) predicts masks per class; '
                             'set class_agnostic=True to change the vocabulary at test time')
