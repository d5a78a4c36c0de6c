"""Loss layers: cross-entropy for classification, mean squared error.

For logits z of shape (N, C) (one row of class scores per example) and
integer class labels y in [0, C), the softmax cross-entropy of example n is

    L_n = -log softmax(z_n)[y_n] = -z_n[y_n] + log sum_j e^(z_n[j])

and the loss J is the mean of the L_n ("mean"), their sum ("sum") or the
vector of them ("none"). It is composed from scratchnet.functional's
log_softmax and indexing, so the tape gives its gradient,
dJ/dz_n = (softmax(z_n) - onehot(y_n)) / N for "mean".

>>> import numpy as np
>>> from scratchnet import Tensor
>>> logits = Tensor(np.array([[0.0, 0.0], [0.0, 0.0]]))
>>> float(CrossEntropyLoss()(logits, np.array([0, 1])).item()) == float(np.log(2))
True
"""

import numpy as np

from .. import functional as F
from ..functional.loss import check_reduction, reduce_loss
from .module import Module


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of logits (N, C) against integer labels (N,), as torch's."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, logits, target):
        target = _check_labels(logits, target)
        log_p = F.log_softmax(logits, dim=1)
        losses = -log_p[np.arange(len(target)), target]  # (N, C) -> (N,): log p of the true class
        return reduce_loss(losses, self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(Module):
    """Mean squared error (input - target)^2, reduced, as torch's."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


def _check_labels(logits, target):
    """target as an int array (N,) of classes in [0, C) for logits (N, C); else raise."""
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {logits.shape}")
    target = np.asarray(target)
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"target must hold integer class labels, got dtype {target.dtype}")
    n, classes = logits.shape
    if target.shape != (n,):
        raise ValueError(
            f"target must have shape ({n},) for logits {logits.shape}, got {target.shape}"
        )
    if n and (target.min() < 0 or target.max() >= classes):
        raise ValueError(
            f"target labels must be in [0, {classes}), got {target.min()}..{target.max()}"
        )
    return target

