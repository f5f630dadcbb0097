"""OpenVocabAccMetric: mmaction2's AccMetric plus top-1 and mean class accuracy on the base
and on the novel classes, checked against hand-counted cases."""
import numpy as np
import pytest

from ovdense.testing.optional import require_mmaction

require_mmaction(module_level=True)

from ovdense.evaluation import OpenVocabAccMetric  # noqa: E402
from ovdense.utils.cli import ConfigError  # noqa: E402

CLASSES = ['hop', 'wave', 'run', 'sit']   # novel: run, sit


def _metric(**kwargs):
    metric = OpenVocabAccMetric(vocabulary=CLASSES, novel_classes=['run', 'sit'],
                                metric_list=('top_k_accuracy', 'mean_class_accuracy'),
                                metric_options=dict(top_k_accuracy=dict(topk=(1,))), **kwargs)
    metric.dataset_meta = dict(classes=CLASSES)
    return metric


def _results(pairs):
    """(label, predicted class) -> AccMetric's result dicts with a one-hot score."""
    return [dict(label=label, pred=np.eye(len(CLASSES), dtype=np.float32)[pred])
            for label, pred in pairs]


def test_split_top1_and_mean_class_accuracy_by_hand():
    # hop: 3 clips, 2 right; wave: 1 clip, right; run: 1 clip, wrong; sit: 2 clips, 1 right
    pairs = [(0, 0), (0, 0), (0, 1), (1, 1), (2, 0), (3, 3), (3, 2)]
    metrics = _metric().compute_metrics(_results(pairs))
    assert metrics['top1'] == pytest.approx(4 / 7)
    assert metrics['base_top1'] == pytest.approx(3 / 4)        # clips
    assert metrics['base_mean1'] == pytest.approx((2 / 3 + 1) / 2)   # classes
    assert metrics['novel_top1'] == pytest.approx(1 / 3)
    assert metrics['novel_mean1'] == pytest.approx((0 + 1 / 2) / 2)
    assert metrics['harmonic_top1'] == pytest.approx(2 * 0.75 * (1 / 3) / (0.75 + 1 / 3))


def test_split_without_clips_is_nan_and_perfect_predictions_are_one():
    metrics = _metric().compute_metrics(_results([(0, 0), (1, 1)]))
    assert metrics['base_top1'] == metrics['base_mean1'] == 1.0
    assert np.isnan(metrics['novel_top1']) and np.isnan(metrics['novel_mean1'])
    assert np.isnan(metrics['novel_only_top1'])


def test_novel_only_top1_lets_only_novel_classes_compete():
    # scores over (hop, wave, run, sit): a base class wins each novel clip overall
    scores = [(2, [0.5, 0.1, 0.3, 0.1]),   # run clip: run beats sit -> right among novel
              (3, [0.1, 0.6, 0.2, 0.1]),   # sit clip: run beats sit -> wrong among novel
              (3, [0.7, 0.0, 0.1, 0.2]),   # sit clip: sit beats run -> right among novel
              (0, [0.1, 0.1, 0.7, 0.1])]   # base clip: not counted
    results = [dict(label=label, pred=np.array(pred, np.float32)) for label, pred in scores]
    metrics = _metric().compute_metrics(results)
    assert metrics['novel_top1'] == 0.0
    assert metrics['novel_only_top1'] == pytest.approx(2 / 3)


def test_refusals_in_one_line():
    with pytest.raises(ConfigError, match='replaced by novel_classes'):
        OpenVocabAccMetric(vocabulary=CLASSES, base_classes=['hop'])
    metric = _metric()
    metric.dataset_meta = None
    with pytest.raises(ConfigError, match="needs the test dataset's class names"):
        metric.compute_metrics(_results([(0, 0)]))
