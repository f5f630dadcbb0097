"""A text dense head's test-time scores made a chunk of locations at a time, inside mmdet's own
dense post-processing.

At test time each classification layer of a text dense head gives :class:`EmbeddedScores`
(its embedded features and its classifier) where the stock head gives a level's
``(B, A x K, H, W)`` logits. The object travels through mmdet's unchanged post-processing in
the logits' place and answers what that code asks of them: shape, size, dtype, device, one
image, detach, the ``permute(1, 2, 0).reshape(-1, K)`` to rows (or the batched
``permute(0, 2, 3, 1).reshape(B, -1, K)`` and ``torch.cat`` over levels, YOLOX), the
sigmoid. The scores themselves are made only by mmdet's ``filter_scores_and_topk``, which
:func:`scoring_embedded` replaces for the call by :func:`filter_scores_and_topk` (the rows are
scored, thresholded and cut to ``nms_pre`` a chunk at a time, holding only the pairs that can
still make the cut, ``postprocess.scored_pairs_of_embedded``, in mmdet's order), or by
``torch.max`` over the classes (YOLOX: each row's best class, a chunk of rows at a time); the
``locations x K`` scores never exist at once. Anything else asked of the object raises, so a
head whose code does more with its scores fails loudly instead of scoring wrongly; the heads
whose post-processing is known to take only these steps are listed in
``text_dense_heads._EMBEDDED_POSTPROCESSING``.
"""
import contextlib
import types
from typing import Callable, List, Optional, Tuple

import torch

from ..roi_heads.postprocess import scored_pairs_of_embedded

