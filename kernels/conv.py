"""Convolution in 1, 2 and 3 spatial dimensions, forward and backward.

Notation (the course's, extended to N spatial dimensions):
    x        input,   (N, n_C_prev, *n_in)    e.g. (N, n_C_prev, n_H_prev, n_W_prev)
    w        filters, (n_C, n_C_prev / groups, *f)
    b        bias,    (n_C,)
    y        output,  (N, n_C, *n_out)
    s, p, d  stride, zero padding, dilation, one entry per spatial dimension
    n_out  = floor((n_in + p_before + p_after - d (f - 1) - 1) / s) + 1
             (the course's floor((n + 2p - f) / s) + 1 when d = 1)

As in every deep-learning library, "convolution" is a cross-correlation: the
filter is not flipped,

    y[n, k, o] = b[k] + sum_{c, j} w[k, c, j] * x_pad[n, g(k) C_g + c, o * s + j * d]

for every output position o and filter offset j (both multi-indices), where
g(k) is the group of output channel k and C_g = n_C_prev / groups. A dilation
of 1 means no dilation.

One formulation serves the three dimensionalities. A 1-D or 2-D input is
viewed as 3-D with leading spatial dimensions of size 1, so (N, C, L) becomes
(N, C, 1, 1, L), and then:

    forward          unfold x into columns, one column per output position,
                     and multiply:      y = W @ cols
    backward input   dcols = W^T @ dy, then fold the columns back (adding
                     overlaps) into dx -- a transposed convolution
    backward weight  dW = sum over n of dy @ cols^T
    backward bias    db = sum of dy over n and positions

The unfold and fold loops are written once, for 3-D, in Numba; the matrix
products run in BLAS. docs/derivations.md derives the two gradients.
"""

from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit
from threadpoolctl import ThreadpoolController

from ._checks import (
    as_tuple,
    check_float_array,
    check_same_dtype,
    check_shape,
    output_sizes,
    resolve_padding,
)

# Geometry of one convolution, spatial entries lifted to 3-D.
Geometry = namedtuple(
    "Geometry",
    "n_spatial in_sizes kernel stride pad_before dilation out_sizes groups",
)


# ---------------------------------------------------------------- public tier

