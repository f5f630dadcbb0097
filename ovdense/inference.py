"""Single-image inference and drawing for detection (mmdet) and segmentation (mmseg) models,
with an optional test-time vocabulary."""
import os
import os.path as osp
from typing import Optional

import mmcv
from mmengine.config import Config

from .apis import set_model_vocabulary
from .engine.hooks import distinct_palette


class DenseInferencer:
    """Builds the model of ``cfg`` (mmdet or mmseg scope), loads ``checkpoint``, and draws
    predictions with the task's own visualizer."""

    def __init__(self, cfg: Config, checkpoint: str, device: str = 'cpu',
                 vocabulary=None, embeddings_file: Optional[str] = None):
        self.scope = cfg.default_scope
        if self.scope == 'mmdet':
            from mmdet.apis import inference_detector, init_detector
            from mmdet.visualization import DetLocalVisualizer as Visualizer
            self.model = init_detector(cfg, checkpoint, device=device)
            self._infer = inference_detector
        elif self.scope == 'mmseg':
            from mmseg.apis import inference_model, init_model
            from mmseg.visualization import SegLocalVisualizer as Visualizer
            self.model = init_model(cfg, checkpoint, device=device)
            self._infer = inference_model
        else:
            raise ValueError(f'tools/demo.py draws mmdet and mmseg models, not {self.scope!r}')
        meta = dict(self.model.dataset_meta or {})
        if vocabulary is not None:
            vocab = set_model_vocabulary(self.model, vocabulary, embeddings_file)
            meta['classes'] = vocab.names
            if len(meta.get('palette') or ()) < len(vocab):
                meta['palette'] = distinct_palette(len(vocab))
        self.model.dataset_meta = meta
        self.visualizer = Visualizer(name=f'ovdense_demo_{id(self)}', alpha=0.6)
        self.visualizer.dataset_meta = meta

    def draw(self, image_path: str, out_dir: str, score_thr: float = 0.3) -> str:
        image = mmcv.imread(image_path, channel_order='rgb')
        result = self._infer(self.model, image_path)
        os.makedirs(out_dir, exist_ok=True)
        out_file = osp.join(out_dir, osp.basename(image_path))
        kwargs = dict(pred_score_thr=score_thr) if self.scope == 'mmdet' else dict(
            with_labels=True)
        self.visualizer.add_datasample(osp.basename(image_path), image, data_sample=result,
                                       draw_gt=False, show=False, out_file=out_file,
                                       **kwargs)
        return out_file
