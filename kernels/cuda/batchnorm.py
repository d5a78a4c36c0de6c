"""Batch normalisation on the GPU, forward and backward: the twin of kernels/batchnorm.py.

Notation as there: z (N, n_C, P) the pre-activations, m = N P values per
channel, mu and sigma2 each channel's mean and variance, g = dJ/dz~.

    z_norm = (z - mu) / sqrt(sigma2 + eps),   z~ = gamma z_norm + beta
    dz     = gamma / sqrt(sigma2 + eps) * (g - S_g / m - z_norm S_gz / m)

with S_g = sum g and S_gz = sum g z_norm over the channel (training), or
dz = gamma g / sqrt(sigma2 + eps) when mu and sigma2 are fixed.

Thread mapping: the per-channel sums are reductions, one block per channel
whose threads each walk every blockDim-th value of the channel and then
combine their partial sums in shared memory by halving (as reduce.py);
normalising and dz give one thread one entry.
"""

import math

import numba
import numpy as np
from numba import cuda

from ..batchnorm import _check_backward, _check_eps, _check_statistics_input, _per_channel
from ._device import check_device_array, empty, launch

REDUCE_THREADS = 256      # threads of a per-channel reduction block (a power of 2)


def batch_norm_statistics(z):
    """(mu, sigma2): each channel's mean and biased variance, float64 device arrays (n_C,)."""
    z_flat = _flat("z", z)
    _check_statistics_input("z", z_flat, z.shape)
    n_channels = z_flat.shape[1]
    mu, sigma2 = empty((n_channels,), np.float64), empty((n_channels,), np.float64)
    _statistics_kernel[n_channels, REDUCE_THREADS](z_flat, mu, sigma2)
    return mu, sigma2


def batch_norm_forward(z, mu, sigma2, gamma, beta, eps):
    """(z~, z_norm), z's shape: z_norm = (z - mu) / sqrt(sigma2 + eps), z~ = gamma z_norm + beta."""
    z_flat = _flat("z", z)
    mu, sigma2, gamma, beta = _per_channel(z_flat, _vector, mu=mu, sigma2=sigma2, gamma=gamma,
                                           beta=beta)
    _check_eps(eps, batch_statistics=False)
    z_tilde, z_norm = empty(z_flat.shape, z.dtype), empty(z_flat.shape, z.dtype)
    launch(_normalise_kernel, z_flat.size, z_flat, mu, sigma2, gamma, beta, float(eps),
           z_tilde, z_norm)
    return z_tilde.reshape(z.shape), z_norm.reshape(z.shape)


def batch_norm_backward(g, z_norm, sigma2, gamma, eps, batch_statistics):
    """(dJ/dz, dJ/dgamma, dJ/dbeta) given g = dJ/dz~ and the forward pass's z_norm and sigma2."""
    g_flat, z_norm_flat, sigma2, gamma = _check_backward(g, z_norm, sigma2, gamma, eps,
                                                         batch_statistics, _flat, _vector)
    n_channels = g_flat.shape[1]
    sums = empty((n_channels, 2), np.float64)           # S_g, S_gz per channel
    _gradient_sums_kernel[n_channels, REDUCE_THREADS](g_flat, z_norm_flat, sums)
    dz = empty(g_flat.shape, g.dtype)
    launch(_input_gradient_kernel, g_flat.size, g_flat, z_norm_flat, sums, sigma2, gamma,
           float(eps), bool(batch_statistics), dz)
    dgamma, dbeta = empty((n_channels,), g.dtype), empty((n_channels,), g.dtype)
    launch(_split_sums_kernel, n_channels, sums, dgamma, dbeta)
    return dz.reshape(g.shape), dgamma, dbeta


