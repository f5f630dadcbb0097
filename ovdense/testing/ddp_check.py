"""Every given config's model, shrunk (:func:`shrink_config`, backbones loaded from an
iCAR-layout checkpoint with its image->text projection), trains two steps under torchrun
(CPU, gloo), wrapped as mmengine's Runner wraps it by default: ``MMDistributedDataParallel``
with ``find_unused_parameters`` as the config says (False unless it says so). A parameter
that got no gradient in the first step stops DDP in the second, naming the parameter.

    torchrun --nproc_per_node 2 -m ovdense.testing.ddp_check WORK_DIR CONFIG.py [...]

Rank 0 prints ``ddp ok: CONFIG`` for each config that trained.
"""
import os
import os.path as osp
import sys
import time

import torch
import torch.distributed as dist


def train_two_steps(config: str, work_dir: str, rank: int) -> None:
    from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS, init_default_scope

    from .configs import cpu_optim_wrapper, shrink_config, tiny_icar_checkpoint
    from .inputs import training_batch
    os.makedirs(work_dir, exist_ok=True)
    cfg = shrink_config(config, work_dir, icar_checkpoint=tiny_icar_checkpoint(work_dir))
    scope = cfg.default_scope
    init_default_scope(scope)
    torch.manual_seed(0)
    # DDP refuses SyncBatchNorm on CPU modules; as BatchNorm the layers keep their parameters
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    ddp = MMDistributedDataParallel(
        module=model, broadcast_buffers=False,
        find_unused_parameters=bool(cfg.get('find_unused_parameters', False)))
    optim_wrapper = build_optim_wrapper(ddp, cpu_optim_wrapper(cfg.optim_wrapper))
    ddp.train()
    for step in range(2):  # other batches on each rank
        ddp.train_step(training_batch(model, scope, seed=100 * step + rank), optim_wrapper)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    work_dir, configs = argv[0], argv[1:]
    import ovdense  # noqa: F401  registers the components
    dist.init_process_group(backend='gloo')
    rank = dist.get_rank()
    torch.set_num_threads(1)
    for config in configs:
        started = time.monotonic()
        train_two_steps(config, osp.join(work_dir, f'rank{rank}',
                                         osp.splitext(osp.basename(config))[0]), rank)
        dist.barrier()
        if rank == 0:
            print(f'ddp ok: {config} ({time.monotonic() - started:.1f} s)', flush=True)
    dist.destroy_process_group()
    return 0


if __name__ == '__main__':
    sys.exit(main())
