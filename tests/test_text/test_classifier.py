"""TextCosineClassifier (ovdense/text/classifier.py): scaled cosine logits of (projected)
features against class embeddings, background column and bias, test-time weights, vocabulary
swap, the embedding cache seen from the classifier, a jointly trained or frozen tower,
classifier files, the random-embedding control, novel classes left out of training, and
mixed precision."""
import os
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ovdense.testing import tiny_text_tower_cfg
from ovdense.text import TextCosineClassifier, load_classifier_file, save_classifier_file
from ovdense.utils import OvdenseFileError


VOCAB = 'red circle,blue star,green square'


def make(tmp_path, **kwargs):
    kwargs.setdefault('text_tower', tiny_text_tower_cfg(str(tmp_path)))
    kwargs.setdefault('vocabulary', VOCAB)
    kwargs.setdefault('in_features', 48)
    return TextCosineClassifier(**kwargs)


def test_logits_are_scaled_cosines(tmp_path):
    head = make(tmp_path, out_features=4).eval()
    features = torch.randn(5, 48)
    logits = head(features)
    assert logits.shape == (5, 4) and head.background == 'learned'
    projected = F.normalize(head.projection(features), dim=-1)
    weights = head.class_embeddings()
    torch.testing.assert_close(logits[:, :3], 20.0 * projected @ weights.T)
    assert float(logits.abs().max()) <= 20.0 + 1e-4


def test_dense_input_and_argmax_follows_embedding(tmp_path):
    head = make(tmp_path, in_features=32, projection=False).eval()
    weights = head.class_embeddings()
    pixels = torch.randn(2, 32, 4, 5)
    pixels[:, :, 1, 2] = weights[2] * 3.0  # this pixel IS class 2's embedding
    logits = head(pixels)
    assert logits.shape == (2, 3, 4, 5)
    assert (logits[:, :, 1, 2].argmax(1) == 2).all()


def test_zero_background_and_bias(tmp_path):
    head = make(tmp_path, out_features=4, background='zero', logit_bias=-2.0).eval()
    logits = head(torch.randn(3, 48))
    assert torch.equal(logits[:, 3], torch.zeros(3))
    assert isinstance(head.logit_bias, torch.nn.Parameter)


def test_inference_logits_equal_the_autograd_path(tmp_path):
    # without autograd the background is a weight row and the bias is added in place;
    # logits reach the scale (20), where float32 rounds at ~2e-6
    for background, bias in (('learned', None), ('zero', -2.0), (None, 1.5)):
        head = make(tmp_path, out_features=3 + (background is not None),
                    background=background, logit_bias=bias).eval()
        for features in (torch.randn(7, 48), torch.randn(2, 48, 3, 4)):
            with torch.no_grad():
                inference = head(features)
            training = head(features)
            assert training.requires_grad and not inference.requires_grad
            torch.testing.assert_close(inference, training.detach(), rtol=1e-6, atol=1e-5)


def test_test_time_weights_are_kept_until_the_background_changes(tmp_path):
    head = make(tmp_path, out_features=4).eval()
    features = torch.randn(2, 48)
    with torch.no_grad():
        first = head.inference_weights(features)
        assert head.inference_weights(features) is first  # no K x D copy per image
        before = head(features)
        head.background_embedding.add_(1.0)  # e.g. an optimizer step
        after = head(features)
        changed = head.inference_weights(features)
    assert changed is not first and torch.equal(changed[:3], first[:3])
    torch.testing.assert_close(changed[3], F.normalize(head.background_embedding, dim=0))
    assert torch.equal(after[:, :3], before[:, :3]) and not torch.equal(after[:, 3], before[:, 3])


def test_test_time_weights_follow_a_jointly_trained_tower(tmp_path):
    head = make(tmp_path, out_features=4, train_text_tower=True).eval()
    features = torch.randn(2, 48)
    with torch.no_grad():
        before = head.inference_weights(features).clone()
        for parameter in head.class_embeddings.tower.parameters():  # e.g. a training epoch
            parameter.add_(0.1 * torch.randn_like(parameter))
        head.train()
        head.eval()
        after = head.inference_weights(features)
    assert torch.equal(after[3], before[3])  # the background did not change
    assert not torch.allclose(after[:3], before[:3])  # re-encoded class embeddings


