"""``Text<Head>`` classes: a mixin that swaps a stock head's classifier, put over the stock
class. One place makes them, for every head family (decode, dense and box heads)."""
from typing import Callable, Dict


def text_variant(mixin: type, base: type, made: Dict[type, type], module: str) -> type:
    """``Text<base>`` = ``mixin`` over ``base`` (made once per base, then reused; a class
    that already has the mixin is returned as it is)."""
    if issubclass(base, mixin):
        return base
    if base not in made:
        made[base] = type(f'Text{base.__name__}', (mixin, base), {
            '__doc__': f'``{base.__name__}`` + text cosine classifier.', '__module__': module})
    return made[base]


def defining_class(cls: type, name: str) -> type:
    """The class in ``cls``'s MRO that defines attribute ``name`` (which stock code runs)."""
    return next(c for c in cls.__mro__ if name in vars(c))


def stock_base(cls: type, mixin: type) -> type:
    """The stock class right after ``mixin`` in ``cls``'s MRO (``Text<Head>``'s ``<Head>``)."""
    return cls.__mro__[cls.__mro__.index(mixin) + 1]


def without_init_overrides(init_cfg, names):
    """``init_cfg`` without its overrides of the modules ``names`` (the stock heads' Normal
    init of their classifier; applied to the text classifier it would also overwrite a
    pretrained or trainable text tower)."""
    if init_cfg is None:
        return None
    kept = []
    for cfg in [init_cfg] if isinstance(init_cfg, dict) else list(init_cfg):
        override = cfg.get('override') if isinstance(cfg, dict) else None
        overrides = override if isinstance(override, (list, tuple)) else [override]
        rest = [o for o in overrides if not (isinstance(o, dict) and o.get('name') in names)]
        if override is None:
            kept.append(cfg)
        elif rest:
            kept.append(dict(cfg, override=rest if len(rest) > 1 else rest[0]))
    return kept or None


def text_variant_of(registry, base_type: str, owner: str, make) -> type:
    """``make(base)`` for the class ``base_type`` names in ``registry``; a name that is not
    registered, or a class ``make`` refuses (TypeError), is one clear error naming ``owner``."""
    from ..utils.cli import ConfigError
    base = registry.get(base_type) if isinstance(base_type, str) else None
    if not isinstance(base, type):
        raise ConfigError(f'{owner}: base_type={base_type!r} is not a registered '
                          f'{registry.scope} model class')
    try:
        return make(base)
    except TypeError as err:
        raise ConfigError(f'{owner}: base_type={base_type!r}: {err}') from None


def base_type_builder(name: str, scope: str, make: Callable[[type], type]) -> Callable:
    """Registers ``name`` in ``scope``'s MODELS: ``dict(type=name, base_type='<Head>',
    **head_args)`` builds ``make(<Head>)`` (the head's ``Text*`` class) from ``head_args``."""
    from ..registry import register

    def build(base_type: str, **kwargs):
        import importlib
        registry = importlib.import_module(f'{scope}.registry').MODELS
        return text_variant_of(registry, base_type, name, make)(**kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = (f"Any registered {scope} head with the text classifier: "
                     f"``dict(type='{name}', base_type=..., text_classifier=..., **head_args)``.")
    return register('MODELS', scopes=(scope,))(build)
