"""Elementwise kernels: one thread per output entry, any layout, NumPy's broadcasting.

    out[i] = op(x[i])                    unary:   negative, exp, log, sqrt, ...
    out[i] = op(x[i], y[i])              binary:  add, multiply, maximum, greater, ...
    out[i] = c[i] ? x[i] : y[i]          where

for every multi-index i of the output. Operands are Views (see _device.py)
already broadcast to the output's shape, so thread i finds its operand
entries through their strides: entry i of a broadcast axis is entry 0. Each
op is computed in one dtype (NumPy's loop dtype: float32 * bool computes in
float32), to which every operand entry is cast first.

Before launching, axes that every operand walks contiguously are merged:
adding two (64, 512, 512) arrays becomes one walk over 2^24 entries, and
adding a bias of shape (64, 1, 1) to (1, 64, 512, 512) a walk over
(64, 262144) with the bias's stride 0 along the second axis.

The math functions are written out where Python's math module (which the
CUDA simulator runs) raises but the GPU returns inf or NaN: log(0) = -inf,
sqrt(-1) = NaN, exp(1000) = inf on both.

Also here: `take` (x[..., index, ...] for an integer index array along one
axis) and `add_at` (NumPy's np.add.at for the same index), the gather and
scatter behind indexing a tensor with integer arrays; add_at adds with
atomic operations, since an index may repeat.
"""

import functools
import math

import numpy as np
from numba import cuda

from ._device import element_offset, launch

# --------------------------------------------------------------- the ops

@cuda.jit(device=True)
def _exp(x):
    return math.inf if x > 709.0 else math.exp(x)   # NaN > 709 is False: exp(NaN) = NaN


@cuda.jit(device=True)
def _log(x):
    if x > 0:
        return math.log(x)
    return -math.inf if x == 0 else math.nan


@cuda.jit(device=True)
def _log1p(x):
    if x > -1:
        return math.log1p(x)
    return -math.inf if x == -1 else math.nan


@cuda.jit(device=True)
def _sqrt(x):
    return math.sqrt(x) if x >= 0 else math.nan


@cuda.jit(device=True)
def _tanh(x):
    return math.tanh(x)


@cuda.jit(device=True)
def _sign(x):
    if x > 0:
        return 1
    if x < 0:
        return -1
    return x                                  # 0 stays 0, NaN stays NaN


@cuda.jit(device=True)
def _negative(x):
    return -x


@cuda.jit(device=True)
def _absolute(x):
    return -x if x < 0 else x


@cuda.jit(device=True)
def _square(x):
    return x * x


@cuda.jit(device=True)
def _identity(x):
    return x


@cuda.jit(device=True)
def _isnan(x):
    return math.isnan(x)


@cuda.jit(device=True)
def _isfinite(x):
    return not (math.isinf(x) or math.isnan(x))


@cuda.jit(device=True)
def _logical_not(x):
    return not x


@cuda.jit(device=True)
def _add(x, y):
    return x + y


@cuda.jit(device=True)
def _subtract(x, y):
    return x - y


@cuda.jit(device=True)
def _multiply(x, y):
    return x * y


@cuda.jit(device=True)
def _divide(x, y):
    if y != 0:
        return x / y
    if math.isnan(x) or x == 0:                # 0/0 and NaN/0
        return math.nan
    return math.inf if (x > 0) == (math.copysign(1.0, y) > 0) else -math.inf


@cuda.jit(device=True)
def _power(x, y):
    if x < 0 and y != math.floor(y):
        return math.nan                        # a negative base with a fractional exponent
    if x == 0 and y < 0:
        return math.inf
    return x ** y


@cuda.jit(device=True)
def _maximum(x, y):
    return x if (x >= y or x != x) else y      # NaN wins, as in NumPy (x != x: x is NaN,
                                               # a test that also types for ints and bools)


@cuda.jit(device=True)
def _minimum(x, y):
    return x if (x <= y or x != x) else y


@cuda.jit(device=True)
def _heaviside(x, h0):
    if x < 0:
        return 0
    if x > 0:
        return 1
    return h0 if x == 0 else x                 # NaN stays NaN