class EmbeddedScores:
    """One level's classification output, not yet scored (or several levels' rows, after
    ``torch.cat``): ``parts`` are ``(classifier, features)`` pairs, the level's
    ``TextCosineClassifier`` and its embedded features: (B, A x D, H, W) at ``step='map'``
    (or (A x D, H, W) for one image), (B, H, W, A x D) after the permute, then (B, N, D)
    rows (or (N, D) for one image)."""

    def __init__(self, parts: List[Tuple], step: str = 'map'):
        self.parts, self.step = parts, step

    @property
    def classifier(self):
        return self.parts[0][0]

    @property
    def embedded(self) -> torch.Tensor:
        return self.parts[0][1]

    def _then(self, step: str, change: Callable[[torch.Tensor], torch.Tensor]
              ) -> 'EmbeddedScores':
        return EmbeddedScores([(c, change(e)) for c, e in self.parts], step)

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
        if self.step == 'map':
            dims[-3] = dims[-3] // depth * self.classifier.out_features
        elif self.step == 'hwc':
            dims[-1] = dims[-1] // depth * self.classifier.out_features
        else:
            dims[-2] = sum(e.shape[-2] for _, e in self.parts)
            dims[-1] = self.classifier.out_features
        return torch.Size(dims)

    def size(self, dim: Optional[int] = None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self) -> torch.dtype:
        return self.embedded.dtype

    @property
    def device(self) -> torch.device:
        return self.embedded.device

    def __getitem__(self, image: int) -> 'EmbeddedScores':
        batched = self.embedded.dim() == (4 if self.step in ('map', 'hwc') else 3)
        if not (batched and isinstance(image, int)):
            raise TypeError('a text dense head\'s test-time scores are indexed by image only')
        return self._then(self.step, lambda e: e[image])

    def detach(self) -> 'EmbeddedScores':
        return self._then(self.step, torch.Tensor.detach)

    def permute(self, *dims) -> 'EmbeddedScores':
        self._expect('map', 'permute')
        wanted = (1, 2, 0) if self.embedded.dim() == 3 else (0, 2, 3, 1)
        if tuple(dims) != wanted:
            raise TypeError(f'permute{tuple(dims)} of a text dense head\'s test-time scores: '
                            f'only permute{wanted} (channels last) is supported')
        return self._then('hwc', lambda e: e.permute(*dims))

    def reshape(self, *shape) -> 'EmbeddedScores':
        self._expect('hwc', 'reshape')
        batch = self.embedded.shape[:-3]  # () for one image, (B,) for a batch
        if tuple(shape) != (*batch, -1, self.classifier.out_features):
            raise TypeError(f'reshape{tuple(shape)} of a text dense head\'s test-time scores: '
                            f'only reshape({", ".join(map(str, batch))}{", " if batch else ""}'
                            f'-1, {self.classifier.out_features}) is supported')
        return self._then('rows', lambda e: e.reshape(*batch, -1, self.classifier.embed_dim))

    def sigmoid(self) -> 'EmbeddedScores':
        self._expect('rows', 'sigmoid')
        return self._then('sigmoid', lambda e: e)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """``torch.cat`` of levels' rows along the rows (YOLOX) and ``torch.max`` over the
        classes of one image's sigmoid scores; any other torch function is refused."""
        kwargs = kwargs or {}
        if func is torch.cat:
            return cls._cat(*args, **kwargs)
        if func is torch.max:
            return cls._max(*args, **kwargs)
        raise TypeError(f'{getattr(func, "__name__", func)} of a text dense head\'s test-time '
                        "scores: not a step of mmdet's dense post-processing; this head needs "
                        'the stock scoring path')

    @classmethod
    def _cat(cls, tensors, dim: int = 0) -> 'EmbeddedScores':
        steps = {t.step if isinstance(t, EmbeddedScores) else None for t in tensors}
        if steps not in ({'rows'}, {'sigmoid'}) or dim not in (-2, tensors[0].dim() - 2):
            raise TypeError('torch.cat of a text dense head\'s test-time scores: only rows of '
                            'levels, along the rows, are supported')
        return EmbeddedScores([p for t in tensors for p in t.parts], steps.pop())

    def _max(self, dim: int):
        """``torch.max(scores, 1)`` of one image's sigmoid scores: each row's best score and
        class, made a chunk of rows at a time (the same values and indices as torch.max over
        the whole matrix, up to the products' rounding)."""
        self._expect('sigmoid', 'torch.max')
        if self.embedded.dim() != 2 or dim not in (1, -1):
            raise TypeError('torch.max of a text dense head\'s test-time scores: only over the '
                            'classes (dim 1) of one image is supported')
        from ..roi_heads import postprocess
        rows = max(1, postprocess.SCORE_CHUNK_ELEMENTS // self.classifier.out_features)
        values, indices = [], []
        for classifier, embedded in self.parts:
            weights = classifier.inference_weights(embedded)
            for start in range(0, embedded.shape[0], rows):
                scores = classifier.logits_of_embedded(embedded[start:start + rows],
                                                       weights).sigmoid()
                best = scores.max(1)
                values.append(best.values)
                indices.append(best.indices)
        return torch.cat(values), torch.cat(indices)

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


def solov2_predict_by_feat(head, mlvl_kernel_preds, mlvl_cls_scores, mask_feats,
                           batch_img_metas, **kwargs):
    """SOLOv2's ``predict_by_feat`` with :class:`EmbeddedScores` levels: per image, the
    (grid cell, class) pairs whose sigmoid score is a 2 x 2 local maximum of its class map
    (SOLOv2's point NMS) and above ``score_thr`` are found a chunk of classes at a time; the
    stock ``_predict_by_feat_single`` then runs on the classes that have a pair (a compact
    score matrix whose row-major pairs are the same, in the same order) and its labels are
    mapped back. The grid cells x K scores never exist at once."""
    import torch.nn.functional as F
    from ..roi_heads import postprocess
    score_thr = head.test_cfg.score_thr
    results = []
    for image, img_meta in enumerate(batch_img_metas):
        cells, labels, scores, first = [], [], [], 0
        for level in mlvl_cls_scores:
            classifier, embedded = level.parts[0][0], level.parts[0][1][image]  # (D, S, S)
            size = embedded.shape[-2:]
            rows = embedded.permute(1, 2, 0).reshape(-1, embedded.shape[0])
            weights = classifier.inference_weights(rows)
            chunk = max(1, postprocess.SCORE_CHUNK_ELEMENTS // rows.shape[0])
            for start in range(0, weights.shape[0], chunk):
                maps = classifier.logits_of_embedded(rows, weights[start:start + chunk])
                maps = maps.sigmoid().t().reshape(1, -1, *size)
                local_max = F.max_pool2d(maps, 2, stride=1, padding=1)
                maps = (maps * (local_max[..., :-1, :-1] == maps))[0].flatten(1).t()
                cell, label = (maps > score_thr).nonzero(as_tuple=True)
                cells.append(cell + first)
                labels.append(label + start)
                scores.append(maps[cell, label])
            first += rows.shape[0]
        cells, labels, scores = torch.cat(cells), torch.cat(labels), torch.cat(scores)
        # classes with a pair, in class order; every class when zeros would pass the threshold
        used = labels.unique() if score_thr >= 0 else torch.arange(
            head.num_classes, device=labels.device)
        compact = scores.new_zeros(first, len(used))
        compact[cells, torch.searchsorted(used, labels)] = scores
        kernels = torch.cat([k[image].permute(1, 2, 0).reshape(-1, head.kernel_out_channels)
                             for k in mlvl_kernel_preds])
        result = head._predict_by_feat_single(kernels, compact, mask_feats[[image]],
                                              img_meta=img_meta)
        if len(result) > 0:
            result.labels = used[result.labels]
        results.append(result)
    return results
