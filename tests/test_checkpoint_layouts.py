"""The checkpoint loaders against the REAL layouts recorded in
``ovdense/resources/checkpoint_layouts/*.json`` (keys and shapes, no weights; sources cited in
each file and in that folder's README).

The other checkpoint tests build their fixtures with ovdense's own converters, so they check the
package against itself. Here every fixture comes from a manifest written from outside the package:
open_clip's own model builds, and for iCAR the authors' public loading code plus the public
roberta-base / Swin-B architectures.

No test materialises the big models. Files on disk hold one zero per tensor, expanded to the
manifest's shape (``torch.save`` keeps the stride-0 view, so a 200M-value layout is a few KB and
loads with ``weights_only=True``); models are built on the ``meta`` device where the package's
code allows it (the Swin-B image tower is built once on the CPU, then moved to ``meta``).

Regenerate the key lists (after checking the sources again) with
``python tests/test_checkpoint_layouts.py --write`` (this file's path): it rewrites ``keys``,
``optional_keys``, ``dtypes``, ``key_count`` and ``generated_with`` of each manifest and keeps the
hand-written ``source`` and ``notes``.
"""
import json
import logging
import os
import os.path as osp
import re
import sys
import warnings
from typing import Dict, List, Optional, Tuple

import pytest
import torch

import ovdense
from ovdense import checkpoints as ck
from ovdense.utils.io import OvdenseFileError

LAYOUT_DIR = osp.join(osp.dirname(osp.abspath(ovdense.__file__)), 'resources',
                      'checkpoint_layouts')

# open_clip manifests: file name -> open_clip model name. Each model is named by the README or a
# shipped config: convnext_large_d_320 (configs/_base_/models/upernet_openclip-convnext-l_*),
# convnext_base_w (configs/detection/mask-rcnn_convnext-b-clip_*), ViT-B-32
# (projects/open_vocab_faster_rcnn, TextTower's default), swin_base_patch4_window7_224 (the only
# open_clip config with the timm Swin trunk of the README's "open_clip (timm Swin trunk)" row).
OPEN_CLIP_MANIFESTS = {
    'open_clip_convnext_large_d_320.json': 'convnext_large_d_320',
    'open_clip_convnext_base_w.json': 'convnext_base_w',
    'open_clip_ViT-B-32.json': 'ViT-B-32',
    'open_clip_swin_base_patch4_window7_224.json': 'swin_base_patch4_window7_224',
}
ICAR_MANIFEST = 'icar_swin-b_roberta-base.json'
ALL_MANIFESTS = [ICAR_MANIFEST] + list(OPEN_CLIP_MANIFESTS)

# roberta-base's published config (https://huggingface.co/roberta-base/resolve/main/config.json,
# the file iCAR's LModel names in its comment); only what decides keys and shapes.
ROBERTA_BASE = dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12,
                    num_attention_heads=12, intermediate_size=3072, max_position_embeddings=514,
                    type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                    layer_norm_eps=1e-5)
# iCAR's Swin names (weiyx16/Video-Swin-Transformer: SwinTransformer3D.inflate_weights maps them
# back): Microsoft name -> iCAR name, under 'visual_model.backbone.'.
ICAR_SWIN_RENAMES = (('.attn.relative_position_bias_table', '.attn.rel_pos_embed_table'),
                     ('.downsample.reduction.', '.downsample.channel_reduction.'))
ICAR_TEXT_EMBED = 256   # nn.Linear(768, 256, bias=False) in iCAR's LModel / LanguageHead
SWIN_B_WINDOW = 7       # assumed (224 px pretraining); see the manifest's notes


# ---------------------------------------------------------------------------------------------
# building the key lists (the recipe the manifests were written with)

def _versions() -> Dict[str, str]:
    import open_clip
    import timm
    import transformers
    return {'open_clip_torch': open_clip.__version__, 'timm': timm.__version__,
            'transformers': transformers.__version__,
            'torch': torch.__version__.split('+')[0]}