def conv_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y = conv(x, w) + b for 1-3 spatial dims (read from x.ndim - 2)."""
    x = check_float_array("x", x, ndim=(3, 4, 5))
    w = check_float_array("w", w, ndim=x.ndim)
    check_same_dtype(x=x, w=w)
    geo = _geometry(x.shape, w.shape, stride, padding, dilation, groups)
    n_batch, n_out = x.shape[0], w.shape[0]
    if b is not None:
        b = check_float_array("b", b, ndim=1)
        check_same_dtype(x=x, b=b)
        if b.shape[0] != n_out:
            raise ValueError(f"b must have shape ({n_out},) to match w, got {b.shape}")
    w_mat = w.reshape(groups, n_out // groups, -1)           # (G, F_g, C_g k)
    y = np.empty((n_batch, groups, n_out // groups, _n_positions(geo)), dtype=x.dtype)

    def forward_tiles(tiles):
        for tile in tiles:
            cols = _columns(x, geo, tile)                    # (n_t, G, C_g k, P_t)
            np.matmul(w_mat, cols, out=y[tile.samples, :, :, tile.positions])

    _run_in_workers(forward_tiles, _tiles(geo, x.shape))
    y = y.reshape((n_batch, n_out) + _spatial(geo.out_sizes, geo))
    if b is not None:
        y += b.reshape((1, n_out) + (1,) * geo.n_spatial)
    return y


def conv_backward_input(dy, w, x_shape, stride=1, padding=0, dilation=1, groups=1):
    """dL/dx given dL/dy: the transposed convolution of dy with w."""
    w = check_float_array("w", w, ndim=(3, 4, 5))
    x_shape = check_shape("x_shape", x_shape, ndim=w.ndim)
    geo = _geometry(x_shape, w.shape, stride, padding, dilation, groups)
    dy = _check_dy(dy, x_shape[0], w.shape[0], geo)
    check_same_dtype(dy=dy, w=w)
    n_batch, n_out = dy.shape[0], w.shape[0]
    w_mat_t = w.reshape(groups, n_out // groups, -1).transpose(0, 2, 1)  # (G, C_g k, F_g)
    dy_mat = dy.reshape(n_batch, groups, n_out // groups, -1)          # (N, G, F_g, P)
    if _is_pointwise(geo):
        return np.matmul(w_mat_t, dy_mat).reshape(x_shape)

    def backward_tiles(tiles):
        dx = np.zeros(_lift_shape(x_shape), dtype=dy.dtype)  # (N, C, D, H, W)
        for tile in tiles:
            dcols = np.matmul(w_mat_t, dy_mat[tile.samples, :, :, tile.positions])
            # (n_t, G, C_g k, P_t) -> (n_t, C, kD, kH, kW, rows_t, oW)
            dcols = dcols.reshape((-1, x_shape[1]) + geo.kernel + (tile.n_rows, geo.out_sizes[2]))
            _fold(dcols, geo.stride, geo.pad_before, geo.dilation, geo.out_sizes[1],
                  tile.first_row, dx[tile.samples])
        return dx

    # each worker folds into its own dx (tiles' windows overlap), then they are added
    return sum(_run_in_workers(backward_tiles, _tiles(geo, x_shape))).reshape(x_shape)


def conv_backward_weight(dy, x, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """dL/dw given dL/dy: the correlation of x with dy, summed over the batch."""
    x = check_float_array("x", x, ndim=(3, 4, 5))
    w_shape = check_shape("w_shape", w_shape, ndim=x.ndim)
    geo = _geometry(x.shape, w_shape, stride, padding, dilation, groups)
    dy = _check_dy(dy, x.shape[0], w_shape[0], geo)
    check_same_dtype(dy=dy, x=x)
    n_batch, n_out = dy.shape[0], w_shape[0]
    dy_mat = dy.reshape(n_batch, groups, n_out // groups, -1)  # (N, G, F_g, P)

    def backward_tiles(tiles):
        dw = np.zeros((groups, n_out // groups, int(np.prod(w_shape[1:]))), dtype=x.dtype)
        for tile in tiles:
            cols = _columns(x, geo, tile)                    # (n_t, G, C_g k, P_t)
            # (n_t, G, F_g, P_t) @ (n_t, G, P_t, C_g k) -> (n_t, G, F_g, C_g k)
            products = np.matmul(dy_mat[tile.samples, :, :, tile.positions],
                                 cols.transpose(0, 1, 3, 2))
            dw += products.sum(axis=0)
        return dw

    return sum(_run_in_workers(backward_tiles, _tiles(geo, x.shape))).reshape(w_shape)


def conv_backward_bias(dy):
    """dL/db given dL/dy: sum over the batch and every output position."""
    dy = check_float_array("dy", dy, ndim=(3, 4, 5))
    axes = (0,) + tuple(range(2, dy.ndim))
    return dy.sum(axis=axes)


def conv_output_shape(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """Shape of conv_forward(x, w, ...) without computing it."""
    x_shape = check_shape("x_shape", x_shape)
    w_shape = check_shape("w_shape", w_shape, ndim=len(x_shape))
    if len(x_shape) not in (3, 4, 5):
        raise ValueError(f"x_shape must have 3, 4 or 5 entries, got {x_shape}")
    geo = _geometry(x_shape, w_shape, stride, padding, dilation, groups)
    return (x_shape[0], w_shape[0]) + _spatial(geo.out_sizes, geo)


# ------------------------------------------------------- argument handling

def _geometry(x_shape, w_shape, stride, padding, dilation, groups):
    """Validate the convolution's arguments and lift them to 3-D."""
    n_spatial = len(x_shape) - 2
    in_channels, out_channels = x_shape[1], w_shape[0]
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"groups={groups} must divide both the input channels ({in_channels}) "
            f"and the output channels ({out_channels})"
        )
    if w_shape[1] != in_channels // groups:
        raise ValueError(
            f"w must have {in_channels // groups} input channels per group "
            f"(x has {in_channels} channels, groups={groups}), got w shape {tuple(w_shape)}"
        )
    kernel = tuple(w_shape[2:])
    stride = as_tuple("stride", stride, n_spatial, minimum=1)
    dilation = as_tuple("dilation", dilation, n_spatial, minimum=1)
    in_sizes = tuple(x_shape[2:])
    pads = resolve_padding(padding, in_sizes, kernel, stride, dilation)
    out = output_sizes(in_sizes, kernel, stride, pads, dilation)
    lift = (1,) * (3 - n_spatial)
    return Geometry(
        n_spatial=n_spatial,
        in_sizes=lift + in_sizes,
        kernel=lift + kernel,
        stride=lift + stride,
        pad_before=(0,) * (3 - n_spatial) + tuple(lo for lo, _ in pads),
        dilation=lift + dilation,
        out_sizes=lift + out,
        groups=int(groups),
    )


