"""Every shipped training config trains two steps under torchrun (2 CPU ranks, gloo) and
mmengine's default DDP wrapper (ovdense.testing.ddp_check): DDP stops at the second step if a
parameter got no gradient."""
import importlib.util

import pytest

from ovdense.testing.runs import torchrun_program


def training_configs() -> list:
    """Every shipped config that trains (test-only configs have no train_dataloader)."""
    from mmengine.config import Config
    from ovdense.testing.configs import shipped_configs
    from ovdense.testing.optional import require_mmaction
    scopes = ['mmdet', 'mmseg']
    if importlib.util.find_spec('mmaction') is not None:
        require_mmaction()  # installed: it must import
        scopes.append('mmaction')
    return [path for scope in scopes for path in shipped_configs(scope)
            if Config.fromfile(path).get('train_dataloader')]


@pytest.mark.slow
def test_every_shipped_training_config_trains_under_the_default_ddp_wrapper(tmp_path):
    """Two ranks (gloo, CPU), mmengine's default DDP wrapper: each shipped training config,
    shrunk and built from an iCAR-layout checkpoint holding visual_model.projector.weight,
    trains two steps. DDP stops at the second step if any parameter got no gradient."""
    configs = training_configs()
    assert len(configs) >= 12, configs
    code, _, output = torchrun_program(['-m', 'ovdense.testing.ddp_check', str(tmp_path),
                                        *configs], timeout=900)
    assert code == 0, output[-4000:]
    for config in configs:
        assert f'ddp ok: {config}' in output, (config, output[-4000:])