def _shapes(state) -> Tuple[Dict[str, List[int]], Dict[str, str]]:
    keys = {k: [int(s) for s in v.shape] for k, v in state.items()}
    dtypes = {k: str(v.dtype).replace('torch.', '') for k, v in state.items()
              if v.dtype != torch.float32}
    return keys, dtypes


def build_open_clip_layout(model_name: str) -> Tuple[Dict[str, List[int]], Dict[str, str]]:
    """Keys, shapes (and non-float32 dtypes) of open_clip's own build of ``model_name``: the
    state dict open_clip loads its published weights into (nothing is downloaded)."""
    import open_clip
    with torch.device('meta'), warnings.catch_warnings():
        # the device context too: device='meta' alone builds on the CPU, then moves
        warnings.simplefilter('ignore')
        model = open_clip.create_model(model_name, pretrained=None, device='meta')
    return _shapes(model.state_dict())


def build_icar_layout() -> Tuple[Dict[str, List[int]], Dict[str, List[int]], Dict[str, str]]:
    """(keys, optional_keys, dtypes) of an iCAR Swin-B + RoBERTa-base checkpoint's ``model`` dict.

    Image tower: Swin-B (timm's ``swin_base_patch4_window7_224`` without classifier, patch merging
    moved back to the end of stage N as in Microsoft's naming, the inverse of timm's
    ``checkpoint_filter_fn``), renamed as iCAR names it, under ``visual_model.backbone.``.
    Projections: ``visual_model.projector.weight`` (256 x 1024) and
    ``sentence_model.projector.weight`` (256 x 768), no biases. Text tower: transformers'
    ``RobertaModel(roberta-base config, add_pooling_layer=False)`` under
    ``sentence_model.backbone.``. Optional: the persistent buffers some saves hold.
    """
    import timm
    from transformers import RobertaConfig, RobertaModel

    with torch.device('meta'), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        swin = timm.create_model('swin_base_patch4_window7_224', pretrained=False,
                                 num_classes=0)
        roberta = RobertaModel(RobertaConfig(**ROBERTA_BASE), add_pooling_layer=False)
    state, optional = {}, {}
    for key, value in swin.state_dict().items():
        key = re.sub(r'^layers\.(\d+)\.downsample\.',
                     lambda m: f'layers.{int(m.group(1)) - 1}.downsample.', key)
        for microsoft, icar in ICAR_SWIN_RENAMES:
            key = key.replace(microsoft, icar)
        state['visual_model.backbone.' + key] = value
        if key.endswith('.attn.rel_pos_embed_table'):
            area = SWIN_B_WINDOW * SWIN_B_WINDOW
            optional['visual_model.backbone.' + key.replace('rel_pos_embed_table',
                                                            'relative_coords')] = \
                torch.empty(area, area, dtype=torch.int64, device='meta')
    state['visual_model.projector.weight'] = torch.empty(
        ICAR_TEXT_EMBED, swin.num_features, device='meta')
    for key, value in roberta.state_dict().items():
        state['sentence_model.backbone.' + key] = value
    state['sentence_model.projector.weight'] = torch.empty(
        ICAR_TEXT_EMBED, ROBERTA_BASE['hidden_size'], device='meta')
    optional['sentence_model.backbone.embeddings.position_ids'] = torch.empty(
        1, ROBERTA_BASE['max_position_embeddings'], dtype=torch.int64, device='meta')
    keys, dtypes = _shapes(state)
    optional_keys, optional_dtypes = _shapes(optional)
    return keys, optional_keys, {**dtypes, **optional_dtypes}


def rewrite_manifests() -> None:
    """Rewrite the generated fields of every manifest (keeps source / notes)."""
    versions = _versions()
    for name in ALL_MANIFESTS:
        path = osp.join(LAYOUT_DIR, name)
        with open(path, encoding='utf-8') as f:
            manifest = json.load(f)
        if name == ICAR_MANIFEST:
            keys, optional, dtypes = build_icar_layout()
            manifest['generated_with'] = {k: versions[k] for k in ('timm', 'transformers',
                                                                  'torch')}
        else:
            keys, dtypes = build_open_clip_layout(OPEN_CLIP_MANIFESTS[name])
            optional = {}
            manifest['generated_with'] = {k: versions[k] for k in ('open_clip_torch', 'timm',
                                                                  'torch')}
        manifest.update(key_count=len(keys), keys=keys, optional_keys=optional, dtypes=dtypes)
        _write_manifest(path, manifest)


