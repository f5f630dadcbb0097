"""What tools/train.py and tools/test.py do to a config, for mmdet, mmseg and mmaction alike.

The task family is read from the config's ``default_scope``; each function changes only the
keys the standard OpenMMLab tools change.
"""
import itertools
import os
import os.path as osp
import re
import sys
import time
import zipfile
from typing import Dict, List, Optional, Tuple

from mmengine.config import Config
from mmengine.utils import import_modules_from_strings

from .cli import ConfigError
from .io import OvdenseFileError, check_torch_file, refuse_non_finite, safe_torch_load

SCOPES = ('mmdet', 'mmseg', 'mmaction')


def load_config(path: str, cfg_options: Optional[Dict] = None) -> Config:
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path!r}')
    cfg = Config.fromfile(path)
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ConfigError(f'{path!r}: default_scope must be one of {SCOPES}, got {scope!r}')
    if cfg_options:
        check_cfg_options(cfg, cfg_options, path)
        cfg.merge_from_dict(cfg_options)
        if any(key.startswith('custom_imports') for key in cfg_options):
            # Config.fromfile imported the file's list before the options were merged.
            import_modules_from_strings(**cfg.custom_imports)
    cfg.setdefault('custom_imports', dict(imports=['ovdense'], allow_failed_imports=False))
    return cfg


def check_cfg_options(cfg: Config, options: Dict, path: str) -> None:
    """``--cfg-options`` may only change keys that exist (a typo would be silently added)."""
    tree = cfg.to_dict()
    for dotted in options:
        node = tree
        parts = dotted.split('.')
        for depth, part in enumerate(parts):
            if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            elif depth == len(parts) - 1 and isinstance(node, dict) and '_delete_' in node:
                break
            else:
                where = '.'.join(parts[:depth]) or 'the top level'
                raise ConfigError(f'--cfg-options {dotted!r}: {path!r} has no key {part!r} under '
                               f'{where}')


def set_work_dir(cfg: Config, work_dir: Optional[str], config_path: str) -> None:
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(config_path))[0])


def name_run(cfg: Config, config_path: str) -> None:
    """A name of its own for this run's logger and visualizer. Both are per-name singletons
    of the process: mmengine names them <config>_<time to the second>, and the stock runtimes
    of mmdet and mmseg name the visualizer 'visualizer' outright, so a second run in one
    process (tests, notebooks, the tools' main() called twice) wrote its log and pictures
    into the first run's folders."""
    if cfg.get('experiment_name') is None:
        stem = osp.splitext(osp.basename(config_path))[0]
        cfg.experiment_name = f'{stem}_{time.strftime("%Y%m%d_%H%M%S")}_{next(_RUNS)}'
    if isinstance(cfg.get('visualizer'), dict):
        cfg.visualizer.name = cfg.experiment_name


_RUNS = itertools.count()  # runs started by this process (same sequence on every rank)


def set_launcher(cfg: Config, launcher: str) -> None:
    cfg.launcher = launcher
    if launcher == 'pytorch':
        from ..compat import init_cpu_distributed
        init_cpu_distributed(cfg)


