"""What the tools do before a run (ovdense/utils/launch.py): --cfg-options that add
custom_imports are imported, every run in one process gets its own logger and visualizer, and
paramwise keys that match no parameter are named."""
import sys

from ovdense.testing.configs import REPO


DEMO = 'configs/demo/mask-rcnn_icar-swin-nano_fpn_400i_ovdense-demo-lvis.py'


def test_custom_imports_given_by_cfg_options_are_imported(tmp_path, monkeypatch):
    """Config.fromfile imports a config's custom_imports before --cfg-options are merged;
    an import added on the command line must still happen."""
    from ovdense.utils.launch import load_config
    (tmp_path / 'ovdense_cli_plugin.py').write_text('IMPORTED = True\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, 'ovdense_cli_plugin', raising=False)
    load_config(f'{REPO}/{DEMO}', {'custom_imports.imports': ['ovdense', 'ovdense_cli_plugin']})
    assert sys.modules['ovdense_cli_plugin'].IMPORTED


def test_runs_started_in_one_process_get_their_own_logger_and_visualizer():
    """Loggers and visualizers are per-name singletons; mmengine names them <config>_<second>
    and mmdet's / mmseg's runtimes name the visualizer 'visualizer', so a second in-process run
    wrote into the first one's folders. Every run started through the tools has its own name."""
    from mmengine.config import Config

    from ovdense.utils.launch import name_run
    names = set()
    for _ in range(3):
        cfg = Config(dict(default_scope='mmseg', visualizer=dict(type='SegLocalVisualizer',
                                                                 name='visualizer')))
        name_run(cfg, 'configs/x/some_config.py')
        assert cfg.experiment_name.startswith('some_config_')
        assert cfg.visualizer.name == cfg.experiment_name
        names.add(cfg.experiment_name)
    assert len(names) == 3
    kept = Config(dict(experiment_name='mine'))
    name_run(kept, 'c.py')
    assert kept.experiment_name == 'mine' and 'visualizer' not in kept


def test_paramwise_keys_that_match_no_parameter_are_named(capsys):
    """mmengine's and mmaction2's optimizer constructors ignore a key that matches no
    parameter name: tools/train.py names such keys in one warning line."""
    import torch.nn as nn

    from ovdense.utils.launch import unmatched_paramwise_keys, warn_unmatched_paramwise_keys
    model = nn.Module()
    model.backbone = nn.Linear(2, 2)
    model.class_embeddings = nn.Module()
    model.class_embeddings.tower = nn.Linear(2, 2)
    default = dict(paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1),
                                                   'text_tower': dict(lr_mult=0.1),
                                                   'embeddings.tower': dict(lr_mult=0.1)}))
    assert unmatched_paramwise_keys(model, default) == ['text_tower']
    swin = dict(constructor='SwinOptimWrapperConstructor',
                paramwise_cfg=dict(norm_decay_mult=0., backbone=dict(lr_mult=0.1),
                                   absolute_pos_embed=dict(decay_mult=0.)))
    assert unmatched_paramwise_keys(model, swin) == ['absolute_pos_embed']
    assert unmatched_paramwise_keys(model, None) == []
    warn_unmatched_paramwise_keys(model, default)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "['text_tower'] match no parameter name of Module" in err[0]