def _write_manifest(path: str, manifest: dict) -> None:
    order = ['name', 'format', 'layout', 'model', 'file', 'wrapper', 'source', 'notes',
             'generated_with', 'key_count', 'dtypes', 'optional_keys', 'keys']
    ordered = {k: manifest[k] for k in order if k in manifest}
    ordered.update({k: v for k, v in manifest.items() if k not in ordered})
    text = json.dumps(ordered, indent=1)
    # one key per line, its shape on the same line
    text = re.sub(r'\[\n\s*((?:-?\d+,\n\s*)*-?\d+)\n\s*\]',
                  lambda m: '[' + re.sub(r',\n\s*', ', ', m.group(1)) + ']', text)
    text = re.sub(r'": \[\n\s*\]', '": []', text)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text + '\n')


# ---------------------------------------------------------------------------------------------
# helpers

_MANIFESTS: Dict[str, dict] = {}


def manifest(name: str) -> dict:
    if name not in _MANIFESTS:
        with open(osp.join(LAYOUT_DIR, name), encoding='utf-8') as f:
            _MANIFESTS[name] = json.load(f)
    return _MANIFESTS[name]


def layout_keys(m: dict, optional: bool = False) -> Dict[str, List[int]]:
    keys = dict(m['keys'])
    if optional:
        keys.update(m['optional_keys'])
    return keys


def meta_state(m: dict, optional: bool = False) -> Dict[str, torch.Tensor]:
    """The layout as meta tensors (no memory), for the in-memory functions."""
    return {k: torch.empty(shape, dtype=getattr(torch, m['dtypes'].get(k, 'float32')),
                           device='meta')
            for k, shape in layout_keys(m, optional).items()}


def zero_state(m: dict, optional: bool = False, drop: Tuple[str, ...] = (),
               reshape: Optional[Tuple[str, List[int]]] = None) -> Dict[str, torch.Tensor]:
    """The layout as real CPU tensors, each a stride-0 view of one zero (a few bytes on disk).
    ``drop`` / ``reshape`` mutate it for the negative controls."""
    state = {}
    for key, shape in layout_keys(m, optional).items():
        if key in drop:
            continue
        if reshape is not None and key == reshape[0]:
            shape = reshape[1]
        # float16 (real files hold float16 or float32; the dtype decides no key or shape)
        dtype = getattr(torch, m['dtypes'].get(key, 'float16'))
        state[key] = torch.zeros((), dtype=dtype).expand(list(shape))
    return state


def write_file(path, m: dict, state: Dict[str, torch.Tensor]) -> str:
    """Write ``state`` as the real files hold it (``m['wrapper']``: None = a bare state dict)."""
    obj = {m['wrapper']: state} if m.get('wrapper') else state
    torch.save(obj, str(path))
    assert osp.getsize(str(path)) < 2_000_000  # stride-0 views: no weights on disk
    return str(path)


def visual_keys(m: dict) -> Dict[str, List[int]]:
    return {k[len('visual.'):]: v for k, v in m['keys'].items() if k.startswith('visual.')}


def text_keys(m: dict) -> Dict[str, List[int]]:
    return {k: v for k, v in m['keys'].items() if not k.startswith('visual.')}


def state_shapes(state) -> Dict[str, List[int]]:
    return {k: list(v.shape) for k, v in state.items()}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        # meta-device loads warn that copying into a meta parameter is a no-op
        warnings.filterwarnings('ignore', message='.*meta parameter.*')
        warnings.filterwarnings('ignore', category=FutureWarning)
        yield


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    # tests/conftest.py does not apply here: keep any embedding cache inside tmp_path
    monkeypatch.setenv('OVDENSE_CACHE_DIR', str(tmp_path / 'embedding_cache'))


_ICAR_SWIN: Dict[Optional[int], torch.nn.Module] = {}


