"""Slow convolution written straight from the formula, as the tests' oracle.

    y[n, k, o] = b[k] + sum_{c, j} w[k, c, j] x_pad[n, g(k) C_g + c, o s + j d]

One Python loop per term of the sum, for any number of spatial dimensions.
The two backward functions loop over the same terms and send each product's
partial derivative to where it came from, so they share no code with the
fast kernels' unfold/fold formulation.
"""

import itertools

import numpy as np


def same_padding(in_sizes, kernel, stride, dilation):
    """TensorFlow's 'same': ceil(n / s) outputs; the odd pixel of padding goes after."""
    pairs = []
    for n, f, s, d in zip(in_sizes, kernel, stride, dilation):
        n_out = -(-n // s)
        total = max((n_out - 1) * s + (f - 1) * d + 1 - n, 0)
        pairs.append((total // 2, total - total // 2))
    return pairs


def pad_pairs(padding, in_sizes, kernel, stride, dilation):
    """Any accepted padding argument -> one (before, after) pair per dimension."""
    nd = len(in_sizes)
    if padding == "valid":
        return [(0, 0)] * nd
    if padding == "same":
        return same_padding(in_sizes, kernel, stride, dilation)
    if isinstance(padding, int):
        return [(padding, padding)] * nd
    return [(p, p) for p in padding]


def _expand(value, nd):
    return (value,) * nd if isinstance(value, int) else tuple(value)


def _terms(x_shape, w_shape, stride, padding, dilation, groups):
    """Yield (n, k, o, c_in, c_w, j, i) for every product w[k, c_w, j] * x[n, c_in, i].

    Terms that read padding are skipped: they contribute zero.
    """
    nd = len(x_shape) - 2
    stride, dilation = _expand(stride, nd), _expand(dilation, nd)
    kernel = w_shape[2:]
    pads = pad_pairs(padding, x_shape[2:], kernel, stride, dilation)
    out_sizes = [
        (n + lo + hi - d * (f - 1) - 1) // s + 1
        for n, (lo, hi), f, s, d in zip(x_shape[2:], pads, kernel, stride, dilation)
    ]
    per_group_out = w_shape[0] // groups
    for n in range(x_shape[0]):
        for k in range(w_shape[0]):
            group = k // per_group_out
            for o in itertools.product(*map(range, out_sizes)):
                for c_w in range(w_shape[1]):
                    c_in = group * w_shape[1] + c_w
                    for j in itertools.product(*map(range, kernel)):
                        i = tuple(
                            o_a * s + j_a * d - lo
                            for o_a, j_a, s, d, (lo, _) in zip(o, j, stride, dilation, pads)
                        )
                        if all(0 <= i_a < size for i_a, size in zip(i, x_shape[2:])):
                            yield n, k, o, c_in, c_w, j, i


def output_shape(x_shape, w_shape, stride, padding, dilation):
    nd = len(x_shape) - 2
    stride, dilation = _expand(stride, nd), _expand(dilation, nd)
    pads = pad_pairs(padding, x_shape[2:], w_shape[2:], stride, dilation)
    sizes = [
        (n + lo + hi - d * (f - 1) - 1) // s + 1
        for n, (lo, hi), f, s, d in zip(x_shape[2:], pads, w_shape[2:], stride, dilation)
    ]
    return (x_shape[0], w_shape[0]) + tuple(sizes)


def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    y = np.zeros(output_shape(x.shape, w.shape, stride, padding, dilation))
    for n, k, o, c_in, c_w, j, i in _terms(x.shape, w.shape, stride, padding, dilation, groups):
        y[(n, k) + o] += w[(k, c_w) + j] * x[(n, c_in) + i]
    if b is not None:
        y += np.asarray(b).reshape((1, -1) + (1,) * (x.ndim - 2))
    return y


def conv_grad_input(dy, w, x_shape, stride=1, padding=0, dilation=1, groups=1):
    dx = np.zeros(x_shape)
    for n, k, o, c_in, c_w, j, i in _terms(x_shape, w.shape, stride, padding, dilation, groups):
        dx[(n, c_in) + i] += w[(k, c_w) + j] * dy[(n, k) + o]
    return dx


def conv_grad_weight(dy, x, w_shape, stride=1, padding=0, dilation=1, groups=1):
    dw = np.zeros(w_shape)
    for n, k, o, c_in, c_w, j, i in _terms(x.shape, w_shape, stride, padding, dilation, groups):
        dw[(k, c_w) + j] += x[(n, c_in) + i] * dy[(n, k) + o]
    return dw
