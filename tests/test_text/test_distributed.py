"""Distributed text encoding (ovdense/text/distributed.py) in two CPU processes (gloo):
sharded text encoding gathers the same class embeddings as one
process, and gradients reach every rank's slice."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ovdense.testing import tiny_text_tower_cfg

VOCAB = 'red circle,blue star,green square,yellow ring,purple cross,orange star,red square'


def _build_head(tower_dir):
    from ovdense.text import TextCosineClassifier
    torch.manual_seed(0)  # identical initial weights on every rank, as DDP would broadcast
    return TextCosineClassifier(in_features=16, vocabulary=VOCAB,
                                text_tower=tiny_text_tower_cfg(tower_dir),
                                prompts=dict(templates='single', use_descriptions=False),
                                train_text_tower=True).train()


def _loss(embeddings):
    weights = torch.arange(embeddings.numel(), dtype=torch.float32).reshape(embeddings.shape)
    return (embeddings * weights.sin()).sum()


def _run(tower_dir):
    head = _build_head(tower_dir)
    embeddings = head.class_embeddings()
    _loss(embeddings).backward()
    grads = {n: p.grad.clone() for n, p in head.class_embeddings.tower.named_parameters()
             if p.grad is not None}
    return embeddings.detach(), grads


def _worker(rank, world, init_file, tower_dir, out_dir):
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=world)
    try:
        embeddings, grads = _run(tower_dir)
        torch.save({'embeddings': embeddings, 'grads': grads},
                   os.path.join(out_dir, f'rank{rank}.pt'))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_sharded_encoding_matches_single_process(tmp_path):
    tower_dir = str(tmp_path / 'tower')
    tiny_text_tower_cfg(tower_dir)
    single_embeddings, single_grads = _run(tower_dir)

    world = 2
    mp.spawn(_worker, args=(world, str(tmp_path / 'init'), tower_dir, str(tmp_path)),
             nprocs=world, join=True)
    results = [torch.load(tmp_path / f'rank{r}.pt') for r in range(world)]
    for result in results:
        torch.testing.assert_close(result['embeddings'], single_embeddings)
    for name, grad in single_grads.items():
        per_rank = [result['grads'][name] for result in results]
        # each rank's loss sees every row, so summed rank grads are world x the single grad
        torch.testing.assert_close(sum(per_rank) / world, grad, atol=1e-5, rtol=1e-4)
    # every rank's slice carries gradient (rank 1 owns classes 4..6)
    assert all(float(r['grads']['encoder.token_embedding.weight'].abs().sum()) > 0 for r in results)
    assert not torch.equal(results[0]['grads']['encoder.token_embedding.weight'],
                           results[1]['grads']['encoder.token_embedding.weight'])
