"""Action clips as pictures: a strip of evenly spaced frames with a caption box.

Shared by ``tools/browse_dataset.py`` (ground truth) and ``ActionVisualizationHook``
(``tools/test.py --show-dir`` on action configs): mmaction2 1.2.0's own visualizer cannot
draw ``NCTHW`` inputs.
"""
from typing import List, Tuple

import numpy as np

from ..utils.cli import ConfigError

CLIP_FRAMES = 4          # frames per strip
MIN_STRIP_HEIGHT = 192   # small clips are enlarged so the caption stays readable


def clip_frames(inputs) -> List[np.ndarray]:
    """RGB HxWx3 uint8 frames of the first clip of ``inputs``: ``NCTHW`` (3D models) or
    ``NCHW`` (2D models, N = clips x frames)."""
    video = inputs.detach().cpu().numpy() if hasattr(inputs, 'detach') else np.asarray(inputs)
    if video.ndim == 5:  # N clips/crops, C, T, H, W
        clip = video[0].transpose(1, 2, 3, 0)
    elif video.ndim == 4:  # N*T frames, C, H, W
        clip = video.transpose(0, 2, 3, 1)
    else:
        raise ConfigError(f'action clips are drawn from NCTHW or NCHW inputs, got shape '
                          f'{tuple(video.shape)}')
    if clip.shape[-1] != 3:
        raise ConfigError(f'action clips are drawn from RGB inputs, got {clip.shape[-1]} '
                          'channels (flow or skeleton inputs are not drawn)')
    clip = np.clip(clip, 0, 255).astype(np.uint8)  # mmaction decodes RGB
    return [np.ascontiguousarray(frame) for frame in clip]


def frame_strip(inputs, frames: int = CLIP_FRAMES, min_height: int = MIN_STRIP_HEIGHT
                ) -> Tuple[np.ndarray, np.ndarray, int]:
    """``(strip, picks, total)``: up to ``frames`` evenly spaced frames of the first clip side
    by side (RGB), the frame indices shown and the clip's frame count."""
    import mmcv
    clip = clip_frames(inputs)
    picks = np.unique(np.linspace(0, len(clip) - 1, min(frames, len(clip))).round()
                      .astype(int))
    strip = np.concatenate([clip[i] for i in picks], axis=1)
    if strip.shape[0] < min_height:
        strip = mmcv.imrescale(strip, min_height / strip.shape[0], interpolation='nearest')
    return strip, picks, len(clip)


def captioned(visualizer, strip: np.ndarray, caption: str) -> np.ndarray:
    """``strip`` with ``caption`` in a box at its top left, drawn on ``visualizer``'s canvas."""
    visualizer.set_image(strip)
    visualizer.draw_texts(caption, positions=np.array([[4, 4]]),
                          font_sizes=max(8, strip.shape[0] // 18), font_families='monospace',
                          colors='white',
                          bboxes=dict(facecolor='black', alpha=0.6, boxstyle='round'))
    return visualizer.get_image()
