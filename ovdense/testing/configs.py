"""Shrink a shipped config to test size: tiny backbone, tiny text tower, no checkpoints."""
import copy
import os.path as osp
from typing import Optional

from mmengine.config import Config, ConfigDict

from .text import tiny_clip_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_SWIN = dict(embed_dims=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), window_size=4)


def shrink_config(path: str, tmp_dir: str, vocabulary: Optional[str] = None) -> Config:
    """Load ``path`` and replace everything large or external by tiny local stand-ins."""
    cfg = Config.fromfile(path)
    tower = tiny_clip_config(tmp_dir)
    for node in _walk(cfg.model):
        if node.get('type') in ('ICARSwin',):
            node.update(arch=dict(TINY_SWIN), checkpoint=None, pretrained=None, init_cfg=None,
                        text_embed_dims=None, pretrain_img_size=64)
        if _is_missing_file(node.get('class_frequencies_file')):
            node['class_frequencies_file'] = None
        if 'text_classifier' in node or node.get('type') == 'TextCosineClassifier':
            classifier = node.get('text_classifier', node)
            classifier['text_tower'] = dict(model=tower)
            classifier.pop('embeddings_file', None)
            if vocabulary is not None:
                classifier['vocabulary'] = vocabulary
            elif _is_missing_file(classifier.get('vocabulary')):  # dataset-made vocab files
                classifier['vocabulary'] = [f'class {i}' for i in range(node['num_classes'])]
    _shrink_neck(cfg.model)
    return cfg


def _is_missing_file(spec) -> bool:
    return isinstance(spec, str) and spec.endswith(('.json', '.txt', '.yaml', '.yml')) \
        and not osp.isfile(spec)  # noqa: E127


def _shrink_neck(model: ConfigDict) -> None:
    neck = model.get('neck')
    if isinstance(neck, dict) and 'in_channels' in neck:
        neck['in_channels'] = [TINY_SWIN['embed_dims'] * 2 ** i
                               for i in range(len(neck['in_channels']))]


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _walk(value)


def copy_config(cfg: Config) -> Config:
    return copy.deepcopy(cfg)
