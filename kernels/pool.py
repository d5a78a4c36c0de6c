"""Max and average pooling in 1, 2 and 3 spatial dimensions, forward and backward.

Notation: x is (N, n_C, *n_in), f the window size, s the stride, p the padding,
one entry per spatial dimension; each channel is pooled on its own, so the
output is (N, n_C, *n_out) with n_out = floor((n_in + 2p - f) / s) + 1, the
course's formula. A window at output position o covers the input positions
o * s - p + j for 0 <= j < f.

Max pooling also takes PyTorch's dilation d: the window's entries lie d apart,
at o * s - p + j d, so it spans d (f - 1) + 1 positions, and that span takes
f's place in n_out: floor((n_in + 2p - d (f - 1) - 1) / s) + 1.

ceil_mode=True rounds up instead, as in PyTorch: n_out = ceil((n_in + 2p - f) / s) + 1,
less one if the last window would start in the padding after the input. That
last window may then reach past the padding; it pools what it covers.

    max pooling       y[o] = max over the window of x
                      dx[i] = sum of dy[o] over the windows whose maximum is at i
    average pooling   y[o] = (1 / m_o) sum over the window of x
                      dx[i] = sum of dy[o] / m_o over the windows that cover i

Padding is ignored by max pooling (as if it were -inf), and counts as zeros in
average pooling; m_o is the number of the window's positions inside the
padded input with count_include_pad=True (the window volume, except for
ceil_mode's last windows), else the number of real input positions in the
window. As in PyTorch, padding may be at most half the window, so that every
window holds real input. A dilated window can still hold none (its entries
may all fall in the padding): its maximum is -inf, as in PyTorch, its index
-1, and no gradient flows from it.

One formulation for all dimensionalities: a table `window[o, j]` lists, for
every output position o (flattened) and window offset j (flattened), the
flat input position it reads, -1 for padding, or -2 past the padding. The
table is built once per call with NumPy, and each of the four loops below
walks it for every (n, c) plane in parallel.
"""

import numpy as np
from numba import njit, prange

from ._checks import as_tuple, check_bool, check_float_array, check_shape, output_sizes


# ---------------------------------------------------------------- public tier

