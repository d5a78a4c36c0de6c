"""Max and average pooling in 1, 2 and 3 dimensions on the GPU: the twin of kernels/pool.py.

Notation as there: x is (N, n_C, *n_in); each of the M = N n_C planes is
pooled on its own over windows of size f, stride s, padding p; the window of
output o covers the input positions o s - p + j d, 0 <= j < f (per dimension;
the dilation d is 1 but in max pooling). 1-D and 2-D problems are lifted to
3-D with leading sizes of 1.

    max pooling       y[o] = max over the window of x;  dx[i] = sum of dy[o] whose argmax is i
    average pooling   y[o] = (1 / m_o) sum over the window of x
                      dx[i] = sum of dy[o] / m_o over the windows o that cover i

ceil_mode, and m_o (the window's positions in the padded input, or in the
input with count_include_pad=False), are as there.

Thread mapping (every kernel gives one thread one entry):

    max_pool_forward    thread (m, o): walks the window of output o of plane m
    max_pool_backward   thread (m, o): adds dy[m, o] at its argmax, atomically,
                        since overlapping windows (s < f) can share an argmax
    avg_pool_forward    thread (m, o): the mean of its window
    avg_pool_backward   thread (m, i): input position i gathers dy[m, o] / m_o
                        from every window o that covers it, so no two threads
                        write one entry and no atomics are needed

As in the CPU twin, NaN wins a max, ties go to the first position of the
window, and the mean is accumulated in float64.
"""

import functools
import math

import numpy as np
from numba import cuda

from .._checks import check_bool, check_shape
from ..pool import (
    _check_argmax,
    _check_dy_shape,
    _pool_geometry,
    pool_output_shape,  # noqa: F401 (re-exported)
)
from ._device import (
    as_device_array,
    check_device_array,
    empty,
    launch,
    unravel_3d,
    view_of,
    zeros,
)
from .reduce import reduce

# ---------------------------------------------------------------- public tier

