from . import backbones, decode_heads, dense_heads, heads, losses, roi_heads  # noqa: F401
