"""Image (and video) towers of the jointly trained vision-language model as OpenMMLab backbones.

Importing this package registers ``ICARSwin`` and ``OpenCLIPVisionBackbone`` (mmdet, mmseg)
and, when mmaction2 is installed, ``ICARSwin3D`` (mmaction).
"""
from .icar_swin import ARCH_SETTINGS, ICARSwin, OriginalShiftWindowMSA
from .open_clip_vision import OpenCLIPVisionBackbone, load_open_clip_config
from .video_swin import ICARSwin3D, inflate_swin_state

__all__ = ['ARCH_SETTINGS', 'ICARSwin', 'OriginalShiftWindowMSA', 'OpenCLIPVisionBackbone',
           'load_open_clip_config', 'ICARSwin3D', 'inflate_swin_state']