def max_pool_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Return (y, indices); indices[n, c, o] is the flat position in x[n, c] of y[n, c, o]."""
    x = check_device_array("x", x, ndim=(3, 4, 5))
    out_sizes, geo = _lifted_geometry(x.shape, kernel_size, stride, padding, ceil_mode,
                                      dilation)
    planes = _planes(x)                                   # (N C, positions)
    y = empty((planes.shape[0], int(np.prod(out_sizes))), x.dtype)
    indices = empty(y.shape, np.int64)
    launch(_max_pool_kernel, y.size, y, indices, planes, geo)
    out_shape = x.shape[:2] + out_sizes
    return y.reshape(out_shape), indices.reshape(out_shape)   # (N C, P) -> (N, C, *n_out)


def max_pool_backward(dy, indices, x_shape):
    """dL/dx: each dy[n, c, o] goes to the position indices[n, c, o] of x[n, c]."""
    dy = check_device_array("dy", dy, ndim=(3, 4, 5))
    x_shape = check_shape("x_shape", x_shape, ndim=dy.ndim, empty_batch=True)
    indices = as_device_array("indices", indices)
    if indices.dtype != np.int64:
        raise TypeError(f"indices must be an int64 device array, got dtype {indices.dtype}")
    plane_size = _check_argmax(indices, dy.shape, x_shape, _extreme)
    n_planes = x_shape[0] * x_shape[1]
    dx = zeros((n_planes, plane_size), dy.dtype)
    launch(_scatter_kernel, dy.size, dx, _planes(dy), _planes(indices))
    return dx.reshape(x_shape)                            # (N C, positions) -> (N, C, *n_in)


def avg_pool_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                     count_include_pad=True):
    """y[n, c, o] = mean of x[n, c] over the window at o."""
    x = check_device_array("x", x, ndim=(3, 4, 5))
    out_sizes, geo = _lifted_geometry(x.shape, kernel_size, stride, padding, ceil_mode)
    check_bool("count_include_pad", count_include_pad)
    planes = _planes(x)                                   # (N C, positions)
    y = empty((planes.shape[0], int(np.prod(out_sizes))), x.dtype)
    launch(_avg_pool_kernel, y.size, y, planes, geo, bool(count_include_pad))
    return y.reshape(x.shape[:2] + out_sizes)             # (N C, P) -> (N, C, *n_out)


def avg_pool_backward(dy, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                      count_include_pad=True):
    """dL/dx: each dy[n, c, o] / m_o is added to every position of its window."""
    dy = check_device_array("dy", dy, ndim=(3, 4, 5))
    x_shape = check_shape("x_shape", x_shape, ndim=dy.ndim, empty_batch=True)
    out_sizes, geo = _lifted_geometry(x_shape, kernel_size, stride, padding, ceil_mode)
    _check_dy_shape(dy, x_shape, out_sizes)
    check_bool("count_include_pad", count_include_pad)
    dx = empty((x_shape[0] * x_shape[1], int(np.prod(x_shape[2:]))), dy.dtype)
    launch(_avg_pool_backward_kernel(dy.dtype), dx.size, dx, _planes(dy), geo,
           bool(count_include_pad))
    return dx.reshape(x_shape)                            # (N C, positions) -> (N, C, *n_in)


# ----------------------------------------------------------- host helpers

def _lifted_geometry(x_shape, kernel_size, stride, padding, ceil_mode, dilation=1):
    """Validate as the CPU twin does; return (out_sizes, the kernels' geometry lifted to 3-D):
    ((n_in), (f), (s), (p), (d), (n_out)), each a (depth, height, width) triple."""
    kernel, stride, pad, dilation, out_sizes = _pool_geometry(x_shape, kernel_size, stride,
                                                              padding, ceil_mode, dilation)
    n_spatial = len(x_shape) - 2
    lift, no_pad = (1,) * (3 - n_spatial), (0,) * (3 - n_spatial)
    return out_sizes, (lift + tuple(x_shape[2:]), lift + kernel, lift + stride, no_pad + pad,
                       lift + dilation, lift + out_sizes)


def _planes(a):
    positions = int(np.prod(a.shape[2:]))
    return a.reshape(a.shape[0] * a.shape[1], positions)  # (N, C, *spatial) -> (N C, positions)


def _extreme(name, a):
    """The smallest or largest entry of a device array, as a Python int."""
    return int(reduce(name, view_of(a), tuple(range(a.ndim)), a.dtype).buffer.copy_to_host()[0])


# ----------------------------------------------------------------- kernels

@cuda.jit(device=True)
def _window_entry(o, j, geo):
    """The flat input position that offset j of output o's window reads, or -1 for padding."""
    in_size, kernel, stride, pad, dilation, out_size = geo
    od, oh, ow = unravel_3d(o, out_size)
    jd, jh, jw = unravel_3d(j, kernel)
    d = od * stride[0] - pad[0] + jd * dilation[0]
    h = oh * stride[1] - pad[1] + jh * dilation[1]
    w = ow * stride[2] - pad[2] + jw * dilation[2]
    if 0 <= d < in_size[0] and 0 <= h < in_size[1] and 0 <= w < in_size[2]:
        return (d * in_size[1] + h) * in_size[2] + w
    return -1


@cuda.jit(cache=True)
def _max_pool_kernel(y, argmax, x, geo):
    """Thread (m, o) = divmod(thread, P) computes y[m, o] and its argmax."""
    m, o = divmod(cuda.grid(1), y.shape[1])
    if m < y.shape[0]:
        kernel = geo[1]
        best, best_i = x[m, 0], -1
        for j in range(kernel[0] * kernel[1] * kernel[2]):
            i = _window_entry(o, j, geo)
            if i >= 0:
                value = x[m, i]
                if best_i < 0 or value > best or (math.isnan(value) and not math.isnan(best)):
                    best, best_i = value, i
        y[m, o] = best if best_i >= 0 else -math.inf    # a window with no input
        argmax[m, o] = best_i


@cuda.jit(cache=True)
def _scatter_kernel(dx, dy, argmax):
    """Thread (m, o) = divmod(thread, P) adds dy[m, o] to dx[m, argmax[m, o]], where the
    window held input (argmax >= 0)."""
    m, o = divmod(cuda.grid(1), dy.shape[1])
    if m < dy.shape[0] and argmax[m, o] >= 0:
        cuda.atomic.add(dx, (m, argmax[m, o]), dy[m, o])


@cuda.jit(device=True)
def _window_count(o, geo, count_include_pad):
    """m_o: the window's positions inside the padded input, or (count_include_pad False)
    inside the input."""
    in_size, kernel, stride, pad, _, out_size = geo      # no dilation in average pooling
    position = unravel_3d(o, out_size)
    count = 1
    for axis in range(3):
        start = position[axis] * stride[axis] - pad[axis]
        margin = pad[axis] if count_include_pad else 0
        count *= min(start + kernel[axis], in_size[axis] + margin) - max(start, -margin)
    return count


@cuda.jit(cache=True)
def _avg_pool_kernel(y, x, geo, count_include_pad):
    """Thread (m, o) = divmod(thread, P) computes y[m, o], the mean of its window."""
    m, o = divmod(cuda.grid(1), y.shape[1])
    if m < y.shape[0]:
        kernel = geo[1]
        total = np.float64(0.0)                          # float64, as in the CPU twin
        for j in range(kernel[0] * kernel[1] * kernel[2]):
            i = _window_entry(o, j, geo)
            if i >= 0:
                total += x[m, i]
        y[m, o] = total / _window_count(o, geo, count_include_pad)


@cuda.jit(device=True)
def _covering_outputs(i, pad, f, s, n_out):
    """The outputs o whose windows cover input position i along one axis: range(lo, hi)."""
    padded = i + pad                                     # o s <= i + p < o s + f
    return max(0, (padded - f + s) // s), min(n_out, padded // s + 1)


@functools.cache
def _avg_pool_backward_kernel(dtype):
    cast, zero = dtype.type, dtype.type(0)

    @cuda.jit
    def avg_pool_backward(dx, dy, geo, count_include_pad):
        """Thread (m, i) = divmod(thread, positions) computes dx[m, i] from the windows
        that cover input position i."""
        m, i = divmod(cuda.grid(1), dx.shape[1])
        if m < dx.shape[0]:
            in_size, kernel, stride, pad, _, out_size = geo
            d, h, w = unravel_3d(i, in_size)
            d_lo, d_hi = _covering_outputs(d, pad[0], kernel[0], stride[0], out_size[0])
            h_lo, h_hi = _covering_outputs(h, pad[1], kernel[1], stride[1], out_size[1])
            w_lo, w_hi = _covering_outputs(w, pad[2], kernel[2], stride[2], out_size[2])
            total = zero
            for od in range(d_lo, d_hi):
                for oh in range(h_lo, h_hi):
                    for ow in range(w_lo, w_hi):
                        o = (od * out_size[1] + oh) * out_size[2] + ow
                        total += dy[m, o] / cast(_window_count(o, geo, count_include_pad))
            dx[m, i] = total

    return avg_pool_backward
