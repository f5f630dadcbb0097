"""ovdense: open-vocabulary detection and segmentation with text-generated cosine classifiers.

``import ovdense`` (or ``custom_imports=dict(imports=['ovdense'])``) registers every component
into the installed downstream registries (mmdet, mmseg, and mmaction2 when present).
"""
from .version import __version__
from .utils.versions import check_versions

check_versions()

from . import compat  # noqa: E402

compat.apply_all()

from . import text  # noqa: E402,F401
from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .apis import set_model_vocabulary  # noqa: E402
from .registry import refuse_unused_text_classifier, registered_components  # noqa: E402

refuse_unused_text_classifier()

__all__ = ['__version__', 'registered_components', 'set_model_vocabulary']
