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

    forward          unfold x_pad into columns, one column per output
                     position o holding every x_pad[c, o * s + j * d], and
                     multiply:            y = W @ cols
    backward input   dcols = W^T @ dy, then fold the columns back, adding
                     where windows overlap, into dx -- a transposed convolution
    backward weight  dW = sum over n of dy @ cols^T, computed as its
                     transpose cols @ dy^T (faster in BLAS)
    backward bias    db = sum of dy over n and positions

Unfolding is one strided copy per filter offset j: the rows cols[:, :, j, ...]
are the slice x_pad[..., j * d :: s] (cut to the output's size), and folding
adds them back the same way. NumPy's copy loops run these as fast as any
hand-written loop measured here, so the work that matters is the matrix
product, which runs in BLAS. docs/derivations.md derives the two gradients.

A filter that is 3x3 in height and width, with stride 1, no dilation, one
group, and at least 16 rows of products (input channels times filter depth:
16 channels of a 2-D 3x3 filter, 6 of a 3x3x3 one) runs instead as
Winograd's F(4x4, 3x3) in kernels.winograd (winograd.applies says when),
which needs 4 times fewer products: the forward pass, the input gradient
(as a correlation with the flipped filters) and the weight gradient. It
reads x where it lies, taking the positions in the padding as zeros,
instead of a zero-padded copy.
"""

from collections import namedtuple
from itertools import product

import numpy as np
from numba import njit, prange

from . import winograd
from ._checks import (
    as_tuple,
    check_float_array,
    check_same_dtype,
    check_shape,
    output_sizes,
    resolve_padding,
)
from ._workers import N_WORKERS, run_in_workers, scratch, sum_in_workers

# Geometry of one convolution, spatial entries lifted to 3-D (d, h, w).
Geometry = namedtuple(
    "Geometry",
    "n_spatial in_sizes kernel stride pad_before pad_after dilation out_sizes groups",
)


# ---------------------------------------------------------------- public tier

def conv_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y = conv(x, w) + b for 1-3 spatial dims (read from x.ndim - 2)."""
    x, w, b, geo = _check_forward(x, w, b, stride, padding, dilation, groups)
    n_out = w.shape[0]
    if x.shape[0] == 0:                  # an empty batch: nothing to compute, nor to tile
        return np.zeros((0, n_out) + _spatial(geo.out_sizes, geo), dtype=x.dtype)
    y = _correlate(x, w, geo)
    if b is not None:
        y += b.reshape((1, n_out) + (1,) * geo.n_spatial)
    return y


def conv_backward_input(dy, w, x_shape, stride=1, padding=0, dilation=1, groups=1):
    """dL/dx given dL/dy: the transposed convolution of dy with w.

    dcols = W^T dy, folded back onto the input. With stride 1 it can instead
    be a plain correlation of dy with the flipped filters (input and output
    channels swapped), padded by d (f - 1) - p before, run as a forward
    convolution. That is the faster route when
      - the input has at least as many channels as the output: the matrix
        product has the input channels as its rows, and BLAS is slow with
        few rows (3 input and 64 output channels: the fold took a quarter
        of the correlation's time), and
      - the filters hold fewer numbers than dy: the correlation copies the
        filters (flipped), the fold writes dcols and, per worker, dx
        (512 channels at 32 x 32: fold 38 ms, correlation 43 ms; 64
        channels at 256 x 256: correlation 51 ms, fold 59 ms),
    or whenever the correlation runs as Winograd's (kernels.winograd) and
    the input has at least winograd.MIN_ROWS channels (for VGG's conv1_1,
    with 3, the fold took a third of F(2x2, 3x3)'s time, measured when the
    module ran that smaller variant: its product writes 27 rows where Winograd
    transforms all 64 channels of dy).
    """
    w = check_float_array("w", w, ndim=(3, 4, 5))
    x_shape = check_shape("x_shape", x_shape, ndim=w.ndim, empty_batch=True)
    geo = _geometry(x_shape, w.shape, stride, padding, dilation, groups)
    dy = _check_dy(dy, x_shape[0], w.shape[0], geo)
    check_same_dtype(dy=dy, w=w)
    if x_shape[0] == 0:                  # an empty batch: nothing to compute, nor to tile
        return np.zeros(x_shape, dtype=dy.dtype)
    transposed = _transposed_geometry(geo)
    if transposed is not None:
        as_winograd = (winograd.applies(transposed, w.shape[0])
                       and x_shape[1] >= winograd.MIN_ROWS)
        if as_winograd or w.shape[0] <= x_shape[1] and w.size <= dy.size:
            return _correlate(dy, _flipped_transposed_filters(w, groups), transposed)
    return _fold_backward_input(dy, w, x_shape, geo)


def conv_backward_weight(dy, x, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """dL/dw given dL/dy: the correlation of x with dy, summed over the batch."""
    x = check_float_array("x", x, ndim=(3, 4, 5))
    w_shape = check_shape("w_shape", w_shape, ndim=x.ndim)
    geo = _geometry(x.shape, w_shape, stride, padding, dilation, groups)
    dy = _check_dy(dy, x.shape[0], w_shape[0], geo)
    check_same_dtype(dy=dy, x=x)
    n_batch, n_out = dy.shape[0], w_shape[0]
    if n_batch == 0:                     # a sum over an empty batch
        return np.zeros(w_shape, dtype=x.dtype)
    if winograd.applies(geo, x.shape[1]):
        dy_3d = dy.reshape(_lift_shape(dy.shape))
        return winograd.weight_gradient(x.reshape(_lift_shape(x.shape)), dy_3d, geo.kernel[0],
                                        geo.pad_before).reshape(w_shape)
    x_pad = _pad(x, geo)                                     # (N, C, D_p, H_p, W_p)
    dy_mat = dy.reshape(n_batch, groups, n_out // groups, -1)  # (N, G, F_g, P)

    # computed transposed, dw^T = cols @ dy^T: BLAS runs the product with the
    # long columns as its rows 1.2 to 1.7 times faster than dy @ cols^T
    def backward_tiles(tiles):
        dw_t = np.zeros((groups, int(np.prod(w_shape[1:])), n_out // groups), dtype=x.dtype)
        for tile in tiles:
            cols = _columns(x_pad, geo, tile)                # (n_t, G, C_g k, P_t)
            # (n_t, G, C_g k, P_t) @ (n_t, G, P_t, F_g) -> (n_t, G, C_g k, F_g)
            products = np.matmul(cols, dy_mat[tile.samples, :, :, tile.positions]
                                 .transpose(0, 1, 3, 2))
            dw_t += products.sum(axis=0)
        return dw_t

    dw_t = sum_in_workers(backward_tiles, _tiles(geo, x.shape))  # (G, C_g k, F_g)
    return np.ascontiguousarray(dw_t.transpose(0, 2, 1)).reshape(w_shape)


def conv_backward_bias(dy):
    """dL/db given dL/dy: sum over the batch and every output position."""
    dy = check_float_array("dy", dy, ndim=(3, 4, 5))
    axes = (0,) + tuple(range(2, dy.ndim))
    return dy.sum(axis=axes)


def conv_output_shape(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """Shape of conv_forward(x, w, ...) without computing it."""
    x_shape = check_shape("x_shape", x_shape, empty_batch=True)
    w_shape = check_shape("w_shape", w_shape, ndim=len(x_shape))
    if len(x_shape) not in (3, 4, 5):
        raise ValueError(f"x_shape must have 3, 4 or 5 entries, got {x_shape}")
    geo = _geometry(x_shape, w_shape, stride, padding, dilation, groups)
    return (x_shape[0], w_shape[0]) + _spatial(geo.out_sizes, geo)


# ----------------------------------------------------- the shared middle tier

def _correlate(x, w, geo):
    """y[n, g, f, o] = sum_q w_mat[g, f, q] cols[n, g, q, o]: unfold and multiply, tile by tile.

    w (G F_g, C_g, *k), which may be a view: w_mat is its (G, F_g, C_g k) reshape.
    """
    n_batch, n_out = x.shape[0], w.shape[0]
    if winograd.applies(geo, x.shape[1]):
        y = winograd.correlate(x.reshape(_lift_shape(x.shape)), w.reshape(_lift_shape(w.shape)),
                               geo.out_sizes, geo.pad_before)
        return y.reshape((n_batch, n_out) + _spatial(geo.out_sizes, geo))
    x_pad = _pad(x, geo)                                     # (N, C, D_p, H_p, W_p)
    w_mat = w.reshape(geo.groups, n_out // geo.groups, -1)
    y = np.empty((n_batch,) + w_mat.shape[:2] + (_n_positions(geo),), dtype=x.dtype)

    def forward_tiles(tiles):
        for tile in tiles:
            cols = _columns(x_pad, geo, tile)                # (n_t, G, C_g k, P_t)
            np.matmul(w_mat, cols, out=y[tile.samples, :, :, tile.positions])

    run_in_workers(forward_tiles, _tiles(geo, x.shape))
    return y.reshape((n_batch, n_out) + _spatial(geo.out_sizes, geo))


def _transposed_geometry(geo):
    """The geometry of dx = correlate(dy, flipped w), or None when it does not apply.

    dx[i] = sum_j w[j] dy[i + p - j d]; with j' = f - 1 - j that reads dy at
    i + j' d - (d (f - 1) - p): a stride-1 correlation padded by
    d (f - 1) - p before and n_in - n_out + p after. It needs stride 1 and
    p <= d (f - 1); the fold handles everything else.
    """
    if geo.stride != (1, 1, 1):
        return None
    before = tuple(d * (f - 1) - p for d, f, p in zip(geo.dilation, geo.kernel, geo.pad_before))
    after = tuple(n_in - n_out + p for n_in, n_out, p in
                  zip(geo.in_sizes, geo.out_sizes, geo.pad_before))
    if min(before + after) < 0:
        return None
    return geo._replace(in_sizes=geo.out_sizes, out_sizes=geo.in_sizes,
                        pad_before=before, pad_after=after)


def _flipped_transposed_filters(w, groups):
    """w (G F_g, C_g, *k) -> the filters of the transposed convolution, (G C_g, F_g, *k):
    flipped, input and output channels swapped in each group (a view when groups = 1)."""
    n_out, per_group_in = w.shape[:2]
    kernel = w.shape[2:]
    flipped = w[(slice(None), slice(None)) + (slice(None, None, -1),) * len(kernel)]
    # (G F_g, C_g, *k) -> (G, F_g, C_g, *k) -> (G, C_g, F_g, *k) -> (G C_g, F_g, *k)
    by_group = flipped.reshape((groups, n_out // groups, per_group_in) + kernel)
    return by_group.swapaxes(1, 2).reshape((groups * per_group_in, n_out // groups) + kernel)


def _fold_backward_input(dy, w, x_shape, geo):
    """dx = fold(W^T dy), tile by tile: the general transposed convolution."""
    groups, n_batch, n_out = geo.groups, dy.shape[0], w.shape[0]
    w_mat_t = w.reshape(groups, n_out // groups, -1).transpose(0, 2, 1)  # (G, C_g k, F_g)
    dy_mat = dy.reshape(n_batch, groups, n_out // groups, -1)          # (N, G, F_g, P)
    tiles = _tiles(geo, x_shape)

    def fold_tiles(tiles, dx_pad):
        for tile in tiles:
            dy_tile = dy_mat[tile.samples, :, :, tile.positions]      # (n_t, G, F_g, P_t)
            dcols = scratch("columns", dy_tile.shape[:2] + (w_mat_t.shape[1], dy_tile.shape[3]),
                            dy.dtype)
            np.matmul(w_mat_t, dy_tile, out=dcols)
            _fold(dcols, geo, tile, dx_pad)
        return dx_pad

    def new_dx_pad():
        return np.zeros(_padded_shape(x_shape, geo), dtype=dy.dtype)

    if all(tile.positions == slice(0, _n_positions(geo)) for tile in tiles):
        # tiles of whole samples fold into disjoint parts of dx: one dx_pad serves all workers
        dx_pad = new_dx_pad()
        run_in_workers(lambda worker_tiles: fold_tiles(worker_tiles, dx_pad), tiles)
    else:
        # windows of tiles cut from one sample overlap: each worker folds into its own dx_pad
        dx_pad = sum_in_workers(lambda worker_tiles: fold_tiles(worker_tiles, new_dx_pad()),
                                tiles)
    return _crop(dx_pad, geo).reshape(x_shape)


# ------------------------------------------------------- argument handling
#
# _check_forward and _check_dy take `check_array`, the function that
# validates one array: check_float_array here, its twin for device arrays
# in kernels.cuda.conv, which shares all of these checks.

def _check_forward(x, w, b, stride, padding, dilation, groups, check_array=check_float_array):
    """Validate conv_forward's arguments; return (x, w, b, geometry)."""
    x = check_array("x", x, ndim=(3, 4, 5))
    w = check_array("w", w, ndim=x.ndim)
    check_same_dtype(x=x, w=w)
    geo = _geometry(x.shape, w.shape, stride, padding, dilation, groups)
    if b is not None:
        n_out = w.shape[0]
        b = check_array("b", b, ndim=1)
        check_same_dtype(x=x, b=b)
        if b.shape[0] != n_out:
            raise ValueError(f"b must have shape ({n_out},) to match w, got {b.shape}")
    return x, w, b, geo


def _geometry(x_shape, w_shape, stride, padding, dilation, groups):
    """Validate the convolution's arguments and lift them to 3-D."""
    n_spatial = len(x_shape) - 2
    in_channels, out_channels = x_shape[1], w_shape[0]
    if min(w_shape) < 1:
        raise ValueError(f"w must have at least 1 filter, 1 channel and a kernel size of at "
                         f"least 1 in every spatial dimension, got w shape {tuple(w_shape)}")
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
    # the padding after that windows actually reach (a 'same' or a generous
    # padding may add pixels that no window reads)
    reached = tuple(
        max((n_out - 1) * s + d * (f - 1) + 1 - n - lo, 0)
        for n_out, s, d, f, n, (lo, _) in zip(out, stride, dilation, kernel, in_sizes, pads)
    )
    lift, no_pad = (1,) * (3 - n_spatial), (0,) * (3 - n_spatial)
    return Geometry(
        n_spatial=n_spatial,
        in_sizes=lift + in_sizes,
        kernel=lift + kernel,
        stride=lift + stride,
        pad_before=no_pad + tuple(lo for lo, _ in pads),
        pad_after=no_pad + reached,
        dilation=lift + dilation,
        out_sizes=lift + out,
        groups=int(groups),
    )


def _check_dy(dy, n_batch, out_channels, geo, check_array=check_float_array):
    """Validate the gradient of the forward output, (N, n_C, *n_out)."""
    dy = check_array("dy", dy, ndim=geo.n_spatial + 2)
    expected = (n_batch, out_channels) + _spatial(geo.out_sizes, geo)
    if dy.shape != expected:
        raise ValueError(f"dy must have shape {expected} (the forward output), got {dy.shape}")
    return dy


def _lift_shape(shape):
    """(N, C, *spatial) -> (N, C, D, H, W) with leading spatial sizes of 1."""
    return tuple(shape[:2]) + (1,) * (5 - len(shape)) + tuple(shape[2:])


def _spatial(sizes, geo):
    """Drop the leading sizes that lifting to 3-D added."""
    return tuple(sizes[3 - geo.n_spatial:])


def _n_positions(geo):
    return int(np.prod(geo.out_sizes))


def _padded_shape(x_shape, geo):
    """(N, C, D_p, H_p, W_p): x's shape with geo's padding."""
    sizes = tuple(n + lo + hi for n, lo, hi in zip(geo.in_sizes, geo.pad_before, geo.pad_after))
    return tuple(x_shape[:2]) + sizes


def _pad(x, geo):
    """x (N, C, *spatial) -> x_pad (N, C, D_p, H_p, W_p), zeros around x."""
    x3 = x.reshape(_lift_shape(x.shape))
    if not any(geo.pad_before + geo.pad_after):
        return x3
    x_pad = np.empty(_padded_shape(x3.shape, geo), x3.dtype)
    _surround_with_zeros(x3, x_pad, *geo.pad_before)
    return x_pad


@njit(cache=True, parallel=True)
def _surround_with_zeros(x, x_pad, before_d, before_h, before_w):
    """x_pad[n, c] = x[n, c] placed at (before_d, before_h, before_w), zeros around it.

    Each entry of x_pad is written once, a plane (n, c) per parallel iteration:
    filling all of it with zeros and then copying x in, as np.pad does, writes
    the inside twice, and on one core.
    """
    n_batch, channels, in_d, in_h, in_w = x.shape
    padded_d, padded_h, padded_w = x_pad.shape[2:]
    for plane in prange(n_batch * channels):
        n, c = plane // channels, plane % channels
        for d in range(padded_d):
            for h in range(padded_h):
                row_d, row_h = d - before_d, h - before_h
                if 0 <= row_d < in_d and 0 <= row_h < in_h:
                    x_pad[n, c, d, h, :before_w] = 0
                    x_pad[n, c, d, h, before_w:before_w + in_w] = x[n, c, row_d, row_h]
                    x_pad[n, c, d, h, before_w + in_w:] = 0
                else:
                    x_pad[n, c, d, h] = 0


def _inside(geo):
    """The slices of x_pad's spatial axes that hold x."""
    return tuple(slice(lo, lo + n) for lo, n in zip(geo.pad_before, geo.in_sizes))


def _crop(x_pad, geo):
    """The inverse of _pad: the part of x_pad that is x."""
    return x_pad[(slice(None), slice(None)) + _inside(geo)]


# ------------------------------------------------------------------- tiles

# The columns of a whole batch can take gigabytes (k times the input), so
# the work runs in tiles: blocks of samples, or boxes of output rows of one
# sample, whose columns hold about this many numbers and stay in cache.
TILE_ELEMENTS = 1 << 21
# Below this many column numbers a convolution runs as one tile in the caller:
# handing a smaller one to the workers costs more than it saves.
SHARED_ELEMENTS = 1 << 17

# A box of outputs: samples, o_d range, o_h range (all of o_w), and where
# its outputs lie in the flattened (o_d, o_h, o_w) order -- one contiguous
# range, since a box either covers whole o_d planes or stays inside one.
Tile = namedtuple("Tile", "samples rows_d rows_h positions")


def _tiles(geo, x_shape):
    """Cut the output into a list of Tiles of about TILE_ELEMENTS columns each."""
    n_batch, channels = x_shape[:2]
    out_d, out_h, out_w = geo.out_sizes
    per_row = channels * int(np.prod(geo.kernel)) * out_w  # column numbers per o_h row
    total = n_batch * out_d * out_h * per_row
    # work worth sharing is cut into at least one tile per worker
    per_tile = TILE_ELEMENTS if total < SHARED_ELEMENTS else min(TILE_ELEMENTS, total // N_WORKERS)
    rows = max(1, per_tile // per_row)
    plane = out_h * out_w
    if rows >= out_d * out_h:                                # whole samples per tile
        step = _even_step(n_batch, rows // (out_d * out_h))
        return [Tile(slice(n, min(n + step, n_batch)), slice(0, out_d), slice(0, out_h),
                     slice(0, out_d * plane)) for n in range(0, n_batch, step)]
    if rows >= out_h:                                        # whole o_d planes per tile
        step = _even_step(out_d, rows // out_h)
        return [Tile(slice(n, n + 1), slice(d, min(d + step, out_d)), slice(0, out_h),
                     slice(d * plane, min(d + step, out_d) * plane))
                for n in range(n_batch) for d in range(0, out_d, step)]
    step = _even_step(out_h, rows)
    return [Tile(slice(n, n + 1), slice(d, d + 1), slice(h, min(h + step, out_h)),
                 slice(d * plane + h * out_w, d * plane + min(h + step, out_h) * out_w))
            for n in range(n_batch) for d in range(out_d) for h in range(0, out_h, step)]


def _even_step(units, most):
    """Units per tile: at most `most`, in near-equal tiles whose count, when above
    one, is a multiple of the number of workers, so that no worker idles at the end."""
    n_tiles = -(-units // most)
    if n_tiles > 1:
        workers = N_WORKERS
        n_tiles = min(-(-n_tiles // workers) * workers, units)
    return -(-units // n_tiles)


def _window(geo, tile, offset):
    """The slice of x_pad that filter offset j reads for the tile's outputs.

    Output o reads x_pad[o * s + j * d]: for outputs o_0 ... o_1 - 1 that is
    the slice from o_0 * s + j * d, in steps of s, (o_1 - o_0) entries long.
    """
    ranges = (tile.rows_d, tile.rows_h, slice(0, geo.out_sizes[2]))
    window = []
    for rows, j, s, d in zip(ranges, offset, geo.stride, geo.dilation):
        start = rows.start * s + j * d
        window.append(slice(start, start + (rows.stop - rows.start - 1) * s + 1, s))
    return (tile.samples, slice(None)) + tuple(window)


def _columns(x_pad, geo, tile):
    """The columns of the tile: (n_t, G, C_g k, P_t), k = filter volume.

    They live in the calling thread's scratch buffer: use them before the
    thread unfolds its next tile.
    """
    n_t = tile.samples.stop - tile.samples.start
    box = (tile.rows_d.stop - tile.rows_d.start, tile.rows_h.stop - tile.rows_h.start,
           geo.out_sizes[2])
    cols = scratch("columns", (n_t, x_pad.shape[1]) + geo.kernel + box, x_pad.dtype)
    for offset in product(*map(range, geo.kernel)):
        cols[(slice(None), slice(None)) + offset] = x_pad[_window(geo, tile, offset)]
    # (n_t, C, kD, kH, kW, box) -> (n_t, G, C_g k, P_t)
    return cols.reshape(n_t, geo.groups, -1, int(np.prod(box)))


def _fold(dcols, geo, tile, dx_pad):
    """dx_pad[window of j] += dcols[j] for every offset j: the adjoint of _columns."""
    n_t = tile.samples.stop - tile.samples.start
    box = (tile.rows_d.stop - tile.rows_d.start, tile.rows_h.stop - tile.rows_h.start,
           geo.out_sizes[2])
    # (n_t, G, C_g k, P_t) -> (n_t, C, kD, kH, kW, box)
    dcols = dcols.reshape((n_t, dx_pad.shape[1]) + geo.kernel + box)
    for offset in product(*map(range, geo.kernel)):
        dx_pad[_window(geo, tile, offset)] += dcols[(slice(None), slice(None)) + offset]
