"""Slow pooling written straight from the definitions, as the tests' oracle.

For output position o, the window covers input positions o s - p + j,
0 <= j < f; positions outside the input are padding.
"""

import itertools

import numpy as np


def _window(o, kernel, stride, padding, in_sizes):
    """(inside positions, number of window slots) of the window at o."""
    inside = []
    for j in itertools.product(*map(range, kernel)):
        i = tuple(o_a * s - p + j_a for o_a, s, p, j_a in zip(o, stride, padding, j))
        if all(0 <= i_a < n for i_a, n in zip(i, in_sizes)):
            inside.append(i)
    return inside, int(np.prod(kernel))


def _out_sizes(in_sizes, kernel, stride, padding):
    return [(n + 2 * p - f) // s + 1 for n, f, s, p in zip(in_sizes, kernel, stride, padding)]


def _args(x_shape, kernel, stride, padding):
    nd = len(x_shape) - 2
    kernel = (kernel,) * nd if isinstance(kernel, int) else tuple(kernel)
    stride = kernel if stride is None else ((stride,) * nd if isinstance(stride, int) else tuple(stride))
    padding = (padding,) * nd if isinstance(padding, int) else tuple(padding)
    return kernel, stride, padding


def _positions(x_shape, kernel, stride, padding):
    """Yield (n, c, o, window positions, window slots) for every output."""
    kernel, stride, padding = _args(x_shape, kernel, stride, padding)
    out_sizes = _out_sizes(x_shape[2:], kernel, stride, padding)
    for n, c in itertools.product(range(x_shape[0]), range(x_shape[1])):
        for o in itertools.product(*map(range, out_sizes)):
            inside, slots = _window(o, kernel, stride, padding, x_shape[2:])
            yield n, c, o, inside, slots


def out_shape(x_shape, kernel, stride=None, padding=0):
    kernel, stride, padding = _args(x_shape, kernel, stride, padding)
    return tuple(x_shape[:2]) + tuple(_out_sizes(x_shape[2:], kernel, stride, padding))


def max_pool(x, kernel, stride=None, padding=0):
    y = np.zeros(out_shape(x.shape, kernel, stride, padding))
    for n, c, o, inside, _ in _positions(x.shape, kernel, stride, padding):
        y[(n, c) + o] = max(x[(n, c) + i] for i in inside)
    return y


def max_pool_grad(dy, x, kernel, stride=None, padding=0):
    """Each dy goes to the first maximum of its window (x must have no NaN)."""
    dx = np.zeros(x.shape)
    for n, c, o, inside, _ in _positions(x.shape, kernel, stride, padding):
        values = [x[(n, c) + i] for i in inside]
        dx[(n, c) + inside[int(np.argmax(values))]] += dy[(n, c) + o]
    return dx


def avg_pool(x, kernel, stride=None, padding=0, count_include_pad=True):
    y = np.zeros(out_shape(x.shape, kernel, stride, padding))
    for n, c, o, inside, slots in _positions(x.shape, kernel, stride, padding):
        divisor = slots if count_include_pad else len(inside)
        y[(n, c) + o] = sum(x[(n, c) + i] for i in inside) / divisor
    return y


def avg_pool_grad(dy, x_shape, kernel, stride=None, padding=0, count_include_pad=True):
    dx = np.zeros(x_shape)
    for n, c, o, inside, slots in _positions(x_shape, kernel, stride, padding):
        divisor = slots if count_include_pad else len(inside)
        for i in inside:
            dx[(n, c) + i] += dy[(n, c) + o] / divisor
    return dx
