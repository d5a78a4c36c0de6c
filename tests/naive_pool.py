"""Slow pooling written straight from the definitions, as the tests' oracle.

For output position o, the window covers input positions o s - p + j d,
0 <= j < f (d, the dilation, is 1 but in max pooling); positions outside the
input are padding (or, for ceil_mode's last windows, past the padding: those
count in no divisor).
"""

import itertools
import math

import numpy as np


def _window(o, kernel, stride, padding, dilation, in_sizes):
    """(inside positions, window slots inside the padded input) of the window at o."""
    inside, slots = [], 0
    for j in itertools.product(*map(range, kernel)):
        i = tuple(o_a * s - p + j_a * d
                  for o_a, s, p, j_a, d in zip(o, stride, padding, j, dilation))
        if all(-p <= i_a < n + p for i_a, n, p in zip(i, in_sizes, padding)):
            slots += 1
        if all(0 <= i_a < n for i_a, n in zip(i, in_sizes)):
            inside.append(i)
    return inside, slots


def _out_size(n, f, s, p, d, ceil_mode):
    """The course's floor((n + 2p - f) / s) + 1, with the window's span d (f - 1) + 1 for f;
    with ceil_mode PyTorch's rule: round up, but drop a last window that would start in
    the padding after the input."""
    span = d * (f - 1) + 1
    if not ceil_mode:
        return (n + 2 * p - span) // s + 1
    out = math.ceil((n + 2 * p - span) / s) + 1
    return out - 1 if (out - 1) * s - p >= n else out


def _per_axis(value, nd):
    return (value,) * nd if isinstance(value, int) else tuple(value)


def _args(x_shape, kernel, stride, padding, dilation):
    nd = len(x_shape) - 2
    kernel = _per_axis(kernel, nd)
    stride = kernel if stride is None else _per_axis(stride, nd)
    return kernel, stride, _per_axis(padding, nd), _per_axis(dilation, nd)


def _positions(x_shape, kernel, stride, padding, ceil_mode, dilation=1):
    """Yield (n, c, o, window positions, window slots) for every output."""
    kernel, stride, padding, dilation = _args(x_shape, kernel, stride, padding, dilation)
    out_sizes = out_shape(x_shape, kernel, stride, padding, ceil_mode, dilation)[2:]
    for n, c in itertools.product(range(x_shape[0]), range(x_shape[1])):
        for o in itertools.product(*map(range, out_sizes)):
            inside, slots = _window(o, kernel, stride, padding, dilation, x_shape[2:])
            yield n, c, o, inside, slots


def out_shape(x_shape, kernel, stride=None, padding=0, ceil_mode=False, dilation=1):
    kernel, stride, padding, dilation = _args(x_shape, kernel, stride, padding, dilation)
    return tuple(x_shape[:2]) + tuple(_out_size(n, f, s, p, d, ceil_mode) for n, f, s, p, d in
                                      zip(x_shape[2:], kernel, stride, padding, dilation))


def max_pool(x, kernel, stride=None, padding=0, ceil_mode=False, dilation=1):
    y = np.zeros(out_shape(x.shape, kernel, stride, padding, ceil_mode, dilation))
    for n, c, o, inside, _ in _positions(x.shape, kernel, stride, padding, ceil_mode,
                                         dilation):
        y[(n, c) + o] = max((x[(n, c) + i] for i in inside), default=-np.inf)
    return y


def max_pool_grad(dy, x, kernel, stride=None, padding=0, ceil_mode=False, dilation=1):
    """Each dy goes to the first maximum of its window (x must have no NaN)."""
    dx = np.zeros(x.shape)
    for n, c, o, inside, _ in _positions(x.shape, kernel, stride, padding, ceil_mode,
                                         dilation):
        values = [x[(n, c) + i] for i in inside]
        if values:                                   # a dilated window may hold no input
            dx[(n, c) + inside[int(np.argmax(values))]] += dy[(n, c) + o]
    return dx


def avg_pool(x, kernel, stride=None, padding=0, count_include_pad=True, ceil_mode=False):
    y = np.zeros(out_shape(x.shape, kernel, stride, padding, ceil_mode))
    for n, c, o, inside, slots in _positions(x.shape, kernel, stride, padding, ceil_mode):
        divisor = slots if count_include_pad else len(inside)
        y[(n, c) + o] = sum(x[(n, c) + i] for i in inside) / divisor
    return y


def avg_pool_grad(dy, x_shape, kernel, stride=None, padding=0, count_include_pad=True,
                  ceil_mode=False):
    dx = np.zeros(x_shape)
    for n, c, o, inside, slots in _positions(x_shape, kernel, stride, padding, ceil_mode):
        divisor = slots if count_include_pad else len(inside)
        for i in inside:
            dx[(n, c) + i] += dy[(n, c) + o] / divisor
    return dx
