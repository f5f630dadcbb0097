"""set_model_vocabulary (ovdense/apis/vocabulary.py): after a swap a detector or segmentor
predicts exactly what one built with the new vocabulary and the same weights predicts, without
retraining; class-specific parts and bad classifier files are refused before anything
changes."""
import os.path as osp

import pytest
import torch

import ovdense  # noqa: F401
from ovdense.apis import set_model_vocabulary
from ovdense.testing.configs import REPO, shrink_config
from ovdense.testing.inputs import det_inputs, seg_inputs
from ovdense.testing.models import assert_same_results, build_model
from ovdense.testing.text import FILE_CLASSES as CLASSES
from ovdense.testing.text import classifier_file, unit_rows

SEG_CONFIG = osp.join(REPO, 'configs', 'demo',
                      'upernet_icar-swin-nano_fcn-aux_2k_ovdense-demo-ade.py')


def test_vocabulary_swap_changes_outputs_without_retraining(tmp_path):
    """After set_model_vocabulary the model predicts exactly what a model built with the new
    vocabulary and the same weights predicts (and no longer what it predicted before)."""
    config = osp.join(REPO, 'configs', 'demo',
                      'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py')
    new_names = 'red star,blue heart,green moon,wheel,kite'
    model = build_model('mmdet', shrink_config(
        config, str(tmp_path), vocabulary=','.join(f'c{i}' for i in range(30))).model,
        init_weights=True).eval()
    new_cfg = shrink_config(config, str(tmp_path), vocabulary=new_names)
    new_cfg.model.roi_head.bbox_head.num_classes = 5
    built_new = build_model('mmdet', new_cfg.model, init_weights=True).eval()
    built_new.load_state_dict(model.state_dict())
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    data = model.data_preprocessor(det_inputs(30, 1), False)
    roi_features = torch.randn(3, 64, 7, 7)
    with torch.no_grad():
        before = model.roi_head.bbox_head(roi_features)[0]
        vocab = set_model_vocabulary(model, new_names)
        after = model.roi_head.bbox_head(roi_features)[0]
        expected = built_new.roi_head.bbox_head(roi_features)[0]
        swapped = model(**data, mode='predict')[0].pred_instances
        reference = built_new(**data, mode='predict')[0].pred_instances
    assert vocab.names[0] == 'red star' and model.roi_head.bbox_head.num_classes == 5
    assert before.shape == (3, 31) and after.shape == (3, 6)
    torch.testing.assert_close(after, expected, rtol=0, atol=0)
    assert not torch.allclose(after[:, :5], before[:, :5])  # other classes, other scores
    assert len(reference.labels) > 0 and int(reference.labels.max()) < 5
    assert_same_results(swapped, reference)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())


@pytest.mark.parametrize('part,key,message', [
    ('mask_head', 'class_agnostic', 'predicts masks per class.*class_agnostic=True'),
    ('bbox_head', 'reg_class_agnostic',
     'regresses boxes per class .30 classes.; set reg_class_agnostic=True')])
def test_vocabulary_swap_refuses_class_specific_parts(tmp_path, part, key, message):
    config = osp.join(REPO, 'configs', 'demo',
                      'mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py')
    cfg = shrink_config(config, str(tmp_path), vocabulary=','.join(f'c{i}' for i in range(30)))
    cfg.model.roi_head[part][key] = False
    model = build_model('mmdet', cfg.model, init_weights=True)
    with pytest.raises(ValueError, match=message):
        set_model_vocabulary(model, 'a,b')
    assert model.roi_head.bbox_head.num_classes == 30  # refused before anything changed


def test_vocabulary_swap_on_segmentor(tmp_path):
    """After set_model_vocabulary the segmentor's logits are exactly those of a segmentor built
    with the new vocabulary and the same weights, and differ from before the swap."""
    new_names = 'red star,blue heart,green moon,wheel,kite'
    cfg = shrink_config(SEG_CONFIG, str(tmp_path), vocabulary=','.join(f'c{i}' for i in range(30)))
    model = build_model('mmseg', cfg.model).eval()
    new_cfg = shrink_config(SEG_CONFIG, str(tmp_path), vocabulary=new_names)
    new_cfg.model.decode_head.num_classes = new_cfg.model.auxiliary_head.num_classes = 5
    built_new = build_model('mmseg', new_cfg.model)
    built_new.load_state_dict(model.state_dict())
    built_new.eval()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    data = model.data_preprocessor(seg_inputs(5, 1), False)
    with torch.no_grad():
        before = model(**data, mode='predict')[0].seg_logits.data
        vocab = set_model_vocabulary(model, new_names)
        assert len(vocab) == 5
        assert model.decode_head.num_classes == model.num_classes == 5
        assert model.decode_head.out_channels == 6  # predict_background keeps the background id
        assert model.out_channels == 6  # the segmentor's own copy (sliding-window inference)
        for segmentor in (model, built_new):
            segmentor.test_cfg.update(mode='slide', crop_size=(48, 48), stride=(32, 32))
        results = model(**data, mode='predict')
        reference = built_new(**data, mode='predict')
    logits = results[0].seg_logits.data
    assert before.shape[0] == 31 and logits.shape[0] == 6
    torch.testing.assert_close(logits, reference[0].seg_logits.data, rtol=0, atol=0)
    assert torch.equal(results[0].pred_sem_seg.data, reference[0].pred_sem_seg.data)
    assert not torch.allclose(logits[:5], before[:5])
    assert int(results[0].pred_sem_seg.data.max()) <= 5
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())


def _vocabulary_state(model, image):
    """What a vocabulary swap changes: names, files, class counts and the logits."""
    from ovdense.apis import text_classifiers
    with torch.no_grad():
        logits = (model(image, mode='tensor'), model.auxiliary_head(model.extract_feat(image)))
    return ([(c.vocabulary.names, c.class_embeddings.embeddings_file)
             for c in text_classifiers(model)],
            [(name, m.num_classes, getattr(m, 'out_channels', None))
             for name, m in model.named_modules() if hasattr(m, 'num_classes')], logits)


def test_refused_vocabulary_swap_leaves_the_model_unchanged(tmp_path):
    """set_model_vocabulary checks the file for every classifier before switching any: a
    refused file used to leave new names on old embeddings and old class counts."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from ovdense.apis import set_model_vocabulary
    from ovdense.utils import OvdenseFileError
    init_default_scope('mmseg')
    cfg = shrink_config(SEG_CONFIG, str(tmp_path), ','.join(f'c{i}' for i in range(30)))
    model = MODELS.build(cfg.model).eval()
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    before = _vocabulary_state(model, image)
    nan_rows = unit_rows()
    nan_rows[1] = float('nan')
    bad_files = {'rows': classifier_file(tmp_path / 'rows.npy', unit_rows(3)),
                 'dim': classifier_file(tmp_path / 'dim.npy', unit_rows(dim=16)),
                 'nan': classifier_file(tmp_path / 'nan.pt', nan_rows),
                 'names': classifier_file(tmp_path / 'names.pt', unit_rows(), CLASSES[::-1])}
    for fault, path in bad_files.items():
        with pytest.raises(OvdenseFileError, match=osp.basename(path)):
            set_model_vocabulary(model, ','.join(CLASSES), path)
        after = _vocabulary_state(model, image)
        assert after[:2] == before[:2], fault
        assert all(torch.equal(a, b) for a, b in zip(after[2], before[2])), fault
    good = classifier_file(tmp_path / 'good.pt', unit_rows())
    set_model_vocabulary(model, ','.join(CLASSES), good)
    assert model.decode_head.num_classes == model.auxiliary_head.num_classes == 4
