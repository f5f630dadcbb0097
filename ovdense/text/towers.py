"""Text towers: one interface (a list of strings -> L2-normalised embeddings) over open_clip.

Native CLIP text transformers and Hugging Face encoders (as open_clip configures them, e.g.
iCAR's RoBERTa + mean pooling + bias-free projection) are built from an open_clip model name
or a JSON config, with weights from a LOCAL checkpoint only: nothing is downloaded.
"""
import contextlib
import hashlib
import json
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils.io import OvdenseFileError, refuse_non_finite, safe_torch_load, sha256_of_file
from ..utils.open_clip_configs import load_open_clip_config

# Keys of a full open_clip CLIP state dict that belong to the text tower.
_CLIP_TEXT_KEYS = ('token_embedding.', 'positional_embedding', 'transformer.', 'ln_final.',
                   'text_projection', 'cls_emb', 'attn_mask')
# open_clip poolers of HF towers whose output ignores padding positions (see
# TextTower._padding_id), and native-tower pool types that read no position after the
# end-of-text token.
PADDING_FREE_HF_POOLERS = ('MeanPooler', 'ClsPooler', 'ClsLastHiddenStatePooler')
CAUSAL_POOLS = ('argmax', 'eos', 'first')


def load_tower_config(model: str) -> Dict:
    """An open_clip model config with a text tower (registered name, shipped name or JSON)."""
    return load_open_clip_config(model, 'text_cfg')


def resolve_config(model: str, hf_dir: Optional[str] = None,
                   context_length: Optional[int] = None) -> Tuple[Dict, Dict]:
    """The model config and its text config with local paths filled in."""
    config = load_tower_config(model)
    text_cfg = dict(config['text_cfg'])
    if context_length is not None:
        text_cfg['context_length'] = context_length
    if text_cfg.get('hf_model_name'):
        hf_dir = hf_dir or text_cfg['hf_model_name']
        if not osp.isfile(osp.join(hf_dir, 'config.json')):
            raise FileNotFoundError(
                f'text tower {model!r} is a Hugging Face encoder: pass hf_dir=<local directory '
                f'with config.json and tokenizer files>; {hf_dir!r} has no config.json '
                '(nothing is downloaded)')
        text_cfg.update(hf_model_name=hf_dir, hf_tokenizer_name=hf_dir,
                        hf_model_pretrained=False)
    return config, text_cfg


def checkpoint_fingerprint(model: str, checkpoint: str, hf_dir: Optional[str] = None,
                           context_length: Optional[int] = None) -> str:
    """Identifies a frozen tower loaded from a file without building it: config + file hash."""
    config, text_cfg = resolve_config(model, hf_dir, context_length)
    digest = hashlib.sha256(config_digest(config['embed_dim'], text_cfg).encode())
    digest.update(sha256_of_file(checkpoint).encode())
    return 'file:' + digest.hexdigest()


def config_digest(embed_dim: int, text_cfg: Dict) -> str:
    return hashlib.sha256(json.dumps([embed_dim, text_cfg], sort_keys=True).encode()).hexdigest()


