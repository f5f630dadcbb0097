"""The text classifier under mixed precision: one check shared by the CPU test suite (bf16 /
fp16 autocast on the CPU) and tools/gpu_check.py (CUDA)."""
from typing import Dict, Sequence

import torch

CLASSES = 50
DIM = 64


def classifier_autocast_report(device: str, dtypes: Sequence[torch.dtype]) -> Dict:
    """Logits of a text classifier (K = 50 + learned background) for features that include
    zeros and tiny values, in float32 and under ``torch.autocast(device, dtype)``.

    Per dtype: whether every logit is finite, the fraction of features whose argmax equals the
    float32 argmax (features = a class embedding plus noise, so the float32 argmax has a
    margin), and the largest absolute logit difference on those features (tiny features are
    zeros in fp16: their logits are finite but not the float32 ones).
    """
    from ..text.classifier import TextCosineClassifier
    generator = torch.Generator().manual_seed(0)
    classifier = TextCosineClassifier(
        DIM, [f'class {i}' for i in range(CLASSES)], random_embeddings=True,
        text_tower=dict(model='icar-roberta-nano'), projection=True,
        out_features=CLASSES + 1)
    with torch.no_grad():  # a projection that autocast runs in half precision, kept exact
        classifier.projection.weight.copy_(torch.eye(DIM))
    classifier = classifier.to(device).eval()
    weights = classifier.class_embeddings(device).cpu()
    labels = torch.arange(400) % CLASSES
    clear = weights[labels] + 0.05 * torch.randn(400, DIM, generator=generator)
    extreme = torch.stack([torch.zeros(DIM), torch.full((DIM,), 1e-30),
                           torch.full((DIM,), 1e-8), torch.full((DIM,), 1e-4)])
    features = torch.cat([clear, extreme]).to(device)
    report = {}
    with torch.no_grad():
        reference = classifier(features).float()
        for dtype in dtypes:
            with torch.autocast(device.split(':')[0], dtype=dtype):
                logits = classifier(features)
            name = str(dtype).replace('torch.', '')
            report[name] = {
                'logits_dtype': str(logits.dtype).replace('torch.', ''),
                'finite': bool(torch.isfinite(logits).all()),
                'argmax_agreement': float(
                    (logits[:400].float().argmax(1) == reference[:400].argmax(1)).float().mean()),
                'max_abs_diff': float((logits[:400].float() - reference[:400]).abs().max())}
    report['float32_argmax_is_label'] = bool(
        (reference[:400, :CLASSES].argmax(1).cpu() == labels).all())
    return report