@cuda.jit(device=True)
def _greater(x, y):
    return x > y


@cuda.jit(device=True)
def _greater_equal(x, y):
    return x >= y


@cuda.jit(device=True)
def _less(x, y):
    return x < y


@cuda.jit(device=True)
def _less_equal(x, y):
    return x <= y


@cuda.jit(device=True)
def _equal(x, y):
    return x == y


@cuda.jit(device=True)
def _not_equal(x, y):
    return x != y


@cuda.jit(device=True)
def _logical_and(x, y):
    return x and y


@cuda.jit(device=True)
def _logical_or(x, y):
    return x or y


@cuda.jit(device=True)
def _where(condition, x, y):
    return x if condition else y


# NumPy's names (ufunc.__name__) for the ops.
UNARY = {
    "negative": _negative, "absolute": _absolute, "exp": _exp, "log": _log, "log1p": _log1p,
    "sqrt": _sqrt, "tanh": _tanh, "sign": _sign, "square": _square, "positive": _identity,
    "isnan": _isnan, "isfinite": _isfinite, "logical_not": _logical_not, "copy": _identity,
}
BINARY = {
    "add": _add, "subtract": _subtract, "multiply": _multiply, "divide": _divide,
    "power": _power, "maximum": _maximum, "minimum": _minimum, "heaviside": _heaviside,
    "greater": _greater, "greater_equal": _greater_equal, "less": _less,
    "less_equal": _less_equal, "equal": _equal, "not_equal": _not_equal,
    "logical_and": _logical_and, "logical_or": _logical_or,
    "bitwise_and": _logical_and, "bitwise_or": _logical_or,    # on bools, as NumPy's & and |
}


# ------------------------------------------------------------ host tier

def map_unary(name, out, x, dtype):
    """out = op(x) entry by entry; out and x are Views of one shape, computed in `dtype`."""
    shape, (out_strides, x_strides) = collapse(out.shape, out.strides, x.strides)
    kernel = _unary_kernel(UNARY[name], np.dtype(dtype))
    launch(kernel, _size(shape), shape, out.buffer, out.offset, out_strides,
           x.buffer, x.offset, x_strides)


def map_binary(name, out, x, y, dtype):
    """out = op(x, y) entry by entry; the three Views share out's shape (broadcast already)."""
    shape, (out_strides, x_strides, y_strides) = collapse(
        out.shape, out.strides, x.strides, y.strides)
    kernel = _binary_kernel(BINARY[name], np.dtype(dtype))
    launch(kernel, _size(shape), shape, out.buffer, out.offset, out_strides,
           x.buffer, x.offset, x_strides, y.buffer, y.offset, y_strides)


def map_where(out, condition, x, y, dtype):
    """out = x where condition else y, entry by entry, as np.where."""
    shape, (out_strides, c_strides, x_strides, y_strides) = collapse(
        out.shape, out.strides, condition.strides, x.strides, y.strides)
    kernel = _where_kernel(np.dtype(dtype))
    launch(kernel, _size(shape), shape, out.buffer, out.offset, out_strides,
           condition.buffer, condition.offset, c_strides, x.buffer, x.offset, x_strides,
           y.buffer, y.offset, y_strides)


def take(out, x, index, axis):
    """out = x[..., index, ...] with `index` (a 1-D int64 device array) on `axis`.

    out is a contiguous View of shape x.shape[:axis] + (len(index),) + x.shape[axis + 1:].
    Negative indices count from the end; the caller checks the range.
    """
    launch(_take_kernel, _size(out.shape), out.shape, axis, out.buffer, out.offset,
           out.strides, x.buffer, x.offset, x.strides, x.shape[axis], index)


def add_at(out, index, axis, values):
    """out[..., index, ...] += values, once per occurrence of a repeated index (np.add.at)."""
    launch(_add_at_kernel, _size(values.shape), values.shape, axis, values.buffer,
           values.offset, values.strides, out.buffer, out.offset, out.strides,
           out.shape[axis], index)


