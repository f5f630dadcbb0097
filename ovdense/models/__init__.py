from . import backbones, detection  # noqa: F401
