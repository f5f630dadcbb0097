from . import detection  # noqa: F401
