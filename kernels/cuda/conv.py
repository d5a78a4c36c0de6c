"""Convolution in 1, 2 and 3 spatial dimensions on the GPU: the twin of kernels/conv.py.

Notation as there: x (N, n_C_prev, *n_in), w (n_C, n_C_prev / groups, *f), y
(N, n_C, *n_out); s, p, d stride, padding (before), dilation; G groups with
C_g = n_C_prev / G input and F_g = n_C / G output channels each; k = the
filter volume, P = the number of output positions. A 1-D or 2-D problem is
lifted to 3-D with leading sizes of 1, so one set of index maps serves all.

Each pass is one tiled matrix product (product.py) whose operands are read
straight from x, w and dy through index maps, so the unfolded columns are
never stored:

    forward          y[n, g F_g + f, o] = sum over q = (c, j) of
                        W[g][f, q] * cols[n, g][q, o]
                     cols[n, g][(c, j), o] = x_pad[n, g C_g + c, o s + j d]
                     one product per (n, g); block z = n G + g, rows f, columns o
    backward input   dx[n, g C_g + c, i] = sum over (f, j) of
                        w[g F_g + f, c, j] * dy[n, g F_g + f, (i + p - j d) / s]
                     where the division is exact and lands inside dy (else 0):
                     the transposed convolution written as a gather, so that
                     every entry of dx is one thread's sum and nothing is
                     added twice; block z = n G + g, rows c, columns i
    backward weight  dw[g F_g + f, c, j] = sum over (n, o) of
                        dy[n, g F_g + f, o] * x_pad[n, g C_g + c, o s + j d]
                     block z = g, rows f, columns (c, j); the sum over every
                     image and position is split into parts (split-k)
    backward bias    db[f] = sum of dy over n and o (reduce.py)

The thread mapping is the tiled product's: thread (tx, ty) of block
(bx, by, z) computes the 4 x 4 entries at rows by*64 + ty + 16 r and columns
bx*64 + tx + 16 s of its block's product. docs/derivations.md derives the
gradients; the arguments, checks and results are those of kernels.conv.
"""

import math

from numba import cuda

from .._checks import check_same_dtype, check_shape
from ..conv import (
    _check_dy,
    _check_forward,
    _geometry,
    _spatial,
    conv_output_shape,  # noqa: F401 (re-exported)
)
from ._device import View, check_device_array, unravel_3d, view_of
from .elementwise import map_binary
from .product import ColumnOperand, RowOperand, product
from .reduce import reduce

# ---------------------------------------------------------------- public tier

