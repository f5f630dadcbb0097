"""OpenVocabIoUMetric (ovdense/evaluation/metrics/open_vocab_iou_metric.py): mIoU as mmseg
computes it, plus the means over novel and base classes."""
import pytest
import torch

import ovdense  # noqa: F401
from ovdense.utils.cli import ConfigError


def test_open_vocab_iou_metric_splits_novel_and_base_classes():
    """mIoU as mmseg computes it, plus the means over novel / base classes (a class with no
    labelled and no predicted pixel is skipped, as in mIoU)."""
    from ovdense.evaluation import OpenVocabIoUMetric
    vocab = [dict(name='cat', frequency='f'), dict(name='dog', frequency='r'),
             dict(name='cow', frequency='c'), dict(name='owl', frequency='r')]
    metric = OpenVocabIoUMetric(vocabulary=vocab, novel_classes='r', iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=('cat', 'dog', 'cow', 'owl'))
    # per image: (intersect, union, pred area, label area) per class; owl never occurs
    first = [torch.tensor(v, dtype=torch.float64) for v in
             ([6, 1, 0, 0], [8, 4, 2, 0], [7, 2, 1, 0], [7, 3, 1, 0])]
    second = [torch.tensor(v, dtype=torch.float64) for v in
              ([2, 1, 1, 0], [4, 4, 2, 0], [3, 2, 2, 0], [3, 3, 1, 0])]
    metrics = metric.compute_metrics([first, second])
    iou = {'cat': 8 / 12, 'dog': 2 / 8, 'cow': 1 / 4}
    assert metrics['mIoU_novel'] == round(iou['dog'] * 100, 2)  # owl: skipped, not 0
    assert metrics['mIoU_base'] == round((iou['cat'] + iou['cow']) / 2 * 100, 2)
    assert metrics['mIoU'] == round(sum(iou.values()) / 3 * 100, 2)
    with pytest.raises(ConfigError, match='selects no class'):
        OpenVocabIoUMetric(vocabulary=vocab, novel_classes=[])