def test_vocabulary_size_mismatch(tmp_path):
    with pytest.raises(ValueError, match=r"expects 81 outputs but vocabulary .* has 3 classes"):
        make(tmp_path, out_features=81)


def test_dimension_mismatch_without_projection(tmp_path):
    with pytest.raises(ValueError, match='feature dim 48 != text embedding dim 32'):
        make(tmp_path, projection=False)


def test_set_vocabulary_changes_outputs_without_rebuilding(tmp_path):
    head = make(tmp_path, out_features=4).eval()
    projection = head.projection.weight.clone()
    head.set_vocabulary('cat,dog,zebra,lion,tiger')
    assert head(torch.randn(2, 48)).shape == (2, 6)
    assert torch.equal(head.projection.weight, projection)


def test_cache_hit_key_change_and_corrupt_file(tmp_path, monkeypatch):
    from ovdense.text import towers
    cache_dir = str(tmp_path / 'cache')
    config = tiny_text_tower_cfg(str(tmp_path))
    checkpoint = str(tmp_path / 'tower.pt')
    torch.save(towers.TextTower(**config).encoder.state_dict(), checkpoint)
    tower_cfg = dict(config, checkpoint=checkpoint)

    first = make(tmp_path, text_tower=tower_cfg, cache_dir=cache_dir).eval()
    expected = first.class_embeddings()
    files = os.listdir(cache_dir)
    assert len(files) == 1

    calls = []
    original = towers.TextTower.encode_tokens
    monkeypatch.setattr(towers.TextTower, 'encode_tokens',
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    second = make(tmp_path, text_tower=tower_cfg, cache_dir=cache_dir).eval()
    torch.testing.assert_close(second.class_embeddings(), expected)
    # cache hit: the tower is never built
    assert calls == [] and not second.class_embeddings.embedder.tower_built

    other = make(tmp_path, text_tower=tower_cfg, cache_dir=cache_dir,
                 prompts=dict(templates='vild')).eval()
    other.class_embeddings()
    assert calls and len(os.listdir(cache_dir)) == 2  # templates are part of the key

    with open(os.path.join(cache_dir, files[0]), 'wb') as f:
        f.write(b'not a torch file')
    calls.clear()
    third = make(tmp_path, text_tower=tower_cfg, cache_dir=cache_dir).eval()
    with pytest.warns(UserWarning, match='corrupt.*rebuilding'):
        rebuilt = third.class_embeddings()
    torch.testing.assert_close(rebuilt, expected)
    assert calls
    fourth = make(tmp_path, text_tower=tower_cfg, cache_dir=cache_dir).eval()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        fourth.class_embeddings()  # the rebuilt file is valid again


def test_trainable_tower_gets_gradients_and_survives_host_init(tmp_path):
    head = make(tmp_path, train_text_tower=True, out_features=4)
    tower = head.class_embeddings.tower
    before = {k: v.clone() for k, v in tower.state_dict().items()}
    torch.nn.init.normal_(tower.encoder.ln_final.weight, std=0.01)  # a host's init
    head.init_weights()
    for key, value in tower.state_dict().items():
        if key.endswith('ln_final.weight'):
            assert torch.allclose(value, torch.ones_like(value)), 'tower init not restored'
    head.train()
    loss = F.cross_entropy(head(torch.randn(6, 48)), torch.tensor([0, 1, 2, 3, 0, 1]))
    loss.backward()
    grads = [p.grad for p in tower.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)
    assert set(before) == set(tower.state_dict())


def test_frozen_tower_is_not_part_of_the_model(tmp_path):
    head = make(tmp_path).eval()
    head.class_embeddings()
    assert not any(k.startswith('text_tower') or 'frozen' in k for k in head.state_dict())
    assert all('encoder' not in name for name, _ in head.named_parameters())


def test_classifier_file_round_trip(tmp_path):
    head = make(tmp_path).eval()
    embeddings = head.class_embeddings()
    for suffix in ('.npy', '.pt'):
        path = str(tmp_path / ('classifier' + suffix))
        save_classifier_file(path, embeddings, head.describe_embeddings())
        loaded, meta = load_classifier_file(path, 3, 32)
        assert torch.equal(loaded, F.normalize(embeddings, dim=-1))
        from_file = make(tmp_path, text_tower=None, embeddings_file=path).eval()
        torch.testing.assert_close(from_file.class_embeddings(), embeddings)
    assert np.load(str(tmp_path / 'classifier.npy')).dtype == np.float32
    with pytest.raises(OvdenseFileError, match='has 3 class embeddings but the vocabulary has 2'):
        load_classifier_file(str(tmp_path / 'classifier.pt'), 2)
    with pytest.raises(OvdenseFileError, match='embedding dim 32, expected 64'):
        load_classifier_file(str(tmp_path / 'classifier.npy'), 3, 64)
    with pytest.raises(FileNotFoundError, match='missing.npy'):
        make(tmp_path, text_tower=None, embeddings_file=str(tmp_path / 'missing.npy'))


def test_random_embedding_control_is_fixed_per_name(tmp_path):
    a = make(tmp_path, random_embeddings=True).eval().class_embeddings()
    b = make(tmp_path, random_embeddings=True, vocabulary='blue star,red circle'
             ).eval().class_embeddings()
    torch.testing.assert_close(a[1], b[0])
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(3))


