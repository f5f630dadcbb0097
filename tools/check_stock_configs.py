"""Adopt the text classifier in one config of every config folder of the installed mmdet /
mmseg, the README's way, and report what happens: one line per config.

    python tools/check_stock_configs.py dense      # mmdet single-stage / DETR heads
    python tools/check_stock_configs.py rcnn       # mmdet R-CNN box heads
    python tools/check_stock_configs.py decode     # mmseg decode heads
    python tools/check_stock_configs.py dense --only yolof retinanet

Each head becomes ``TextDenseHead`` / ``TextBBoxHead`` / ``TextDecodeHead`` with
``base_type`` = its stock type and a tiny text tower over 4 classes (R-CNN: class-agnostic
boxes and masks); the model trains one step on 128 x 128 images (finite loss, backward),
predicts, swaps to 6 classes and back (the same predictions). ``OK``: all of that worked;
``REFUSED``: a one-line ``ConfigError``; ``ERROR``: anything else (the last frames follow;
some are the stock model's own limits at this image size or on CPU, or a download). Slow
(several minutes per family, ResNet-50/101 trunks); not part of ``make test``.
"""
import argparse
import contextlib
import glob
import io
import os.path as osp
import tempfile
import traceback
import warnings
from typing import Callable, Dict, Optional

import torch

VOCAB4 = 'red circle,blue star,green square,yellow ring'
VOCAB6 = 'cat,dog,bird,fish,horse,cow'


def _each(node):
    return node if isinstance(node, list) else [node]


def _as_text_head(head, type_name: str, tower: Dict) -> None:
    head.base_type, head.type = head.type, type_name
    head.num_classes = 4
    head.text_classifier = dict(vocabulary=VOCAB4, text_tower=tower)


def _dense(cfg, tower) -> Optional[bool]:
    """Single-stage detectors: the bbox head. Returns whether masks are predicted."""
    model = cfg.model
    if 'roi_head' in model or 'num_classes' not in (model.get('bbox_head') or {}):
        return None
    _as_text_head(model.bbox_head, 'TextDenseHead', tower)
    return 'mask_head' in model


def _rcnn(cfg, tower) -> Optional[bool]:
    roi_head = cfg.model.get('roi_head')
    if not roi_head or roi_head.get('bbox_head') is None:
        return None
    for head in _each(roi_head.bbox_head):
        _as_text_head(head, 'TextBBoxHead', tower)
        if head.base_type != 'DIIHead':  # sets it itself
            head.reg_class_agnostic = True  # needed for a vocabulary swap
    for key in ('mask_head', 'point_head', 'mask_iou_head'):  # class-agnostic masks
        for head in _each(roi_head.get(key) or []):
            head.num_classes = 4
            if 'class_agnostic' in head or key != 'mask_iou_head':
                head.class_agnostic = True
    if roi_head.type == 'MaskScoringRoIHead':  # the README's way for Mask Scoring R-CNN
        roi_head.type = 'TextMaskScoringRoIHead'
    return roi_head.get('mask_head') is not None


def _decode(cfg, tower) -> Optional[bool]:
    model = cfg.model
    if not isinstance(model.get('decode_head'), (dict, list)):
        return None
    for key in ('decode_head', 'auxiliary_head'):
        for head in _each(model.get(key) or []):
            _as_text_head(head, 'TextDecodeHead', tower)
    model.data_preprocessor.size = (128, 128)
    if model.get('test_cfg', {}).get('mode') == 'slide':
        model.test_cfg = dict(mode='whole')
    return False


FAMILIES: Dict[str, tuple] = {'dense': ('mmdet', _dense), 'rcnn': ('mmdet', _rcnn),
                              'decode': ('mmseg', _decode)}


def _det_inputs(batch: int, masks: bool) -> Dict:
    from mmdet.testing import demo_mm_inputs
    torch.manual_seed(0)
    return demo_mm_inputs(batch_size=batch, image_shapes=[(3, 128, 128)] * batch,
                          num_items=[3] * batch, num_classes=4, with_mask=masks)


def _seg_inputs(batch: int, masks: bool) -> Dict:
    from ovdense.testing.inputs import seg_inputs
    torch.manual_seed(0)
    return seg_inputs(4, batch=batch, size=(128, 128))