def icar_swin_base(text_embed_dims: Optional[int]) -> torch.nn.Module:
    """``ICARSwin(arch='base')`` built once on the CPU (mmdet's Swin cannot be built on meta),
    then moved to meta: its state dict is what the converted image tower must fit."""
    if text_embed_dims not in _ICAR_SWIN:
        from ovdense.models.backbones.icar_swin import ICARSwin
        _ICAR_SWIN[text_embed_dims] = ICARSwin(
            arch='base', text_embed_dims=text_embed_dims).to('meta')
    return _ICAR_SWIN[text_embed_dims]


def roberta_base_dir(directory: str) -> str:
    """A local stand-in for a copy of roberta-base: its published config.json and a small
    byte-level BPE tokenizer (the tokenizer does not decide any key or shape)."""
    from transformers import RobertaConfig

    from ovdense.demo.text_tower import build_local_roberta_dir
    build_local_roberta_dir(directory, ['a photo of a cat.', 'a dog on a mat'], hidden=8,
                            layers=1, heads=1, vocab_size=300)
    RobertaConfig(**ROBERTA_BASE).save_pretrained(directory)
    return directory


def _logger():
    logger = logging.getLogger('test_checkpoint_layouts')
    logger.setLevel(logging.ERROR)
    return logger


# ---------------------------------------------------------------------------------------------
# the manifests themselves

@pytest.mark.parametrize('name', ALL_MANIFESTS)
def test_manifest_is_well_formed(name):
    path = osp.join(LAYOUT_DIR, name)
    assert osp.getsize(path) < 300_000
    m = manifest(name)
    assert m['format'] == 'ovdense-checkpoint-layout'
    assert m['layout'] in ck.SOURCE_LAYOUTS
    assert m['key_count'] == len(m['keys']) > 100
    assert m['source'] and all(('repo' in s and 'path' in s) or 'url' in s for s in m['source'])
    assert m['notes'] and m['generated_with']
    for key, shape in layout_keys(m, optional=True).items():
        assert isinstance(shape, list) and all(isinstance(s, int) and s > 0 for s in shape), key
    assert not set(m['keys']) & set(m['optional_keys'])
    assert set(m['dtypes']) <= set(layout_keys(m, optional=True))
    with open(osp.join(LAYOUT_DIR, 'README.md'), encoding='utf-8') as f:
        assert name in f.read()


@pytest.mark.parametrize('name', list(OPEN_CLIP_MANIFESTS))
def test_open_clip_manifest_is_open_clips_own_build(name):
    """The recorded layout is still what the installed open_clip builds (and so what it loads
    its published weights into, strictly): an open_clip / timm upgrade that renames keys shows
    up here first."""
    m = manifest(name)
    keys, dtypes = build_open_clip_layout(OPEN_CLIP_MANIFESTS[name])
    assert sorted(keys) == sorted(m['keys'])
    assert keys == m['keys'] and dtypes == m['dtypes']


def test_icar_manifest_is_the_public_architectures():
    """iCAR's text tower is transformers' RobertaModel(roberta-base, no pooler) and its image
    tower a Swin-B in Microsoft naming with iCAR's renames: the recorded keys are exactly that."""
    m = manifest(ICAR_MANIFEST)
    keys, optional, dtypes = build_icar_layout()
    assert keys == m['keys'] and optional == m['optional_keys'] and dtypes == m['dtypes']
    # spot checks against the cited code, independent of the recipe above
    assert m['wrapper'] == 'model'
    assert m['keys']['visual_model.projector.weight'] == [256, 1024]
    assert m['keys']['sentence_model.projector.weight'] == [256, 768]
    assert not any(k.startswith(('visual_model.projector.bias', 'sentence_model.projector.bias',
                                 'sentence_model.backbone.pooler.')) for k in m['keys'])
    assert m['keys']['sentence_model.backbone.embeddings.word_embeddings.weight'] == [50265, 768]
    assert m['keys']['sentence_model.backbone.embeddings.position_embeddings.weight'] == [514, 768]
    assert m['keys']['visual_model.backbone.patch_embed.proj.weight'] == [128, 3, 4, 4]
    assert m['keys']['visual_model.backbone.layers.2.blocks.17.attn.rel_pos_embed_table'] == \
        [169, 16]
    assert m['keys']['visual_model.backbone.layers.0.downsample.channel_reduction.weight'] == \
        [256, 512]
    assert 'visual_model.backbone.layers.3.downsample.channel_reduction.weight' not in m['keys']
    assert m['keys']['visual_model.backbone.norm.weight'] == [1024]


