import json
import os
import os.path as osp
from typing import Dict

import torch

_TOKENIZER_CORPUS = [
    'a photo of a red circle.', 'a blue star on a background', 'the green square, a shape',
    'a video of action moving left', 'an aerosol can, a dispenser that holds a substance',
    'person bicycle car motorcycle airplane bus train truck boat traffic light',
]


def tiny_clip_config(directory: str, name: str = 'tiny-clip', embed_dim: int = 32,
                     width: int = 32, layers: int = 2, context_length: int = 16) -> str:
    """An open_clip JSON config with a tiny native text transformer (CLIP BPE tokenizer)."""
    config = {
        'embed_dim': embed_dim,
        'vision_cfg': {'image_size': 32, 'layers': 1, 'width': 32, 'patch_size': 16,
                       'head_width': 16},
        'text_cfg': {'context_length': context_length, 'vocab_size': 49408, 'width': width,
                     'heads': 2, 'layers': layers},
    }
    os.makedirs(directory, exist_ok=True)
    path = osp.join(directory, name + '.json')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(config, f)
    return path


def tiny_text_tower_cfg(directory: str, **kwargs) -> Dict:
    """``text_tower=`` settings for a tiny randomly initialised native tower."""
    return {'model': tiny_clip_config(directory, **kwargs)}


def tiny_roberta_dir(directory: str, hidden: int = 32, layers: int = 2) -> str:
    """A local Hugging Face directory: tiny RoBERTa config + a byte-level BPE tokenizer
    trained on a few sentences (stand-ins for a copy of ``roberta-base``)."""
    from ..demo.text_tower import build_local_roberta_dir
    return build_local_roberta_dir(directory, _TOKENIZER_CORPUS, hidden=hidden, layers=layers)


def tiny_icar_text_checkpoint(path: str, hf_dir: str, embed_dim: int = 256,
                              seed: int = 0) -> Dict[str, torch.Tensor]:
    """A checkpoint of :func:`tiny_icar_text_state`, plus a stray image key as real files
    have. Returns the state dict written."""
    state = tiny_icar_text_state(hf_dir, embed_dim, seed)
    state['visual_model.projector.weight'] = torch.randn(embed_dim, 8)
    torch.save({'model': state}, path)
    return state


def tiny_icar_text_state(hf_dir: str, embed_dim: int = 256,
                         seed: int = 0) -> Dict[str, torch.Tensor]:
    """iCAR's text-tower keys (``sentence_model.backbone.*`` RoBERTa of ``hf_dir``'s config,
    without pooler; ``sentence_model.projector.weight``); random weights."""
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(seed)
    config = RobertaConfig.from_pretrained(hf_dir)
    roberta = RobertaModel(config, add_pooling_layer=False)
    projector = torch.nn.Linear(config.hidden_size, embed_dim, bias=False)
    state = {f'sentence_model.backbone.{k}': v for k, v in roberta.state_dict().items()}
    state['sentence_model.projector.weight'] = projector.weight.detach().clone()
    return state


# classifier files (tools/build_text_classifier.py's output) of four classes
FILE_CLASSES = ('cat', 'dog', 'yak', 'zebra')


def unit_rows(rows: int = len(FILE_CLASSES), dim: int = 32) -> torch.Tensor:
    """``rows`` random unit vectors of size ``dim`` (seed 0): class embeddings."""
    return torch.nn.functional.normalize(
        torch.randn(rows, dim, generator=torch.Generator().manual_seed(0)), dim=-1)


def classifier_file(path, embeddings: torch.Tensor, names=FILE_CLASSES) -> str:
    """A classifier file as tools/build_text_classifier.py writes it (the .pt with names)."""
    from ..text import save_classifier_file
    save_classifier_file(str(path), embeddings, {'class_names': list(names)})
    return str(path)
