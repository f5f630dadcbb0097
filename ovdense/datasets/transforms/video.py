"""Video decoding with OpenCV that names the file when it cannot be read.

mmaction2's ``OpenCVInit`` / ``OpenCVDecode`` work on a fresh machine (OpenCV wheels carry
FFmpeg; decord is optional), but a corrupt file fails with ``ValueError: __len__() should
return >= 0`` or ``IndexError: index out of range`` and no file name. These subclasses decode
exactly the same frames and raise :class:`UnreadableVideoError` naming the file instead::

    dict(type='CheckedOpenCVInit'), dict(type='SampleFrames', ...), dict(type='CheckedOpenCVDecode')

Whether a run then stops or goes on is the dataset's decision (``VocabVideoDataset``'s
``on_unreadable``): mmengine datasets may skip a sample only while training.
"""
import os.path as osp

import numpy as np
from mmaction.datasets.transforms import OpenCVDecode, OpenCVInit

from ...registry import register
from ...utils.io import OvdenseFileError


class UnreadableVideoError(OvdenseFileError):
    """A video file is missing, corrupt, truncated or in a codec that cannot be decoded."""


@register('TRANSFORMS', scopes=('mmaction',))
class CheckedOpenCVInit(OpenCVInit):
    """``OpenCVInit`` that refuses missing / undecodable videos with an error naming them."""

    def transform(self, results: dict) -> dict:
        filename = results['filename']
        if self.io_backend == 'disk' and not osp.isfile(filename):
            raise UnreadableVideoError(f'video file not found: {filename!r}')
        try:
            results = super().transform(results)
        except Exception as err:  # mmcv / OpenCV give no file name
            raise UnreadableVideoError(
                f'cannot read video {filename!r} with OpenCV ({type(err).__name__}: {err}); '
                'the file is corrupt or truncated, or its codec is missing from this '
                'OpenCV build') from err
        reader = results['video_reader']
        if not reader.opened or results['total_frames'] <= 0:
            reader.vcap.release()
            raise UnreadableVideoError(
                f'cannot read video {filename!r}: OpenCV finds no frames in it (the file is '
                'corrupt or truncated, or its codec is missing from this OpenCV build)')
        return results


@register('TRANSFORMS', scopes=('mmaction',))
class CheckedOpenCVDecode(OpenCVDecode):
    """``OpenCVDecode`` (same frames: a frame that does not decode is replaced by the nearest
    earlier one) that raises :class:`UnreadableVideoError` naming the file when nothing at or
    before a sampled index decodes, instead of an ``IndexError``."""

    def transform(self, results: dict) -> dict:
        container = results['video_reader']
        filename = results.get('filename', '<unknown video>')
        inds = np.atleast_1d(np.squeeze(results['frame_inds']))
        results['frame_inds'] = inds
        imgs = []
        try:
            for ind in inds:
                frame = None
                for i in range(int(ind), -1, -1):
                    frame = container[i]
                    if frame is not None:
                        break
                if frame is None:
                    raise UnreadableVideoError(
                        f'cannot decode frame {int(ind)} of video {filename!r}, nor any '
                        f'earlier frame ({results.get("total_frames")} frames in its header); '
                        'the file is corrupt or truncated')
                imgs.append(frame)
        except UnreadableVideoError:
            raise
        except Exception as err:
            raise UnreadableVideoError(f'cannot decode video {filename!r} with OpenCV '
                                       f'({type(err).__name__}: {err})') from err
        finally:
            results['video_reader'] = None
            container.vcap.release()
        imgs = np.array(imgs)[:, :, :, ::-1]  # OpenCV decodes BGR; mmaction works in RGB
        results['imgs'] = list(imgs)
        results['original_shape'] = imgs[0].shape[:2]
        results['img_shape'] = imgs[0].shape[:2]
        return results