def test_learnable_scale_is_clamped(tmp_path):
    head = make(tmp_path, learn_scale=True, scale=10.0, max_scale=15.0)
    with torch.no_grad():
        head.log_scale.fill_(10.0)
    assert float(head.scale) == 15.0


def test_novel_classes_are_left_out_in_training_only(tmp_path):
    """OV training: left-out classes get no probability, no loss and no gradient (neither
    their text embedding nor the tower), and their prompts are not encoded; eval scores all."""
    from ovdense.text.classifier import NOVEL_TRAINING_LOGIT
    vocab = [dict(name='red circle', frequency='r'), dict(name='red square', frequency='f'),
             dict(name='blue circle', frequency='c')]
    head = TextCosineClassifier(in_features=8, vocabulary=vocab, out_features=4,
                                text_tower=tiny_text_tower_cfg(str(tmp_path)),
                                train_text_tower=True, novel_classes='r')
    assert head.class_embeddings.trained_class_ids().tolist() == [1, 2]
    head.train()
    tower = head.class_embeddings.tower
    encoded, encode = [], tower.encode_tokens
    tower.encode_tokens = lambda tokens, *a: encoded.append(len(tokens)) or encode(tokens, *a)
    logits = head(torch.randn(5, 8))
    assert (logits[:, 0] == NOVEL_TRAINING_LOGIT).all() and sum(encoded) == 2
    assert (logits[:, 1:] > NOVEL_TRAINING_LOGIT / 2).all()  # base classes and background
    loss = F.cross_entropy(logits, torch.tensor([1, 2, 3, 1, 2]))
    assert torch.equal(F.softmax(logits, -1)[:, 0], torch.zeros(5))
    loss.backward()
    head.eval()
    with torch.no_grad():
        assert (head(torch.randn(5, 8))[:, 0] > NOVEL_TRAINING_LOGIT / 2).all()
    only_novel = TextCosineClassifier(in_features=8, vocabulary=vocab[:1], novel_classes='r',
                                      text_tower=tiny_text_tower_cfg(str(tmp_path)))
    only_novel.eval()  # testing never selects them
    with pytest.raises(ValueError, match='leaves no class'):
        only_novel.train()


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16], ids=['bf16', 'fp16'])
def test_autocast_gives_finite_logits_and_the_float32_argmax(dtype):
    """Mixed precision: zero and tiny features give finite logits (fp16 once gave NaN: the
    normalisation's eps is 0 in fp16), and features near a class embedding keep the float32
    argmax. tools/gpu_check.py runs the same check on CUDA."""
    from ovdense.testing.autocast import classifier_autocast_report
    report = classifier_autocast_report('cpu', [dtype])
    name = str(dtype).replace('torch.', '')
    assert report['float32_argmax_is_label']
    assert report[name]['logits_dtype'] == name  # autocast did run the product in half
    assert report[name]['finite'], report
    assert report[name]['argmax_agreement'] == 1.0, report
    assert report[name]['max_abs_diff'] < 0.5, report
