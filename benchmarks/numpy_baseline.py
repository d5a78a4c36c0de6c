"""A plain NumPy baseline: the textbook im2col convolution, and friends.

This is the implementation a NumPy user writes in an afternoon, kept simple
and honest rather than tuned, so that the benchmark can show what scratchnet's
Numba kernels buy over it. Same signatures and conventions as `kernels`
(channels first, cross-correlation, dilation 1 = none), with less checking.

Convolution, for 1-3 spatial dimensions (notation as in kernels/conv.py):

    y[n, k, o] = b[k] + sum_{c, j} w[k, c, j] * x_pad[n, g(k) C_g + c, o * s + j * d]

`np.lib.stride_tricks.sliding_window_view` gives every window of x_pad as a
view, windows[n, c, o, j] = x_pad[n, c, o * s + j * d]; `np.tensordot`
copies it into the im2col matrix, (N * P, C_g * k), and multiplies in BLAS:

    forward          y      = tensordot(windows, w)    over (c, j)
    backward weight  dw     = tensordot(dy, windows)   over (n, o)
    backward input   dcols  = tensordot(dy, w)         over k, then each
                     filter offset j adds its slice dcols[..., j] back into
                     dx_pad at positions o * s + j * d (a loop over the k
                     offsets, not over pixels), and the padding is cut off.

Groups are a Python loop over the G slices of channels.
"""

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


# ------------------------------------------------------------- convolution

