"""The one class check of every task (ovdense/engine/hooks/vocabulary_check_hook.py:
VocabularyCheckHook / check_dataset_classes): the same rule for a detection head, a
segmentation head and the action head, in every phase."""
from types import SimpleNamespace

import pytest
import torch.nn as nn

import ovdense  # noqa: F401
from ovdense.engine.hooks import VocabularyCheckHook, check_dataset_classes
from ovdense.testing import tiny_text_tower_cfg
from ovdense.testing.optional import require_mmaction
from ovdense.text import TextCosineClassifier
from ovdense.utils.cli import ConfigError
from ovdense.utils.launch import add_vocabulary_check

NAMES = ['red circle', 'blue star', 'green square']


def _dataset(classes, name='ToyDataset'):
    return type(name, (), {'metainfo': {'classes': tuple(classes)}})()


def _model(tmp_path):
    model = nn.Module()
    model.head = TextCosineClassifier(8, ','.join(NAMES), random_embeddings=True,
                                      text_tower=tiny_text_tower_cfg(str(tmp_path)))
    return model


def test_same_classes_pass_and_spacing_is_ignored(tmp_path):
    model = _model(tmp_path)
    assert check_dataset_classes(model, _dataset(NAMES), 'test').names == tuple(NAMES)
    assert check_dataset_classes(model, _dataset(['red  circle ', 'blue star', 'green square']),
                                 'test') is not None


def test_size_and_order_mismatches_are_refused_in_one_line(tmp_path):
    model = _model(tmp_path)
    with pytest.raises(ConfigError, match=r'vocabulary size mismatch: the model predicts 3 '
                                          r'classes .* test dataset ToyDataset has 2 classes'):
        check_dataset_classes(model, _dataset(NAMES[:2]), 'test')
    swapped = [NAMES[1], NAMES[0], NAMES[2]]
    with pytest.raises(ConfigError, match=r"class names differ: .* training dataset ToyDataset "
                                          r"both have 3 classes but 2 names differ; first "
                                          r"differences \(index, model, dataset\): "
                                          r"\[\(0, 'red circle', 'blue star'\)"):
        check_dataset_classes(model, _dataset(swapped), 'training')


def test_the_hook_checks_every_phase_with_metrics_only(tmp_path):
    model = _model(tmp_path)

    def loop(classes, metrics):
        return SimpleNamespace(dataloader=SimpleNamespace(dataset=_dataset(classes)),
                               evaluator=SimpleNamespace(metrics=metrics))
    runner = SimpleNamespace(
        model=model, train_dataloader=SimpleNamespace(dataset=_dataset(NAMES)),
        val_loop=loop(NAMES, ['metric']), test_loop=loop(['a', 'b'], []))
    hook = VocabularyCheckHook()
    hook.before_train(runner)
    hook.before_val(runner)
    hook.before_test(runner)  # no metrics: pictures only, not checked
    runner.test_loop.evaluator.metrics = ['metric']
    with pytest.raises(ConfigError, match='vocabulary size mismatch'):
        hook.before_test(runner)


def test_the_tools_add_the_check_once_for_every_scope():
    from mmengine.config import Config
    for scope in ('mmdet', 'mmseg', 'mmaction'):
        cfg = Config(dict(default_scope=scope))
        add_vocabulary_check(cfg)
        add_vocabulary_check(cfg)
        assert [h['type'] for h in cfg.custom_hooks] == ['VocabularyCheckHook']
    kept = Config(dict(default_scope='mmseg', custom_hooks=[dict(type='SegVocabularyCheckHook')]))
    add_vocabulary_check(kept)
    assert [h['type'] for h in kept.custom_hooks] == ['SegVocabularyCheckHook']


def test_former_names_build_the_one_hook():
    from mmdet.registry import HOOKS as DET_HOOKS
    from mmseg.registry import HOOKS as SEG_HOOKS
    assert DET_HOOKS.get('DetVocabularyCheckHook') is VocabularyCheckHook
    assert SEG_HOOKS.get('VocabularyCheckHook') is VocabularyCheckHook
    assert issubclass(SEG_HOOKS.get('SegVocabularyCheckHook'), VocabularyCheckHook)


def test_the_action_head_is_checked_by_the_same_hook(tmp_path):
    require_mmaction()
    from mmaction.registry import HOOKS, MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')  # earlier tests may leave another scope current
    assert HOOKS.get('ActionVocabularyCheckHook') is VocabularyCheckHook
    head = MODELS.build(dict(
        type='TextI3DHead', in_channels=8,
        text_classifier=dict(vocabulary=','.join(NAMES), novel_classes=[1],
                             text_tower=tiny_text_tower_cfg(str(tmp_path)))))
    model = nn.Module()
    model.cls_head = head
    # novel classes are left out of the training logits, not out of the class list
    for what in ('training', 'validation'):
        assert check_dataset_classes(model, _dataset(NAMES), what).names == tuple(NAMES)
    with pytest.raises(ConfigError, match='model predicts 3 classes .* training dataset'):
        check_dataset_classes(model, _dataset([NAMES[0], NAMES[2]]), 'training')
