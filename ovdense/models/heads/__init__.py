"""mmaction2 recognition heads with the text classifier (when mmaction2 imports)."""
from ...compat import import_mmaction

if import_mmaction() is not None:
    from .text_i3d_head import TextI3DHead, text_head_of
else:  # pragma: no cover - mmaction2 not installed (extra "action")
    TextI3DHead = text_head_of = None

__all__ = ['TextI3DHead', 'text_head_of']
