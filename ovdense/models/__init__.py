from . import (backbones, decode_heads, dense_heads, detectors, heads, losses,  # noqa: F401
               roi_heads)
