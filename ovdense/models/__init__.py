from . import action, backbones, detection, segmentation  # noqa: F401
