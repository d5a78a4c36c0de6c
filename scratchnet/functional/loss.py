"""Losses: mean squared error and binary cross-entropy.

With prediction p (a probability), logit z, target y, elementwise:

    mse:        (a - b)^2
    bce:        -(y log p + (1 - y) log(1 - p))
                dp = (p - y) / (p (1 - p)),   dy = log(1 - p) - log p
    bce with logits, p = sigmoid(z), written so that no exp overflows:
                max(z, 0) - z y + log(1 + e^-|z|)
                dz = sigmoid(z) - y,          dy = -z

As in PyTorch, bce clamps each log at -100 so that p = 0 or 1 gives a
large finite loss instead of inf, and divides by max(p (1 - p), 1e-12).
`reduction` is "mean" (the default), "sum" or "none" (the elementwise
losses, shaped like the inputs).
"""

import numpy as np

from ._function import Function, operands
from .activation import stable_sigmoid
from .elementwise import sub
from .reduce import mean, sum

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction):
    """`reduction` itself when it is one of REDUCTIONS, else a ValueError."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def reduce_loss(losses, reduction):
    """Apply `reduction` ("mean", "sum" or "none") to a tensor of losses."""
    check_reduction(reduction)
    if reduction == "mean":
        return mean(losses)
    if reduction == "sum":
        return sum(losses)
    return losses


def _check_loss_arguments(input, target, reduction):
    """Both as Tensors of one shape, and a known reduction; else raise."""
    check_reduction(reduction)
    input, target = operands(input, target)
    if input.shape != target.shape:
        raise ValueError(
            f"input and target must have one shape, got {input.shape} and {target.shape}"
        )
    return input, target


class BinaryCrossEntropy(Function):
    def forward(self, p, y):
        self.p, self.y = p, y
        with np.errstate(divide="ignore"):
            self.log_p = np.maximum(np.log(p), -100)
            self.log_not_p = np.maximum(np.log1p(-p), -100)
        return -(y * self.log_p + (1 - y) * self.log_not_p)

    def backward(self, dl):
        dp = dl * (self.p - self.y) / np.maximum(self.p * (1 - self.p), 1e-12)
        dy = dl * (self.log_not_p - self.log_p) if self.needs_input_grad[1] else None
        return dp, dy


class BinaryCrossEntropyWithLogits(Function):
    def forward(self, z, y):
        self.z, self.y = z, y
        return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))

    def backward(self, dl):
        dz = dl * (stable_sigmoid(self.z) - self.y)
        dy = -dl * self.z if self.needs_input_grad[1] else None
        return dz, dy


def mse_loss(input, target, reduction="mean"):
    """(input - target)^2, reduced; as torch.nn.functional.mse_loss."""
    input, target = _check_loss_arguments(input, target, reduction)
    diff = sub(input, target)
    return reduce_loss(diff * diff, reduction)


def binary_cross_entropy(input, target, reduction="mean"):
    """-(y log p + (1 - y) log(1 - p)) for probabilities p = input, y = target."""
    input, target = _check_loss_arguments(input, target, reduction)
    if not np.all((input.data >= 0) & (input.data <= 1)):    # NaN fails both comparisons
        raise ValueError("input of binary_cross_entropy must hold probabilities in [0, 1], "
                         "with no NaN")
    return reduce_loss(BinaryCrossEntropy.apply(input, target), reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    """binary_cross_entropy(sigmoid(input), target), computed stably from the logits."""
    input, target = _check_loss_arguments(input, target, reduction)
    return reduce_loss(BinaryCrossEntropyWithLogits.apply(input, target), reduction)
