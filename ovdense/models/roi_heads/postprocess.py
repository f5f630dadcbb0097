"""Box post-processing that applies the score threshold before pairing boxes with classes.

mmdet's ``multiclass_nms`` first expands the scores into N x K (box, score, label) triples
(class-agnostic boxes are repeated K times, labels are an N x K int64 matrix) and only then
drops the pairs under ``score_thr``. With an open vocabulary (K = 21,000) that expansion is
most of the inference time and memory. Here the threshold comes first, on row chunks of the
score matrix, and only the surviving (RoI, class) pairs are gathered. The chunks can also be
made on demand from the classifier's embedded features (``scored_pairs_of_rows``, used by
``TextStandardRoIHead``), so that the N x K logits themselves never exist at once.

The surviving pairs come out in mmdet's order (RoI-major, then class), with the same boxes,
scores and labels, so ``batched_nms`` receives exactly the input it gets from
``multiclass_nms`` and returns exactly the same detections.
"""
import math
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmcv.ops import batched_nms

# Logits and activated scores exist for at most this many (RoI, class) entries at a time
# (16 MB of float32): the transient memory of thresholding does not grow with N x K. Each
# chunk's product reads all K x D weights, so smaller chunks cost more (1000 RoIs, K = 21,000,
# D = 256, 1 CPU thread, scoring path / one whole product: 1M-entry chunks 1.14x, 2M 1.05x,
# 4M 0.99x; 2026-11-27).
SCORE_CHUNK_ELEMENTS = 1 << 22
# Rows whose best class is within this much (in log-probability) of the threshold bound are
# scored exactly, far above the rounding of the bound and of the softmax (~1e-6).
_BOUND_SLACK = 1e-2
# The bound test reads a chunk twice to spare its exponentials; with fewer classes the
# softmax costs no more than that (1000 RoIs, D = 256, 1 CPU thread, no pair: K = 1203
# 8.8 vs 8.7 ms, K = 2400 20 vs 25 ms, K = 10,000 92 vs 120 ms; 2026-11-27).
_BOUND_TEST_MIN_COLUMNS = 2048


def softmax_rows(logits: torch.Tensor) -> torch.Tensor:
    """mmdet's R-CNN score activation (``F.softmax(dim=-1)``); given as ``activation``, it
    lets the thresholding rule rows out before the softmax (:func:`_rows_that_may_score`)."""
    return F.softmax(logits, dim=-1)


