"""One class-embedding component per model, read by every text classifier of the model.

``WithClassEmbeddings`` builds any registered model (``base_type``: a detector, segmentor or
recognizer of the installed libraries) while its text heads take their class weights from
ONE component, said once for the model::

    model = dict(type='WithClassEmbeddings', base_type='CascadeRCNN',
                 class_embeddings=dict(type='TrainedTowerClassEmbeddings',
                                       vocabulary='lvis_v1', text_tower=dict(...)),
                 backbone=..., roi_head=dict(bbox_head=[dict(type='TextShared2FCBBoxHead',
                                                             ...), ...]))

It returns the stock model (``CascadeRCNN`` here, so every tool and hook sees the usual
class) with the component attached as ``model.class_embeddings``: one tower in memory and
in checkpoints however many stages, auxiliary heads or decoder layers score with it, and
the heads' class counts follow its vocabulary. A trainable tower encodes its prompts once
per training step (the model's forward starts the step).
"""
import contextlib
from contextvars import ContextVar
from typing import Dict, Optional

import torch.nn as nn

from ..registry import ALL_SCOPES, _downstream_registry, register
from .class_embeddings import ClassEmbeddings, build_class_embeddings_source

_SHARED: ContextVar[Optional[ClassEmbeddings]] = ContextVar('ovdense_shared_embeddings',
                                                             default=None)


def shared_class_embeddings() -> Optional[ClassEmbeddings]:
    """The component of the model being built by ``WithClassEmbeddings``, or None."""
    return _SHARED.get()


@contextlib.contextmanager
def sharing(component: ClassEmbeddings):
    """Text heads built inside score with ``component``."""
    token = _SHARED.set(component)
    try:
        yield component
    finally:
        _SHARED.reset(token)


class StartStep:
    """Forward pre-hook of the owning model: each forward is a new step for the component
    (a trainable tower re-samples and re-encodes its prompts once per step)."""

    def __init__(self, component: ClassEmbeddings):
        self.component = component

    def __call__(self, module, args) -> None:
        self.component.start_step()


def _model_registry(base_type: str):
    """The registry (default scope first, then mmdet, mmseg, mmaction) that has base_type."""
    from mmengine.registry import DefaultScope
    current = DefaultScope.get_current_instance()
    scopes = ([current.scope_name] if current is not None else []) + list(ALL_SCOPES)
    for scope in scopes:
        registry = _downstream_registry(scope, 'MODELS') if scope in ALL_SCOPES else None
        if registry is not None and registry.get(base_type) is not None:
            return registry
    return None


@register('MODELS')
def WithClassEmbeddings(base_type: str, class_embeddings: Dict,  # noqa: N802 - a type name
                        **kwargs) -> nn.Module:
    """Build ``base_type`` (with ``kwargs``) whose text heads share ``class_embeddings``."""
    from ..utils.cli import ConfigError
    registry = _model_registry(base_type)
    if registry is None:
        raise ConfigError(f'WithClassEmbeddings: base_type={base_type!r} is not a registered '
                          'model of mmdet, mmseg or mmaction')
    try:
        component = build_class_embeddings_source(class_embeddings)
    except ValueError as err:
        raise ConfigError(f'WithClassEmbeddings: {err}') from err
    with sharing(component):
        model = registry.build(dict(kwargs, type=base_type))
    from .classifier import TextCosineClassifier
    users = [m for m in model.modules() if isinstance(m, TextCosineClassifier)
             and m.class_embeddings is component]
    if not users:
        raise ConfigError(f'WithClassEmbeddings: no head of {base_type} scores with the class '
                          'embeddings; give the heads a Text* type (e.g. TextShared2FCBBoxHead,'
                          ' TextUPerHead, TextI3DHead)')
    if hasattr(model, 'class_embeddings'):
        raise ConfigError(f'WithClassEmbeddings: {base_type} already has an attribute '
                          "'class_embeddings'")
    model.add_module('class_embeddings', component)
    model.register_forward_pre_hook(StartStep(component))
    return model
