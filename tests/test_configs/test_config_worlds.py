"""Every shipped config with its real settings, in a world of its own
(:mod:`ovdense.testing.worlds`: each file the config names written small, in its real format,
under a new working directory; only sizes shrunk). mmengine's Runner builds the config's
pipelines, dataset classes, optimizer wrapper, parameter schedulers, hooks and evaluator,
trains one iteration from the tiny checkpoint in the config's real layout (every trainable
parameter gets a gradient, as DDP's default wrapper needs) and runs the test loop through the
config's own evaluator."""
import math
import os.path as osp

import pytest
from mmengine.hooks import Hook

import ovdense  # noqa: F401
from ovdense.testing.configs import (REPO, cpu_optim_wrapper, parameters_without_gradient,
                                     shipped_configs, unused_paramwise_keys)
from ovdense.testing.optional import require_mmaction
from ovdense.testing.worlds import config_world, missing_files

ACTION_CONFIGS = shipped_configs('mmaction')
CONFIGS = shipped_configs('mmdet') + shipped_configs('mmseg') + ACTION_CONFIGS


class RecordParametersWithoutGradient(Hook):
    """Notes, before the first optimizer step, the trainable parameters backward missed."""

    def __init__(self):
        self.without_gradient = None

    def before_train(self, runner) -> None:
        wrapper = runner.optim_wrapper
        step = wrapper.step

        def checked_step(**kwargs):
            if self.without_gradient is None:
                self.without_gradient = parameters_without_gradient(runner.model)
            return step(**kwargs)
        wrapper.step = checked_step


# the heads that classify (RPN and mask heads are class-agnostic), each with a text classifier
HEADS = ('roi_head', 'bbox_head', 'decode_head', 'auxiliary_head', 'cls_head')


def _as_list(module):
    import torch.nn as nn
    if module is None:
        return []
    return list(module) if isinstance(module, nn.ModuleList) else [module]


def _fresh_visualizers():
    """In one process mmengine hands a new runner the visualizer an earlier one made (with
    that runner's save_dir); a command line process never has one."""
    from mmengine.visualization import Visualizer
    for name in list(Visualizer._instance_dict):
        Visualizer._instance_dict.pop(name)


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_config_trains_and_tests_in_its_own_world(config, tmp_path, monkeypatch):
    from mmengine.runner import Runner

    from ovdense.apis.vocabulary import text_classifiers
    if config in ACTION_CONFIGS:
        require_mmaction()
    monkeypatch.chdir(tmp_path)
    cfg = config_world(config, str(tmp_path))
    assert missing_files(cfg) == []
    trains = bool(cfg.get('train_dataloader'))
    if trains:
        cfg.optim_wrapper = cpu_optim_wrapper(cfg.optim_wrapper)
    else:  # an evaluation-only config (the open-vocabulary segmentation test sets)
        cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None  # the test loop evaluates once
    _fresh_visualizers()
    runner = Runner.from_cfg(cfg)
    heads = [head for name in HEADS for head in _as_list(getattr(runner.model, name, None))]
    assert heads and all(text_classifiers(head) for head in heads), 'a head without text'
    if trains:
        spy = RecordParametersWithoutGradient()
        runner.register_hook(spy, priority='VERY_HIGH')
        runner.train()
        assert spy.without_gradient == []
        assert unused_paramwise_keys(runner.model, cfg.optim_wrapper) == []
    metrics = runner.test()
    assert metrics, 'the test loop reported no metric'
    assert all(math.isfinite(v) or v == -1 for v in metrics.values()
               if isinstance(v, float)), metrics
