"""Segmentation transforms (ovdense/datasets/transforms/segmentation.py): ZeroLabelAsBackground
maps label 0 to a background class id and refuses reduce_zero_label."""
import numpy as np
import pytest

import ovdense  # noqa: F401
from ovdense.datasets import ZeroLabelAsBackground


def test_zero_label_as_background_and_reduce_zero_label():
    seg = np.array([[0, 1, 2], [30, 255, 0]], np.uint8)
    out = ZeroLabelAsBackground(background_index=30)(
        dict(gt_seg_map=seg, reduce_zero_label=False))['gt_seg_map']
    assert out.tolist() == [[30, 0, 1], [29, 255, 30]] and out.dtype == np.uint8
    with pytest.raises(ValueError, match='reduce_zero_label=False'):
        ZeroLabelAsBackground(background_index=30)(dict(gt_seg_map=seg, reduce_zero_label=True))
