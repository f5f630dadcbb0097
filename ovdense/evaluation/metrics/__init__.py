from ...compat import import_mmaction
from .open_vocab_iou_metric import OpenVocabIoUMetric
from .ov_coco_metric import OVCocoMetric, per_category_ap50

if import_mmaction() is not None:
    from .open_vocab_acc_metric import OpenVocabAccMetric
else:  # pragma: no cover - mmaction2 not installed (extra "action")
    OpenVocabAccMetric = None

__all__ = ['OVCocoMetric', 'OpenVocabAccMetric', 'OpenVocabIoUMetric', 'per_category_ap50']
