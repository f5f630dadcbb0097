"""Sharded text encoding: each rank encodes a slice of the class list; slices are gathered
with gradients so a large vocabulary costs each rank only its share."""
import math
from typing import Callable

import torch
import torch.distributed as dist


class _GatherRows(torch.autograd.Function):
    """all_gather along dim 0. Backward sums every rank's gradient for this rank's rows
    (each rank's loss depends on all rows); all_reduce works on gloo and NCCL alike."""

    @staticmethod
    def forward(ctx, local: torch.Tensor, world: int, rank: int) -> torch.Tensor:
        ctx.world, ctx.rank, ctx.rows = world, rank, local.shape[0]
        parts = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(parts, local.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        start = ctx.rank * ctx.rows
        return grad[start:start + ctx.rows], None, None


def distributed_world() -> tuple:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def shard_range(total: int, world: int, rank: int) -> tuple:
    per_rank = math.ceil(total / world)
    start = min(rank * per_rank, total)
    return start, min(start + per_rank, total), per_rank


def encode_sharded(encode: Callable[[int, int], torch.Tensor], total: int) -> torch.Tensor:
    """``encode(start, stop)`` -> rows [start, stop); returns all ``total`` rows on every rank,
    differentiable with respect to this rank's rows."""
    world, rank = distributed_world()
    if world == 1:
        return encode(0, total)
    start, stop, per_rank = shard_range(total, world, rank)
    if stop > start:
        local = encode(start, stop)
    else:  # more ranks than classes: keep the tower in the graph with a zero-weight row
        local = encode(0, 1)[:0]
    pad = per_rank - local.shape[0]
    if pad:
        local = torch.cat([local, local.new_zeros(pad, local.shape[1]) + 0 * local.sum()])
    return _GatherRows.apply(local, world, rank)[:total]