def conv_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y = conv(x, w) + b for 1-3 spatial dims (read from x.ndim - 2), on device arrays."""
    x, w, b, geo = _check_forward(x, w, b, stride, padding, dilation, groups, check_device_array)
    n_out = w.shape[0]
    maps = _maps_geometry(geo, x.shape[1], n_out)
    per_group_in, per_group_out = x.shape[1] // geo.groups, n_out // geo.groups
    y = product(
        RowOperand(_flat(w), _weights_at, maps),
        ColumnOperand(_flat(x), _window_column, _window_column_at, maps),
        n_batch=x.shape[0] * geo.groups, rows=per_group_out, columns=_n_positions(geo.out_sizes),
        k_size=per_group_in * _n_positions(geo.kernel), dtype=x.dtype,
    )                                                   # (N G, F_g, P)
    y = y.reshape((x.shape[0], n_out) + _spatial(geo.out_sizes, geo))  # -> (N, F, *n_out)
    if b is not None:
        _add_bias(y, b)
    return y


def conv_backward_input(dy, w, x_shape, stride=1, padding=0, dilation=1, groups=1):
    """dL/dx given dL/dy: the transposed convolution of dy with w, as a gather."""
    w = check_device_array("w", w, ndim=(3, 4, 5))
    x_shape = check_shape("x_shape", x_shape, ndim=w.ndim, empty_batch=True)
    geo = _geometry(x_shape, w.shape, stride, padding, dilation, groups)
    dy = _check_dy(dy, x_shape[0], w.shape[0], geo, check_device_array)
    check_same_dtype(dy=dy, w=w)
    maps = _maps_geometry(geo, x_shape[1], w.shape[0])
    per_group_in, per_group_out = x_shape[1] // geo.groups, w.shape[0] // geo.groups
    dx = product(
        RowOperand(_flat(w), _transposed_weights_at, maps),
        ColumnOperand(_flat(dy), _input_column, _input_column_at, maps),
        n_batch=x_shape[0] * geo.groups, rows=per_group_in, columns=_n_positions(geo.in_sizes),
        k_size=per_group_out * _n_positions(geo.kernel), dtype=dy.dtype,
    )                                                   # (N G, C_g, positions of x)
    return dx.reshape(x_shape)                          # -> (N, C, *n_in)


def conv_backward_weight(dy, x, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """dL/dw given dL/dy: the correlation of x with dy, summed over the batch."""
    x = check_device_array("x", x, ndim=(3, 4, 5))
    w_shape = check_shape("w_shape", w_shape, ndim=x.ndim)
    geo = _geometry(x.shape, w_shape, stride, padding, dilation, groups)
    dy = _check_dy(dy, x.shape[0], w_shape[0], geo, check_device_array)
    check_same_dtype(dy=dy, x=x)
    maps = _maps_geometry(geo, x.shape[1], w_shape[0])
    per_group_in, per_group_out = x.shape[1] // geo.groups, w_shape[0] // geo.groups
    dw = product(
        RowOperand(_flat(dy), _output_gradient_at, maps),
        ColumnOperand(_flat(x), _filter_column, _filter_column_at, maps),
        n_batch=geo.groups, rows=per_group_out, columns=per_group_in * _n_positions(geo.kernel),
        k_size=x.shape[0] * _n_positions(geo.out_sizes), dtype=x.dtype,
    )                                                   # (G, F_g, C_g k)
    return dw.reshape(w_shape)                          # -> (F, C_g, *f)


def conv_backward_bias(dy):
    """dL/db given dL/dy: sum over the batch and every output position."""
    dy = check_device_array("dy", dy, ndim=(3, 4, 5))
    axes = (0,) + tuple(range(2, dy.ndim))
    return reduce("sum", view_of(dy), axes, dy.dtype).buffer   # (n_C,)


# ------------------------------------------------------------ host helpers

def _maps_geometry(geo, in_channels, out_channels):
    """What the index maps need, as nested tuples of ints (all spatial entries lifted to 3-D):
    ((G, C, C_g, F, F_g), n_in, f, s, p_before, d, n_out)."""
    groups = geo.groups
    channels = (groups, in_channels, in_channels // groups, out_channels, out_channels // groups)
    return (channels, geo.in_sizes, geo.kernel, geo.stride, geo.pad_before, geo.dilation,
            geo.out_sizes)


def _flat(a):
    return a.reshape(a.size)                            # (*shape) -> (size,), a view


def _n_positions(sizes):
    return sizes[0] * sizes[1] * sizes[2]


def _add_bias(y, b):
    """y[n, f, o] += b[f], in place."""
    y_view = view_of(y)
    n_batch, n_out = y.shape[:2]
    positions = math.prod(y.shape[2:])
    shape = (n_batch, n_out, positions)                 # (N, F, *n_out) -> (N, F, P)
    y_flat = View(y_view.buffer, 0, shape, (n_out * positions, positions, 1))
    b_broadcast = View(view_of(b).buffer, 0, shape, (0, 1, 0))
    map_binary("add", y_flat, y_flat, b_broadcast, y.dtype)


# --------------------------------------------------------------- index maps

@cuda.jit(device=True)
def _input_offset(n, channel, d, h, w, geo):
    """Where x[n, channel, d, h, w] lies in the flat x, or -1 if (d, h, w) is padding."""
    channels, in_size = geo[0], geo[1]
    if 0 <= d < in_size[0] and 0 <= h < in_size[1] and 0 <= w < in_size[2]:
        return (((n * channels[1] + channel) * in_size[0] + d) * in_size[1] + h) * in_size[2] + w
    return -1


@cuda.jit(device=True)
def _weights_at(z, f, q, geo):
    """Forward A: W[g][f, q] = w[g F_g + f, q] (q = (c, j) flattened), g = z mod G."""
    channels, kernel = geo[0], geo[2]
    g = z % channels[0]
    return (g * channels[4] + f) * (channels[2] * kernel[0] * kernel[1] * kernel[2]) + q


@cuda.jit(device=True)
def _window_column(z, o, geo):
    """Forward B, column o of image n = z div G, group g = z mod G: where its window starts."""
    channels, stride, pad, out_size = geo[0], geo[3], geo[4], geo[6]
    n, g = divmod(z, channels[0])
    od, oh, ow = unravel_3d(o, out_size)
    return (n, g * channels[2], od * stride[0] - pad[0], oh * stride[1] - pad[1],
            ow * stride[2] - pad[2])


@cuda.jit(device=True)
def _window_column_at(column, q, geo):
    """Forward B: cols[(c, j), o] = x_pad[n, g C_g + c, o s + j d], from o's window start."""
    kernel, dilation = geo[2], geo[5]
    n, first_channel, start_d, start_h, start_w = column
    c, j = divmod(q, kernel[0] * kernel[1] * kernel[2])
    jd, jh, jw = unravel_3d(j, kernel)
    return _input_offset(n, first_channel + c, start_d + jd * dilation[0],
                         start_h + jh * dilation[1], start_w + jw * dilation[2], geo)


