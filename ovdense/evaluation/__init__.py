from .metrics import OVCocoMetric, OpenVocabAccMetric, per_category_ap50

__all__ = ['OVCocoMetric', 'OpenVocabAccMetric', 'per_category_ap50']
