"""Segment an image with any vocabulary and draw it: colour overlay (mmseg's
``SegLocalVisualizer``) plus a legend of the class names found, with their pixel shares."""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

Entry = Tuple[str, Sequence[int], float]  # (name, RGB colour, pixel fraction)


def is_annotation_loader(transform) -> bool:
    kind = str(transform.get('type', '')) if isinstance(transform, dict) else ''
    return kind.startswith('Load') and 'Annotation' in kind


def init_segmentor(config, checkpoint: Optional[str] = None, device: str = 'cpu',
                   cfg_options: Optional[Dict] = None):
    """An mmseg segmentor from an ovdense (or stock) config and checkpoint, in eval mode.
    Label loading is removed from ``test_pipeline`` (single images have no label map)."""
    import ovdense  # noqa: F401  registers the ovdense components
    from mmengine.config import Config
    from mmseg.apis import init_model

    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('default_scope', 'mmseg') != 'mmseg':
        raise ValueError(f'{config!r} is not a segmentation config (default_scope='
                         f'{cfg.get("default_scope")!r}, expected mmseg)')
    if 'test_pipeline' not in cfg:
        raise KeyError(f'{config!r} defines no test_pipeline')
    cfg.test_pipeline = [t for t in cfg.test_pipeline if not is_annotation_loader(t)]
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint!r}')
    return init_model(cfg, checkpoint, device=device)


def segment_image(model, image: Union[str, np.ndarray], vocabulary=None,
                  out_file: Optional[str] = None, embeddings_file: Optional[str] = None,
                  opacity: float = 0.5, with_labels: bool = True) -> Dict:
    """Predict ``image`` (a path, or a BGR array as mmcv loads it) with ``vocabulary``
    (any vocabulary spec; None keeps the model's) and draw the overlay with a legend.

    Returns ``dict(image=RGB drawing, pred=(H, W) class ids, classes=vocabulary names,
    present=[(name, fraction)] largest first, out_file=...)``.
    """
    import mmcv
    from mmseg.apis import inference_model
    from mmseg.visualization import SegLocalVisualizer

    from ..visualization import distinct_palette
    from ..text import load_vocabulary
    from .vocabulary import set_model_vocabulary, text_classifiers

    if vocabulary is not None:
        vocab = set_model_vocabulary(model, vocabulary, embeddings_file)
    else:
        classifiers = text_classifiers(model)
        vocab = (classifiers[0].vocabulary if classifiers
                 else load_vocabulary(list(model.dataset_meta['classes'])))
    if isinstance(image, str) and not osp.isfile(image):
        raise FileNotFoundError(f'image not found: {image!r}')
    result = inference_model(model, image)
    pred = result.pred_sem_seg.data[0].cpu().numpy()
    palette = [tuple(c) for c in distinct_palette(len(vocab))]
    rgb = (mmcv.imread(image, channel_order='rgb') if isinstance(image, str)
           else np.ascontiguousarray(image[..., ::-1]))

    visualizer = SegLocalVisualizer(name=f'ovdense_segment_image_{id(model)}', alpha=opacity)
    visualizer.dataset_meta = dict(classes=list(vocab.names), palette=palette)
    visualizer.add_datasample('prediction', rgb, data_sample=result, draw_gt=False,
                              draw_pred=True, show=False, with_labels=with_labels)
    overlay = visualizer.get_image()

    counts = np.bincount(pred.ravel()[pred.ravel() < len(vocab)], minlength=len(vocab))
    order = [int(i) for i in np.argsort(-counts, kind='stable') if counts[i] > 0]
    present = [(vocab.names[i], float(counts[i]) / pred.size) for i in order]
    legend = draw_legend([(vocab.names[i], palette[i], counts[i] / pred.size) for i in order],
                         height=overlay.shape[0])
    drawing = _hconcat(overlay, legend)
    if out_file:
        mmcv.imwrite(drawing[..., ::-1], out_file)
    return dict(image=drawing, pred=pred, classes=vocab.names, present=present,
                out_file=out_file)


def draw_legend(entries: Sequence[Entry], height: int = 0, row_height: int = 18,
                font_scale: float = 0.42, width: Optional[int] = None) -> np.ndarray:
    """A white RGB panel listing ``(name, colour, fraction)`` rows: swatch, name, share."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    lines: List[str] = [f'{name} ({fraction * 100:.1f}%)' for name, _, fraction in entries]
    if not lines:
        lines, entries = ['(no class)'], [('', (255, 255, 255), 0.0)]
    text_w = max(cv2.getTextSize(line, font, font_scale, 1)[0][0] for line in lines)
    width = width or text_w + row_height + 16
    panel_h = max(height, row_height * len(lines) + 8)
    panel = np.full((panel_h, width, 3), 255, np.uint8)
    for row, (line, (_, colour, _)) in enumerate(zip(lines, entries)):
        top = 4 + row * row_height
        cv2.rectangle(panel, (4, top + 2), (4 + row_height - 6, top + row_height - 4),
                      tuple(int(c) for c in colour), -1)
        cv2.rectangle(panel, (4, top + 2), (4 + row_height - 6, top + row_height - 4),
                      (0, 0, 0), 1)
        cv2.putText(panel, line, (row_height + 4, top + row_height - 6), font, font_scale,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def _hconcat(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    height = max(left.shape[0], right.shape[0])

    def pad(img):
        if img.shape[0] == height:
            return img
        extra = np.full((height - img.shape[0],) + img.shape[1:], 255, img.dtype)
        return np.concatenate([img, extra], axis=0)

    return np.concatenate([pad(left), pad(right)], axis=1)
