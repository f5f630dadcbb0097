"""Class-embedding components (ovdense/text/class_embeddings.py): each source (frozen tower,
file, random, jointly trained tower) on its own, a shared component read by classifiers that
do not own it, and test-time weights that hold the class embeddings once."""
import pytest
import torch

import ovdense  # noqa: F401
from ovdense.testing import tiny_text_tower_cfg
from ovdense.text import (FileClassEmbeddings, FrozenTowerClassEmbeddings,
                          RandomClassEmbeddings, TextCosineClassifier,
                          TrainedTowerClassEmbeddings, save_classifier_file)


NAMES = 'red circle,blue star,green square'


def test_sources_give_unit_rows_one_per_class(tmp_path):
    tower = tiny_text_tower_cfg(str(tmp_path))
    frozen = FrozenTowerClassEmbeddings(NAMES, tower, cache_dir=str(tmp_path / 'cache'))
    weights = frozen()
    assert weights.shape == (3, frozen.embed_dim) and not weights.requires_grad
    torch.testing.assert_close(weights.norm(dim=-1), torch.ones(3))
    assert frozen() is weights  # computed once per vocabulary and device
    path = str(tmp_path / 'classes.pt')
    save_classifier_file(path, weights, frozen.describe())
    from_file = FileClassEmbeddings(NAMES, path)
    # the file holds the exact rows; loading re-normalises them (1-ulp differences)
    torch.testing.assert_close(from_file(), weights)
    random = RandomClassEmbeddings(NAMES, embed_dim=8)
    torch.testing.assert_close(random(), RandomClassEmbeddings(NAMES, embed_dim=8)())
    assert random().shape == (3, 8)


def test_file_source_needs_a_file_for_another_vocabulary(tmp_path):
    path = str(tmp_path / 'classes.npy')
    save_classifier_file(path, torch.eye(3, 4), {})
    source = FileClassEmbeddings(NAMES, path)
    with pytest.raises(ValueError, match='needs its own file'):
        source.set_vocabulary('cat,dog')
    assert list(source.vocabulary.names) == NAMES.split(',')


def test_trained_tower_encodes_once_per_step(tmp_path):
    source = TrainedTowerClassEmbeddings(NAMES, tiny_text_tower_cfg(str(tmp_path))).train()
    calls = []
    source.tower.encoder.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    first = source()
    assert first.requires_grad and source() is first and sum(calls) == 3
    source.start_step()
    second = source()
    assert second is not first and sum(calls) == 6
    # backward through a step's encoding ends that step (its graph is freed): a reader that
    # runs before the step's starter in the next forward gets a fresh encoding
    assert source() is second
    second.sum().backward()
    third = source()
    assert third is not second and sum(calls) == 9
    third.sum().backward()  # would raise on a freed graph if the encoding were reused
    source.eval()
    with torch.no_grad():
        assert not source().requires_grad  # the full ensemble at test time


def test_a_shared_component_is_not_a_classifier_setting(tmp_path):
    source = RandomClassEmbeddings(NAMES, embed_dim=8)
    classifier = TextCosineClassifier(8, class_embeddings=source)
    assert classifier.class_embeddings is source and not classifier.owns_embeddings
    assert list(classifier.state_dict()) == []  # the model, not the classifier, saves it
    with pytest.raises(ValueError, match='belong to the shared class embeddings'):
        TextCosineClassifier(8, 'cat,dog', class_embeddings=source)


def test_test_time_weights_hold_the_class_embeddings_once(tmp_path):
    """An owned component keeps its K x D embeddings as a view of the classifier's (K + 1, D)
    test-time weights; classifiers sharing a component keep their caches valid however their
    calls alternate."""
    x = torch.randn(4, 8)
    owned = TextCosineClassifier(8, NAMES, random_embeddings=True, out_features=4,
                                 text_tower=tiny_text_tower_cfg(str(tmp_path))).eval()
    with torch.no_grad():
        weights = owned.inference_weights(x)
        fixed = owned.class_embeddings.fixed()
        assert fixed.untyped_storage().data_ptr() == weights.untyped_storage().data_ptr()
        assert owned.inference_weights(x) is weights
    source = RandomClassEmbeddings(NAMES, embed_dim=8)
    first, second = (TextCosineClassifier(8, class_embeddings=source, out_features=4).eval()
                     for _ in range(2))
    with torch.no_grad():
        a, b = first.inference_weights(x), second.inference_weights(x)
        assert first.inference_weights(x) is a and second.inference_weights(x) is b