@cuda.jit(device=True)
def _transposed_weights_at(z, c, k, geo):
    """Backward-input A: w[g F_g + f, c, j] at row c, k = (f, j), g = z mod G."""
    channels, kernel = geo[0], geo[2]
    volume = kernel[0] * kernel[1] * kernel[2]
    f, j = divmod(k, volume)
    g = z % channels[0]
    return ((g * channels[4] + f) * channels[2] + c) * volume + j


@cuda.jit(device=True)
def _input_column(z, i, geo):
    """Backward-input B, column i (a position of x) of image n, group g: i + p."""
    channels, in_size, pad = geo[0], geo[1], geo[4]
    n, g = divmod(z, channels[0])
    d, h, w = unravel_3d(i, in_size)
    return (n, g * channels[4], d + pad[0], h + pad[1], w + pad[2])


@cuda.jit(device=True)
def _output_index(padded, j, dilation, stride, out_size):
    """o with o s + j d = padded (the output whose window puts offset j at this input), or -1."""
    t = padded - j * dilation
    if t < 0 or t % stride != 0 or t // stride >= out_size:
        return -1
    return t // stride


@cuda.jit(device=True)
def _input_column_at(column, k, geo):
    """Backward-input B: dy[n, g F_g + f, (i + p - j d) / s] at row k = (f, j), or -1."""
    channels, kernel, stride, dilation, out_size = geo[0], geo[2], geo[3], geo[5], geo[6]
    n, first_channel, padded_d, padded_h, padded_w = column
    f, j = divmod(k, kernel[0] * kernel[1] * kernel[2])
    jd, jh, jw = unravel_3d(j, kernel)
    od = _output_index(padded_d, jd, dilation[0], stride[0], out_size[0])
    oh = _output_index(padded_h, jh, dilation[1], stride[1], out_size[1])
    ow = _output_index(padded_w, jw, dilation[2], stride[2], out_size[2])
    if od < 0 or oh < 0 or ow < 0:
        return -1
    return (((n * channels[3] + first_channel + f) * out_size[0] + od) * out_size[1]
            + oh) * out_size[2] + ow


@cuda.jit(device=True)
def _output_gradient_at(z, f, k, geo):
    """Backward-weight A: dy[n, g F_g + f, o] at row f, k = (n, o), group g = z."""
    channels, out_size = geo[0], geo[6]
    positions = out_size[0] * out_size[1] * out_size[2]
    n, o = divmod(k, positions)
    return (n * channels[3] + z * channels[4] + f) * positions + o


@cuda.jit(device=True)
def _filter_column(z, q, geo):
    """Backward-weight B, column q = (c, j) of group g = z: the channel, and j d - p."""
    channels, kernel, pad, dilation = geo[0], geo[2], geo[4], geo[5]
    c, j = divmod(q, kernel[0] * kernel[1] * kernel[2])
    jd, jh, jw = unravel_3d(j, kernel)
    return (z * channels[2] + c, jd * dilation[0] - pad[0], jh * dilation[1] - pad[1],
            jw * dilation[2] - pad[2])


@cuda.jit(device=True)
def _filter_column_at(column, k, geo):
    """Backward-weight B: x_pad[n, g C_g + c, o s + j d] at row k = (n, o)."""
    stride, out_size = geo[3], geo[6]
    channel, offset_d, offset_h, offset_w = column
    n, o = divmod(k, out_size[0] * out_size[1] * out_size[2])
    od, oh, ow = unravel_3d(o, out_size)
    return _input_offset(n, channel, od * stride[0] + offset_d, oh * stride[1] + offset_h,
                         ow * stride[2] + offset_w, geo)
