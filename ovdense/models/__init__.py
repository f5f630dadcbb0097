from . import backbones, decode_heads, heads, losses, roi_heads  # noqa: F401
