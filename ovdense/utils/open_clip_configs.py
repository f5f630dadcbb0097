"""open_clip model configs by name: open_clip's registry, configs shipped with ovdense, or a
JSON file (an open_clip model config, or an ``open_clip_config.json`` with ``model_cfg``)."""
import copy
import json
import os.path as osp
from typing import Dict

SHIPPED_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'resources',
                       'text_towers')


def load_open_clip_config(model: str, section: str) -> Dict:
    """The config of ``model``, which must have ``embed_dim`` and ``section``
    (``'text_cfg'`` or ``'vision_cfg'``)."""
    import open_clip
    shipped = osp.join(SHIPPED_DIR, model + '.json')
    if model.endswith('.json') or osp.isfile(model):
        path = model
    else:
        path = shipped if osp.isfile(shipped) else None
    if path is not None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'open_clip model config not found: {path!r}')
        with open(path, encoding='utf-8') as f:
            config = json.load(f)
        config = config.get('model_cfg', config)
    else:
        config = open_clip.get_model_config(model)
        if config is None:
            raise ValueError(f'unknown open_clip model {model!r}: not a registered name '
                             f'(open_clip.list_models()), not a config shipped in '
                             f'{SHIPPED_DIR}, and not a .json file')
    if 'embed_dim' not in config or section not in config:
        raise ValueError(f'{model!r} is not an open_clip model config with a {section} '
                         f"(needs 'embed_dim' and '{section}')")
    return copy.deepcopy(config)
