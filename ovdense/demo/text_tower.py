"""The demo's text tower files: a RoBERTa-style config and a BPE tokenizer learnt from the
demo vocabularies (the demo trains the tower itself from scratch, like iCAR's joint
training, so no pretrained text model is needed). ``build_local_roberta_dir`` also makes the
tiny towers of the tests and the benchmark."""
import os
import os.path as osp
from typing import Iterable, List

from ..text import load_templates, load_vocabulary



def build_local_roberta_dir(directory: str, corpus: Iterable[str], hidden: int = 32,
                            layers: int = 2, heads: int = 2, vocab_size: int = 400,
                            max_positions: int = 40) -> str:
    """Write ``config.json`` and tokenizer files (a byte-level BPE learnt from ``corpus``)
    into ``directory``, usable as a text tower's ``hf_dir``."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaTokenizerFast

    os.makedirs(directory, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(list(corpus), vocab_size=vocab_size, min_frequency=1,
                            show_progress=False,
                            special_tokens=['<s>', '<pad>', '</s>', '<unk>', '<mask>'])
    bpe.save_model(directory)
    tokenizer = RobertaTokenizerFast(vocab_file=osp.join(directory, 'vocab.json'),
                                     merges_file=osp.join(directory, 'merges.txt'))
    tokenizer.save_pretrained(directory)
    RobertaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                  num_attention_heads=heads, intermediate_size=hidden * 2,
                  max_position_embeddings=max_positions, pad_token_id=tokenizer.pad_token_id,
                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
                  ).save_pretrained(directory)
    return directory


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