def _check_dy(dy, n_batch, out_channels, geo):
    dy = check_float_array("dy", dy, ndim=geo.n_spatial + 2)
    expected = (n_batch, out_channels) + _spatial(geo.out_sizes, geo)
    if dy.shape != expected:
        raise ValueError(f"dy must have shape {expected} (the forward output), got {dy.shape}")
    return dy


def _lift_shape(shape):
    """(N, C, *spatial) -> (N, C, D, H, W) with leading spatial sizes of 1."""
    return tuple(shape[:2]) + (1,) * (5 - len(shape)) + tuple(shape[2:])


def _is_pointwise(geo):
    """A 1x1 filter, stride 1, no padding: the columns are x itself."""
    return geo.kernel == (1, 1, 1) and geo.stride == (1, 1, 1) and geo.pad_before == (0, 0, 0)


def _spatial(sizes, geo):
    """Drop the leading sizes that lifting to 3-D added."""
    return tuple(sizes[3 - geo.n_spatial:])


def _n_positions(geo):
    return int(np.prod(geo.out_sizes))


# The columns of a whole batch can take gigabytes (k times the input), so
# the work runs in tiles: blocks of samples, or blocks of output rows of one
# sample, whose columns hold about this many numbers and stay in cache.
TILE_ELEMENTS = 1 << 21

Tile = namedtuple("Tile", "samples positions first_row n_rows")


def _tiles(geo, x_shape):
    """Cut the output into a list of Tiles; rows are the (o_d, o_h) pairs, each oW long."""
    return list(_generate_tiles(geo, x_shape))