# ---------------------------------------------------------------------------------------------
# open_clip files

@pytest.mark.parametrize('name', list(OPEN_CLIP_MANIFESTS))
def test_open_clip_file_is_detected_and_read(name, tmp_path):
    m = manifest(name)
    path = write_file(tmp_path / 'open_clip.bin', m, zero_state(m))
    assert ck.detect_layout(ck.read_checkpoint(path), path) == 'open_clip'
    assert state_shapes(ck.read_open_clip_state_dict(path)) == m['keys']


def test_open_clip_training_checkpoint_is_detected_and_read(tmp_path):
    """open_clip_train saves {'epoch', 'name', 'state_dict', 'optimizer'} (open_clip_train/main.py),
    and older runs saved DDP's 'module.'-prefixed keys."""
    m = manifest('open_clip_swin_base_patch4_window7_224.json')
    state = {'module.' + k: v for k, v in zero_state(m).items()}
    path = str(tmp_path / 'epoch_32.pt')
    torch.save({'epoch': 32, 'name': 'run', 'state_dict': state,
                'optimizer': {'state': {0: {'step': torch.tensor(3.)}},
                              'param_groups': [{'lr': 1e-3, 'params': [0]}]}}, path)
    assert ck.detect_layout(ck.read_checkpoint(path), path) == 'open_clip'
    assert state_shapes(ck.read_open_clip_state_dict(path)) == m['keys']


@pytest.mark.parametrize('name', list(OPEN_CLIP_MANIFESTS))
def test_open_clip_text_tower_loads_the_file(name, tmp_path):
    """TextTower(model) takes every text key of the file, strictly (no key missing or left over),
    and nothing else."""
    from ovdense.text.towers import TextTower, extract_text_state

    m = manifest(name)
    path = write_file(tmp_path / 'open_clip.bin', m, zero_state(m))
    with torch.device('meta'):
        tower = TextTower(OPEN_CLIP_MANIFESTS[name])
    tower.load_checkpoint(path)  # strict: raises on any missing / unexpected key or shape
    extracted = extract_text_state(meta_state(m), tower._prefix_map)
    own = state_shapes(tower.encoder.state_dict())
    assert state_shapes(extracted) == own
    assert set(extracted) == set(text_keys(m)) - {'logit_scale', 'logit_bias'}


@pytest.mark.parametrize('name', list(OPEN_CLIP_MANIFESTS))
def test_open_clip_vision_backbone_loads_the_file(name, tmp_path):
    """OpenCLIPVisionBackbone(model_name, checkpoint=file) loads every image key: none missing,
    none unexpected, none resized."""
    from ovdense.models.backbones.open_clip_vision import OpenCLIPVisionBackbone

    m = manifest(name)
    path = write_file(tmp_path / 'open_clip.bin', m, zero_state(m))
    with torch.device('meta'):
        backbone = OpenCLIPVisionBackbone(OPEN_CLIP_MANIFESTS[name], checkpoint=path)
    backbone.init_weights()
    report = backbone.load_report
    assert report.missing == [] and report.unexpected == [] and report.resized == []
    own = {k for k in backbone.visual.state_dict() if not k.endswith(ck._DERIVED_SUFFIXES)}
    assert set(report.loaded) == own == set(visual_keys(m))


