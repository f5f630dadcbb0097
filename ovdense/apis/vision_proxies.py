"""Vision-space class proxies learnt from unlabeled target images: InMaP (Qian, Xu, Hu,
"Intra-Modal Proxy Learning for Zero-Shot Visual Categorization with CLIP", NeurIPS 2023).

Text embeddings are class proxies from the other modality. Given features of unlabeled images
of the target domain, in the classifier's embedding space (unit vectors), InMaP

1. labels each feature softly from the text proxies (softmax of cosines / ``tau_t``) and
   balances those labels over the classes with Sinkhorn iterations (every class takes an equal
   share of the features, or a share ~ its predicted mass ** ``gamma``);
2. makes the confident labels (top probability above ``alpha``) one-hot;
3. learns one proxy per class, initialised from the text proxies, that minimises the
   cross-entropy between those labels and softmax(cosines / ``tau_i``) of the proxies: full-batch
   gradient steps, each followed by a projection back onto the unit sphere, with the step
   halved whenever the gradient grows.

The proxies replace the class embeddings of the model's text classifier (a classifier file for
``tools/test.py --vocab-embeddings``, ``embeddings_file`` or ``tools/demo.py``); everything
else, a background embedding included, stays the model's.
"""
import glob
import os.path as osp
import warnings
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..text import TextCosineClassifier
from ..utils.cli import ConfigError
from .vocabulary import set_model_vocabulary, text_classifiers

# The method holds a few N x C matrices (features x classes): the default feature count keeps
# one at 25M values (200 MB in float64), at most 200,000 features.
PLAN_VALUES, MAX_FEATURES = 25_000_000, 200_000
# Features kept per image and the foreground score they need (measured on the demo detector,
# README "Vision proxies"): a few confident RoIs per image beat many uncertain ones.
PER_IMAGE, MIN_FOREGROUND = 16, 0.9
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mkv', '.mov', '.webm')


@dataclass(frozen=True)
class ProxyOptions:
    """InMaP's settings, named after the paper's symbols.

    ``tau_t`` None: the classifier's own temperature (1 / its scale), the temperature its
    logits were trained with. ``tau_i``, ``alpha``, ``iters`` and ``lr`` default to the
    authors' public release. ``text_weight`` mixes the text proxies back in:
    normalise((1 - w) * vision + w * text); 0.5 by default, unlike the paper: on the demo
    detector, whose text tower was trained jointly with it, pure vision proxies lowered mask
    AP (README, "Vision proxies").
    """
    tau_t: Optional[float] = field(default=None, metadata=dict(
        help="text temperature of the pseudo-labels (default: 1 / the classifier's scale)"))
    tau_i: float = field(default=0.04, metadata=dict(help='proxy temperature'))
    sinkhorn_iters: int = field(default=20, metadata=dict(help='label balancing iterations'))
    gamma: float = field(default=0.0, metadata=dict(
        help='0: equal class shares; > 0: shares ~ predicted mass ** gamma'))
    alpha: float = field(default=0.6, metadata=dict(
        help='pseudo-labels above this probability become one-hot'))
    iters: int = field(default=2000, metadata=dict(help='gradient steps'))
    lr: float = field(default=10.0, metadata=dict(help='step size (halved when the gradient '
                                                       'grows)'))
    text_weight: float = field(default=0.5, metadata=dict(
        help='mix the text proxies back in: normalise((1 - w) vision + w text); 0: vision '
             'proxies only'))

    def __post_init__(self):
        for name in ('tau_i', 'lr'):
            if not getattr(self, name) > 0:
                raise ConfigError(f'{name} must be > 0, got {getattr(self, name)}')
        if self.tau_t is not None and not self.tau_t > 0:
            raise ConfigError(f'tau_t must be > 0, got {self.tau_t}')
        if not 0 <= self.text_weight <= 1:
            raise ConfigError(f'text_weight must be in [0, 1], got {self.text_weight}')
        if self.gamma < 0 or self.iters < 0 or self.sinkhorn_iters < 0:
            raise ConfigError('gamma, iters and sinkhorn_iters must be >= 0')


