"""Helpers for tests (ovdense's and users'): tiny towers, tokenizers and checkpoints made on
the spot, so nothing is downloaded."""
from .text import (tiny_clip_config, tiny_icar_text_checkpoint, tiny_roberta_dir,
                   tiny_text_tower_cfg)

__all__ = ['tiny_clip_config', 'tiny_icar_text_checkpoint', 'tiny_roberta_dir',
           'tiny_text_tower_cfg']
