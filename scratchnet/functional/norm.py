"""Batch normalisation as one op, with its backward pass written out (course 2, week 3).

For each channel, over its m = N * (positions) values z_i in the batch:

    mu     = (1/m) sum_i z_i
    sigma2 = (1/m) sum_i (z_i - mu)^2
    z_norm = (z - mu) / sqrt(sigma2 + eps)
    z~     = gamma z_norm + beta

Written as a chain of elementwise ops, the tape would keep and revisit
about ten arrays of the activation's size; as one Function it keeps one
(z_norm). With g = dJ/dz~ and dz_norm = gamma g, the backward pass (derived
in docs/derivations.md) is

    dJ/dgamma = sum_i g_i z_norm_i          dJ/dbeta = sum_i g_i
    dJ/dz     = (1 / sqrt(sigma2 + eps)) * (dz_norm - mean(dz_norm) - z_norm mean(dz_norm z_norm))

where the means run over the channel's m values. In evaluation mode mu and
sigma2 are fixed numbers (the running estimates), so dJ/dz = dz_norm / sqrt(sigma2 + eps).
The kernels (kernels/batchnorm.py, and its GPU twin) compute each of these in
one or two passes over the channel's values. The running estimates are not
part of the tape: they are updated in place, outside autograd, as PyTorch does.
"""

import numpy as np

from ..device import kernels_for
from ..tensor import Tensor
from ._function import Function


class BatchNorm(Function):
    def forward(self, z, gamma, beta, mu, sigma2, eps, batch_statistics):
        """z: (N, C, ...); gamma, beta, mu, sigma2: (C,); batch_statistics: mu, sigma2 are z's."""
        self.kernels = kernels_for(z)
        z_tilde, self.z_norm = self.kernels.batch_norm_forward(z, mu, sigma2, gamma, beta, eps)
        self.sigma2, self.gamma, self.eps = sigma2, gamma, eps
        self.batch_statistics = batch_statistics
        return z_tilde

    def backward(self, g):
        dz, dgamma, dbeta = self.kernels.batch_norm_backward(
            g, self.z_norm, self.sigma2, self.gamma, self.eps, self.batch_statistics)
        return (dz, dgamma if self.needs_input_grad[1] else None,
                dbeta if self.needs_input_grad[2] else None)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise `input` (N, C, ...) per channel, as torch.nn.functional.batch_norm.

    training=True: the batch's mean and biased variance normalise, and the
    running estimates (NumPy arrays, or None) are updated in place:
    running <- (1 - momentum) running + momentum batch value, with the
    unbiased variance (m / (m - 1)) as PyTorch does. training=False: the
    running estimates normalise. weight (gamma) and bias (beta) are Tensors
    of shape (C,), or None for gamma = 1 and beta = 0.
    """
    if input.ndim < 2:
        raise ValueError(f"input: expected (N, C, ...), got shape {input.shape}")
    n_channels = input.shape[1]
    m = input.data.size // n_channels
    if training:
        if m < 2:
            raise ValueError(f"input: batch statistics need more than 1 value per channel, "
                             f"got shape {input.shape}")
        mu, sigma2 = kernels_for(input.data).batch_norm_statistics(input.data)
        if running_mean is not None:
            running_mean[...] = (1 - momentum) * running_mean + momentum * mu
            running_var[...] = (1 - momentum) * running_var + momentum * sigma2 * m / (m - 1)
    elif running_mean is None or running_var is None:
        raise ValueError("running_mean and running_var: required when training=False")
    else:
        mu, sigma2 = running_mean, running_var
    if weight is None:
        weight = Tensor(np.ones(n_channels, dtype=input.dtype), device=input.device)
    if bias is None:
        bias = Tensor(np.zeros(n_channels, dtype=input.dtype), device=input.device)
    return BatchNorm.apply(input, weight, bias, mu=mu, sigma2=sigma2, eps=eps,
                           batch_statistics=training)