def max_pool_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Return (y, indices); indices[n, c, o] is the flat position in x[n, c] of y[n, c, o]."""
    x = check_float_array("x", x, ndim=(3, 4, 5))
    window, out_sizes = _window_table(x.shape, kernel_size, stride, padding, ceil_mode,
                                      dilation)
    planes = _planes(x)                                     # (N C, positions)
    y = np.empty((planes.shape[0], window.shape[0]), dtype=x.dtype)
    indices = np.empty(y.shape, dtype=np.int64)
    _max_pool_planes(planes, window, y, indices)
    out_shape = x.shape[:2] + out_sizes
    return y.reshape(out_shape), indices.reshape(out_shape)


def pool_output_shape(x_shape, kernel_size, stride=None, padding=0, dilation=1,
                      ceil_mode=False):
    """Shape of max_pool_forward(x, ...)'s y without computing it (average pooling: dilation
    1)."""
    x_shape = check_shape("x_shape", x_shape, empty_batch=True)
    if len(x_shape) not in (3, 4, 5):
        raise ValueError(f"x_shape must have 3, 4 or 5 entries, got {x_shape}")
    *_, out_sizes = _pool_geometry(x_shape, kernel_size, stride, padding, ceil_mode, dilation)
    return tuple(x_shape[:2]) + out_sizes


def max_pool_backward(dy, indices, x_shape):
    """dL/dx: each dy[n, c, o] goes to the position indices[n, c, o] of x[n, c]."""
    dy = check_float_array("dy", dy, ndim=(3, 4, 5))
    x_shape = check_shape("x_shape", x_shape, ndim=dy.ndim, empty_batch=True)
    if not isinstance(indices, np.ndarray) or indices.dtype != np.int64:
        raise TypeError(f"indices must be an int64 numpy.ndarray, got {_describe(indices)}")
    plane_size = _check_argmax(indices, dy.shape, x_shape, _extreme)
    n_planes = x_shape[0] * x_shape[1]
    dx = np.zeros((n_planes, plane_size), dtype=dy.dtype)
    _scatter_planes(_planes(dy), _planes(np.ascontiguousarray(indices)), dx)
    return dx.reshape(x_shape)


def avg_pool_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                     count_include_pad=True):
    """y[n, c, o] = mean of x[n, c] over the window at o."""
    x = check_float_array("x", x, ndim=(3, 4, 5))
    window, out_sizes = _window_table(x.shape, kernel_size, stride, padding, ceil_mode)
    divisor = _divisors(window, count_include_pad, x.dtype)
    planes = _planes(x)                                     # (N C, positions)
    y = np.empty((planes.shape[0], window.shape[0]), dtype=x.dtype)
    _avg_pool_planes(planes, window, divisor, y)
    return y.reshape(x.shape[:2] + out_sizes)


def avg_pool_backward(dy, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                      count_include_pad=True):
    """dL/dx: each dy[n, c, o] / m_o is added to every position of its window."""
    dy = check_float_array("dy", dy, ndim=(3, 4, 5))
    x_shape = check_shape("x_shape", x_shape, ndim=dy.ndim, empty_batch=True)
    window, out_sizes = _window_table(x_shape, kernel_size, stride, padding, ceil_mode)
    _check_dy_shape(dy, x_shape, out_sizes)
    divisor = _divisors(window, count_include_pad, dy.dtype)
    n_planes = x_shape[0] * x_shape[1]
    dx = np.zeros((n_planes, int(np.prod(x_shape[2:]))), dtype=dy.dtype)
    _avg_pool_backward_planes(_planes(dy), window, divisor, dx)
    return dx.reshape(x_shape)


def _planes(a):
    """(N, n_C, *spatial) -> (N n_C, positions); explicit sizes, so that N = 0 works too."""
    return a.reshape(a.shape[0] * a.shape[1], int(np.prod(a.shape[2:])))


# ------------------------------------------------------- argument handling
#
# Shared with the GPU twin, kernels.cuda.pool, which validates its arguments
# with the same functions.

def _pool_geometry(x_shape, kernel_size, stride, padding, ceil_mode, dilation=1):
    """Validate the pooling arguments; return (f, s, p, d, n_out), a tuple per spatial
    dimension each."""
    n_spatial = len(x_shape) - 2
    kernel = as_tuple("kernel_size", kernel_size, n_spatial, minimum=1)
    stride = kernel if stride is None else as_tuple("stride", stride, n_spatial, minimum=1)
    pad = as_tuple("padding", padding, n_spatial, minimum=0)
    dilation = as_tuple("dilation", dilation, n_spatial, minimum=1)
    check_bool("ceil_mode", ceil_mode)
    if any(2 * p > f for p, f in zip(pad, kernel)):
        raise ValueError(f"padding must be at most half of kernel_size {kernel}, got {padding!r}")
    in_sizes = tuple(x_shape[2:])
    if ceil_mode:   # rounding up, a window longer than the padded input may still hold input
        out_sizes = tuple(_ceil_mode_size(n, d * (f - 1) + 1, s, p)
                          for n, f, s, p, d in zip(in_sizes, kernel, stride, pad, dilation))
    if not ceil_mode or min(out_sizes) < 1:    # else the window does not fit: say so
        out_sizes = output_sizes(in_sizes, kernel, stride, tuple((p, p) for p in pad), dilation)
    return kernel, stride, pad, dilation, out_sizes


def _ceil_mode_size(n, span, s, p):
    """ceil((n + 2p - span) / s) + 1 for a window spanning `span` positions (f, or
    d (f - 1) + 1 when dilated), less one if the last window would start in the
    padding after the input (its start (n_out - 1) s - p >= n), as PyTorch counts."""
    n_out = -(-(n + 2 * p - span) // s) + 1
    return n_out - 1 if (n_out - 1) * s - p >= n else n_out


def _check_dy_shape(dy, x_shape, out_sizes):
    """Raise unless dy has the forward output's shape (N, n_C, *n_out)."""
    expected = tuple(x_shape[:2]) + out_sizes
    if dy.shape != expected:
        raise ValueError(f"dy must have shape {expected} (the forward output), got {dy.shape}")


def _check_argmax(indices, dy_shape, x_shape, extreme):
    """Raise unless the int64 `indices` match dy and point into the planes of x (or are -1,
    a window with no input); return the plane size. extreme("min" or "max", indices) gives
    the smallest or largest index."""
    if indices.shape != dy_shape:
        raise ValueError(f"indices must have the shape of dy {dy_shape}, got {indices.shape}")
    if dy_shape[:2] != x_shape[:2]:
        raise ValueError(f"dy must have batch and channels {x_shape[:2]}, got {dy_shape[:2]}")
    plane_size = int(np.prod(x_shape[2:]))
    if indices.size and not -1 <= extreme("min", indices) <= extreme("max", indices) < plane_size:
        raise ValueError(f"indices must lie in [0, {plane_size}) or be -1 (a window with no "
                         f"input) for x_shape {x_shape}")
    return plane_size


