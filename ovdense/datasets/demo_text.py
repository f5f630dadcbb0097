"""The demo's text tower files: a RoBERTa-style config and a BPE tokenizer learnt from the
demo vocabularies (the demo trains the tower itself from scratch, like iCAR's joint
training, so no pretrained text model is needed)."""
import os.path as osp
from typing import List

from ..text import load_templates, load_vocabulary
from ..text.local_roberta import build_local_roberta_dir

TOWER_SIZE = dict(hidden=64, layers=2, heads=2, vocab_size=600, max_positions=40)


def demo_corpus(data_root: str) -> List[str]:
    lines = []
    for name in ('vocab_det.json', 'vocab_seg.json', 'vocab_action.json'):
        path = osp.join(data_root, name)
        if osp.isfile(path):
            for entry in load_vocabulary(path):
                lines += [entry.readable_name, entry.description, *entry.phrases]
    templates = [t.format('') for s in ('single', 'vild', 'action') for t in load_templates(s)]
    return [line for line in lines + templates if line]


def prepare_demo_text_tower(data_root: str) -> str:
    directory = osp.join(data_root, 'text_tower')
    if not osp.isfile(osp.join(directory, 'config.json')):
        build_local_roberta_dir(directory, demo_corpus(data_root), **TOWER_SIZE)
    return directory
