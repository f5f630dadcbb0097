"""``Text<Head>`` classes: a mixin that swaps a stock head's classifier, put over the stock
class. One place makes them, for every head family (decode heads, dense heads)."""
from typing import Dict


def text_variant(mixin: type, base: type, made: Dict[type, type], module: str) -> type:
    """``Text<base>`` = ``mixin`` over ``base`` (made once per base, then reused; a class
    that already has the mixin is returned as it is)."""
    if issubclass(base, mixin):
        return base
    if base not in made:
        made[base] = type(f'Text{base.__name__}', (mixin, base), {
            '__doc__': f'``{base.__name__}`` + text cosine classifier.', '__module__': module})
    return made[base]


def registered_base(registry, base_type: str, owner: str) -> type:
    """The class ``base_type`` names in ``registry``, or one clear error."""
    from ..utils.cli import ConfigError
    base = registry.get(base_type) if isinstance(base_type, str) else None
    if not isinstance(base, type):
        raise ConfigError(f'{owner}: base_type={base_type!r} is not a registered '
                          f'{registry.scope} model class')
    return base
