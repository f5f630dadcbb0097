from . import action, backbones, detection  # noqa: F401