def conv_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y = conv(x, w) + b, (N, C, *n) -> (N, F, *n_out), by im2col + tensordot."""
    n_spatial = x.ndim - 2
    stride, padding, dilation = _per_dim(n_spatial, stride, padding, dilation)
    windows = _windows(x, w.shape[2:], stride, padding, dilation)   # (N, C, *n_out, *k)
    window_axes = list(range(2 + n_spatial, 2 + 2 * n_spatial))
    filter_axes = list(range(2, 2 + n_spatial))
    parts = []
    for x_group, w_group in zip(_split_channels(windows, groups), np.split(w, groups)):
        # (N, C_g, *n_out, *k) . (F_g, C_g, *k) over (c, j) -> (N, *n_out, F_g)
        parts.append(np.tensordot(x_group, w_group, axes=([1] + window_axes, [1] + filter_axes)))
    y = np.moveaxis(np.concatenate(parts, axis=-1), -1, 1)            # (N, *n_out, F) -> (N, F, *n_out)
    y = np.ascontiguousarray(y)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * n_spatial)
    return y


def conv_backward_weight(dy, x, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """dw[k, c, j] = sum_{n, o} dy[n, k, o] * x_pad[n, c, o * s + j * d]."""
    n_spatial = x.ndim - 2
    stride, padding, dilation = _per_dim(n_spatial, stride, padding, dilation)
    windows = _windows(x, w_shape[2:], stride, padding, dilation)   # (N, C, *n_out, *k)
    summed_axes = [0] + list(range(2, 2 + n_spatial))                 # n and o, in both
    parts = [
        # (N, F_g, *n_out) . (N, C_g, *n_out, *k) over (n, o) -> (F_g, C_g, *k)
        np.tensordot(dy_group, x_group, axes=(summed_axes, summed_axes))
        for dy_group, x_group in zip(_split_channels(dy, groups), _split_channels(windows, groups))
    ]
    return np.concatenate(parts, axis=0)                              # (F, C_g, *k)


def conv_backward_input(dy, w, x_shape, stride=1, padding=0, dilation=1, groups=1):
    """dx[n, c, o * s + j * d - p] += sum_k w[k, c, j] * dy[n, k, o] (col2im)."""
    n_spatial = len(x_shape) - 2
    stride, padding, dilation = _per_dim(n_spatial, stride, padding, dilation)
    kernel = w.shape[2:]
    out_sizes = dy.shape[2:]
    padded_sizes = tuple(n + 2 * p for n, p in zip(x_shape[2:], padding))
    dx_pad = np.zeros(tuple(x_shape[:2]) + padded_sizes, dtype=dy.dtype)
    channels_per_group = x_shape[1] // groups
    for g, (dy_group, w_group) in enumerate(zip(_split_channels(dy, groups), np.split(w, groups))):
        # (N, F_g, *n_out) . (F_g, C_g, *k) over F_g -> (N, *n_out, C_g, *k)
        dcols = np.tensordot(dy_group, w_group, axes=([1], [0]))
        channels = slice(g * channels_per_group, (g + 1) * channels_per_group)
        for offset in np.ndindex(*kernel):
            reached = tuple(
                slice(j * d, j * d + s * (n_out - 1) + 1, s)
                for j, d, s, n_out in zip(offset, dilation, stride, out_sizes)
            )
            # (N, *n_out, C_g) -> (N, C_g, *n_out)
            dx_pad[(slice(None), channels) + reached] += np.moveaxis(dcols[(Ellipsis,) + offset], -1, 1)
    inside = tuple(slice(p, p + n) for p, n in zip(padding, x_shape[2:]))
    return np.ascontiguousarray(dx_pad[(Ellipsis,) + inside])


def _per_dim(n_spatial, *values):
    """Each int argument repeated once per spatial dimension."""
    return [(v,) * n_spatial if isinstance(v, int) else tuple(v) for v in values]


def _windows(x, kernel, stride, padding, dilation):
    """windows[n, c, o, j] = x_pad[n, c, o * s + j * d], a view, (N, C, *n_out, *k)."""
    n_spatial = x.ndim - 2
    x_pad = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    spans = [d * (f - 1) + 1 for f, d in zip(kernel, dilation)]
    # (N, C, *n_pad) -> (N, C, *(n_pad - span + 1), *span), every start position
    every = sliding_window_view(x_pad, spans, axis=tuple(range(2, 2 + n_spatial)))
    every_s = tuple(slice(None, None, s) for s in stride)                # o * s
    every_d = tuple(slice(None, None, d) for d in dilation)              # j * d
    return every[(slice(None), slice(None)) + every_s + every_d]


def _split_channels(a, groups):
    """The G equal slices of axis 1."""
    return np.split(a, groups, axis=1)


# ---------------------------------------------------------------- pooling

def avg_pool_forward(x, kernel_size, stride=None, padding=0):
    """Mean over non-overlapping windows (stride = kernel, no padding, sizes divisible)."""
    kernel = _pool_kernel(x.shape, kernel_size, stride, padding)
    # (N, C, n_1, ..) -> (N, C, n_1 / f_1, f_1, ..), window offsets on the odd axes
    blocks = x.reshape(_block_shape(x.shape, kernel))
    return blocks.mean(axis=tuple(range(3, blocks.ndim, 2)))


def avg_pool_backward(dy, x_shape, kernel_size, stride=None, padding=0):
    """Each dy[n, c, o] / (window size) spread over its window."""
    kernel = _pool_kernel(x_shape, kernel_size, stride, padding)
    # (N, C, o_1, ..) -> (N, C, o_1, 1, ..) -> broadcast to (N, C, o_1, f_1, ..)
    dy_blocks = dy.reshape(_block_shape(dy.shape, (1,) * len(kernel)))
    dx_blocks = np.broadcast_to(dy_blocks / math.prod(kernel), _block_shape(x_shape, kernel))
    return dx_blocks.reshape(x_shape)


def _pool_kernel(x_shape, kernel_size, stride, padding):
    n_spatial = len(x_shape) - 2
    kernel = _per_dim(n_spatial, kernel_size)[0]
    if stride not in (None, kernel_size) or padding != 0 or any(
        n % f for n, f in zip(x_shape[2:], kernel)
    ):
        raise ValueError("the baseline pools only non-overlapping windows that tile the input")
    return kernel


def _block_shape(shape, kernel):
    """(N, C, n_1, ..) with window f -> (N, C, n_1 // f_1, f_1, ..)."""
    split = sum(((n // f, f) for n, f in zip(shape[2:], kernel)), ())
    return tuple(shape[:2]) + split


# ------------------------------------------------------------ Gram matrix

def gram(a):
    """G[n] = a_flat[n] a_flat[n]^T, (N, C, *spatial) -> (N, C, C)."""
    a_flat = a.reshape(a.shape[0], a.shape[1], -1)                   # (N, C, P)
    return a_flat @ a_flat.transpose(0, 2, 1)                        # (N, C, P) @ (N, P, C)


def gram_backward(dG, a):
    """da = (dG + dG^T) a_flat, reshaped like a."""
    a_flat = a.reshape(a.shape[0], a.shape[1], -1)                   # (N, C, P)
    return ((dG + dG.transpose(0, 2, 1)) @ a_flat).reshape(a.shape)  # (N, C, C) @ (N, C, P)


# ----------------------------------------------------------- triplet loss

def batch_hard_triplet_loss(E, labels, alpha):
    """(J, dJ/dE) for the batch-hard triplet loss J = sum_a L(a, p(a), n(a)).

    D[i, j] = ||E_i - E_j||^2 by the expansion; each anchor takes its
    farthest positive and nearest negative (masked argmax / argmin); then
    L = max(||fa - fp||^2 - ||fa - fn||^2 + alpha, 0) and, where L > 0,
    dfa = 2 (fn - fp), dfp = 2 (fp - fa), dfn = 2 (fa - fn), added back
    to the rows they came from. Every anchor is assumed to have a positive
    and a negative (each identity at least twice, at least two identities).
    """
    sq_norms = np.einsum("id,id->i", E, E)                           # (N,)
    D = sq_norms[:, None] + sq_norms[None, :] - 2.0 * (E @ E.T)      # (N, N)
    same = labels[:, None] == labels[None, :]                        # (N, N)
    positive = same & ~np.eye(len(labels), dtype=bool)
    p = np.where(positive, D, -np.inf).argmax(axis=1)                # (N,), farthest positive
    n = np.where(same, np.inf, D).argmin(axis=1)                     # (N,), nearest negative
    fa, fp, fn = E, E[p], E[n]                                       # every row is an anchor
    margins = ((fa - fp) ** 2).sum(axis=1) - ((fa - fn) ** 2).sum(axis=1) + alpha
    active = (margins > 0).astype(E.dtype)[:, None]                  # (N,) -> (N, 1)
    dE = 2.0 * active * (fn - fp)                                    # anchors' share
    np.add.at(dE, p, 2.0 * active * (fp - fa))
    np.add.at(dE, n, 2.0 * active * (fa - fn))
    return np.maximum(margins, 0.0).sum(), dE
