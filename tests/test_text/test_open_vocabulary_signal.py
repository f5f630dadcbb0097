"""The open-vocabulary signal, small and seeded: class names embedded by a text tower let a
classifier trained on base classes name unseen (novel) classes; fixed random class
embeddings (the README's ``make demo-control``) do not.

Synthetic world, as in the demo: 30 classes = 6 colours x 5 shapes, of which the demo's 6
NOVEL_CLASSES (unseen colour/shape combinations; every colour and every shape occurs in base
classes) are never trained on. The "visual" feature of an object of class ``colour_shape``
is a fixed function of the words of its name, ``u[colour] + v[shape] + noise``, with random
word vectors ``u``, ``v`` in R^16. Nothing of that function is shared with the text side:
the text tower only ever sees the strings ("a red circle.").

The classifier under test is the package's ``TextCosineClassifier``, as the detector uses
it: vocabulary of all 30 names, ``novel_classes`` left out of training (constant logit, no
gradient), only its projection W (visual -> text space) trained, with cross-entropy on base
features; then every class is scored, as at test time. The text side is a tiny native CLIP
text tower (``ovdense.testing.tiny_text_tower_cfg``) with random, frozen weights, reached
through the real prompt/tokeniser/embedding-cache path. It is frozen, not trained jointly,
because it already maps names made of the same words to related embeddings (measured: novel
top-1 >= 0.937 over seeds 0-9), which is the property the open-vocabulary claim rests on;
joint training (``train_text_tower=True``) also reached 1.0 in a scratch run, but took ~50 s
for the 300 steps on a 2-core machine instead of < 1 s. The control is the same classifier
with ``random_embeddings=True``.

What can fail: a text path whose class embeddings do not belong to their names (shuffled
across classes, built for another vocabulary order, random) gives novel top-1 near 0 here,
as the control does; see test docstrings for the measured values.
"""
import pytest
import torch
import torch.nn.functional as F

from ovdense.demo.data import BASE_CLASSES, COLOURS, DET_CLASSES, NOVEL_CLASSES, SHAPES
from ovdense.testing import tiny_text_tower_cfg
from ovdense.text import TextCosineClassifier

SEED = 0
FEATURE_DIM = 16
NOISE = 0.3
STEPS = 300
BATCH_PER_CLASS = 4
CLASS_INDEX = {name: i for i, name in enumerate(DET_CLASSES)}
NOVEL_IDS = torch.tensor([CLASS_INDEX[name] for name in NOVEL_CLASSES])


class ShapeWorld:
    """Features of objects: the sum of fixed random vectors for the two words of the class
    name, plus Gaussian noise."""

    def __init__(self, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.word = {w: torch.randn(FEATURE_DIM, generator=g) for w in (*COLOURS, *SHAPES)}

    def sample(self, names, per_class: int, generator: torch.Generator):
        features, labels = [], []
        for name in names:
            colour, shape = name.split('_')
            features.append(self.word[colour] + self.word[shape]
                            + NOISE * torch.randn(per_class, FEATURE_DIM, generator=generator))
            labels += [CLASS_INDEX[name]] * per_class
        return torch.cat(features), torch.tensor(labels)


def train_and_score(directory: str, random_embeddings: bool) -> dict:
    """Train W on base classes only, then score held-out samples against all 30 names.

    Returns top-1 accuracies: ``novel`` (novel samples, argmax over all 30 classes: the
    generalized setting LVIS's APr measures, where every class competes), ``novel_only``
    (argmax over the 6 novel names) and ``base`` (base samples, all 30 classes)."""
    world = ShapeWorld(SEED)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add contention and run-to-run noise
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            classifier = TextCosineClassifier(
                in_features=FEATURE_DIM, vocabulary=list(DET_CLASSES),
                text_tower=tiny_text_tower_cfg(directory, embed_dim=64, width=64),
                background=None, projection=True, novel_classes=list(NOVEL_CLASSES),
                random_embeddings=random_embeddings, cache_dir=directory)
            classifier.class_embeddings()  # build (and seed) the frozen tower now
            optimizer = torch.optim.Adam(classifier.projection.parameters(), lr=1e-2)
            batches = torch.Generator().manual_seed(SEED + 1)
            classifier.train()
            for _ in range(STEPS):
                features, labels = world.sample(BASE_CLASSES, BATCH_PER_CLASS, batches)
                loss = F.cross_entropy(classifier(features), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        classifier.eval()
        with torch.no_grad():
            novel_x, novel_y = world.sample(NOVEL_CLASSES, 50, torch.Generator().manual_seed(2))
            logits = classifier(novel_x)
            base_x, base_y = world.sample(BASE_CLASSES, 20, torch.Generator().manual_seed(3))
            base_logits = classifier(base_x)
    finally:
        torch.set_num_threads(threads)
    return {
        'novel': (logits.argmax(1) == novel_y).float().mean().item(),
        'novel_only': (NOVEL_IDS[logits[:, NOVEL_IDS].argmax(1)] == novel_y).float().mean().item(),
        'base': (base_logits.argmax(1) == base_y).float().mean().item(),
    }


@pytest.fixture(scope='module')
def scores(tmp_path_factory):
    return {kind: train_and_score(str(tmp_path_factory.mktemp(kind)), kind == 'random')
            for kind in ('text', 'random')}


def test_text_embeddings_name_unseen_colour_shape_combinations(scores):
    """With text-tower class embeddings, novel objects get their own, never-trained name as
    top-1 among all 30 classes >= 90% of the time (measured 1.000 at seed 0, >= 0.937 at
    seeds 0-9), and >= 95% among the 6 novel names; base classes are learnt (>= 90%).

    Fails when the embeddings are not those of their names (scratch runs at seed 0): text
    embeddings permuted across all 30 classes gave novel top-1 0.000 (novel-only 0.000,
    base 0.508); only the 6 novel rows rotated gave novel 0.000 with base still 0.998."""
    text = scores['text']
    assert text['base'] >= 0.9, text
    assert text['novel'] >= 0.9, text
    assert text['novel_only'] >= 0.95, text


def test_random_embedding_control_learns_base_but_cannot_name_novel(scores):
    """The control (fixed random class vectors, same classifier and training) learns base
    classes as well (>= 90%), but novel objects almost never get their name among all 30
    classes (<= 10%; measured 0.003 at seed 0, <= 0.003 at seeds 0-9): the novel accuracy
    of the text classifier comes from the names, not from the classifier or the training.
    Among only the 6 novel names the text classifier leads the control by >= 0.3 (control
    0.327 at seed 0, 0.28-0.68 at seeds 0-9, text 1.0; chance is 1/6, and 6 near
    all-or-nothing classes make this number coarse)."""
    control, text = scores['random'], scores['text']
    assert control['base'] >= 0.9, control
    assert control['novel'] <= 0.1, control
    assert text['novel_only'] - control['novel_only'] >= 0.3, (text, control)
