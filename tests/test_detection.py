"""Detection: every shipped mmdet config trains one step and predicts at tiny size; the
text bbox heads, OV-LVIS loading, and test-time vocabulary swap."""
import json
import os.path as osp

import pytest
import torch

import ovdense  # noqa: F401
from ovdense.apis import set_model_vocabulary
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.configs import (REPO, parameters_without_gradient, shipped_configs,
                                     shrink_config, tiny_icar_checkpoint,
                                     unused_paramwise_keys)
from ovdense.utils.cli import ConfigError


def detection_configs():
    found = shipped_configs('mmdet')
    assert len(found) >= 5, f'detection configs not found: {found}'
    return found


def _inputs(num_classes, batch=2):
    from mmdet.testing import demo_mm_inputs
    return demo_mm_inputs(batch_size=batch, image_shapes=[(3, 72, 88)] * batch,
                          num_items=[3] * batch, num_classes=num_classes, with_mask=True)


def _build(cfg):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _num_classes(model):
    from ovdense.apis.vocabulary import text_classifiers
    return text_classifiers(model)[0].num_classes


def _write_lvis(path, categories, images, annotations):
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)


def _small_lvis(tmp_path):
    categories = [dict(id=i + 1, name=n, synonyms=[n], synset=f'{n}.n.01', frequency=f,
                       image_count=1, instance_count=1, **{'def': f'a {n}'})
                  for i, (n, f) in enumerate([('cat', 'f'), ('yak', 'r'), ('dog', 'c')])]
    images = [dict(id=i, width=32, height=32, coco_url=f'http://images.cocodataset.org/'
                   f'train2017/{i:012d}.jpg', neg_category_ids=[], not_exhaustive_category_ids=[])
              for i in (1, 2, 3)]
    poly = [[2, 2, 12, 2, 12, 12, 2, 12]]
    annotations = [dict(id=1, image_id=1, category_id=1, bbox=[2, 2, 10, 10], area=100,
                        segmentation=poly),
                   dict(id=2, image_id=1, category_id=2, bbox=[2, 2, 10, 10], area=100,
                        segmentation=poly),
                   dict(id=3, image_id=2, category_id=2, bbox=[2, 2, 10, 10], area=100,
                        segmentation=poly),
                   dict(id=4, image_id=3, category_id=3, bbox=[2, 2, 10, 10], area=100,
                        segmentation=poly)]
    path = tmp_path / 'lvis_small.json'
    _write_lvis(path, categories, images, annotations)
    return str(path)


def test_ov_lvis_loader_removes_novel_annotations_and_empty_images(tmp_path):
    from ovdense.datasets import OVLVISV1Dataset
    ann = _small_lvis(tmp_path)
    train = OVLVISV1Dataset(ann_file=ann, data_root=str(tmp_path), pipeline=[],
                            data_prefix=dict(img=''))
    assert train.metainfo['classes'] == ('cat', 'yak', 'dog')  # indexing unchanged
    labels = {info['img_id']: [i['bbox_label'] for i in info['instances']]
              for info in map(train.get_data_info, range(len(train)))}
    assert labels == {1: [0], 3: [2]}  # yak (r) gone; image 2 had only yak -> dropped
    assert train.novel_label_ids == [1]
    by_name = OVLVISV1Dataset(ann_file=ann, data_root=str(tmp_path), pipeline=[],
                              novel_classes=['dog'], data_prefix=dict(img=''))
    assert sorted(by_name.get_data_info(i)['img_id'] for i in range(len(by_name))) == [1, 2]
    full = OVLVISV1Dataset(ann_file=ann, data_root=str(tmp_path), pipeline=[],
                           remove_novel=False, test_mode=True, data_prefix=dict(img=''))
    assert len(full) == 3


def test_ov_lvis_loader_bad_input(tmp_path):
    from ovdense.datasets import OVLVISV1Dataset
    ann = _small_lvis(tmp_path)
    with pytest.raises(ValueError, match="novel_classes: \\['zebra'\\] are neither label ids"):
        OVLVISV1Dataset(ann_file=ann, pipeline=[], novel_classes=['zebra'])
    with pytest.raises(ValueError, match='lvis_small.json.*first differences'):
        OVLVISV1Dataset(ann_file=ann, pipeline=[], metainfo=dict(classes=('cat', 'dog', 'yak')))


# -- test-time post-processing: threshold first == mmdet's multiclass_nms path ----------------
def _text_bbox_head(tmp_path, num_classes, agnostic, loss_cls=None):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = dict(type='TextShared2FCBBoxHead', in_channels=8, fc_out_channels=16,
               roi_feat_size=7, num_classes=num_classes, reg_class_agnostic=agnostic,
               text_classifier=dict(vocabulary=[f'c{i}' for i in range(num_classes)],
                                    text_tower=tiny_text_tower_cfg(str(tmp_path))))
    if loss_cls is not None:
        cfg['loss_cls'] = loss_cls
    return MODELS.build(cfg).eval()


def _random_predictions(num_rois, num_classes, agnostic, seed):
    """RoIs clustered in a small image (so NMS suppresses), logits, box deltas."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(num_rois, 2, generator=g) * 60
    wh = torch.rand(num_rois, 2, generator=g) * 30 + 2
    roi = torch.cat([torch.zeros(num_rois, 1), xy, xy + wh], dim=1)
    cls_score = torch.randn(num_rois, num_classes + 1, generator=g) * 3
    cls_score[: num_rois // 4] = cls_score[0]  # ties: equal scores on several RoIs
    cls_score[-1, 0] = float('nan')  # mmdet judges the rest of a sigmoid row as usual
    bbox_pred = torch.randn(num_rois, 4 * (1 if agnostic else num_classes), generator=g) * 0.2
    return roi, cls_score, bbox_pred


def _assert_same_results(fast, stock):
    assert set(fast.keys()) == set(stock.keys())
    for key in stock.keys():
        torch.testing.assert_close(fast[key], stock[key], rtol=0, atol=0, equal_nan=True,
                                   msg=key)  # exactly equal (NaN where mmdet has NaN)


def _threshold_keeping(cls_score, activation, pairs):
    """A score threshold that about ``pairs`` (RoI, class) pairs pass."""
    scores = activation(cls_score)[:, :-1].flatten()
    scores = scores[~scores.isnan()].sort(descending=True).values
    return float(scores[min(pairs, len(scores)) - 1])


def _demo_mask_rcnn(tmp_path, roi_head_type, sigmoid=False):
    config = osp.join(REPO, 'configs', 'demo',
                      'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py')
    cfg = shrink_config(config, str(tmp_path), vocabulary=','.join(f'c{i}' for i in range(30)))
    cfg.model.roi_head.type = roi_head_type
    cfg.model.roi_head.mask_head.class_agnostic = False  # masks indexed by the labels
    if sigmoid:  # as the LVIS configs: the loss's own activation, a zero background logit
        cfg.model.roi_head.bbox_head.loss_cls = dict(type='FederatedSigmoidLoss')
        cfg.model.roi_head.bbox_head.text_classifier.background = 'zero'
    return _build(cfg).eval()


