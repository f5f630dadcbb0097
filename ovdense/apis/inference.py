"""Single-image inference and drawing for detection (mmdet) and segmentation (mmseg) models,
with an optional test-time vocabulary (what tools/demo.py runs)."""
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config

from .vocabulary import set_model_vocabulary
from ..visualization import distinct_palette


class DenseInferencer:
    """Builds the model of ``cfg`` (mmdet or mmseg scope), loads ``checkpoint``, and draws
    predictions: boxes and masks with mmdet's visualizer, or a segmentation overlay with a
    legend of class names (mmseg's visualizer)."""

    def __init__(self, cfg: Config, checkpoint: str, device: str = 'cpu',
                 vocabulary=None, embeddings_file: Optional[str] = None):
        self.scope = cfg.default_scope
        if self.scope == 'mmdet':
            from mmdet.apis import init_detector
            self.model = init_detector(cfg, checkpoint, device=device)
        elif self.scope == 'mmseg':
            from .seg_inference import init_segmentor
            self.model = init_segmentor(cfg, checkpoint, device=device)
        else:
            raise ValueError(f'tools/demo.py draws mmdet and mmseg models, not {self.scope!r}')
        if vocabulary is not None:
            set_model_vocabulary(self.model, vocabulary, embeddings_file)
        self._visualizer = self._detection_visualizer() if self.scope == 'mmdet' else None

    def _detection_visualizer(self):
        from mmdet.visualization import DetLocalVisualizer
        from .vocabulary import text_classifiers
        meta = dict(self.model.dataset_meta or {})
        meta['classes'] = text_classifiers(self.model)[0].vocabulary.names
        if len(meta.get('palette') or ()) < len(meta['classes']):
            meta['palette'] = distinct_palette(len(meta['classes']))
        visualizer = DetLocalVisualizer(name=f'ovdense_demo_{id(self)}', alpha=0.6)
        visualizer.dataset_meta = meta
        return visualizer

    def draw(self, image_path: str, out_dir: str, score_thr: float = 0.3) -> str:
        os.makedirs(out_dir, exist_ok=True)
        out_file = osp.join(out_dir, osp.splitext(osp.basename(image_path))[0] + '.png')
        if self.scope == 'mmseg':
            from .seg_inference import segment_image
            segment_image(self.model, image_path, out_file=out_file)
            return out_file
        import mmcv
        from mmdet.apis import inference_detector
        result = inference_detector(self.model, image_path)
        self._visualizer.add_datasample(osp.basename(image_path),
                                        mmcv.imread(image_path, channel_order='rgb'),
                                        data_sample=result, draw_gt=False, show=False,
                                        out_file=out_file, pred_score_thr=score_thr)
        return out_file
