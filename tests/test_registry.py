"""Registration (ovdense/registry.py): components are registered by plain name in every scope
(also through a config's custom_imports), and a module built with a text_classifier it does
not use is refused."""
import subprocess
import sys

import pytest

import ovdense
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.configs import installed_config
from ovdense.utils.cli import ConfigError


@pytest.fixture
def _scope_is_current(scope):
    """``scope`` as the default scope: a registry builds through the current default scope's
    registry, and an earlier test may leave another one current (mmengine's Runner leaves
    'mmengine', whose registry holds no ovdense component)."""
    from mmengine.registry import init_default_scope
    init_default_scope(scope)


@pytest.mark.usefixtures('_scope_is_current')
@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_components_registered_by_plain_name(scope, tmp_path):
    import importlib
    registry = importlib.import_module(f'{scope}.registry').MODELS
    from ovdense.testing import tiny_text_tower_cfg
    from ovdense.text import TextCosineClassifier
    assert registry.get('TextCosineClassifier') is TextCosineClassifier
    head = registry.build(dict(type='TextCosineClassifier', in_features=8, vocabulary='a,b',
                               text_tower=tiny_text_tower_cfg(str(tmp_path))))
    assert isinstance(head, TextCosineClassifier)
    assert 'TextCosineClassifier' in ovdense.registered_components()[(scope, 'MODELS')]


def test_custom_imports_in_a_config_registers_everything(tmp_path):
    code = (
        'from mmengine.config import Config\n'
        'from mmengine.registry import init_default_scope\n'
        "cfg = Config(dict(custom_imports=dict(imports=['ovdense'], "
        "allow_failed_imports=False), default_scope='mmdet'))\n"
        'from mmengine.utils import import_modules_from_strings\n'
        'import_modules_from_strings(**cfg.custom_imports)\n'
        'from mmdet.registry import MODELS\n'
        "print(MODELS.get('TextCosineClassifier').__name__)\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'TextCosineClassifier'


VOCAB4 = 'red circle,blue star,green square,yellow ring'


@pytest.fixture
def _mmdet_scope():
    """mmdet as the default scope, as in tests/test_models/test_dense_heads/."""
    from mmengine.logging import MessageHub
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    hub = MessageHub.get_current_instance()
    hub.update_info('epoch', 0)
    hub.update_info('iter', 0)


@pytest.mark.usefixtures('_mmdet_scope')  # the mmdet head is built in mmdet's scope
def test_text_classifier_on_a_head_that_ignores_it_is_refused(tmp_path):
    """mmdet's and mmseg's Mask2FormerHead take **kwargs: the key would be swallowed and the
    stock classifier trained. Any module built with the key and no text classifier is refused."""
    from mmdet.registry import MODELS
    cfg = installed_config('mmdet', 'mask2former/mask2former_r50_8xb2-lsj-50e_coco.py')
    cfg.model.panoptic_head.text_classifier = dict(
        vocabulary=VOCAB4, text_tower=tiny_text_tower_cfg(str(tmp_path)))
    with pytest.raises(ConfigError, match='Mask2FormerHead: text_classifier is not used'):
        MODELS.build(cfg.model)
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS as SEG_MODELS
    init_default_scope('mmseg')
    head = installed_config('mmseg', 'mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py'
                            ).model.decode_head
    head.text_classifier = dict(vocabulary=VOCAB4)
    with pytest.raises(ConfigError, match='Mask2FormerHead: text_classifier is not used'):
        SEG_MODELS.build(head)
