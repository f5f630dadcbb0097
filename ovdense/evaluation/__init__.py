from .metrics import OVCocoMetric, OpenVocabAccMetric, OpenVocabIoUMetric, per_category_ap50

__all__ = ['OVCocoMetric', 'OpenVocabAccMetric', 'OpenVocabIoUMetric', 'per_category_ap50']