def test_open_clip_swin_trunk_converts_to_icar_swin_base(monkeypatch):
    """The README's 'open_clip (timm Swin trunk)' row: the converter maps open_clip's
    swin_base_patch4_window7_224 to exactly the tensors of ICARSwin(arch='base'), the image head
    to the projection, and keeps the text tower."""
    from ovdense.models.backbones.icar_swin import ARCH_SETTINGS

    m = manifest('open_clip_swin_base_patch4_window7_224.json')
    converted = ck.convert(meta_state(m), source='open_clip_swin.bin')
    assert converted['source_layout'] == 'open_clip' and converted['source_naming'] == 'timm'
    base = ARCH_SETTINGS['base']
    arch = converted['backbone_arch']
    assert (arch['embed_dims'], tuple(arch['depths']), tuple(arch['num_heads']),
            arch['window_size'], arch['patch_size']) == \
        (base['embed_dims'], base['depths'], base['num_heads'], base['window_size'], 4)
    assert state_shapes(converted['text_projection']) == {'weight': [640, 1024]}
    assert state_shapes(converted['text_tower']) == text_keys(m)
    assert converted['dropped_keys'] == []

    model = icar_swin_base(text_embed_dims=640)
    monkeypatch.setattr(ck, 'load_converted', lambda path, layout='auto', model_name='':
                        ck.convert(meta_state(m), layout=layout, source=path))
    report = model.load_checkpoint('open_clip_swin.bin', logger=_logger())
    assert report.missing == [] and report.unexpected == [] and report.resized == []
    assert sorted(report.new_modules) == sorted(
        f'norm{i}.{p}' for i in range(3) for p in ('weight', 'bias'))
    assert len(report.loaded) == len(converted['backbone']) + 1  # + text_projection.weight


@pytest.mark.parametrize('name', ['open_clip_convnext_large_d_320.json',
                                  'open_clip_convnext_base_w.json', 'open_clip_ViT-B-32.json'])
def test_non_swin_open_clip_file_is_refused_by_the_swin_converter(name):
    """ConvNeXt and ViT towers are OpenCLIPVisionBackbone's; the ICARSwin converter refuses them
    with a layout error (not a crash deeper down)."""
    with pytest.raises(ck.CheckpointLayoutError):
        ck.convert(meta_state(manifest(name)))


# ---------------------------------------------------------------------------------------------
# iCAR files

@pytest.mark.parametrize('optional', [False, True], ids=['required', 'with_optional'])
def test_icar_file_is_detected(optional, tmp_path):
    m = manifest(ICAR_MANIFEST)
    path = write_file(tmp_path / 'icar.pth', m, zero_state(m, optional))
    assert ck.detect_layout(ck.read_checkpoint(path), path) == 'icar'


def test_icar_text_tower_loads_the_file(tmp_path):
    """TextTower('icar-roberta-base') takes exactly sentence_model.backbone.* (RoBERTa without
    pooler) and sentence_model.projector.weight (768 -> 256, no bias) of a whole iCAR file."""
    from ovdense.text.towers import TextTower

    m = manifest(ICAR_MANIFEST)
    path = write_file(tmp_path / 'icar.pth', m, zero_state(m))
    hf_dir = roberta_base_dir(str(tmp_path / 'roberta-base'))
    with torch.device('meta'):
        tower = TextTower('icar-roberta-base', hf_dir=hf_dir)
    assert tower.embed_dim == 256
    tower.load_checkpoint(path)  # strict
    own = state_shapes(tower.encoder.state_dict())
    expected = {k.replace('sentence_model.backbone.', 'transformer.')
                 .replace('sentence_model.projector.', 'proj.'): v
                for k, v in m['keys'].items() if k.startswith('sentence_model.')}
    assert own == expected


def test_icar_text_tower_loads_a_file_saved_before_transformers_4_31(tmp_path):
    from ovdense.text.towers import TextTower

    m = manifest(ICAR_MANIFEST)
    state = zero_state(m)
    key = 'sentence_model.backbone.embeddings.position_ids'
    state[key] = torch.zeros((), dtype=torch.int64).expand(m["optional_keys"][key])
    path = write_file(tmp_path / 'icar.pth', m, state)
    hf_dir = roberta_base_dir(str(tmp_path / 'roberta-base'))
    with torch.device('meta'):
        tower = TextTower('icar-roberta-base', hf_dir=hf_dir)
    tower.load_checkpoint(path)


