"""The Kinetics configs are the documented recipe (skipped without the "action" extra); every
shipped config trains and tests in tests/test_configs/test_config_worlds.py."""
import os.path as osp

import ovdense  # noqa: F401
from ovdense.testing.configs import REPO
from ovdense.testing.optional import require_mmaction

require_mmaction(module_level=True)  # absent: skipped; installed but broken: fails

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
