"""Compatibility fixes for the pinned OpenMMLab stack on current torch. One fix per function.

Applied once by ``import ovdense``; each is idempotent.
"""
import importlib
import importlib.util
import os
import pickle
import sys
import types
import warnings
from typing import Optional

import torch


def allow_mmengine_checkpoint_globals() -> None:
    """Let mmengine resume under ``torch.load(weights_only=True)`` (the default since torch 2.6).

    mmengine's checkpoints hold its message hub (``HistoryBuffer`` objects wrapping numpy
    arrays). Only exactly those globals are allow-listed; weights-only loading stays on.
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:  # torch < 2.4 has no weights_only default to work around
        return
    add_safe_globals(_mmengine_checkpoint_globals())


def _mmengine_checkpoint_globals() -> list:
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    multiarray = getattr(np, '_core', None) or np.core
    allowed = [HistoryBuffer, multiarray.multiarray._reconstruct,
               multiarray.multiarray.scalar, np.ndarray, np.dtype,
               # HistoryBuffer pickles its statistics methods as getattr(HistoryBuffer, 'min');
               # the real getattr is never allow-listed, only this restricted stand-in.
               (_history_buffer_method, 'builtins.getattr'),
               (_history_buffer_method, '__builtin__.getattr')]
    # numpy >= 1.25 pickles dtypes through their concrete classes (np.dtypes.Float64DType ...).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in
                    ('Float64DType', 'Float32DType', 'Int64DType', 'Int32DType', 'BoolDType')
                    if hasattr(dtypes, name)]
    return allowed


def _history_buffer_method(owner, name: str):
    """``getattr`` limited to the public statistics methods of mmengine's HistoryBuffer."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if owner is not HistoryBuffer or name.startswith('_') or not callable(
            getattr(HistoryBuffer, name, None)):
        raise pickle.UnpicklingError(
            f'refused getattr({owner!r}, {name!r}) while loading a checkpoint: only '
            'HistoryBuffer statistics methods are allowed')
    return getattr(HistoryBuffer, name)


_DRN_MODULE = 'mmaction.models.localizers.drn'


def _find_spec(name: str):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):  # e.g. sys.modules[name] = None (import blocked)
        return None


def install_mmaction_drn_shim() -> bool:
    """mmaction2 1.2.0 on the package index lacks ``mmaction/models/localizers/drn`` but its
    ``localizers/__init__`` imports it, so ``import mmaction.models`` fails. Provide a stand-in
    module (only when the real one is absent) whose ``DRN`` raises a clear error if used.

    Returns True when the shim was installed.
    """
    spec = _find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return False
    package_dir = list(spec.submodule_search_locations)[0]
    if os.path.isdir(os.path.join(package_dir, 'models', 'localizers', 'drn')):
        return False
    if _DRN_MODULE in sys.modules:
        return True

    class DRN:  # noqa: D401 - stand-in, see docstring above
        def __init__(self, *args, **kwargs):
            raise ImportError(
                'DRN is not available: mmaction2 1.2.0 as published lacks '
                f'{_DRN_MODULE}; ovdense provides an empty stand-in so the rest of '
                'mmaction2 imports. Install mmaction2 from a source tree that has it to use DRN.')

    package = types.ModuleType(_DRN_MODULE)
    package.__path__ = []  # a package, so 'drn.drn' resolves under it
    module = types.ModuleType(_DRN_MODULE + '.drn')
    module.DRN = DRN
    package.drn = module
    package.DRN = DRN
    sys.modules[_DRN_MODULE] = package
    sys.modules[_DRN_MODULE + '.drn'] = module
    return True


_MOVED_TRANSFORMERS_HELPERS = ('apply_chunking_to_forward', 'find_pruneable_heads_and_indices',
                               'prune_linear_layer')


def alias_moved_transformers_helpers() -> None:
    """mmaction2 1.2.0's VindLU imports three helpers from ``transformers.modeling_utils``
    that transformers 4.4x moved to ``transformers.pytorch_utils``; with transformers
    installed, ``import mmaction.models`` then fails. Re-expose them where mmaction looks."""
    if _find_spec('transformers') is None:
        return
    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils
    for name in _MOVED_TRANSFORMERS_HELPERS:
        if not hasattr(modeling_utils, name) and hasattr(pytorch_utils, name):
            setattr(modeling_utils, name, getattr(pytorch_utils, name))


_mmaction_state = {'tried': False, 'module': None}


def import_mmaction() -> Optional[types.ModuleType]:
    """Import mmaction (with the DRN shim) or return None when it is not installed/usable."""
    if not _mmaction_state['tried']:
        _mmaction_state['tried'] = True
        if _find_spec('mmaction') is not None:
            install_mmaction_drn_shim()
            alias_moved_transformers_helpers()
            try:
                importlib.import_module('mmaction.models')
                _mmaction_state['module'] = importlib.import_module('mmaction')
            except Exception as err:  # a broken optional dependency must not break ovdense
                warnings.warn(f'mmaction2 is installed but failed to import ({err!r}); '
                              'ovdense action components are unavailable.')
    return _mmaction_state['module']


class _NumpyWithFloatAlias(types.ModuleType):
    """numpy as seen by one module, plus the ``np.float`` alias numpy 2 removed."""

    float = float

    def __getattr__(self, name):
        import numpy
        return getattr(numpy, name)


def give_lvis_eval_np_float() -> None:
    """lvis 0.5.3's ``LVISEval.accumulate`` uses ``np.float``, removed in numpy 2, so mmdet's
    LVISMetric crashes. Only lvis.eval's own numpy reference gets the alias."""
    if _find_spec('lvis') is None:
        return
    import numpy
    import lvis.eval as lvis_eval
    if not hasattr(numpy, 'float') and not isinstance(lvis_eval.np, _NumpyWithFloatAlias):
        lvis_eval.np = _NumpyWithFloatAlias('numpy')


def let_ssd_head_predict() -> None:
    """mmdet 3.3's ``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls``, which
    ``SSDHead`` never sets (it skips AnchorHead's __init__), so every SSD prediction fails with
    ``'SSDHead' object has no attribute 'loss_cls'`` (open-mmlab/mmdetection#11305, #11780).
    SSDHead gets a ``loss_cls`` that is None unless a subclass registers one, so that check is
    false and SSD scores with its softmax as before 3.3."""
    from mmdet.models.dense_heads import SSDHead
    if 'loss_cls' not in vars(SSDHead):
        SSDHead.loss_cls = property(lambda self: self._modules.get('loss_cls'))


def init_cpu_distributed(cfg) -> bool:
    """mmengine's pytorch launcher always calls ``torch.cuda.set_device``, so torchrun jobs
    cannot run on CPU. Without CUDA, start the gloo process group from torchrun's
    environment (mmengine then skips its own init) and build DDP without device ids.

    Returns True when it did so.
    """
    import torch.distributed as dist
    if torch.cuda.is_available() or dist.is_initialized():
        return False
    dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                            world_size=int(os.environ['WORLD_SIZE']))
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.update(device_ids=None)
    wrapper.setdefault('broadcast_buffers', False)
    cfg.model_wrapper_cfg = wrapper
    return True


def apply_all() -> None:
    allow_mmengine_checkpoint_globals()
    give_lvis_eval_np_float()
    let_ssd_head_predict()