def _generate_tiles(geo, x_shape):
    n_batch, channels = x_shape[:2]
    rows = geo.out_sizes[0] * geo.out_sizes[1]
    row_length = geo.out_sizes[2]
    per_row = channels * int(np.prod(geo.kernel)) * row_length
    rows_per_tile = max(1, TILE_ELEMENTS // per_row)
    if rows_per_tile >= rows:
        samples_per_tile = max(1, rows_per_tile // rows)
        for n in range(0, n_batch, samples_per_tile):
            stop = min(n + samples_per_tile, n_batch)
            yield Tile(slice(n, stop), slice(0, rows * row_length), 0, rows)
        return
    for n in range(n_batch):
        for row in range(0, rows, rows_per_tile):
            stop = min(row + rows_per_tile, rows)
            yield Tile(slice(n, n + 1), slice(row * row_length, stop * row_length),
                       row, stop - row)


# Tiles run on a pool of worker threads, one per core. Each worker unfolds
# its tile (Numba, releasing the GIL) and multiplies it with single-threaded
# BLAS, so the two never fight over the cores; one tile alone runs in the
# caller with multi-threaded BLAS.
_BLAS = ThreadpoolController()
_workers = None


def _run_in_workers(work, tiles):
    """[work(tiles[i::W]) for each worker i]: the tiles dealt round-robin."""
    n_workers = min(len(tiles), numba.get_num_threads())
    if n_workers == 1:
        return [work(tiles)]
    global _workers
    if _workers is None or _workers._max_workers < n_workers:
        _workers = ThreadPoolExecutor(numba.get_num_threads(), thread_name_prefix="conv")
    with _BLAS.limit(limits=1, user_api="blas"):
        return list(_workers.map(work, [tiles[i::n_workers] for i in range(n_workers)]))


def _columns(x, geo, tile):
    """The columns of x for one tile: (n_t, G, C_g k, P_t), k = filter volume."""
    n_batch, channels = x.shape[:2]
    if _is_pointwise(geo):
        # (N, C, *spatial) -> (N, G, C_g, P), a view
        return x.reshape(n_batch, geo.groups, channels // geo.groups, -1)[
            tile.samples, :, :, tile.positions]
    x3 = x.reshape(_lift_shape(x.shape))[tile.samples]       # (n_t, C, D, H, W)
    cols = np.empty(x3.shape[:2] + geo.kernel + (tile.n_rows, geo.out_sizes[2]), dtype=x.dtype)
    _unfold(x3, geo.stride, geo.pad_before, geo.dilation, geo.out_sizes[1], tile.first_row, cols)
    # (n_t, C, kD, kH, kW, rows_t, oW) -> (n_t, G, C_g k, P_t)
    return cols.reshape(x3.shape[0], geo.groups, -1, tile.n_rows * geo.out_sizes[2])


# ---------------------------------------------------------- jitted kernels

@njit(cache=True, nogil=True)
def _unfold(x, stride, pad_before, dilation, out_h, first_row, cols):
    """cols[n, c, j, r, o_w] = x_pad[n, c, o * s + j * d] (zero outside x).

    x (n_t, C, D, H, W); cols (n_t, C, kD, kH, kW, rows_t, oW), where local row
    r stands for output row first_row + r, that is (o_d, o_h) = divmod(., out_h).
    """
    n_batch, channels = x.shape[0], x.shape[1]
    k_d, k_h, k_w = cols.shape[2], cols.shape[3], cols.shape[4]
    for task in range(n_batch * channels * k_d * k_h * k_w):
        n, c, j_d, j_h, j_w = _split_task(task, channels, k_d, k_h, k_w)
        _unfold_one_offset(x[n, c], (j_d, j_h, j_w), stride, pad_before, dilation,
                           out_h, first_row, cols[n, c, j_d, j_h, j_w])


@njit(cache=True, nogil=True)
def _unfold_one_offset(plane, offset, stride, pad_before, dilation, out_h, first_row, out):
    """out[r, o_w] = plane[o * s + offset * d - p], or 0 where that falls outside."""
    size_d, size_h, size_w = plane.shape
    shift = _shift(offset, dilation, pad_before)
    first, stop = _inside_range(shift[2], stride[2], size_w, out.shape[1])
    for r in range(out.shape[0]):
        i_d, i_h = _input_row(first_row + r, out_h, stride, shift)
        row = out[r]
        if not (0 <= i_d < size_d and 0 <= i_h < size_h):
            row[:] = 0.0
            continue
        row[:first] = 0.0
        for o_w in range(first, stop):
            row[o_w] = plane[i_d, i_h, o_w * stride[2] + shift[2]]
        row[stop:] = 0.0


@njit(cache=True, nogil=True)
def _fold(cols, stride, pad_before, dilation, out_h, first_row, dx):
    """dx[n, c, o * s + j * d - p] += cols[n, c, j, r, o_w]: the adjoint of _unfold.
    """
    n_batch, channels = dx.shape[0], dx.shape[1]
    k_d, k_h, k_w = cols.shape[2], cols.shape[3], cols.shape[4]
    for task in range(n_batch * channels):
        n, c = task // channels, task % channels
        for j_d in range(k_d):
            for j_h in range(k_h):
                for j_w in range(k_w):
                    _fold_one_offset(cols[n, c, j_d, j_h, j_w], (j_d, j_h, j_w), stride,
                                     pad_before, dilation, out_h, first_row, dx[n, c])


@njit(cache=True, nogil=True)
def _fold_one_offset(col, offset, stride, pad_before, dilation, out_h, first_row, plane):
    """plane[o * s + offset * d - p] += col[r, o_w] where that falls inside."""
    size_d, size_h, size_w = plane.shape
    shift = _shift(offset, dilation, pad_before)
    first, stop = _inside_range(shift[2], stride[2], size_w, col.shape[1])
    for r in range(col.shape[0]):
        i_d, i_h = _input_row(first_row + r, out_h, stride, shift)
        if 0 <= i_d < size_d and 0 <= i_h < size_h:
            for o_w in range(first, stop):
                plane[i_d, i_h, o_w * stride[2] + shift[2]] += col[r, o_w]


@njit(cache=True, nogil=True)
def _shift(offset, dilation, pad_before):
    """Where filter offset j reads, relative to o * s: j * d - p, per dimension."""
    return (offset[0] * dilation[0] - pad_before[0],
            offset[1] * dilation[1] - pad_before[1],
            offset[2] * dilation[2] - pad_before[2])


@njit(cache=True, nogil=True)
def _input_row(row, out_h, stride, shift):
    """Output row (o_d, o_h) = divmod(row, out_h) -> the input row (i_d, i_h) it reads."""
    o_d, o_h = row // out_h, row % out_h
    return o_d * stride[0] + shift[0], o_h * stride[1] + shift[1]


@njit(cache=True, nogil=True)
def _inside_range(shift, stride, size, n_out):
    """The outputs o with 0 <= o * stride + shift < size, as a range [first, stop)."""
    first = min(-(shift // stride) if shift < 0 else 0, n_out)
    stop = min(max((size - 1 - shift) // stride + 1, first), n_out)
    return first, stop


@njit(cache=True, nogil=True)
def _split_task(task, channels, k_d, k_h, k_w):
    """Flat task number -> (n, c, j_d, j_h, j_w), the last index fastest."""
    j_w = task % k_w
    task //= k_w
    j_h = task % k_h
    task //= k_h
    j_d = task % k_d
    task //= k_d
    return task // channels, task % channels, j_d, j_h, j_w
