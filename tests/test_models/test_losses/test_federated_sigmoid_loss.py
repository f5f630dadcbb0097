"""FederatedSigmoidLoss (ovdense/models/losses/federated_sigmoid_loss.py): the classes present
in a batch plus sampled negatives are scored; the background column gets no gradient."""
import torch

import ovdense  # noqa: F401


def test_federated_sigmoid_loss_scores_present_and_sampled_classes():
    from ovdense.models.losses import FederatedSigmoidLoss
    loss = FederatedSigmoidLoss(num_sample_classes=4).train()
    labels = torch.tensor([0, 2, 10, 10])  # 10 classes; label 10 = background
    mask = loss.class_mask(labels, 10)
    assert mask[0] == 1 and mask[2] == 1 and int(mask.sum()) == 4
    scores = torch.randn(4, 11, requires_grad=True)
    value = loss(scores, labels, torch.ones(4))
    value.backward()
    assert torch.isfinite(value) and scores.grad[:, 10].abs().sum() == 0
    assert loss.get_activation(scores).shape == (4, 11)
