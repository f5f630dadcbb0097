"""Data transforms: 16-bit label maps and background labels (mmseg), and video decoding
that names the unreadable file (mmaction2, when it imports)."""
from ...compat import import_mmaction
from .segmentation import LoadUInt16SegAnnotations, ZeroLabelAsBackground

if import_mmaction() is not None:
    from .video import CheckedOpenCVDecode, CheckedOpenCVInit, UnreadableVideoError
else:  # pragma: no cover - mmaction2 not installed (extra "action")
    CheckedOpenCVDecode = CheckedOpenCVInit = UnreadableVideoError = None

__all__ = ['CheckedOpenCVDecode', 'CheckedOpenCVInit', 'LoadUInt16SegAnnotations',
           'UnreadableVideoError', 'ZeroLabelAsBackground']
