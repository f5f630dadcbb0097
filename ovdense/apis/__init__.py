"""Using a model: swap its vocabulary, run it on images (detection or segmentation), learn
vision proxies for its classes from unlabeled images (InMaP)."""
from .inference import DenseInferencer
from .seg_inference import draw_legend, init_segmentor, segment_image
from .vision_proxies import ProxyOptions, learn_proxies_from_images, learn_vision_proxies
from .vocabulary import set_model_vocabulary, text_classifiers

__all__ = ['DenseInferencer', 'ProxyOptions', 'draw_legend', 'init_segmentor',
           'learn_proxies_from_images', 'learn_vision_proxies', 'segment_image',
           'set_model_vocabulary', 'text_classifiers']
