"""InMaP vision proxies (ovdense/apis/vision_proxies.py): the method on problems with a known
answer, the feature tap, and the tool's refusals. The tool end to end runs in the detection,
segmentation and action end-to-end tests (tests/test_demo/test_demo_run.py,
tests/test_tools/test_seg_end_to_end.py, tests/test_tools/test_action_end_to_end.py)."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ovdense.apis.vision_proxies import (EmbeddedFeatureTap, ProxyOptions,
                                         balanced_pseudo_labels, default_max_features,
                                         learn_vision_proxies, proxies_problem, target_files,
                                         text_classifiers_of, text_proxies_of)
from ovdense.text import TextCosineClassifier
from ovdense.utils.cli import ConfigError


def clusters(seed=0, classes=5, dim=16, per_class=200, spread=0.3):
    g = torch.Generator().manual_seed(seed)
    means = F.normalize(torch.randn(classes, dim, generator=g), dim=1)
    x = means.repeat_interleave(per_class, 0) + spread * torch.randn(classes * per_class, dim,
                                                                     generator=g)
    labels = torch.arange(classes).repeat_interleave(per_class)
    x = F.normalize(x, dim=1)
    centres = F.normalize(torch.stack([x[labels == c].mean(0) for c in range(classes)]), dim=1)
    return x, labels, means, centres, g


def gapped_text_proxies(means, g):
    """Text proxies off in a shared direction (the modality gap), and one 'hub' class leaning
    towards the mean of all features, which steals features from the others."""
    gap = F.normalize(torch.randn(means.shape[1], generator=g), dim=0)
    text = means + 1.5 * gap
    text[0] += F.normalize(means.mean(0), dim=0)
    return F.normalize(text, dim=1)


def accuracy(x, labels, proxies):
    return float(((x @ proxies.t()).argmax(1) == labels).double().mean())


def test_proxies_move_to_the_clusters_and_accuracy_rises():
    x, labels, means, centres, g = clusters()
    text = gapped_text_proxies(means, g)
    proxies, stats = learn_vision_proxies(x, text, ProxyOptions(text_weight=0), tau_t=0.05)
    assert proxies.shape == text.shape
    assert torch.allclose(proxies.norm(dim=1), torch.ones(5), atol=1e-5)
    text_cos = (text * centres).sum(1)
    vision_cos = (proxies * centres).sum(1)
    assert float(text_cos.mean()) < 0.6 and float(vision_cos.mean()) > 0.8
    assert float(vision_cos.min()) > 0.7 and float(text_cos.min()) < 0.3
    assert accuracy(x, labels, proxies) >= accuracy(x, labels, text) + 0.03
    # balanced labels: every class takes about a fifth of the features
    assert max(abs(s - 0.2) for s in stats['label_shares']) < 0.02
    assert stats['cosine_to_vision_proxy'] > stats['cosine_to_text_proxy']
    # mixing the text proxies back in (the default, 0.5) lands in between
    mixed, _ = learn_vision_proxies(x, text, ProxyOptions(), tau_t=0.05)
    mixed_cos = float((mixed * centres).sum(1).mean())
    assert float(text_cos.mean()) < mixed_cos < float(vision_cos.mean())


def test_no_descent_keeps_the_text_proxies():
    x, _, means, _, g = clusters(seed=1)
    text = gapped_text_proxies(means, g)
    proxies, _ = learn_vision_proxies(x, text, ProxyOptions(iters=0, text_weight=0),
                                      tau_t=0.05)
    assert torch.allclose(proxies, text, atol=1e-6)


def test_sinkhorn_balances_columns_and_keeps_rows_distributions():
    g = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(300, 8, generator=g), dim=1)
    text = F.normalize(torch.randn(6, 8, generator=g), dim=1)
    plain = balanced_pseudo_labels(x.double(), text.double(), 0.05, iters=0)
    balanced = balanced_pseudo_labels(x.double(), text.double(), 0.05, iters=50)
    ones = torch.ones(300, dtype=torch.float64)
    assert torch.allclose(plain.sum(1), ones) and torch.allclose(balanced.sum(1), ones)
    assert float(plain.mean(0).max() - plain.mean(0).min()) > 0.05
    assert torch.allclose(balanced.mean(0), torch.full((6,), 1 / 6, dtype=torch.float64),
                          atol=1e-3)
    # gamma > 0 keeps the predicted class masses' order
    shares = balanced_pseudo_labels(x.double(), text.double(), 0.05, iters=50, gamma=0.5).mean(0)
    assert torch.equal(shares.argsort(), plain.mean(0).argsort())


@pytest.mark.parametrize('kwargs', [dict(tau_i=0), dict(lr=-1), dict(text_weight=2),
                                    dict(tau_t=0.0), dict(iters=-1)])
def test_bad_options_are_refused(kwargs):
    with pytest.raises(ConfigError):
        ProxyOptions(**kwargs)


def test_bad_features_are_refused():
    with pytest.raises(ConfigError, match='no target features'):
        learn_vision_proxies(torch.zeros(0, 4), torch.eye(4), ProxyOptions())
    with pytest.raises(ConfigError, match=r'\(N, D\) and \(C, D\)'):
        learn_vision_proxies(torch.zeros(3, 5), torch.eye(4), ProxyOptions())


def classifier(background=None, logit_bias=None, classes=4, dim=8, prefix='c'):
    embeddings = dict(type='RandomClassEmbeddings', embed_dim=dim,
                      vocabulary=[f'{prefix}{i}' for i in range(classes)])
    return TextCosineClassifier(in_features=dim, class_embeddings=embeddings,
                                background=background, out_features=classes + (background
                                                                                is not None),
                                logit_bias=logit_bias, projection=False).eval()


def test_tap_records_unit_features_and_restores_the_classifier():
    head = classifier()
    model = nn.Sequential(head)
    features = torch.randn(10, 8)
    before = head(features)
    with EmbeddedFeatureTap(model, per_image=4) as tap, torch.no_grad():
        tap.images = 2
        during = head(features)
        head(torch.randn(3, 8, 5, 5))  # dense: 75 pixel rows, 8 kept
    assert torch.equal(before, during)
    assert 'embed' not in head.__dict__
    recorded = tap.features()
    assert recorded.shape == (16, 8) and tap.seen == 85
    assert torch.allclose(recorded.norm(dim=1), torch.ones(16), atol=1e-5)
    kept = F.normalize(features, dim=1)
    assert all(bool(torch.isclose(kept @ row, torch.tensor(1.0), atol=1e-5).any())
               for row in recorded[:8])


def test_tap_keeps_only_rows_the_classifier_calls_foreground():
    head = classifier(background='learned')
    with torch.no_grad():
        head.background_embedding.copy_(F.normalize(torch.ones(8), dim=0))
    foreground = F.normalize(head.class_embeddings.fixed().clone(), dim=1)  # one per class
    background = F.normalize(torch.ones(4, 8), dim=1)
    with EmbeddedFeatureTap(nn.Sequential(head), per_image=100) as tap, torch.no_grad():
        head(torch.cat([foreground, background]))
    recorded = tap.features()
    assert recorded.shape[0] == 4
    assert torch.allclose(recorded, foreground, atol=1e-5)
    # a sigmoid head (logit bias, no background column): its confident rows only
    sigmoid = classifier(logit_bias=-4.6)
    classes = sigmoid.class_embeddings.fixed().clone()
    basis = torch.linalg.qr(classes.t())[0]  # (8, 4): the classes' span
    elsewhere = torch.randn(4, 8)
    elsewhere = F.normalize(elsewhere - elsewhere @ basis @ basis.t(), dim=1)  # cosine 0: p 0.01
    with EmbeddedFeatureTap(nn.Sequential(sigmoid), per_image=100) as tap, torch.no_grad():
        sigmoid(torch.cat([classes, elsewhere]))
    assert tap.features().shape[0] == 4


def test_text_proxies_need_one_text_source():
    with pytest.raises(ConfigError, match='has no TextCosineClassifier'):
        text_classifiers_of(nn.Sequential(nn.Linear(2, 2)))
    head, same, other = classifier(), classifier(), classifier(prefix='d')
    assert text_classifiers_of(nn.Sequential(head, other)) == [head, other]
    text = text_proxies_of([head, same])  # two components with equal embeddings
    assert torch.allclose(text, F.normalize(head.class_embeddings.fixed(), dim=1))
    with pytest.raises(ConfigError, match='score different class embeddings'):
        text_proxies_of([head, other])


def test_target_files_refuse_empty_or_missing_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match='no such directory or list file'):
        target_files(str(tmp_path / 'missing'), 'mmdet')
    (tmp_path / 'notes.txt').write_text('x')
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ConfigError, match='holds no image files'):
        target_files(str(empty), 'mmdet')
    listing = tmp_path / 'list.txt'
    listing.write_text('a.mp4 0\n')
    with pytest.raises(FileNotFoundError, match="names 1 missing file"):
        target_files(str(listing), 'mmaction')
    (tmp_path / 'a.mp4').write_bytes(b'')
    assert target_files(str(listing), 'mmaction') == [str(tmp_path / 'a.mp4')]


def test_default_feature_count_bounds_the_features_x_classes_matrices():
    assert default_max_features(30) == 200_000  # the cap
    assert default_max_features(1203) == 20_781  # LVIS: 25M values
    assert default_max_features(10 ** 6) == 1000  # the floor


def test_proxies_that_leave_the_features_get_a_warning():
    assert proxies_problem(dict(cosine_to_vision_proxy=0.4, cosine_to_text_proxy=0.6)) is None
    problem = proxies_problem(dict(cosine_to_vision_proxy=-0.13, cosine_to_text_proxy=0.19))
    assert '-0.13 (0.19 to the text proxies)' in problem and '--text-weight' in problem
