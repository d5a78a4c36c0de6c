"""Batch normalisation (course 2, week 3), with PyTorch's semantics.

For each channel c, over the m = N * (positions) values of the batch:

    mu     = (1/m) sum_i z_i
    sigma2 = (1/m) sum_i (z_i - mu)^2                (biased: divides by m)
    z_norm = (z - mu) / sqrt(sigma2 + eps)
    z~     = gamma z_norm + beta                     gamma = weight, beta = bias

In training mode mu and sigma2 are the batch's, and the running estimates
used at test time are updated as exponentially weighted averages, with
the UNBIASED variance as PyTorch does:

    running_mean <- (1 - momentum) running_mean + momentum mu
    running_var  <- (1 - momentum) running_var  + momentum sigma2 m / (m - 1)

(momentum=None: a plain average over all batches so far, 1/num_batches_tracked.)
In evaluation mode, and only if track_running_stats=True, the running
estimates replace mu and sigma2. BatchNorm1d takes (N, C) or (N, C, L),
BatchNorm2d (N, C, H, W), BatchNorm3d (N, C, D, H, W).

The op is scratchnet.functional.batch_norm, one Function whose backward
pass (including the parts that flow through mu and sigma2) is derived in
docs/derivations.md and checked against finite differences and PyTorch.

>>> import numpy as np
>>> from scratchnet import Tensor
>>> bn = BatchNorm1d(2)
>>> y = bn(Tensor(np.array([[1.0, 10.0], [3.0, 30.0]])))
>>> np.round(y.data, 3), bn.running_mean
(array([[-1., -1.],
       [ 1.,  1.]]), array([0.2, 2. ], dtype=float32))
"""

import numpy as np

from .. import functional as F
from .module import Module, Parameter


class BatchNormNd(Module):
    """Batch normalisation over channel axis 1; use BatchNorm1d, BatchNorm2d or BatchNorm3d."""

    input_ndims = ()
    layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True):
        super().__init__()
        if not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=np.float32))  # gamma
            self.bias = Parameter(np.zeros(num_features, dtype=np.float32))  # beta
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        tracked = track_running_stats
        zeros, ones = np.zeros(num_features, np.float32), np.ones(num_features, np.float32)
        self.register_buffer("running_mean", zeros if tracked else None)
        self.register_buffer("running_var", ones if tracked else None)
        self.register_buffer("num_batches_tracked", np.array(0, np.int64) if tracked else None)

    def forward(self, x):
        self._check_input(x)
        use_batch_statistics = self.training or self.running_mean is None
        tracking = self.training and self.running_mean is not None
        momentum = self.momentum
        if tracking and momentum is None:   # a plain average over all batches, this one too
            momentum = 1.0 / (float(self.num_batches_tracked) + 1)
        y = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         training=use_batch_statistics, momentum=momentum, eps=self.eps)
        if tracking:                        # counted once F.batch_norm has accepted the batch
            self.num_batches_tracked[...] += 1
        return y

    def _check_input(self, x):
        if x.ndim not in self.input_ndims or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}) expects input {self.layout} with "
                f"C = num_features = {self.num_features}, got shape {x.shape}"
            )

    def extra_repr(self):
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(BatchNormNd):
    """Batch normalisation of (N, C) or (N, C, L)."""

    input_ndims = (2, 3)
    layout = "(N, C) or (N, C, L)"


class BatchNorm2d(BatchNormNd):
    """Batch normalisation of (N, C, H, W)."""

    input_ndims = (4,)
    layout = "(N, C, H, W)"


class BatchNorm3d(BatchNormNd):
    """Batch normalisation of (N, C, D, H, W)."""

    input_ndims = (5,)
    layout = "(N, C, D, H, W)"


class ChannelAffine(Module):
    """z~[n, c] = gamma[c] z[n, c] + beta[c], with given gamma and beta: a batch norm folded
    into one scale and shift per channel (dlib's affine_ layer)."""

    def __init__(self, gamma, beta):
        super().__init__()
        self.gamma = Parameter(np.asarray(gamma, dtype=np.float32))
        self.beta = Parameter(np.asarray(beta, dtype=np.float32))

    def forward(self, z):
        shape = (1, -1) + (1,) * (z.ndim - 2)  # (C,) -> (1, C, 1, 1)
        return F.add(F.mul(z, F.reshape(self.gamma, shape)), F.reshape(self.beta, shape))