# -- the method -----------------------------------------------------------------------------
def balanced_pseudo_labels(features: torch.Tensor, text_proxies: torch.Tensor, tau_t: float,
                           iters: int = 20, gamma: float = 0.0) -> torch.Tensor:
    """(N, C) soft labels of unit ``features`` from unit ``text_proxies``, rows summing to 1,
    balanced over the classes by Sinkhorn iterations on the transport plan softmax / N."""
    n, c = features.shape[0], text_proxies.shape[0]
    plan = F.softmax(features @ text_proxies.t() / tau_t, dim=1) / n
    if gamma > 0:  # class shares follow the predicted masses, flattened by gamma
        shares = plan.sum(0) ** gamma
        shares = shares / shares.sum()
    else:
        shares = plan.new_full((c,), 1.0 / c)
    tiny = torch.finfo(plan.dtype).tiny
    for _ in range(iters):
        plan = plan * (shares / plan.sum(0).clamp_min(tiny))
        plan = plan / (plan.sum(1, keepdim=True).clamp_min(tiny) * n)
    return plan * n


def default_max_features(num_classes: int) -> int:
    return min(MAX_FEATURES, max(1000, PLAN_VALUES // max(num_classes, 1)))


def learn_vision_proxies(features: torch.Tensor, text_proxies: torch.Tensor,
                         options: ProxyOptions = ProxyOptions(), tau_t: float = 0.05,
                         device=None) -> Tuple[torch.Tensor, Dict]:
    """(C, D) unit vision proxies (on the CPU) from (N, D) target ``features`` and (C, D)
    ``text_proxies``, computed in float64 on ``device`` (default: the features'): the step
    halving compares gradient norms, so rounding would change the path; ``tau_t``
    applies when ``options.tau_t`` is None. Returns the proxies and what was measured (label
    shares, cosines to the proxies before and after)."""
    if (features.ndim != 2 or text_proxies.ndim != 2
            or features.shape[1] != text_proxies.shape[1]):
        raise ConfigError(f'features {tuple(features.shape)} and text proxies '
                          f'{tuple(text_proxies.shape)} must be (N, D) and (C, D)')
    if features.shape[0] == 0:
        raise ConfigError('no target features to learn vision proxies from')
    device = features.device if device is None else torch.device(device)
    x = F.normalize(features.to(device, torch.float64), dim=1)
    text = F.normalize(text_proxies.to(device, torch.float64), dim=1)
    tau_t = options.tau_t or tau_t
    labels = balanced_pseudo_labels(x, text, tau_t, options.sinkhorn_iters, options.gamma)
    confidence, winner = labels.max(1)
    sure = confidence > options.alpha
    labels[sure] = F.one_hot(winner[sure], labels.shape[1]).to(labels.dtype)
    proxies = _descend(x, text, labels, options)
    if options.text_weight:
        proxies = F.normalize((1 - options.text_weight) * proxies + options.text_weight * text,
                              dim=1)
    text_winner = (x @ text.t()).argmax(1)
    stats = dict(
        features=int(x.shape[0]), tau_t=float(tau_t), confident_labels=float(sure.double().mean()),
        label_shares=[round(float(s), 4) for s in labels.mean(0)],
        # the modality gap: how close features are to the proxy of their label
        cosine_to_text_proxy=float((x * text[winner]).sum(1).mean()),
        cosine_to_vision_proxy=float((x * proxies[winner]).sum(1).mean()),
        changed_argmax=float(((x @ proxies.t()).argmax(1) != text_winner).double().mean()))
    problem = proxies_problem(stats)
    if problem:
        warnings.warn(problem)
    return proxies.float().cpu(), stats


def proxies_problem(stats: Dict) -> Optional[str]:
    """A warning when the features end no closer to their proxies than to a random direction:
    every class logit then falls against the model's background (or sigmoid bias), and
    detections vanish (measured on the demo CondInst)."""
    if stats['cosine_to_vision_proxy'] > 0:
        return None
    return (f'vision proxies: the features\' mean cosine to the proxy of their label is '
            f'{stats["cosine_to_vision_proxy"]:.2f} ({stats["cosine_to_text_proxy"]:.2f} to the '
            'text proxies): expect few or no detections; raise text_weight (--text-weight)')


def _descend(x: torch.Tensor, start: torch.Tensor, labels: torch.Tensor,
             options: ProxyOptions) -> torch.Tensor:
    """Projected gradient descent of mean CE(labels, softmax(x @ proxies.T / tau_i)) over
    unit proxies; the gradient is x.T (P - labels) / (N tau_i), written without autograd."""
    proxies, lr, last = start.clone(), options.lr, float('inf')
    target = labels.t() @ x  # (C, D)
    step = 1.0 / (x.shape[0] * options.tau_i)
    for _ in range(options.iters):
        probs = F.softmax(x @ proxies.t() / options.tau_i, dim=1)
        grad = probs.t() @ x - target
        norm = float(grad.norm())
        if norm > last:
            lr /= 2
        last = norm
        proxies = F.normalize(proxies - lr * step * grad, dim=1)
    return proxies


# -- features of a model --------------------------------------------------------------------
class EmbeddedFeatureTap:
    """While active, records what every text classifier of ``model`` embeds (unit features in
    the class-embedding space; RoIs, pixels, anchors or clips), at most ``per_image`` rows per
    image of each forward (:attr:`images` says how many images the next forward holds): rows
    whose foreground score reaches ``min_foreground``, a random subset when there are more.

    Foreground score: 1 - P(background) for a head with a background column; the highest
    sigmoid probability for a head with a logit bias (sigmoid dense heads); 1 otherwise
    (segmentation pixels, action clips).
    """

    def __init__(self, model: nn.Module, per_image: int = PER_IMAGE,
                 min_foreground: float = MIN_FOREGROUND, seed: int = 0):
        self.classifiers = text_classifiers(model)
        self.per_image, self.min_foreground = per_image, min_foreground
        self.generator = torch.Generator().manual_seed(seed)
        self.images = 1
        self.rows: List[torch.Tensor] = []
        self.seen = 0
        self.active: List[TextCosineClassifier] = []  # those that embedded something

    def __enter__(self) -> 'EmbeddedFeatureTap':
        for classifier in self.classifiers:
            classifier.embed = self._tapped(classifier, classifier.embed)
        return self

    def __exit__(self, *exc) -> None:
        for classifier in self.classifiers:
            classifier.__dict__.pop('embed', None)

    def _tapped(self, classifier: TextCosineClassifier, embed):
        def embed_and_record(features: torch.Tensor) -> torch.Tensor:
            embedded = embed(features)
            self._record(classifier, embedded.detach())
            return embedded
        return embed_and_record

    def _record(self, classifier: TextCosineClassifier, embedded: torch.Tensor) -> None:
        rows = embedded.reshape(-1, embedded.shape[-1]).float()
        self.seen += rows.shape[0]
        if not any(classifier is c for c in self.active):
            self.active.append(classifier)
        keep = torch.nonzero(self._foreground(classifier, rows) >= self.min_foreground)[:, 0]
        budget = self.per_image * self.images
        if keep.numel() > budget:
            keep = keep[torch.randperm(keep.numel(), generator=self.generator)[:budget]]
        self.rows.append(F.normalize(rows[keep.to(rows.device)], dim=1).cpu())

    @staticmethod
    def _foreground(classifier: TextCosineClassifier, rows: torch.Tensor) -> torch.Tensor:
        if classifier.background is None and classifier.logit_bias is None:
            return torch.ones(rows.shape[0])
        with torch.no_grad():
            logits = classifier.logits_of_embedded(rows, classifier.inference_weights(rows))
        if classifier.background is not None:
            return 1 - F.softmax(logits, dim=1)[:, -1].cpu()
        return torch.sigmoid(logits).amax(1).cpu()

    def features(self) -> torch.Tensor:
        return torch.cat(self.rows) if self.rows else torch.zeros(0, 0)


def text_proxies_of(classifiers: Sequence[TextCosineClassifier]) -> torch.Tensor:
    """(C, D) unit class embeddings that ``classifiers`` (those a model ran) score; one set
    of proxies replaces the embeddings of them all, so they must be the same."""
    with torch.no_grad():
        first = classifiers[0].class_embeddings.fixed(torch.device('cpu')).float()
        for other in classifiers[1:]:
            if other.class_embeddings is classifiers[0].class_embeddings:
                continue
            theirs = other.class_embeddings.fixed(torch.device('cpu')).float()
            if theirs.shape != first.shape or not torch.allclose(theirs, first, atol=1e-5):
                raise ConfigError(
                    'the text classifiers this model runs at test time score different class '
                    'embeddings (e.g. one text tower per cascade stage): one set of proxies '
                    'cannot replace them all; share one class_embeddings (WithClassEmbeddings)')
    return F.normalize(first, dim=1)


def text_classifiers_of(model: nn.Module) -> List[TextCosineClassifier]:
    """:func:`~ovdense.apis.text_classifiers`, refusing a model that has none."""
    classifiers = text_classifiers(model)
    if not classifiers:
        raise ConfigError(f'{type(model).__name__} has no TextCosineClassifier: vision proxies '
                          'replace the class embeddings of a text classifier')
    return classifiers


# -- unlabeled target data ------------------------------------------------------------------
def target_files(images: str, scope: str, max_images: Optional[int] = None) -> List[str]:
    """The unlabeled inputs: every image (mmdet, mmseg) or video (mmaction) under the
    directory ``images``, or the paths a list file names (first field of each line, relative
    to the list's folder, as mmaction's video lists are), sorted; labels are never read."""
    suffixes = VIDEO_SUFFIXES if scope == 'mmaction' else IMAGE_SUFFIXES
    if osp.isdir(images):
        paths = sorted(p for p in glob.glob(osp.join(images, '**', '*'), recursive=True)
                       if p.lower().endswith(suffixes))
    elif osp.isfile(images):
        with open(images, encoding='utf-8') as f:
            fields = [line.split()[0] for line in f if line.strip()]
        paths = [osp.join(osp.dirname(images), p) for p in fields]
        missing = [p for p in paths if not osp.isfile(p)]
        if missing:
            raise FileNotFoundError(f'{images!r} names {len(missing)} missing file(s), e.g. '
                                    f'{missing[0]!r}')
    else:
        raise FileNotFoundError(f'--images {images!r}: no such directory or list file')
    if not paths:
        kind = 'video' if scope == 'mmaction' else 'image'
        raise ConfigError(f'--images {images!r} holds no {kind} files ({", ".join(suffixes)})')
    return paths[:max_images] if max_images else paths


def input_sample(path: str, index: int, scope: str) -> Dict:
    """What the config's test pipeline starts from, without any annotation."""
    if scope == 'mmaction':
        return dict(filename=path, label=-1, start_index=0, modality='RGB')
    if scope == 'mmseg':
        return dict(img_path=path)
    return dict(img_path=path, img_id=index)


def batches(paths: Sequence[str], pipeline, scope: str, batch_size: int) -> Iterator[Dict]:
    from mmengine.dataset import pseudo_collate
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        yield pseudo_collate([pipeline(input_sample(p, start + i, scope))
                              for i, p in enumerate(chunk)])


def collect_features(model: nn.Module, paths: Sequence[str], pipeline, scope: str,
                     batch_size: int = 4, per_image: int = PER_IMAGE,
                     min_foreground: float = MIN_FOREGROUND,
                     max_features: Optional[int] = None, seed: int = 0, progress: bool = True
                     ) -> Tuple[torch.Tensor, int, List[TextCosineClassifier]]:
    """(N, D) unit features the model's classifiers embed over ``paths`` (see
    :class:`EmbeddedFeatureTap`), at most ``max_features`` (a random subset); how many rows
    the classifiers embedded in all; and the classifiers that ran."""
    from mmengine.utils import ProgressBar
    bar = ProgressBar(len(paths)) if progress else None
    model.eval()
    with EmbeddedFeatureTap(model, per_image, min_foreground, seed) as tap, torch.no_grad():
        for batch in batches(paths, pipeline, scope, batch_size):
            tap.images = len(batch['inputs'])
            model.test_step(batch)
            if bar is not None:
                for _ in range(tap.images):
                    bar.update()
    features = tap.features()
    if max_features and features.shape[0] > max_features:
        pick = torch.randperm(features.shape[0], generator=torch.Generator().manual_seed(seed))
        features = features[pick[:max_features]]
    return features, tap.seen, tap.active


def test_pipeline_of(cfg, scope: str):
    """The config's test pipeline (of the test dataset, or the dataset it wraps) without its
    annotation loaders, built in the config's scope."""
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope

    from .seg_inference import is_annotation_loader
    dataset = cfg.test_dataloader.dataset
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset.dataset
    if 'pipeline' not in dataset:
        raise ConfigError('the config\'s test_dataloader.dataset has no pipeline')
    steps = [t for t in dataset.pipeline if not is_annotation_loader(t)]
    with DefaultScope.overwrite_default_scope(scope):
        return Compose(steps)


def load_model(cfg, checkpoint: str, device: str = 'cpu') -> nn.Module:
    """The config's model with ``checkpoint``'s weights (checked weights-only first)."""
    from mmengine.registry import MODELS, DefaultScope
    from mmengine.runner import load_checkpoint

    from ..utils.launch import check_checkpoint
    check_checkpoint(checkpoint)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    # logged like tools/test.py: keys the model and the checkpoint do not share are named
    load_checkpoint(model, checkpoint, map_location='cpu', logger='current')
    return model.to(device).eval()


def learn_proxies_from_images(cfg, checkpoint: str, images: str, vocabulary=None,
                              embeddings_file: Optional[str] = None,
                              options: ProxyOptions = ProxyOptions(),
                              per_image: int = PER_IMAGE, min_foreground: float = MIN_FOREGROUND,
                              max_images: Optional[int] = None,
                              max_features: Optional[int] = None, batch_size: int = 4,
                              device: str = 'cpu', seed: int = 0, progress: bool = True
                              ) -> Tuple[torch.Tensor, Dict]:
    """InMaP for the model of ``cfg`` (mmdet, mmseg or mmaction) and ``checkpoint`` over the
    unlabeled ``images`` (see :func:`target_files`); ``vocabulary`` (with an optional
    ``embeddings_file``) replaces the model's classes first. ``max_features`` None:
    :func:`default_max_features` of the class count. Returns the (C, D) proxies and
    the metadata a classifier file stores (class names, provenance, what was measured)."""
    scope = cfg.default_scope
    paths = target_files(images, scope, max_images)  # before the model is built
    model = load_model(cfg, checkpoint, device)
    classifiers = text_classifiers_of(model)  # refused before any image is read
    if vocabulary is not None:
        set_model_vocabulary(model, vocabulary, embeddings_file)
    max_features = max_features or default_max_features(classifiers[0].num_classes)
    features, seen, ran = collect_features(model, paths, test_pipeline_of(cfg, scope), scope,
                                           batch_size, per_image, min_foreground, max_features,
                                           seed, progress)
    if not ran:
        raise ConfigError('no text classifier of the model ran on the images')
    classifier, text = ran[0], text_proxies_of(ran)
    if features.shape[0] == 0:
        raise ConfigError(f'none of the {seen} features the model embedded over {len(paths)} '
                          f'input(s) reached --min-foreground {min_foreground}: lower it')
    proxies, stats = learn_vision_proxies(features, text, options,
                                          tau_t=1.0 / float(classifier.scale), device=device)
    stats.update(inputs=len(paths), embedded_rows=seen)
    metadata = dict(class_names=list(classifier.vocabulary.names),
                    method='InMaP vision proxies (ovdense.apis.vision_proxies)',
                    text_source=classifier.describe_embeddings(), checkpoint=checkpoint,
                    images=images, options=asdict(options), per_image=per_image,
                    min_foreground=min_foreground, seed=seed, measured=stats)
    return proxies, metadata
