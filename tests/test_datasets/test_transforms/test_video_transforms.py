"""Video transforms (ovdense/datasets/transforms/video.py): the checked OpenCV init / decode
give the stock frames and name unreadable or missing files (skipped without the "action"
extra)."""
import numpy as np
import pytest

import ovdense  # noqa: F401
from ovdense.testing.optional import require_mmaction

require_mmaction(module_level=True)  # absent: skipped; installed but broken: fails

from ovdense.datasets import UnreadableVideoError  # noqa: E402
from ovdense.testing.data import opencv_pipeline, write_random_video  # noqa: E402


def test_checked_opencv_decoding_matches_stock_and_names_unreadable_files(tmp_path):
    from mmaction.registry import TRANSFORMS
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    good = write_random_video(tmp_path / 'good.mp4')
    info = dict(filename=good, start_index=0, modality='RGB')
    checked = Compose([TRANSFORMS.build(t) for t in opencv_pipeline(True)])(dict(info))
    stock = Compose([TRANSFORMS.build(t) for t in opencv_pipeline(False)])(dict(info))
    assert len(checked['imgs']) == 4
    assert all(np.array_equal(a, b) for a, b in zip(checked['imgs'], stock['imgs']))
    (tmp_path / 'broken.mp4').write_bytes(b'this is not a video')
    for name, message in (('broken.mp4', 'cannot read video'),
                          ('missing.mp4', 'video file not found')):
        with pytest.raises(UnreadableVideoError, match=f'{message}.*{name}'):
            Compose([TRANSFORMS.build(t) for t in opencv_pipeline(True)])(
                dict(info, filename=str(tmp_path / name)))