def apply_train_args(cfg: Config, args) -> None:
    set_launcher(cfg, args.launcher)
    add_exact_resume_hook(cfg)
    add_vocabulary_check(cfg)
    if args.amp:
        _require_cuda('--amp', 'mmengine AmpOptimWrapper')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ConfigError('--auto-scale-lr: the config has no auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        latest = find_resume_checkpoint(cfg.work_dir)
        if latest is not None:
            check_checkpoint(latest, '--resume checkpoint')
        cfg.resume, cfg.load_from = True, latest  # None: mmengine starts afresh
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume checkpoint not found: {args.resume!r}')
        check_checkpoint(args.resume, '--resume checkpoint')
        cfg.resume, cfg.load_from = True, args.resume


def check_checkpoint(path: str, what: str = 'checkpoint') -> None:
    """Refuse ``path`` before anything is built or created: it must be complete and load
    weights-only. mmengine's loader would only fail later, with a traceback, once the runner
    made its work dir; NaN/inf weights would load and silently predict nothing. Zip files
    are mapped, not read into memory."""
    check_torch_file(path, what)
    refuse_non_finite(safe_torch_load(path, what=what, mmap=zipfile.is_zipfile(path)), path,
                      what)


# what mmengine's CheckpointHook writes: iter_<n>.pth or epoch_<n>.pth
_CHECKPOINT_NAME = re.compile(r'(?:iter|epoch)_(\d+)\.pth\Z')


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """What ``--resume`` without a path continues from: the file ``last_checkpoint`` names or,
    when that is empty, gone or incomplete (a full disk, a copy cut short), the newest complete
    iter_*/epoch_* file in ``work_dir``, with one warning. None without ``last_checkpoint``."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker, encoding='utf-8', errors='replace') as f:
        named = f.read().strip()
    problem = _unusable_checkpoint(named, marker)
    if problem is None:
        return named
    latest, skipped = _newest_complete_checkpoint(work_dir, skip=named)
    if latest is None:
        raise OvdenseFileError(f'cannot resume: {problem}, and no other iter_*.pth / '
                               f'epoch_*.pth in {work_dir!r} is complete')
    also = f' (also skipped incomplete {", ".join(map(repr, skipped))})' if skipped else ''
    _warn(f'{problem}; resuming from {latest!r} instead{also}')
    return latest


def _unusable_checkpoint(path: str, marker: str) -> Optional[str]:
    """Why the checkpoint ``last_checkpoint`` names cannot be resumed from, or None."""
    if not path:
        return f'{marker!r} is empty'
    try:
        check_torch_file(path, 'latest checkpoint')
    except (OvdenseFileError, FileNotFoundError) as err:
        return str(err)
    return None


def _newest_complete_checkpoint(work_dir: str, skip: str) -> Tuple[Optional[str], List[str]]:
    """The complete checkpoint with the highest number, and the incomplete ones above it."""
    found, skip = [], osp.abspath(skip) if skip else None
    for name in os.listdir(work_dir):
        match = _CHECKPOINT_NAME.match(name)
        path = osp.join(work_dir, name)
        if match and osp.isfile(path) and osp.abspath(path) != skip:
            found.append((int(match.group(1)), os.stat(path).st_mtime, path))
    skipped = []
    for _, _, path in sorted(found, reverse=True):
        try:
            check_torch_file(path)
            return path, skipped
        except OvdenseFileError:
            skipped.append(path)
    return None, skipped


def _warn(message: str) -> None:
    """One line on stderr, from the first process only (every rank reaches here)."""
    if os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0')) == '0':
        print(f'warning: {message}', file=sys.stderr)


def _require_cuda(flag: str, what: str) -> None:
    import torch
    if not torch.cuda.is_available():
        raise ConfigError(f'{flag} needs a CUDA device ({what}); none is available here')


def add_exact_resume_hook(cfg: Config) -> None:
    """Every training run seeds its random generators per batch from the run seed, so that a
    ``--resume`` continues exactly as the uninterrupted run (``ExactResumeHook``)."""
    add_hook(cfg, dict(type='ExactResumeHook'))


def add_vocabulary_check(cfg: Config) -> None:
    """Every run: the classes the model scores must be the dataset's
    (``VocabularyCheckHook``, unless the config lists it or a subclass such as
    ``SegVocabularyCheckHook``)."""
    from ..engine.hooks import CHECK_HOOK_TYPES
    add_hook(cfg, dict(type='VocabularyCheckHook'), CHECK_HOOK_TYPES)


def add_hook(cfg: Config, hook: dict, same: Tuple[str, ...] = ()) -> None:
    """Append ``hook`` to ``custom_hooks`` unless one of its type (or of a type in ``same``)
    is there."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(_hook_type(h) in (hook['type'], *same) for h in hooks):
        cfg.custom_hooks = hooks + [hook]


def _hook_type(hook) -> Optional[str]:
    kind = hook.get('type') if isinstance(hook, dict) else type(hook).__name__
    return kind if isinstance(kind, str) else getattr(kind, '__name__', None)


def apply_test_args(cfg: Config, args) -> None:
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint!r}')
    set_launcher(cfg, args.launcher)
    cfg.load_from = args.checkpoint
    add_hook(cfg, dict(type='CheckpointMatchHook', checkpoint=args.checkpoint))
    add_vocabulary_check(cfg)
    if args.amp:
        _require_cuda('--amp', "mmengine's TestLoop(fp16=True): fp16 autocast")
        cfg.test_cfg = dict(cfg.get('test_cfg') or dict(type='TestLoop'), fp16=True)
    scope = cfg.default_scope
    if args.show or args.show_dir:
        _enable_visualization(cfg, scope, args)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ConfigError('--tta: the config defines no tta_model / tta_pipeline')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.vocab:
        cfg.setdefault('custom_hooks', [])
        cfg.custom_hooks.append(dict(type='OpenVocabularyHook', vocabulary=args.vocab,
                                     embeddings_file=args.vocab_embeddings,
                                     evaluate=not (args.show or args.show_dir)))