def _flat(name, a):
    """Validate a (N, n_C, *spatial) device array and view it as (N, n_C, P)."""
    a = check_device_array(name, a, ndim=(2, 3, 4, 5))
    return a.reshape(a.shape[0], a.shape[1], a.size // max(1, a.shape[0] * a.shape[1]))


def _vector(name, vector):
    """A per-channel vector as a float64 device array (converted on the device if needed)."""
    vector = check_device_array(name, vector, ndim=1)
    if vector.dtype != np.float64:
        converted = empty(vector.shape, np.float64)
        launch(_to_float64_kernel, vector.size, vector, converted)
        vector = converted
    return vector


# ------------------------------------------------------------------ kernels

@cuda.jit(device=True)
def _block_sum(shared, value):
    """The sum of `value` over the block's threads (every thread gets it); shared has blockDim slots."""
    t = cuda.threadIdx.x
    shared[t] = value
    cuda.syncthreads()
    half = cuda.blockDim.x // 2
    while half > 0:                            # the tree: 128, 64, ..., 1 threads combine
        if t < half:
            shared[t] += shared[t + half]
        cuda.syncthreads()
        half //= 2
    total = shared[0]
    cuda.syncthreads()                         # everyone has read it before shared is reused
    return total


@cuda.jit(cache=True)
def _statistics_kernel(z, mu, sigma2):
    """Block c: mu[c] = mean of z[:, c, :], then sigma2[c] = mean of (z[:, c, :] - mu[c])^2."""
    shared = cuda.shared.array(REDUCE_THREADS, numba.float64)
    c, t = cuda.blockIdx.x, cuda.threadIdx.x
    n_positions = z.shape[2]
    m = z.shape[0] * n_positions
    total = 0.0
    for i in range(t, m, cuda.blockDim.x):
        total += z[i // n_positions, c, i % n_positions]
    mean = _block_sum(shared, total) / m
    squares = 0.0
    for i in range(t, m, cuda.blockDim.x):
        deviation = z[i // n_positions, c, i % n_positions] - mean
        squares += deviation * deviation
    variance = _block_sum(shared, squares) / m
    if t == 0:
        mu[c], sigma2[c] = mean, variance


@cuda.jit(device=True)
def _entry(i, shape):
    """(n, c, p) of entry number i, in C order, of an (N, n_C, P) array."""
    n, rest = divmod(i, shape[1] * shape[2])
    c, p = divmod(rest, shape[2])
    return n, c, p


@cuda.jit(cache=True)
def _normalise_kernel(z, mu, sigma2, gamma, beta, eps, z_tilde, z_norm):
    """Thread i: entry i (C order) of z_norm and z~."""
    i = cuda.grid(1)
    if i < z.size:
        n, c, p = _entry(i, z.shape)
        normalised = (z[n, c, p] - mu[c]) / math.sqrt(sigma2[c] + eps)
        z_norm[n, c, p] = normalised
        z_tilde[n, c, p] = gamma[c] * normalised + beta[c]


@cuda.jit(cache=True)
def _gradient_sums_kernel(g, z_norm, sums):
    """Block c: sums[c] = (S_g, S_gz), the sums of g and of g z_norm over channel c."""
    shared = cuda.shared.array(REDUCE_THREADS, numba.float64)
    c, t = cuda.blockIdx.x, cuda.threadIdx.x
    n_positions = g.shape[2]
    s_g, s_gz = 0.0, 0.0
    for i in range(t, g.shape[0] * n_positions, cuda.blockDim.x):
        n, p = i // n_positions, i % n_positions
        s_g += g[n, c, p]
        s_gz += g[n, c, p] * z_norm[n, c, p]
    s_g = _block_sum(shared, s_g)
    s_gz = _block_sum(shared, s_gz)
    if t == 0:
        sums[c, 0], sums[c, 1] = s_g, s_gz


@cuda.jit(cache=True)
def _input_gradient_kernel(g, z_norm, sums, sigma2, gamma, eps, batch_statistics, dz):
    """Thread i: entry i (C order) of dz."""
    i = cuda.grid(1)
    if i < g.size:
        n, c, p = _entry(i, g.shape)
        m = g.shape[0] * g.shape[2]
        scale = gamma[c] / math.sqrt(sigma2[c] + eps)
        value = g[n, c, p]
        if batch_statistics:
            value -= sums[c, 0] / m + z_norm[n, c, p] * sums[c, 1] / m
        dz[n, c, p] = scale * value


@cuda.jit(cache=True)
def _split_sums_kernel(sums, dgamma, dbeta):
    """Thread c: dgamma[c] = S_gz, dbeta[c] = S_g, in the gradient's dtype."""
    c = cuda.grid(1)
    if c < sums.shape[0]:
        dgamma[c], dbeta[c] = sums[c, 1], sums[c, 0]


@cuda.jit(cache=True)
def _to_float64_kernel(vector, out):
    """Thread i: out[i] = vector[i] as float64."""
    i = cuda.grid(1)
    if i < vector.size:
        out[i] = vector[i]
