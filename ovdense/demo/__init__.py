"""The built-in demo: a deterministic synthetic dataset for every task (``data``) and the
files of its from-scratch text tower (``text_tower``). Tooling, not runtime components:
nothing here is registered, and it reads nothing from a source checkout."""
from .data import make_demo_data
from .text_tower import build_local_roberta_dir, prepare_demo_text_tower

__all__ = ['build_local_roberta_dir', 'make_demo_data', 'prepare_demo_text_tower']