def _extreme(name, a):
    """The smallest ("min") or largest ("max") entry of the array a."""
    return a.min() if name == "min" else a.max()


def _describe(a):
    if isinstance(a, np.ndarray):
        return f"an array of dtype {a.dtype}"
    return type(a).__name__


# ------------------------------------------------------------ the window table

def _window_table(x_shape, kernel_size, stride, padding, ceil_mode, dilation=1):
    """Validate the pooling arguments; return (window (P, K) int64, out_sizes).

    window[o, j] is the flat input position, -1 in the padding, -2 past it.
    """
    kernel, stride, pad, dilation, out_sizes = _pool_geometry(x_shape, kernel_size, stride,
                                                              padding, ceil_mode, dilation)
    in_sizes = tuple(x_shape[2:])
    flat_index = np.zeros((1, 1), dtype=np.int64)             # (P so far, K so far)
    inside = np.ones((1, 1), dtype=bool)
    padded = np.ones((1, 1), dtype=bool)
    for size, f, s, p, d, n_out in zip(in_sizes, kernel, stride, pad, dilation, out_sizes):
        position = np.arange(n_out)[:, None] * s - p + np.arange(f)[None, :] * d  # (n_out, f)
        # (P, K) x (n_out, f) -> (P n_out, K f): the last dimension varies fastest
        flat_index = (flat_index[:, None, :, None] * size + position[None, :, None, :])
        inside = inside[:, None, :, None] & ((position >= 0) & (position < size))[None, :, None, :]
        padded = padded[:, None, :, None] & (position < size + p)[None, :, None, :]
        flat_index = flat_index.reshape(flat_index.shape[0] * n_out, -1)
        inside, padded = inside.reshape(flat_index.shape), padded.reshape(flat_index.shape)
    return np.where(inside, flat_index, np.where(padded, -1, -2)), out_sizes


def _divisors(window, count_include_pad, dtype):
    """m_o per output position: the count of its positions in the padded input, or
    (count_include_pad=False) in the input."""
    check_bool("count_include_pad", count_include_pad)
    return (window >= (-1 if count_include_pad else 0)).sum(axis=1).astype(dtype)


# ---------------------------------------------------------- jitted kernels

@njit(cache=True, parallel=True)
def _max_pool_planes(x, window, y, argmax):
    """y[m, o] = max_j x[m, window[o, j]]; NaN wins, as in PyTorch (its argmax is the first
    NaN, PyTorch's the last); ties go to the first; -inf, with argmax -1, for a window that
    holds no input.

    The choice is computed, not branched on (`better` selects the new or the old
    value): which entry of a window is largest is a coin toss for the processor's
    branch predictor, and its misses made this loop a quarter slower (7.2 against
    5.7 ms for the face encoder's largest pooling, docs/performance.md).
    """
    for m in prange(x.shape[0]):
        for o in range(window.shape[0]):
            best_i = -1
            best = x[m, 0]
            for j in range(window.shape[1]):
                i = window[o, j]
                if i >= 0:
                    value = x[m, i]
                    better = (best_i < 0) | (value > best) | (np.isnan(value) & ~np.isnan(best))
                    best = value if better else best
                    best_i = i if better else best_i
            y[m, o] = best if best_i >= 0 else -np.inf
            argmax[m, o] = best_i


@njit(cache=True, parallel=True)
def _scatter_planes(dy, argmax, dx):
    """dx[m, argmax[m, o]] += dy[m, o], where the window held input (argmax >= 0)."""
    for m in prange(dy.shape[0]):
        for o in range(dy.shape[1]):
            if argmax[m, o] >= 0:
                dx[m, argmax[m, o]] += dy[m, o]


@njit(cache=True, parallel=True)
def _avg_pool_planes(x, window, divisor, y):
    """y[m, o] = (1 / m_o) sum_j x[m, window[o, j]], padding read as 0."""
    for m in prange(x.shape[0]):
        for o in range(window.shape[0]):
            total = 0.0
            for j in range(window.shape[1]):
                i = window[o, j]
                if i >= 0:
                    total += x[m, i]
            y[m, o] = total / divisor[o]


@njit(cache=True, parallel=True)
def _avg_pool_backward_planes(dy, window, divisor, dx):
    """dx[m, window[o, j]] += dy[m, o] / m_o for every real position of the window."""
    for m in prange(dy.shape[0]):
        for o in range(window.shape[0]):
            share = dy[m, o] / divisor[o]
            for j in range(window.shape[1]):
                i = window[o, j]
                if i >= 0:
                    dx[m, i] += share
