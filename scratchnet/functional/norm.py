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
part of the tape: they are updated in place, outside autograd, as PyTorch does,
once every argument has been checked and the output computed.
"""

from numbers import Real

import numpy as np

from ..device import CudaArray, kernels_for
from ..tensor import Tensor
from ._function import Function, as_tensor


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
    running estimates (arrays or Tensors of shape (C,), or both None) are
    updated in place: running <- (1 - momentum) running + momentum batch
    value, with the unbiased variance (m / (m - 1)) as PyTorch does.
    training=False: the running estimates normalise. weight (gamma) and bias
    (beta) are of shape (C,), or None for gamma = 1 and beta = 0. Every
    argument is checked before anything is computed or updated.
    """
    input = as_tensor(input)
    running_mean, running_var = _check_arguments(input, running_mean, running_var, weight, bias,
                                                 training, eps)
    n_channels = input.shape[1]
    if weight is None:
        weight = Tensor(np.ones(n_channels, dtype=input.dtype), device=input.device)
    if bias is None:
        bias = Tensor(np.zeros(n_channels, dtype=input.dtype), device=input.device)
    if not training:
        return BatchNorm.apply(input, weight, bias, mu=running_mean, sigma2=running_var, eps=eps,
                               batch_statistics=False)
    mu, sigma2 = kernels_for(input.data).batch_norm_statistics(input.data)
    z_tilde = BatchNorm.apply(input, weight, bias, mu=mu, sigma2=sigma2, eps=eps,
                              batch_statistics=True)
    if running_mean is not None:
        m = input.data.size // n_channels
        running_mean[...] = (1 - momentum) * running_mean + momentum * mu
        running_var[...] = (1 - momentum) * running_var + momentum * sigma2 * m / (m - 1)
    return z_tilde


def _check_arguments(input, running_mean, running_var, weight, bias, training, eps):
    """Raise on a bad argument; return the running estimates as arrays (or None)."""
    if input.ndim < 2 or input.shape[1] < 1:
        raise ValueError(f"input: expected (N, C, ...) with C >= 1, got shape {input.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be "
                         "None")
    if running_mean is None and not training:
        raise ValueError("running_mean and running_var: required when training=False")
    running = [r.data if isinstance(r, Tensor) else r for r in (running_mean, running_var)]
    vectors = zip(("running_mean", "running_var", "weight", "bias"), running + [weight, bias])
    for name, vector in vectors:
        _check_per_channel(name, vector, input.shape)
    if training and input.data.size // input.shape[1] < 2:
        raise ValueError(f"input: batch statistics need more than 1 value per channel, "
                         f"got shape {input.shape}")
    if training and not (isinstance(eps, Real) and eps > 0):
        raise ValueError(f"eps must be positive during training (a constant channel has "
                         f"sigma2 = 0), got {eps!r}")
    return running


def _check_per_channel(name, vector, input_shape):
    """Raise unless `vector` is None or an array or Tensor with one entry per channel."""
    if vector is None:
        return
    if not isinstance(vector, (Tensor, np.ndarray, CudaArray)):
        raise TypeError(f"{name}: expected a Tensor or an array of shape ({input_shape[1]},), "
                        f"got {type(vector).__name__}")
    if tuple(vector.shape) != (input_shape[1],):
        raise ValueError(f"{name}: expected shape ({input_shape[1]},), one entry per channel of "
                         f"input {input_shape}, got {tuple(vector.shape)}")