def scored_pairs(cls_score: torch.Tensor, activation: Callable[[torch.Tensor], torch.Tensor],
                 score_thr: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RoI indices, labels and scores of every (RoI, class) pair scoring above ``score_thr``.

    ``cls_score`` is (N, K + 1) with the background last (it never forms a pair).
    ``activation`` (softmax or a loss's custom activation) works row by row, so applying it
    to chunks of rows gives the same values as applying it to the whole matrix.
    """
    return scored_pairs_of_rows(lambda start, stop: cls_score[start:stop],
                                *cls_score.shape, activation, score_thr)


def scored_pairs_of_rows(logit_rows: Callable[[int, int], torch.Tensor], num_rois: int,
                         num_columns: int, activation, score_thr: float,
                         background_last: bool = True, top: Optional[int] = None
                         ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`scored_pairs` of logits made a chunk of rows at a time by
    ``logit_rows(start, stop)``: the N x (K + 1) logits need never exist at once.
    ``background_last=False``: every column is a class (sigmoid scores). ``top``: only the
    pairs a later top-``top`` cut can keep are kept (every pair scoring at least the
    ``top``-th best so far, ties included, in order), so the pairs held stay bounded too."""
    rows = max(1, SCORE_CHUNK_ELEMENTS // num_columns)
    parts, held = [], 0
    # at least one (maybe empty) chunk: an image without RoIs gives empty columns
    for start in range(0, max(num_rois, 1), rows):
        parts.append(_chunk_pairs(logit_rows(start, start + rows), activation, score_thr,
                                  start, background_last))
        held += len(parts[-1][2])
        if top is not None and 0 < top < held and held > 2 * max(top, rows):
            parts = [_at_least_top(top, *(torch.cat(column) for column in zip(*parts)))]
            held = len(parts[0][2])
    return tuple(torch.cat(column) for column in zip(*parts))


def scored_pairs_of_embedded(classifier, embedded: torch.Tensor, activation, score_thr: float,
                             background_last: bool = True, top: Optional[int] = None
                             ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`scored_pairs_of_rows` of a text classifier's logits for ``embedded`` (N, D)
    features (its ``embed`` output), made a chunk of rows at a time against its test-time
    weights."""
    weights = classifier.inference_weights(embedded)
    return scored_pairs_of_rows(
        lambda start, stop: classifier.logits_of_embedded(embedded[start:stop], weights),
        embedded.shape[0], weights.shape[0], activation, score_thr, background_last, top)


def _at_least_top(top: int, *pairs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """The pairs scoring at least the ``top``-th best score (ties kept), in their order."""
    scores = pairs[-1]
    keep = scores >= scores.topk(top).values[-1]
    return tuple(t[keep] for t in pairs)


def _chunk_pairs(logits: torch.Tensor, activation, score_thr: float, first_roi: int,
                 background_last: bool = True):
    """:func:`scored_pairs` of a chunk of rows; its activated scores are freed on return."""
    rows = None  # the chunk's rows that are scored, when not all of them
    if (activation is softmax_rows and background_last and score_thr > 0
            and logits.shape[1] >= _BOUND_TEST_MIN_COLUMNS):
        may_score = _rows_that_may_score(logits, score_thr)
        if len(may_score) < logits.shape[0]:
            rows, logits = may_score, logits[may_score]
    scores = activation(logits)
    if background_last:
        scores = scores[:, :-1]
    # Most rows hold no score above the threshold. Their maximum rules them out in one
    # read, which costs far less than comparing and nonzero over the whole chunk; a NaN
    # maximum is kept so that such rows are judged element by element, as mmdet does.
    row_max = scores.amax(dim=1)
    hit_rows = ((row_max > score_thr) | row_max.isnan()).nonzero().squeeze(1)
    hits = scores[hit_rows]
    roi, label = (hits > score_thr).nonzero(as_tuple=True)
    roi_index = hit_rows[roi] if rows is None else rows[hit_rows[roi]]
    return roi_index + first_roi, label, hits[roi, label]


def _rows_that_may_score(logits: torch.Tensor, score_thr: float) -> torch.Tensor:
    """The rows of (n, K + 1) logits (background last) whose softmax may have a class score
    above ``score_thr``; the others are ruled out without an exponential.

    A class scores ``exp(l - lse)`` with ``lse`` the row's log-sum-exp, which is at least
    the log-mean-exp's lower bound ``mean(l) + log(K + 1)`` (Jensen) and at least
    ``logaddexp(best class, background)``. A row whose best class logit is below the larger
    bound plus ``log(score_thr)`` (less a slack) has no pair. With a large vocabulary or a
    confident background that is most rows, and the softmax runs on the others only.
    """
    # per-row values in float32: half-precision means would round by more than the slack
    best = logits[:, :-1].amax(dim=1).float()
    lse_floor = torch.maximum(logits.mean(dim=1, dtype=torch.float32) + math.log(logits.shape[1]),
                              torch.logaddexp(best, logits[:, -1].float()))
    ruled_out = best <= lse_floor + (math.log(score_thr) - _BOUND_SLACK)
    return (~ruled_out).nonzero().squeeze(1)  # NaN rows are kept: judged as mmdet does


def keep_top_scores(max_pairs: Optional[int], *pairs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Optional cap before NMS (``nms_pre`` in the R-CNN test_cfg): the ``max_pairs``
    highest-scoring pairs, still in RoI-major order. ``pairs`` ends with the scores."""
    scores = pairs[-1]
    if not max_pairs or max_pairs <= 0 or len(scores) <= max_pairs:
        return pairs
    keep = scores.topk(max_pairs).indices.sort().values
    return tuple(t[keep] for t in pairs)


def nms_pairs(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
              nms_cfg: Optional[Dict], max_per_img: int
              ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(dets (M, box_dim + 1), labels (M,))``: the tail of mmdet's ``multiclass_nms``."""
    if boxes.numel() == 0:
        return torch.cat([boxes, scores[:, None]], -1), labels
    dets, keep = batched_nms(boxes, scores, labels, nms_cfg)
    if max_per_img > 0:
        dets, keep = dets[:max_per_img], keep[:max_per_img]
    return dets, labels[keep]


def pair_boxes(boxes: torch.Tensor, roi: torch.Tensor, labels: torch.Tensor,
               box_dim: int) -> torch.Tensor:
    """The box of each pair: (N, box_dim) class-agnostic boxes are indexed by RoI,
    (N, K * box_dim) class-specific boxes by RoI and class."""
    per_roi = boxes.view(boxes.shape[0], boxes.shape[1] // box_dim, box_dim)
    if per_roi.shape[1] == 1:
        return per_roi[roi, 0]
    return per_roi[roi, labels]
