"""Every shipped mmaction config trains one step and predicts at tiny size (TextI3DHead, all but
the novel classes trained), and the Kinetics configs are the documented recipe (skipped
without the "action" extra)."""
import os.path as osp

import pytest
import torch

import ovdense  # noqa: F401
from ovdense.testing.configs import (REPO, parameters_without_gradient, shipped_configs,
                                     shrink_config, unused_paramwise_keys)
from ovdense.testing.optional import require_mmaction

require_mmaction(module_level=True)  # absent: skipped; installed but broken: fails

from ovdense.models.heads import TextI3DHead  # noqa: E402
from ovdense.testing.inputs import action_clips, training_batch  # noqa: E402
from ovdense.testing.models import build_model  # noqa: E402


def action_configs():
    found = shipped_configs('mmaction')
    assert len(found) >= 3, f'action configs not found: {found}'
    return found


@pytest.mark.parametrize('config', action_configs(), ids=lambda p: osp.relpath(p, REPO))
def test_config_trains_one_step_and_predicts(config, tmp_path):
    cfg = shrink_config(config, str(tmp_path))
    model = build_model('mmaction', cfg.model)
    model.init_weights()
    head = model.cls_head
    assert isinstance(head, TextI3DHead)
    assert type(head.fc_cls).__name__ == 'TextCosineClassifier'
    assert unused_paramwise_keys(model, cfg.get('optim_wrapper')) == []
    num_classes = cfg.model.cls_head.num_classes
    trained = head.fc_cls.class_embeddings.trained_class_ids()  # all but the novel classes
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    data = model.data_preprocessor(training_batch(model, 'mmaction'), True)
    losses = model(**data, mode='loss')
    assert head.num_classes == num_classes
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert parameters_without_gradient(model) == []  # what DDP's default wrapper needs
    optimizer.step()
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(action_clips(trained, batch=1), False),
                        mode='predict')
    score = results[0].pred_score
    assert score.shape == (num_classes,)
    assert torch.allclose(score.sum(), torch.tensor(1.0), atol=1e-4)  # average_clips='prob'


K400_CONFIG = osp.join(REPO, 'configs', 'action',
                       'video-swin-b_icar_p244-w877_32x2x1-30e_kinetics400-rgb.py')
OV_CONFIG = osp.join(REPO, 'configs', 'action',
                     'video-swin-b_icar_p244-w877_32x2x1-30e_ov-kinetics400-base200.py')


def test_kinetics_configs_are_the_documented_recipe():
    from mmengine.config import Config
    full, ovc = Config.fromfile(K400_CONFIG), Config.fromfile(OV_CONFIG)
    assert full.model.backbone.type == 'ICARSwin3D' and full.model.backbone.arch == 'base'
    assert full.model.backbone.checkpoint == full.icar_checkpoint
    assert full.model.cls_head.text_classifier.prompts.templates == 'action'
    assert full.model.cls_head.text_classifier.text_tower.hf_dir == full.roberta_dir
    sample = [t for t in full.train_pipeline if t['type'] == 'SampleFrames'][0]
    assert (sample['clip_len'], sample['frame_interval']) == (32, 2)
    assert full.train_pipeline[0]['type'] == 'CheckedOpenCVInit'  # no decord needed
    assert full.train_dataloader.dataset.ann_file.startswith(full.data_root)
    # the split is said once and given to the classifier, the training data and the metric
    assert len(ovc.novel_classes) == 200
    assert ovc.model.cls_head.text_classifier.novel_classes == ovc.novel_classes
    assert ovc.train_dataloader.dataset.novel_classes == ovc.novel_classes
    assert ovc.val_evaluator.novel_classes == ovc.novel_classes
    assert 'novel_classes' not in ovc.test_dataloader.dataset  # all 400 clips at test time
