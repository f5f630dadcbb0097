#!/usr/bin/env python
"""Write the text-generated classifier for a vocabulary: class embeddings as ``.npy``
(C x D float32, unit rows: the format Detic's ZeroShotClassifier reads) and ``.pt`` (the same
plus class names, templates, model id and dim).

Example:
    python tools/build_text_classifier.py --model ViT-B-32 --checkpoint clip_b32.pt \\
        --vocab lvis_v1 --templates imagenet --out work_dirs/lvis_clip_b32.npy
"""
import argparse
import sys
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', required=True,
                        help='open_clip model name (ViT-B-32), shipped config '
                             '(icar-roberta-base) or path to an open_clip JSON config')
    parser.add_argument('--checkpoint', default=None,
                        help='local text tower weights; omitted = random init (for testing)')
    parser.add_argument('--hf-dir', default=None,
                        help='local Hugging Face config/tokenizer directory (HF text towers)')
    parser.add_argument('--vocab', required=True,
                        help='dataset name (coco, lvis_v1, ade20k_150 ...), .txt/.json/.yaml '
                             'file, or comma-separated class names')
    parser.add_argument('--templates', default='imagenet',
                        help='single, vild, imagenet, action, or a .txt file of templates')
    parser.add_argument('--descriptions', action=argparse.BooleanOptionalAction, default=True,
                        help='append class descriptions to names in prompts')
    parser.add_argument('--out', required=True,
                        help='output path; both OUT.npy and OUT.pt are written')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--cache-dir', default=None,
                        help='reuse/store embeddings in this cache (default: no cache)')
    parser.add_argument('--seed', type=int, default=0, help='seed for a random-init tower')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from ovdense.utils.cli import classifier_output_stem
    stem = classifier_output_stem(args.out)  # before the tower is built
    import torch

    from ovdense.text import PromptStyle, load_vocabulary, save_classifier_pair
    from ovdense.text.embeddings import (EmbeddingCache, FrozenTextEmbedder,
                                         describe_embeddings)

    torch.manual_seed(args.seed)
    vocabulary = load_vocabulary(args.vocab)
    style = PromptStyle.build(args.templates, use_descriptions=args.descriptions)
    tower_cfg = {'model': args.model, 'checkpoint': args.checkpoint, 'hf_dir': args.hf_dir}
    embedder = FrozenTextEmbedder(tower_cfg, EmbeddingCache(args.cache_dir))
    start = time.perf_counter()
    embeddings, cache_path = embedder.embeddings(
        vocabulary, style, device=args.device, batch_size=args.batch_size, progress=True,
        use_cache=args.cache_dir is not None)
    elapsed = time.perf_counter() - start
    metadata = describe_embeddings(vocabulary, style, embedder.tower)
    metadata.update(vocabulary=vocabulary.source, checkpoint=args.checkpoint)
    save_classifier_pair(stem, embeddings, metadata)
    print(f'{len(vocabulary)} classes x {len(style.templates)} templates -> '
          f'{tuple(embeddings.shape)} in {elapsed:.1f} s'
          f'{" (cache " + cache_path + ")" if cache_path else ""}\n'
          f'wrote {stem}.npy and {stem}.pt')
    return 0


if __name__ == '__main__':
    from ovdense.utils.cli import run_cli
    sys.exit(run_cli(main))
