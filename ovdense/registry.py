"""Registration of ovdense components into the downstream OpenMMLab registries.

Every component is defined once and registered into each installed library's registry of
that kind, so configs with ``default_scope='mmdet'``, ``'mmseg'`` or ``'mmaction'`` build it
by its plain type name. mmaction2 is optional: its registries are used only when it imports.
"""
import importlib
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from .compat import import_mmaction

ALL_SCOPES = ('mmdet', 'mmseg', 'mmaction')
_registered: Dict[Tuple[str, str], List[str]] = {}


def _downstream_registry(scope: str, kind: str):
    if scope == 'mmaction':
        if import_mmaction() is None:
            return None
    try:
        module = importlib.import_module(f'{scope}.registry')
    except ImportError:
        return None
    return getattr(module, kind, None)


def register(kind: str, scopes: Iterable[str] = ALL_SCOPES, name: Optional[str] = None
             ) -> Callable:
    """Class decorator: register into ``{scope}.registry.{kind}`` for each installed scope."""
    scopes = tuple(scopes)
    unknown = set(scopes) - set(ALL_SCOPES)
    if unknown:
        raise ValueError(f'unknown scopes {sorted(unknown)}; expected a subset of {ALL_SCOPES}')

    def decorator(cls):
        for scope in scopes:
            registry = _downstream_registry(scope, kind)
            if registry is None:
                continue
            # force=True keeps re-imports (e.g. importlib.reload in tests) from failing.
            registry.register_module(name=name or cls.__name__, module=cls, force=True)
            _registered.setdefault((scope, kind), []).append(name or cls.__name__)
        return cls

    return decorator


def registered_components() -> Dict[Tuple[str, str], List[str]]:
    """``{(scope, kind): [type names]}`` of everything ovdense registered so far."""
    return {key: list(names) for key, names in _registered.items()}


def refuse_unused_text_classifier(scopes: Iterable[str] = ALL_SCOPES) -> None:
    """Make a ``text_classifier`` key that the built module does not use an error.

    Many stock heads take ``**kwargs`` (mmdet's and mmseg's Mask2FormerHead, for one): a
    ``text_classifier`` given to them would be swallowed and the model would silently train
    its stock classifier. Each downstream MODELS registry's build function is wrapped to check
    that a module built from a config with that key holds a TextCosineClassifier.
    """
    for scope in scopes:
        registry = _downstream_registry(scope, 'MODELS')
        if registry is not None and not getattr(registry.build_func, '_ovdense_checked', False):
            registry.build_func = _checking_text_classifier(registry.build_func)


def _checking_text_classifier(build: Callable) -> Callable:
    def build_checked(cfg, *args, **kwargs):
        built = build(cfg, *args, **kwargs)
        if isinstance(cfg, dict) and cfg.get('text_classifier') is not None:
            import torch.nn as nn
            from .text.classifier import TextCosineClassifier
            from .utils.cli import ConfigError
            if isinstance(built, nn.Module) and not any(
                    isinstance(m, TextCosineClassifier) for m in built.modules()):
                raise ConfigError(
                    f'{cfg.get("type")}: text_classifier is not used by this module (it would '
                    'be silently ignored and the stock classifier trained); use a head type '
                    'that takes it (README: "Head families")')
        return built

    build_checked._ovdense_checked = True
    return build_checked