def _enable_visualization(cfg: Config, scope: str, args) -> None:
    if scope == 'mmaction' and 'visualization' not in cfg.default_hooks:
        # mmaction2's default runtime has none, and its VisualizationHook cannot draw NCTHW
        cfg.default_hooks['visualization'] = dict(type='ActionVisualizationHook')
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise ConfigError('--show/--show-dir: the config has no default_hooks.visualization')
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        if scope == 'mmdet':
            hook['test_out_dir'] = args.show_dir
        else:
            cfg.visualizer['save_dir'] = args.show_dir
        hook['interval'] = 1


# paramwise_cfg entries that are options, not parameter-name keys (mmengine's
# DefaultOptimWrapperConstructor; mmaction2's SwinOptimWrapperConstructor reads every other
# top-level entry as a key)
_PARAMWISE_OPTIONS = frozenset({'bias_lr_mult', 'bias_decay_mult', 'norm_decay_mult',
                                'dwconv_decay_mult', 'flat_decay_mult', 'dcn_offset_lr_mult',
                                'bypass_duplicate', 'custom_keys'})


def unmatched_paramwise_keys(model, optim_wrapper) -> List[str]:
    """The ``paramwise_cfg`` keys (``custom_keys``, and the top-level keys of mmaction2's
    ``SwinOptimWrapperConstructor``) that are part of no parameter name of ``model``: the
    constructors apply a key to the parameters whose names contain it and ignore one that
    matches nothing, so a renamed module silently loses its learning-rate multiplier."""
    paramwise = dict((optim_wrapper or {}).get('paramwise_cfg') or {})
    keys = list(paramwise.get('custom_keys') or {})
    if (optim_wrapper or {}).get('constructor') == 'SwinOptimWrapperConstructor':
        keys += [key for key in paramwise if key not in _PARAMWISE_OPTIONS]
    names = [name for name, _ in model.named_parameters()]
    return [key for key in keys if not any(key in name for name in names)]


def warn_unmatched_paramwise_keys(model, optim_wrapper) -> None:
    """One warning line naming the ``paramwise_cfg`` keys that apply to nothing. A warning,
    not an error: stock recipes list keys for optional parameters (mmdet's and mmseg's Swin
    configs name ``absolute_pos_embed`` whether or not the backbone has one)."""
    unmatched = unmatched_paramwise_keys(model, optim_wrapper)
    if unmatched:
        _warn(f'optim_wrapper.paramwise_cfg: key(s) {unmatched} match no parameter name of '
              f'{type(getattr(model, "module", model)).__name__}; their lr_mult / decay_mult '
              'apply to nothing')


def add_result_dump(runner, scope: str, out: str) -> None:
    """``--out``: pickle the predictions with the task's own dump metric."""
    if not out.endswith(('.pkl', '.pickle')):
        raise ConfigError(f'--out must be a .pkl/.pickle file, got {out!r}')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    if scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))
    else:
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=out))
