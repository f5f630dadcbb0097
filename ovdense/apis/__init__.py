"""Using a model: swap its vocabulary, and run it on images (detection or segmentation)."""
from .inference import DenseInferencer
from .seg_inference import draw_legend, init_segmentor, segment_image
from .vocabulary import set_model_vocabulary, text_classifiers

__all__ = ['DenseInferencer', 'draw_legend', 'init_segmentor', 'segment_image',
           'set_model_vocabulary', 'text_classifiers']
