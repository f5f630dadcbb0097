from .ov_coco_metric import OVCocoMetric, per_category_ap50

__all__ = ['OVCocoMetric', 'per_category_ap50']
