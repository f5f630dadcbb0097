"""Detection: every shipped mmdet config trains one step and predicts at tiny size; the
text bbox heads, OV-LVIS loading, and test-time vocabulary swap."""
import json
import os.path as osp

import pytest
import torch

import ovdense  # noqa: F401
from ovdense.apis import set_model_vocabulary
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.configs import REPO, shipped_configs, shrink_config

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


def _num_classes(cfg):
    return cfg.model.roi_head.bbox_head[-1]['num_classes'] if isinstance(
        cfg.model.roi_head.bbox_head, list) else cfg.model.roi_head.bbox_head.num_classes


@pytest.mark.parametrize('config', detection_configs(), ids=lambda p: osp.relpath(p, REPO))
def test_config_trains_one_step_and_predicts(config, tmp_path):
    cfg = shrink_config(config, str(tmp_path))
    num_classes = _num_classes(cfg)
    model = _build(cfg)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train()
    data = model.data_preprocessor(_inputs(num_classes), True)
    losses = model(**data, mode='loss')
    total = sum(v if isinstance(v, torch.Tensor) else sum(v) for k, v in losses.items()
                if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(_inputs(num_classes, 1), False),
                        mode='predict')
    assert len(results) == 1 and 'bboxes' in results[0].pred_instances


def test_stock_head_adopts_text_classifier_with_type_and_one_key(tmp_path):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    stock = dict(type='Shared2FCBBoxHead', in_channels=8, fc_out_channels=16, roi_feat_size=7,
                 num_classes=3, reg_class_agnostic=True)
    head = MODELS.build(dict(stock, type='TextShared2FCBBoxHead', text_classifier=dict(
        vocabulary='red circle,blue star,green square',
        text_tower=tiny_text_tower_cfg(str(tmp_path)))))
    reference = MODELS.build(stock)
    assert type(head.fc_cls).__name__ == 'TextCosineClassifier'
    assert [n for n, _ in head.shared_fcs.named_parameters()] == [
        n for n, _ in reference.shared_fcs.named_parameters()]
    cls_score, bbox_pred = head.eval()(torch.randn(5, 8, 7, 7))
    assert cls_score.shape == (5, 4) and bbox_pred.shape == (5, 4)
    with pytest.raises(ValueError, match='expects 81 outputs but vocabulary'):
        MODELS.build(dict(stock, type='TextShared2FCBBoxHead', num_classes=80,
                          text_classifier=dict(vocabulary='a,b,c',
                                               text_tower=tiny_text_tower_cfg(str(tmp_path)))))


def test_federated_sigmoid_loss_scores_present_and_sampled_classes():
    from ovdense.models.detection import FederatedSigmoidLoss
    loss = FederatedSigmoidLoss(num_sample_classes=4).train()
    labels = torch.tensor([0, 2, 10, 10])  # 10 classes; label 10 = background
    mask = loss.class_mask(labels, 10)
    assert mask[0] == 1 and mask[2] == 1 and int(mask.sum()) == 4
    scores = torch.randn(4, 11, requires_grad=True)
    value = loss(scores, labels, torch.ones(4))
    value.backward()
    assert torch.isfinite(value) and scores.grad[:, 10].abs().sum() == 0
    assert loss.get_activation(scores).shape == (4, 11)


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
    with pytest.raises(ValueError, match='novel classes not among its categories'):
        OVLVISV1Dataset(ann_file=ann, pipeline=[], novel_classes=['zebra'])
    with pytest.raises(ValueError, match='lvis_small.json.*first differences'):
        OVLVISV1Dataset(ann_file=ann, pipeline=[], metainfo=dict(classes=('cat', 'dog', 'yak')))


def test_vocabulary_swap_changes_outputs_without_retraining(tmp_path):
    config = osp.join(REPO, 'configs', 'demo',
                      'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py')
    cfg = shrink_config(config, str(tmp_path), vocabulary=','.join(f'c{i}' for i in range(30)))
    model = _build(cfg).eval()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    vocab = set_model_vocabulary(model, 'red star,blue heart,green moon,wheel,kite')
    assert model.roi_head.bbox_head.num_classes == 5
    with torch.no_grad():
        results = model(**model.data_preprocessor(_inputs(30, 1), False), mode='predict')
    labels = results[0].pred_instances.labels
    assert labels.numel() == 0 or int(labels.max()) < 5
    assert vocab.names[0] == 'red star'
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    cls_score, _ = model.roi_head.bbox_head(torch.randn(3, 64, 7, 7))
    assert cls_score.shape == (3, 6)


def test_vocabulary_swap_refuses_class_specific_parts(tmp_path):
    config = osp.join(REPO, 'configs', 'demo',
                      'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py')
    cfg = shrink_config(config, str(tmp_path), vocabulary=','.join(f'c{i}' for i in range(30)))
    cfg.model.roi_head.mask_head.class_agnostic = False
    model = _build(cfg)
    with pytest.raises(ValueError, match='predicts masks per class.*class_agnostic=True'):
        set_model_vocabulary(model, 'a,b')