class TextTower(nn.Module):
    """A text encoder producing unit-norm embeddings of dimension ``embed_dim``.

    Args:
        model: open_clip model name (``'ViT-B-32'``), shipped config (``'icar-roberta-base'``)
            or path to an open_clip JSON config.
        checkpoint: local weights: an open_clip checkpoint, an iCAR checkpoint
            (``sentence_model.*``), an ovdense-converted file, or a text-tower state dict.
            ``None`` keeps the random initialisation (for tests and training from scratch).
        hf_dir: local directory with the Hugging Face config and tokenizer files, required for
            HF text towers (e.g. a copy of ``roberta-base`` for iCAR).
        context_length: overrides the config's token length.
    """

    def __init__(self, model: str = 'ViT-B-32', checkpoint: Optional[str] = None,
                 hf_dir: Optional[str] = None, context_length: Optional[int] = None):
        super().__init__()
        self.model_name = model
        self.checkpoint = checkpoint
        config, text_cfg = resolve_config(model, hf_dir, context_length)
        self._prefix_map = config.get('ovdense', {}).get('checkpoint_prefixes', {})
        self.is_hf = bool(text_cfg.get('hf_model_name'))
        self._config_digest = config_digest(config['embed_dim'], text_cfg)
        self.encoder = self._build_encoder(config, text_cfg)
        self.tokenizer = self._build_tokenizer(model, text_cfg)
        self.embed_dim = int(config['embed_dim'])
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)
        self._fingerprint: Optional[str] = None

    @staticmethod
    def _build_encoder(config: Dict, text_cfg: Dict) -> nn.Module:
        from open_clip.model import _build_text_tower
        return _build_text_tower(config['embed_dim'], text_cfg,
                                 quick_gelu=config.get('quick_gelu', False))

    def _build_tokenizer(self, model: str, text_cfg: Dict):
        from open_clip.tokenizer import HFTokenizer, SimpleTokenizer
        length = text_cfg.get('context_length', 77)
        if self.is_hf:
            return HFTokenizer(text_cfg['hf_tokenizer_name'], context_length=length)
        # The CLIP BPE vocabulary ships inside open_clip: no download.
        return SimpleTokenizer(context_length=length, **text_cfg.get('tokenizer_kwargs', {}))

    # -- weights ---------------------------------------------------------------------------
    def load_checkpoint(self, path: str, strict: bool = True) -> None:
        state = extract_text_state(safe_torch_load(path, what='text tower checkpoint'),
                                   self._prefix_map, source=path)
        refuse_non_finite(state, path, 'text tower checkpoint')
        expected = self.encoder.state_dict()
        for key, value in state.items():
            if key in expected and expected[key].shape != value.shape:
                raise OvdenseFileError(
                    f'text tower checkpoint {path!r}: {key!r} has shape {tuple(value.shape)} '
                    f'but {self.model_name!r} expects {tuple(expected[key].shape)}; '
                    'is it a checkpoint of another architecture?')
        missing, unexpected = self.encoder.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith('attn_mask')]
        if strict and (missing or unexpected):
            raise OvdenseFileError(
                f'text tower checkpoint {path!r} does not fit {self.model_name!r}: '
                f'missing keys {missing[:8]}{"..." if len(missing) > 8 else ""}, '
                f'unexpected keys {unexpected[:8]}{"..." if len(unexpected) > 8 else ""}')
        self._fingerprint = None

    def snapshot_initial_state(self) -> None:
        """Remember the random initial weights so :meth:`reset_parameters` can restore them
        (a tower with a checkpoint reloads the file instead)."""
        if self.checkpoint is None:
            self._initial_state = {k: v.detach().clone()
                                   for k, v in self.encoder.state_dict().items()}

    def reset_parameters(self) -> None:
        """Back to the tower's own initial weights (after a parent's generic init)."""
        if self.checkpoint is not None:
            self.load_checkpoint(self.checkpoint)
        elif getattr(self, '_initial_state', None) is not None:
            self.encoder.load_state_dict(self._initial_state)
        self._fingerprint = None

    def fingerprint(self) -> str:
        """Identifies the current weights (a hash of the tensors and the config)."""
        if self._fingerprint is None:
            digest = hashlib.sha256(self._config_digest.encode())
            for key, tensor in sorted(self.encoder.state_dict().items()):
                digest.update(key.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    # -- encoding --------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    @property
    def context_length(self) -> int:
        return int(self.tokenizer.context_length)

    def tokenize(self, texts: Sequence[str], report_cuts: bool = True) -> torch.Tensor:
        """(len(texts), context_length) token ids, on the CPU. Texts longer than the context
        are cut (the tokenizer's rule); one warning per call says how many (``report_cuts``
        False: none, for callers that tokenise in slices and report once)."""
        texts = list(texts)
        tokens = self.tokenizer(texts)
        if report_cuts:
            cut = self.cut_texts(texts, tokens)
            if cut:
                self.warn_cut(len(cut), len(texts), texts[cut[0]])
        return tokens

    def warn_cut(self, cut: int, total: int, example: str) -> None:
        warnings.warn(f'text tower {self.model_name!r}: {cut} of {total} prompts are longer '
                      f'than its context length ({self.context_length} tokens) and were cut, '
                      f'e.g. {example[:80]!r}; texts that differ only after the cut get '
                      'identical embeddings', stacklevel=3)

    def cut_texts(self, texts: Sequence[str], tokens: torch.Tensor) -> List[int]:
        """Indices of ``texts`` whose token rows (``tokens``, from :meth:`tokenize`) were cut.

        Only rows that fill the context can be cut; those are tokenised again one token
        wider: a row that fitted reads the same there, a cut one does not (its last token
        is the end token written over the text).
        """
        if tokens.ndim != 2 or not len(texts):
            return []
        full = (tokens[:, -1] != self._pad_token_id()).nonzero().flatten().tolist()
        if not full:
            return []
        length = tokens.shape[1]
        wider = self.tokenizer([texts[i] for i in full], context_length=length + 1)
        differs = (wider[:, :length] != tokens[full]).any(1).tolist()
        return [index for index, cut in zip(full, differs) if cut]

    def _pad_token_id(self) -> int:
        """What fills a token row after the text (open_clip's CLIP tokenizer: zeros)."""
        if self.is_hf:
            return self.tokenizer.tokenizer.pad_token_id
        return 0

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit-norm embeddings (len(texts), embed_dim); differentiable."""
        return self.encode_tokens(self.tokenize(texts))

    def encode_tokens(self, tokens: torch.Tensor, batch_size: Optional[int] = None,
                      progress: bool = False) -> torch.Tensor:
        """Unit-norm embeddings of token rows, in their order; differentiable.

        Where padding cannot change a tower's output (:meth:`_padding_id`), rows are
        encoded in batches of similar length (sorted by length), each cut to its longest
        sequence: most prompts are far shorter than the context (77 for CLIP), and the
        tower's cost grows with the padded length. ``batch_size`` None: one batch.
        """
        order = self._length_order(tokens)
        batch_size = batch_size or max(len(tokens), 1)
        batches = range(0, len(tokens), batch_size)
        if progress:
            from tqdm import tqdm
            batches = tqdm(batches, desc='encoding prompts', unit='batch')
        chunks = [self._encode_batch(tokens[order[i:i + batch_size]]) for i in batches]
        if not chunks:
            return torch.empty(0, self.embed_dim, device=self.device)
        encoded = torch.cat(chunks)
        return encoded[order.argsort().to(encoded.device)]  # back to the input order

    def _length_order(self, tokens: torch.Tensor) -> torch.Tensor:
        if self._padding_id() is None:
            return torch.arange(len(tokens))
        return (tokens != self._padding_id()).sum(1).argsort(stable=True)

    def _encode_batch(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens[:, :self._used_length(tokens)].to(self.device)
        with self._causal_mask_for(tokens.shape[1]):
            return F.normalize(self.encoder(tokens).float(), dim=-1)

    def _used_length(self, tokens: torch.Tensor) -> int:
        """Columns up to the last one that holds a token in some row (all, if padding
        can change the output)."""
        pad = self._padding_id()
        if pad is None or tokens.shape[0] == 0:
            return tokens.shape[1]
        used = (tokens != pad).any(0).nonzero()
        return int(used[-1]) + 1 if len(used) else 1

    def _padding_id(self) -> Optional[int]:
        """The padding token id when trailing padding cannot change the embeddings, else None.

        HF towers: the attention mask excludes padding and the pooler ignores it (mean over
        the mask, or the first token; open_clip's MaxPooler reads padding positions). Native
        CLIP towers: causal attention (a position sees only earlier ones), no appended class
        token, and pooling at or before the end-of-text token.
        """
        encoder = self.encoder
        if self.is_hf:
            if type(encoder.pooler).__name__ in PADDING_FREE_HF_POOLERS:
                return encoder.config.pad_token_id
            return None
        causal = (getattr(encoder, 'attn_mask', None) is not None
                  and getattr(encoder, 'cls_emb', None) is None
                  and not getattr(encoder, 'use_pad_mask', False))
        if causal and getattr(encoder, 'pool_type', None) in CAUSAL_POOLS:
            return getattr(encoder, 'pad_id', None)
        return None

    @contextlib.contextmanager
    def _causal_mask_for(self, length: int):
        """open_clip's TextTransformer hands its whole (context x context) causal mask to
        the attention whatever the input length; a shorter input needs its top-left corner."""
        full = None if self.is_hf else getattr(self.encoder, 'attn_mask', None)
        if full is None or full.shape[0] == length:
            yield
            return
        self.encoder.attn_mask = full[:length, :length]
        try:
            yield
        finally:
            self.encoder.attn_mask = full

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 256, progress: bool = False
               ) -> torch.Tensor:
        """Embeddings of many texts in batches, without building a graph."""
        return self.encode_tokens_eval(self.tokenize(texts), batch_size, progress)

    @torch.no_grad()
    def encode_tokens_eval(self, tokens: torch.Tensor, batch_size: int = 256,
                           progress: bool = False) -> torch.Tensor:
        """:meth:`encode_tokens` in eval mode (no dropout), without building a graph."""
        was_training = self.training
        self.eval()
        try:
            return self.encode_tokens(tokens, batch_size, progress)
        finally:
            self.train(was_training)

    def describe(self) -> str:
        return f'{self.model_name} (dim {self.embed_dim}, checkpoint {self.checkpoint})'


def extract_text_state(checkpoint: Dict, prefix_map: Optional[Dict[str, str]] = None,
                       source: str = '<checkpoint>') -> Dict[str, torch.Tensor]:
    """The text-tower part of a checkpoint, with keys as the tower names them.

    Accepts open_clip CLIP files (top-level text keys), CustomTextCLIP files (``text.*``),
    iCAR files (``sentence_model.*``, via the config's prefix map), ovdense-converted files
    (a ``text_tower`` entry) and plain tower state dicts.
    """
    state = checkpoint
    for wrapper in ('text_tower', 'state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise OvdenseFileError(f'{source!r} is not a state dict')
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    mapped = {prefix_to + k[len(prefix_from):]: v
              for prefix_from, prefix_to in (prefix_map or {}).items()
              for k, v in state.items() if k.startswith(prefix_from)}
    if mapped:
        text = mapped
    elif any(k.startswith('text.') for k in state):
        text = {k[len('text.'):]: v for k, v in state.items() if k.startswith('text.')}
    elif any(k.startswith('token_embedding.') for k in state):  # native CLIP text keys
        text = {k: v for k, v in state.items() if k.startswith(_CLIP_TEXT_KEYS)}
    else:
        text = {k: v for k, v in state.items() if k not in ('logit_scale', 'logit_bias')}
    # Hugging Face towers saved with transformers < 4.31 (iCAR's) hold the position ids
    # 0..L-1 as a buffer; newer versions rebuild them (open_clip drops the key likewise)
    return {k: v for k, v in text.items() if not k.endswith('embeddings.position_ids')}
