"""OV-COCO evaluation: AP50 averaged over the novel, the base and all categories.

OVR-CNN and Detic report OV-COCO as COCOeval's per-category AP at IoU 0.5 (area 'all', 100
detections per image), averaged over the 17 novel and the 48 base categories. mmdet's
``CocoMetric`` only averages over all categories, so ``OVCocoMetric`` runs it unchanged and then
scores its saved predictions once more at IoU 0.5 per category.
"""
import os.path as osp
import tempfile
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
from mmdet.datasets.api_wrappers import COCOeval
from mmdet.evaluation import CocoMetric
from mmengine.fileio import load
from mmengine.logging import MMLogger

from ...datasets.ov_coco import resolve_split
from ...registry import register


def per_category_ap50(coco_gt, predictions: List[dict], iou_type: str,
                      cat_ids: Iterable[int], img_ids: Iterable[int],
                      max_dets: int = 100) -> Dict[int, float]:
    """``{category id: AP at IoU 0.5}``; NaN for a category without ground truth in
    ``img_ids`` (COCOeval marks it -1, which must not count as a score)."""
    coco_eval = COCOeval(coco_gt, coco_gt.loadRes(predictions), iou_type)
    params = coco_eval.params
    params.catIds, params.imgIds = list(cat_ids), list(img_ids)
    # Only what is reported (IoU 0.5, all areas): the second pass costs a fraction of the first.
    params.iouThrs = np.array([0.5])
    params.areaRng, params.areaRngLbl = params.areaRng[:1], params.areaRngLbl[:1]
    params.maxDets = [max_dets]
    coco_eval.evaluate()
    coco_eval.accumulate()
    precision = coco_eval.eval['precision'][0, :, :, 0, 0]  # (recall, category)
    scores = {}
    for k, cat_id in enumerate(params.catIds):  # evaluate() sorted params.catIds
        valid = precision[:, k][precision[:, k] > -1]
        scores[cat_id] = float(valid.mean()) if valid.size else float('nan')
    return scores


def mean_ap(values: Iterable[float]) -> float:
    """Mean over categories that have ground truth, rounded like mmdet's COCO keys; -1 when
    none has (COCOeval's 'no data' value)."""
    values = [v for v in values if not np.isnan(v)]
    return round(float(np.mean(values)), 3) if values else -1.0


@register('METRICS', scopes=('mmdet',))
class OVCocoMetric(CocoMetric):
    """``CocoMetric`` plus ``{bbox,segm}_AP50_{novel,base,all}`` (``coco/bbox_AP50_novel`` is
    the OV-COCO headline). Scores are fractions like mmdet's other COCO keys (papers print
    them x100).

    Args:
        base_classes / novel_classes: category names; ``None`` takes the shipped OVR-CNN split
            (as ``OVCocoDataset``). ``all`` is every evaluated category: the dataset's classes.
        Everything else as for ``CocoMetric``.
    """

    def __init__(self, *args, base_classes: Optional[Sequence[str]] = None,
                 novel_classes: Optional[Sequence[str]] = None, **kwargs):
        super().__init__(*args, **kwargs)
        split = resolve_split(base_classes, novel_classes)
        self.split_classes = {'novel': split['novel'], 'base': split['base']}
        self.ann_file = kwargs.get('ann_file', args[0] if args else None)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        # Without outfile_prefix the parent writes the prediction files to a temporary folder
        # that it deletes before returning; give it one that lives until they are re-read.
        own_dir = tempfile.TemporaryDirectory() if self.outfile_prefix is None else None
        if own_dir is not None:
            self.outfile_prefix = osp.join(own_dir.name, 'results')
        try:
            eval_results = super().compute_metrics(results)
            if not self.format_only:
                eval_results.update(self._split_scores())
        finally:
            if own_dir is not None:
                self.outfile_prefix = None
                own_dir.cleanup()
        return eval_results

    def _split_scores(self) -> Dict[str, float]:
        logger = MMLogger.get_current_instance()
        groups = self._split_cat_ids()
        scores = {}
        for metric in (m for m in self.metrics if m in ('bbox', 'segm')):
            predictions = load(f'{self.outfile_prefix}.{metric}.json')
            if not predictions:
                continue  # the parent has already logged that the results are empty
            if metric == 'segm':
                for prediction in predictions:
                    prediction.pop('bbox', None)  # as the parent: areas from the masks
            ap = per_category_ap50(self._coco_api, predictions, metric, self.cat_ids,
                                   self.img_ids)
            for group, cat_ids in groups.items():
                scores[f'{metric}_AP50_{group}'] = mean_ap(ap[c] for c in cat_ids)
            logger.info(f'OV-COCO {metric} AP50 novel / base / all: ' + ' / '.join(
                f'{scores[f"{metric}_AP50_{g}"]:.3f}' for g in ('novel', 'base', 'all')))
        return scores

    def _split_cat_ids(self) -> Dict[str, List[int]]:
        ids = {cat['name']: cat['id'] for cat in self._coco_api.load_cats(self.cat_ids)}
        groups = {}
        for group, names in self.split_classes.items():
            missing = [name for name in names if name not in ids]
            if missing:
                source = self.ann_file or 'the ground truth converted from the dataset'
                raise ValueError(
                    f'OVCocoMetric: {group} classes {missing[:10]} are not among the evaluated '
                    f'categories (the dataset classes found in {source})')
            groups[group] = [ids[name] for name in names]
        groups['all'] = list(self.cat_ids)
        return groups
