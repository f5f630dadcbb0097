"""The demo's text tower files: a RoBERTa-style config and a BPE tokenizer learnt from the
demo vocabularies (the demo trains the tower itself from scratch, like iCAR's joint
training, so no pretrained text model is needed). ``build_local_roberta_dir`` also makes the
tiny towers of the tests and the benchmark."""
import collections
import os
import os.path as osp
import re
from typing import Iterable, List, Optional, Sequence

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


# --------------------------------------------------------------- text-only pretraining

ACTION_TOWER_CHECKPOINT = 'action_words.pth'  # beside the tower files in text_tower/
ACTION_PROMPTS = dict(templates='action', use_descriptions=False)


def _content_words(subjects: Sequence[str], max_share: float) -> List[List[str]]:
    """Each subject's words, without those in more than ``max_share`` of all subjects
    ("shape", "moving": words every class says, which would pull all embeddings together)."""
    words = [sorted(set(re.findall(r'[a-z]+', s.lower()))) for s in subjects]
    counts = collections.Counter(w for ws in words for w in ws)
    return [[w for w in ws if counts[w] <= max_share * len(subjects)] for ws in words]


def pretrain_bag_of_words(tower_dir: str, vocabulary: str, out: str,
                          prompts: Optional[dict] = None, steps: int = 600,
                          batch_size: int = 64, max_share: float = 0.4,
                          seed: int = 0) -> str:
    """Text-only pretraining of the from-scratch demo tower (``icar-roberta-nano`` in
    ``tower_dir``) on the prompts of ``vocabulary``'s classes: a linear read-out of a
    prompt's unit embedding must say which content words its class phrase holds.

    A tower trained from scratch gives every prompt almost the same embedding (cosines
    0.95-0.99 on the action prompts), so a clip classifier trained against it cannot tell
    classes apart that differ in one word, and nothing relates an unseen class to seen
    ones. After this pretraining an embedding is close to a sum over its words: classes
    sharing a word are near, others far, and an unseen pair of seen words lands where its
    words point. Reads text only (no clips, no labels); writes ``out`` (the tower's state
    dict, loadable as ``text_tower.checkpoint``) all-or-nothing. Deterministic per seed.
    """
    import torch
    import torch.nn.functional as F

    from ..text import PromptStyle
    from ..text.towers import TextTower
    from ..utils.io import atomic_write

    style = PromptStyle.build(**(prompts or ACTION_PROMPTS))
    texts, subjects = [], []
    for entry in load_vocabulary(vocabulary):
        texts += style.class_prompts(entry)  # subject-major: each subject x every template
        subjects += [s for s in style.subjects(entry) for _ in style.templates]
    words = _content_words(subjects, max_share)
    columns = {w: i for i, w in enumerate(sorted({w for ws in words for w in ws}))}
    if not columns:
        raise ValueError(f'{vocabulary!r}: no class phrase has a word of its own '
                         f'(every word is in more than {max_share:.0%} of them)')
    targets = torch.zeros(len(texts), len(columns))
    for row, ws in enumerate(words):
        targets[row, [columns[w] for w in ws]] = 1.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tower = TextTower(model='icar-roberta-nano', hf_dir=tower_dir).train()
        tokens = tower.tokenize(texts)
        read_out = torch.nn.Linear(tower.embed_dim, len(columns))
        params = list(tower.parameters()) + list(read_out.parameters())
        optimizer = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.01)
        for _ in range(steps):
            rows = torch.randint(len(texts), (batch_size,))
            # unit embeddings times 10: the read-out sees what the cosine classifier sees
            logits = read_out(tower.encode_tokens(tokens[rows]) * 10)
            loss = F.binary_cross_entropy_with_logits(logits, targets[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with atomic_write(out) as f:
        torch.save(tower.encoder.state_dict(), f)
    return out


def prepare_action_text_tower(data_root: str, steps: int = 600) -> str:
    """The action demo's pretrained tower checkpoint (made once, beside the tower files)."""
    directory = prepare_demo_text_tower(data_root)
    out = osp.join(directory, ACTION_TOWER_CHECKPOINT)
    if not osp.isfile(out):
        pretrain_bag_of_words(directory, osp.join(data_root, 'vocab_action.json'), out,
                              steps=steps)
    return out