@pytest.mark.parametrize('optional', [False, True], ids=['required', 'with_optional'])
def test_icar_image_tower_converts_to_icar_swin_base(optional, monkeypatch):
    """What the README's iCAR row promises for a real iCAR Swin-B file: the image tower becomes
    exactly ICARSwin(arch='base')'s tensors, visual_model.projector.weight the 1024 -> 256
    projection (no bias), and sentence_model.* the text tower."""
    from ovdense.models.backbones.icar_swin import ARCH_SETTINGS

    m = manifest(ICAR_MANIFEST)
    converted = ck.convert({'model': meta_state(m, optional)}, source='icar.pth')
    assert converted['source_layout'] == 'icar' and converted['text_tower_layout'] == 'icar'
    base = ARCH_SETTINGS['base']
    arch = converted['backbone_arch']
    assert (arch['embed_dims'], tuple(arch['depths']), tuple(arch['num_heads']),
            arch['window_size']) == \
        (base['embed_dims'], base['depths'], base['num_heads'], base['window_size'])
    assert state_shapes(converted['text_projection']) == {'weight': [256, 1024]}
    text = {k: v for k, v in layout_keys(m, optional).items()
            if k.startswith('sentence_model.')}
    assert state_shapes(converted['text_tower']) == text

    model = icar_swin_base(text_embed_dims=256)
    monkeypatch.setattr(ck, 'load_converted', lambda path, layout='auto', model_name='':
                        ck.convert({'model': meta_state(m, optional)}, layout=layout,
                                   source=path))
    report = model.load_checkpoint('icar.pth', logger=_logger())
    assert report.missing == [] and report.unexpected == [] and report.resized == []
    assert len(report.loaded) == len(converted['backbone']) + 1  # + text_projection.weight


# ---------------------------------------------------------------------------------------------
# negative controls: the loaders above do notice a layout that is off by one key or one shape

def test_text_tower_refuses_a_layout_missing_a_key_or_with_a_wrong_shape(tmp_path):
    from ovdense.text.towers import TextTower

    m = manifest('open_clip_ViT-B-32.json')
    with torch.device('meta'):
        tower = TextTower('ViT-B-32')

    def text_only(state):  # the image keys play no part here; leaving them out saves time
        return {k: v for k, v in state.items() if not k.startswith('visual.')}

    tower.load_checkpoint(write_file(tmp_path / 'intact.bin', m, text_only(zero_state(m))))
    missing = write_file(tmp_path / 'missing.bin', m,
                         text_only(zero_state(m, drop=('ln_final.bias',))))
    with pytest.raises(OvdenseFileError, match='ln_final.bias'):
        tower.load_checkpoint(missing)
    reshaped = write_file(tmp_path / 'reshaped.bin', m,
                          text_only(zero_state(m, reshape=('text_projection', [512, 768]))))
    with pytest.raises(OvdenseFileError, match='text_projection'):
        tower.load_checkpoint(reshaped)


def test_vision_backbone_reports_a_layout_missing_a_key_or_with_a_wrong_shape(tmp_path):
    from ovdense.models.backbones.open_clip_vision import OpenCLIPVisionBackbone

    m = manifest('open_clip_convnext_base_w.json')
    key = 'visual.trunk.stages.3.blocks.2.mlp.fc2.bias'
    missing = write_file(tmp_path / 'missing.bin', m, zero_state(m, drop=(key,)))
    with torch.device('meta'):
        backbone = OpenCLIPVisionBackbone('convnext_base_w', checkpoint=missing)
    backbone.init_weights()
    assert backbone.load_report.missing == [key[len('visual.'):]]
    reshaped = write_file(tmp_path / 'reshaped.bin', m, zero_state(m, reshape=(key, [512])))
    backbone.checkpoint = reshaped
    with pytest.raises(ck.CheckpointShapeError, match='stages.3.blocks.2.mlp.fc2.bias'):
        backbone.init_weights()


if __name__ == '__main__':
    if sys.argv[1:] != ['--write']:
        sys.exit(f'usage: python {sys.argv[0]} --write   (rewrites the manifests in {LAYOUT_DIR})')
    rewrite_manifests()
    for name in ALL_MANIFESTS:
        print(name, os.path.getsize(osp.join(LAYOUT_DIR, name)), 'bytes')