def _prediction(model, inputs: Dict) -> torch.Tensor:
    sample = model(**model.data_preprocessor(inputs, False), mode='predict')[0]
    if 'seg_logits' in sample:
        return sample.seg_logits.data
    found = sample.pred_instances
    return torch.cat([found.scores, found.labels.float()])


def check(model_cfg, scope: str, masks: bool) -> str:
    """Train one step, predict, swap the vocabulary there and back; '' or what failed."""
    from ovdense.apis import set_model_vocabulary
    from ovdense.testing.configs import backward_of_losses
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    make = _det_inputs if scope == 'mmdet' else _seg_inputs
    with contextlib.redirect_stdout(io.StringIO()):
        model = registry.build(model_cfg)
        model.init_weights()
    model.train()
    losses = model(**model.data_preprocessor(make(2, masks), True), mode='loss')
    backward_of_losses(model, losses)  # finite losses, backward through all of them
    model.eval()
    with torch.no_grad():
        before = _prediction(model, make(1, masks))
        set_model_vocabulary(model, VOCAB6)
        _prediction(model, make(1, masks))
        set_model_vocabulary(model, VOCAB4)
        if not torch.allclose(before, _prediction(model, make(1, masks)), atol=1e-5):
            return 'predictions differ after a vocabulary swap there and back'
    return ''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('family', choices=sorted(FAMILIES))
    parser.add_argument('--only', nargs='*', help='config folders to check (default: all)')
    args = parser.parse_args()
    warnings.filterwarnings('ignore')
    from mmengine.config import Config
    from mmengine.logging import MessageHub
    from mmengine.registry import init_default_scope

    import ovdense  # noqa: F401 - registers the text heads
    from ovdense.testing import tiny_text_tower_cfg
    scope, adopt = FAMILIES[args.family]
    init_default_scope(scope)
    MessageHub.get_current_instance().update_info('epoch', 0)  # read by some stock heads
    MessageHub.get_current_instance().update_info('iter', 0)
    root = osp.join(osp.dirname(__import__(scope).__file__), '.mim', 'configs')
    tower = tiny_text_tower_cfg(tempfile.mkdtemp())
    counts: Dict[str, int] = {}
    for folder in sorted(glob.glob(osp.join(root, '[!_]*'))):
        if args.only and osp.basename(folder) not in args.only:
            continue
        picked = _first_adoptable(folder, adopt, tower, Config)
        if picked is None:
            continue
        path, cfg, masks = picked
        name = osp.relpath(path, root)
        try:
            problem = check(cfg.model, scope, masks)
            kind, line = ('ERROR', problem) if problem else ('OK', '')
        except Exception as err:  # noqa: BLE001 - the report is the point
            kind = 'REFUSED' if type(err).__name__ == 'ConfigError' else 'ERROR'
            line = f'{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err) else ""}'
            if kind == 'ERROR':
                frames = traceback.format_exc().strip().splitlines()[-5:]
                line += '\n    ' + ' | '.join(f.strip() for f in frames)
        counts[kind] = counts.get(kind, 0) + 1
        print(f'{kind:8s}{name}  {line}'.rstrip(), flush=True)
    print(', '.join(f'{k} {v}' for k, v in sorted(counts.items())))


def _first_adoptable(folder: str, adopt: Callable, tower: Dict, config_cls):
    """The first config of ``folder`` (COCO / ADE20K / Cityscapes first) that ``adopt`` can
    convert: ``(path, converted config, masks)``, or None."""
    paths = sorted(glob.glob(osp.join(folder, '*.py')),
                   key=lambda p: not any(k in p for k in ('coco', 'ade20k', 'cityscapes')))
    for path in paths:
        if any(k in path for k in ('panoptic', 'lvis', 'openimages')):
            continue
        try:
            cfg = config_cls.fromfile(path)
            masks = adopt(cfg, tower) if isinstance(cfg.get('model'), dict) else None
        except Exception:  # noqa: BLE001 - unreadable configs (missing files) are skipped
            continue
        if masks is not None:
            backbone = cfg.model.get('backbone') or {}
            if isinstance(backbone, dict):
                backbone['init_cfg'] = None  # nothing is downloaded
            cfg.model.pop('pretrained', None)
            cfg.model.get('data_preprocessor', {}).pop('batch_augments', None)
            return path, cfg, masks
    return None


if __name__ == '__main__':
    main()