def collapse(shape, *strides):
    """Merge neighbouring axes that every operand walks contiguously; drop axes of size 1.

    Returns (shape, [strides of each operand]) describing the same walk in C
    order, with at least one axis (so that a 0-d walk is one entry long).
    """
    sizes, steps = [], []              # per merged axis: its size, and each operand's stride
    for axis, size in enumerate(shape):
        if size == 1:
            continue
        axis_steps = [s[axis] for s in strides]
        if sizes and all(outer == inner * size for outer, inner in zip(steps[-1], axis_steps)):
            sizes[-1] *= size          # the outer axis steps over this one exactly: (a, b) -> (a b)
            steps[-1] = axis_steps
        else:
            sizes.append(size)
            steps.append(axis_steps)
    if not sizes:
        return (1,), [(0,)] * len(strides)
    return tuple(sizes), [tuple(s[i] for s in steps) for i in range(len(strides))]


def _size(shape):
    return int(np.prod(shape))


# --------------------------------------------------------------- kernels

@functools.cache
def _unary_kernel(op, dtype):
    cast = dtype.type

    @cuda.jit
    def unary(shape, out, out_offset, out_strides, x, x_offset, x_strides):
        """Thread i computes output entry i (in C order of `shape`)."""
        i = cuda.grid(1)
        if i < _product(shape):
            value = cast(x[x_offset + element_offset(i, shape, x_strides)])
            out[out_offset + element_offset(i, shape, out_strides)] = op(value)

    return unary


@functools.cache
def _binary_kernel(op, dtype):
    cast = dtype.type

    @cuda.jit
    def binary(shape, out, out_offset, out_strides, x, x_offset, x_strides,
               y, y_offset, y_strides):
        """Thread i computes output entry i (in C order of `shape`)."""
        i = cuda.grid(1)
        if i < _product(shape):
            x_value = cast(x[x_offset + element_offset(i, shape, x_strides)])
            y_value = cast(y[y_offset + element_offset(i, shape, y_strides)])
            out[out_offset + element_offset(i, shape, out_strides)] = op(x_value, y_value)

    return binary


@functools.cache
def _where_kernel(dtype):
    cast = dtype.type

    @cuda.jit
    def where(shape, out, out_offset, out_strides, condition, c_offset, c_strides,
              x, x_offset, x_strides, y, y_offset, y_strides):
        """Thread i computes output entry i (in C order of `shape`)."""
        i = cuda.grid(1)
        if i < _product(shape):
            chosen = condition[c_offset + element_offset(i, shape, c_strides)]
            x_value = cast(x[x_offset + element_offset(i, shape, x_strides)])
            y_value = cast(y[y_offset + element_offset(i, shape, y_strides)])
            out[out_offset + element_offset(i, shape, out_strides)] = _where(
                chosen, x_value, y_value)

    return where


@cuda.jit(device=True)
def _product(shape):
    size = 1
    for n in shape:
        size *= n
    return size


@cuda.jit(device=True)
def _source_offset(i, shape, axis, strides, axis_size, index):
    """Offset of entry i of x[..., index, ...] in x: the `axis` coordinate goes through index."""
    offset = 0
    for a in range(len(shape) - 1, -1, -1):
        i, coordinate = divmod(i, shape[a])
        if a == axis:
            coordinate = index[coordinate]
            if coordinate < 0:
                coordinate += axis_size
        offset += coordinate * strides[a]
    return offset


@cuda.jit(cache=True)
def _take_kernel(shape, axis, out, out_offset, out_strides, x, x_offset, x_strides,
                 axis_size, index):
    """Thread i copies output entry i (in C order of `shape`) from its place in x."""
    i = cuda.grid(1)
    if i < _product(shape):
        source = x_offset + _source_offset(i, shape, axis, x_strides, axis_size, index)
        out[out_offset + element_offset(i, shape, out_strides)] = x[source]


@cuda.jit(cache=True)
def _add_at_kernel(shape, axis, values, v_offset, v_strides, out, out_offset, out_strides,
                   axis_size, index):
    """Thread i adds entry i of `values` (in C order of `shape`) to its place in out, atomically."""
    i = cuda.grid(1)
    if i < _product(shape):
        target = out_offset + _source_offset(i, shape, axis, out_strides, axis_size, index)
        cuda.atomic.add(out, target, values[v_offset + element_offset(i, shape, v_strides)])
