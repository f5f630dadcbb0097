"""A small RoBERTa-style text tower directory (config + byte-level BPE tokenizer) made
locally from a text corpus: what the demo trains from scratch and what tests load."""
import os
import os.path as osp
from typing import Iterable


def build_local_roberta_dir(directory: str, corpus: Iterable[str], hidden: int = 32,
                            layers: int = 2, heads: int = 2, vocab_size: int = 400,
                            max_positions: int = 40) -> str:
    """Write ``config.json`` and tokenizer files into ``directory`` (usable as ``hf_dir``)."""
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
