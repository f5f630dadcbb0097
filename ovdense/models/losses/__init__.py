from .federated_sigmoid_loss import FederatedSigmoidLoss, lvis_class_frequencies

__all__ = ['FederatedSigmoidLoss', 'lvis_class_frequencies']
