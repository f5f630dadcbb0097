"""A text dense head's test-time scores made a chunk of locations at a time, inside mmdet's own
dense post-processing.

At test time each classification layer of a text dense head gives :class:`EmbeddedScores`
(its embedded features and its classifier) where the stock head gives a level's
``(B, A x K, H, W)`` logits. The object travels through mmdet's unchanged post-processing in
the logits' place and answers what that code asks of them: shape, size, dtype, device, one
image, detach, the ``permute(1, 2, 0).reshape(-1, K)`` to rows, the sigmoid. The scores
themselves are made only by mmdet's ``filter_scores_and_topk``, which
:func:`scoring_embedded` replaces for the call by :func:`filter_scores_and_topk`: the rows are
scored, thresholded and cut to ``nms_pre`` a chunk at a time, holding only the pairs that can
still make the cut (``postprocess.scored_pairs_of_embedded``), in mmdet's order; the
``locations x K`` scores never exist at once. Anything else asked of the object raises, so a
head whose code does more with its scores fails loudly instead of scoring wrongly; the heads
whose post-processing is known to take only these steps are listed in
``text_dense_heads._EMBEDDED_POSTPROCESSING``.
"""
import contextlib
import types
from typing import Optional

import torch

from ..roi_heads.postprocess import scored_pairs_of_embedded

_STEPS = ('map', 'hwc', 'rows', 'sigmoid')


class EmbeddedScores:
    """One level's classification output, not yet scored: ``embedded`` is (B, A x D, H, W)
    (``step='map'``, or (A x D, H, W) for one image), (H, W, A x D) after the permute, then
    (H x W x A, D) rows; ``classifier`` is the level's ``TextCosineClassifier``."""

    def __init__(self, embedded: torch.Tensor, classifier, step: str = 'map'):
        self.embedded, self.classifier, self.step = embedded, classifier, step

    def _then(self, step: str, embedded: torch.Tensor) -> 'EmbeddedScores':
        return EmbeddedScores(embedded, self.classifier, step)

    def _expect(self, step: str, what: str) -> None:
        if self.step != step:
            raise TypeError(
                f'{what} of a text dense head\'s test-time scores after step {self.step!r}: '
                "not a step of mmdet's dense post-processing (expected after "
                f'{step!r}); this head needs the stock scoring path')

    # -- what the post-processing reads -----------------------------------------------------
    @property
    def shape(self) -> torch.Size:
        """The shape the stock logits would have at this step."""
        dims, depth = list(self.embedded.shape), self.classifier.embed_dim
        channel = -3 if self.step == 'map' else -1
        dims[channel] = dims[channel] // depth * self.classifier.out_features
        return torch.Size(dims)

    def size(self, dim: Optional[int] = None):
        return self.shape if dim is None else self.shape[dim]

    @property
    def dtype(self) -> torch.dtype:
        return self.embedded.dtype

    @property
    def device(self) -> torch.device:
        return self.embedded.device

    def __getitem__(self, image: int) -> 'EmbeddedScores':
        self._expect('map', 'indexing')
        if self.embedded.dim() != 4 or not isinstance(image, int):
            raise TypeError('a text dense head\'s test-time scores are indexed by image only')
        return self._then('map', self.embedded[image])

    def detach(self) -> 'EmbeddedScores':
        return self._then(self.step, self.embedded.detach())

    def permute(self, *dims) -> 'EmbeddedScores':
        self._expect('map', 'permute')
        if self.embedded.dim() != 3 or tuple(dims) != (1, 2, 0):
            raise TypeError(f'permute{tuple(dims)} of a text dense head\'s test-time scores: '
                            'only one image\'s permute(1, 2, 0) is supported')
        return self._then('hwc', self.embedded.permute(1, 2, 0))

    def reshape(self, *shape) -> 'EmbeddedScores':
        self._expect('hwc', 'reshape')
        if tuple(shape) != (-1, self.classifier.out_features):
            raise TypeError(f'reshape{tuple(shape)} of a text dense head\'s test-time scores: '
                            f'only reshape(-1, {self.classifier.out_features}) is supported')
        return self._then('rows', self.embedded.reshape(-1, self.classifier.embed_dim))

    def sigmoid(self) -> 'EmbeddedScores':
        self._expect('rows', 'sigmoid')
        return self._then('sigmoid', self.embedded)

    # -- the scoring ------------------------------------------------------------------------
    def top_scores(self, score_thr: float, topk: int):
        """mmdet's ``filter_scores_and_topk`` of these sigmoid scores: ``(scores, labels, row
        indices)`` of the ``topk`` best scores above ``score_thr``, in mmdet's order."""
        self._expect('sigmoid', 'filter_scores_and_topk')
        rows, labels, scores = scored_pairs_of_embedded(
            self.classifier, self.embedded, torch.sigmoid, score_thr, background_last=False,
            top=topk if topk > 0 else None)
        # the pairs come in mmdet's order (row-major), so the same sort picks the same top k;
        # min() as mmdet's (topk = -1 drops the last pair there too)
        num_topk = min(topk, scores.numel())
        scores, order = scores.sort(descending=True)
        order = order[:num_topk]
        return scores[:num_topk], labels[order], rows[order]


def filter_scores_and_topk(scores, score_thr, topk, results=None):
    """mmdet's ``filter_scores_and_topk``; :class:`EmbeddedScores` are scored a chunk of rows
    at a time, and ``results`` (a dict, list or tensor of per-row values) follow the rows
    kept, as there."""
    from mmdet.models.utils import misc
    if not isinstance(scores, EmbeddedScores):
        return misc.filter_scores_and_topk(scores, score_thr, topk, results)
    scores, labels, keep = scores.top_scores(score_thr, topk)
    if isinstance(results, dict):
        results = {key: value[keep] for key, value in results.items()}
    elif isinstance(results, list):
        results = [value[keep] for value in results]
    elif results is not None:
        results = results[keep]
    return scores, labels, keep, results


@contextlib.contextmanager
def scoring_embedded(module: types.ModuleType):
    """Within the block, ``module`` (an mmdet head's module) filters scores with
    :func:`filter_scores_and_topk`."""
    original = module.filter_scores_and_topk
    module.filter_scores_and_topk = filter_scores_and_topk
    try:
        yield
    finally:
        module.filter_scores_and_topk = original
