"""Winograd's minimal filtering F(4x4, 3x3): a 3x3 convolution with 4 times fewer products.

For a 6x6 tile d of the zero-padded input and a 3x3 filter g, the 4x4 block of
outputs that the tile covers (stride 1, no dilation) is

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, on 6x6 arrays)

with the constant matrices

    B^T = [[4,  0, -5,  0, 1, 0],    G = [[ 1/4,     0,    0],    A^T = [[1, 1,  1, 1,  1, 0],
           [0, -4, -4,  1, 1, 0],         [-1/6,  -1/6, -1/6],           [0, 1, -1, 2, -2, 0],
           [0,  4, -4, -1, 1, 0],         [-1/6,   1/6, -1/6],           [0, 1,  1, 4,  4, 0],
           [0, -2, -1,  2, 1, 0],         [1/24,  1/12,  1/6],           [0, 1, -1, 8, -8, 1]]
           [0,  2, -1, -2, 1, 0],         [1/24, -1/12,  1/6],
           [0,  4,  0, -5, 0, 1]]         [   0,     0,    1]]

(Lavin and Gray, "Fast algorithms for convolutional neural networks", 2016;
docs/derivations.md 1.10 builds the 1-D case, F(4, 3), from which the 2-D one
follows by applying it along both axes). The direct sum spends 16 x 9 = 144
multiplications on the sixteen outputs, the elementwise product 36.

Summed over the input channels c, the elementwise product of position (a, b)
of the tile is a matrix product, one for each of the 36 positions:

    M[a, b] = U[a, b] @ V[a, b]     U[a, b] = (G g G^T)[a, b], (n_C, n_C_prev)
                                    V[a, b] = (B^T d B)[a, b], (n_C_prev, tiles)

so the work is: transform the filters (U) and the input tiles (V), multiply in
BLAS, and transform each M back into 4x4 outputs (A^T M A). The weight
gradient is the same formula's adjoint in g (`weight_gradient`).

Three dimensions: the height and width axes are handled as above; the depth
axis (a filter depth f_D of 1 for a 2-D convolution lifted to 3-D, any f_D
for a 3-D one: f_D x 3 x 3) is summed inside the products: output plane o_D needs input planes
o_D .. o_D + f_D - 1, so the columns of U run over (j_D, c), and V for that
plane is the window of f_D transformed input planes, stored one after the
other, each transformed once (`_transformed_input`).

The transforms are Numba loops written so that LLVM turns them into vector
instructions (see the note above _input_transform). They release the GIL,
so chunks of tiles run on the convolution's worker threads
(kernels._workers), one per core, each with single-threaded BLAS.

Round-off: the transforms multiply by up to 8 and add up to six terms, so in
float32 the result is further from the exact sum than the direct sum's
(3.5 to 20 times, measured in tests/test_winograd.py): far below what
training notices, as for cuDNN and NNPACK, which use the same algorithm. The
smaller F(2x2, 3x3), which this module ran before, stayed within round-off of
the direct sum but needed 16 products for 4 outputs, 1.8 times as many.
"""

import numpy as np
from numba import njit

from ._workers import N_WORKERS, run_in_workers, scratch, sum_in_workers

OUT = 4           # outputs per tile along the height and the width
TILE = OUT + 2    # the input tile a 3x3 filter needs for them
POSITIONS = TILE * TILE   # entries of a transformed tile: one matrix product each
# about this many numbers of V (POSITIONS x rows x tiles) per chunk of tiles, so
# that V and M of a chunk stay in a core's cache
CHUNK_ELEMENTS = 1 << 19
# Below this many, the whole convolution runs as one chunk in the calling thread.
SHARED_ELEMENTS = 1 << 17
# Below this many rows of V (input channels x filter depth) the products are
# too thin for BLAS and unfolding wins (3 input channels: 4 times faster,
# measured with F(2x2, 3x3)).
MIN_ROWS = 16


def applies(geo, in_channels):
    """True when the lifted geometry is one F(4x4, 3x3) computes, and pays:
    a 3x3 (height, width) filter, stride 1, no dilation, one group, and at
    least MIN_ROWS input channels times filter depth."""
    return (geo.groups == 1 and geo.kernel[1:] == (3, 3) and geo.stride == (1, 1, 1)
            and geo.dilation == (1, 1, 1) and in_channels * geo.kernel[0] >= MIN_ROWS)


def correlate(x, w, out_sizes, pad_before):
    """y[n, k, o] = sum_{c, j} w[k, c, j] x_pad[n, c, o + j] for a 3x3 (h, w) filter.

    x (N, C, D, H, W) and w (F, C, f_D, 3, 3); x_pad is x with pad_before
    (p_D, p_H, p_W) zeros before it and zeros after it, read in place (see
    _read_strip): no padded copy of x is made. out_sizes (o_D, o_H, o_W).
    Returns y (N, F, o_D, o_H, o_W).
    """
    n_batch, channels = x.shape[:2]
    n_filters, depth = w.shape[0], w.shape[2]
    out_d, out_h, out_w = out_sizes
    tiles_h, tiles_w = _tile_counts(out_h, out_w)
    u = filter_transform(w)                                  # (POSITIONS, F, f_D C)
    y = np.empty((n_batch, n_filters, out_d, OUT * tiles_h, OUT * tiles_w), dtype=x.dtype)

    def chunk_work(chunks):
        for first, stop in chunks:
            windows = _transformed_input(x, pad_before, first, stop, out_d, tiles_h, tiles_w,
                                         depth)
            m_rows, m = _tile_matrices("winograd_m", n_filters, (stop - first) * tiles_w,
                                       x.dtype)
            for v, tiles in windows:
                np.matmul(u, v, out=m[:, :, tiles])
            _output_transform(m_rows, first, stop, tiles_h, y)

    run_in_workers(chunk_work,
                   _chunks(n_batch, out_d, tiles_h, POSITIONS * channels * tiles_w, depth))
    if (OUT * tiles_h, OUT * tiles_w) != (out_h, out_w):
        y = np.ascontiguousarray(y[..., :out_h, :out_w])
    return y


def weight_gradient(x, dy, depth, pad_before):
    """dw[k, c, j] = sum_{n, o} dy[n, k, o] x_pad[n, c, o + j] for a 3x3 (h, w) filter.

    The forward formula is linear in the filter g; its adjoint gives, summed
    over the tiles t (docs/derivations.md 1.10),

        dw = G^T [ sum_t (A dy_t A^T) * (B^T d_t B) ] G,

    and the sum over tiles of position (a, b) is the matrix product
    DY[a, b] @ V[a, b]^T, (n_C, tiles) @ (tiles, f_D n_C_prev).
    x (N, C, D, H, W) and pad_before as in `correlate`, dy (N, F, o_D, o_H, o_W),
    depth the filter depth f_D. Returns dw (F, C, f_D, 3, 3).
    """
    n_batch, channels = x.shape[:2]
    n_filters, (out_d, out_h, out_w) = dy.shape[1], dy.shape[2:]
    tiles_h, tiles_w = _tile_counts(out_h, out_w)
    dy = _padded_to(dy, (out_d, OUT * tiles_h, OUT * tiles_w))  # outputs past the end add 0
    rows = depth * channels

    def chunk_work(chunks):
        m = np.zeros((POSITIONS, n_filters, rows), dtype=x.dtype)  # this worker's sum
        for first, stop in chunks:
            windows = _transformed_input(x, pad_before, first, stop, out_d, tiles_h, tiles_w,
                                         depth)
            dy_hat_rows, dy_hat = _tile_matrices("winograd_m", n_filters,
                                                 (stop - first) * tiles_w, x.dtype)
            _gradient_transform(dy, first, stop, tiles_h, dy_hat_rows,
                                _columns_table(OUT, (stop - first) * tiles_w, x.dtype))
            products = scratch("winograd_dw", m.shape, x.dtype)
            for v, tiles in windows:
                m += np.matmul(dy_hat[:, :, tiles], v.transpose(0, 2, 1), out=products)
        return m

    chunks = _chunks(n_batch, out_d, tiles_h, POSITIONS * channels * tiles_w, depth)
    m = sum_in_workers(chunk_work, chunks)                   # (POSITIONS, F, f_D C)
    dw = np.empty((n_filters, rows, 3, 3), dtype=x.dtype)
    _weight_transform(m, dw)
    # (F, f_D C, 3, 3) -> (F, f_D, C, 3, 3) -> (F, C, f_D, 3, 3)
    return np.ascontiguousarray(dw.reshape(n_filters, depth, channels, 3, 3).swapaxes(1, 2))


def _chunks(n_batch, out_d, tiles_h, per_row, depth):
    """(first, stop) ranges of output tile rows, V holding about CHUNK_ELEMENTS numbers each.

    The tile rows of all samples and output planes are numbered one after the
    other, r = (n o_D + o_D-plane) tiles_H + th. With a filter depth of 1 a
    chunk may take any run of them, so one chunk of small pictures spans
    several; with a deeper filter a chunk is whole output planes of one
    sample (see _transformed_input). Work worth sharing (SHARED_ELEMENTS
    numbers of V) is cut into a multiple of the number of workers, so that
    none idles at the end. `per_row` is the numbers of V per tile row.
    """
    unit = 1 if depth == 1 else tiles_h                      # tile rows a chunk is made of
    n_units = n_batch * out_d * tiles_h // unit
    n_chunks = -(-n_units * unit * per_row // CHUNK_ELEMENTS)
    if n_units * unit * per_row >= SHARED_ELEMENTS:
        n_chunks = -(-n_chunks // N_WORKERS) * N_WORKERS
    step = -(-n_units // min(n_chunks, n_units))
    if depth > 1:                                            # no chunk crosses two samples
        step = min(step, out_d)
        return [((n * out_d + d) * tiles_h, (n * out_d + min(d + step, out_d)) * tiles_h)
                for n in range(n_batch) for d in range(0, out_d, step)]
    return [(first, min(first + step, n_units)) for first in range(0, n_units, step)]


def _transformed_input(x, pad_before, first, stop, out_d, tiles_h, tiles_w, depth):
    """V for the output tile rows first .. stop - 1, as [(v, tiles)]: the products
    U @ v give the chunk's outputs `tiles` (a slice of its n_tiles).

    The rows of V are (j_D, c), in the order of U's columns. A filter depth of
    1 gives one V for the whole chunk. A deeper filter (the chunk is then whole
    output planes d0 .. d1 - 1 of one sample) needs input planes d0 .. d1 + f_D - 2:
    each is transformed once, stored plane after plane, and output plane d
    multiplies the window of input planes d .. d + f_D - 1, a view of f_D C rows.
    (Unfolding the depth offsets instead transformed every plane f_D times.)
    """
    channels, in_planes = x.shape[1], out_d + depth - 1     # planes of x_pad
    if depth == 1:
        v_rows, v = _tile_matrices("winograd_v", channels, (stop - first) * tiles_w, x.dtype)
        _input_transform(x, pad_before, first, stop, out_d, tiles_h, tiles_w, 0, v_rows,
                         _columns_table(TILE, (stop - first) * tiles_w, x.dtype))
        return [(v, slice(None))]
    n, d0 = divmod(first // tiles_h, out_d)
    n_out_planes, plane_tiles = (stop - first) // tiles_h, tiles_h * tiles_w
    n_planes = n_out_planes + depth - 1
    v_rows, _ = _tile_matrices("winograd_v", n_planes * channels, plane_tiles, x.dtype)
    columns = _columns_table(TILE, plane_tiles, x.dtype)
    for p in range(n_planes):
        row = (n * in_planes + d0 + p) * tiles_h            # input tile rows of plane d0 + p
        _input_transform(x, pad_before, row, row + tiles_h, in_planes, tiles_h, tiles_w,
                         p * channels, v_rows, columns)
    per_plane = channels * plane_tiles
    return [(v_rows[:, d * per_plane:(d + depth) * per_plane].reshape(POSITIONS,
                                                                       depth * channels,
                                                                       plane_tiles),
             slice(d * plane_tiles, (d + 1) * plane_tiles)) for d in range(n_out_planes)]


def _tile_matrices(purpose, rows, n_tiles, dtype):
    """POSITIONS matrices of (rows, n_tiles) in this thread's scratch buffer for `purpose`.

    Returns them twice: as a C-contiguous (POSITIONS, rows n_tiles + 16) array
    whose row k holds matrix k flattened (what the Numba transforms write and
    read: a unit stride they can vectorise), and as the (POSITIONS, rows,
    n_tiles) view of it that BLAS multiplies. The 16 extra numbers per row
    start each matrix a cache line after a multiple of the previous one's
    size: with sizes of a power of two the transforms' streams, one per
    matrix, would compete for the same cache sets (with F(2x2, 3x3)'s 16
    matrices the input transform ran seven times slower for 64 x 512
    matrices, the filter transform eight times for 512 x 512).
    """
    size = rows * n_tiles
    flat = scratch(purpose, (POSITIONS, size + 16), dtype)
    return flat, flat[:, :size].reshape(POSITIONS, rows, n_tiles)


def _columns_table(n_columns, n_tiles, dtype):
    """(TILE, n_columns, n_tiles) in this thread's scratch buffer: the table the input
    (six columns a tile) and gradient (four) transforms fill in their first pass."""
    return scratch(f"winograd_columns_{n_columns}", (TILE, n_columns, n_tiles), dtype)


def _tile_counts(out_h, out_w):
    """Tiles down and across: each gives a 4x4 block of outputs, the last may overhang."""
    return -(-out_h // OUT), -(-out_w // OUT)


def _padded_to(array, sizes):
    """`array` (N, C, D, H, W) with zeros added after it up to `sizes`, copied only if short."""
    extra = [(0, 0), (0, 0)] + [(0, max(n - have, 0)) for n, have in
                                zip(sizes, array.shape[2:])]
    if any(after for _, after in extra):
        array = np.pad(array, extra)
    return array


def filter_transform(w):
    """U = G g G^T for every filter g = w[k, c, j_D]: (F, C, f_D, 3, 3) -> (36, F, C f_D)."""
    n_filters, channels, depth = w.shape[:3]
    u_rows, u = _tile_matrices("winograd_u", n_filters, channels * depth, w.dtype)
    _filter_transform(w, u_rows)     # w may be a view (the flipped filters of dx): read in place
    return u


# Numba computes in float64 whenever a float32 meets a literal number, so the
# transforms that run on every tile take their multipliers in the data's dtype.

@njit(cache=True, nogil=True)
def _multipliers(a):
    """2, 4, 5 and 8 in the dtype of the array a."""
    numbers = np.empty(4, dtype=a.dtype)
    numbers[0], numbers[1], numbers[2], numbers[3] = 2, 4, 5, 8
    return numbers[0], numbers[1], numbers[2], numbers[3]


@njit(cache=True, nogil=True)
def _b_transpose(d0, d1, d2, d3, d4, d5, two, four, five):
    """B^T d for a column d of six numbers."""
    return (four * d0 - five * d2 + d4,
            d3 + d4 - four * (d1 + d2),
            d4 - d3 + four * (d1 - d2),
            d4 - d2 + two * (d3 - d1),
            d4 - d2 - two * (d3 - d1),
            four * d1 - five * d3 + d5)


@njit(cache=True, nogil=True)
def _a_transpose(m0, m1, m2, m3, m4, m5, two, four, eight):
    """A^T m for a column m of six numbers."""
    sum_12, difference_12 = m1 + m2, m1 - m2
    sum_34, difference_34 = m3 + m4, m3 - m4
    return (m0 + sum_12 + sum_34,
            difference_12 + two * difference_34,
            sum_12 + four * sum_34,
            difference_12 + eight * difference_34 + m5)


@njit(cache=True, nogil=True)
def _g(g0, g1, g2):
    """G g for a column g of three numbers, in float64 (the filters are few)."""
    quarter_g0, half_g1, last = g0 * 0.25, g1 * 0.5, np.float64(g2)
    return (quarter_g0,
            -(g0 + g1 + last) / 6,
            -(g0 - g1 + last) / 6,
            (quarter_g0 + half_g1 + last) / 6,
            (quarter_g0 - half_g1 + last) / 6,
            last)


@njit(cache=True, nogil=True)
def _filter_transform(w, u):
    """u[6a + b, k (f_D C) + j_D C + c] = (G g G^T)[a, b] for the 3x3 filters
    g = w[k, c, j_D] (row 6a + b of u is U[a, b], (F, f_D C), flattened)."""
    n_filters, channels, depth = w.shape[:3]
    for k in range(n_filters):
        for c in range(channels):
            for j_d in range(depth):
                g = w[k, c, j_d]
                col = (k * depth + j_d) * channels + c
                # G down each of the filter's three columns ...
                c0 = _g(g[0, 0], g[1, 0], g[2, 0])
                c1 = _g(g[0, 1], g[1, 1], g[2, 1])
                c2 = _g(g[0, 2], g[1, 2], g[2, 2])
                # ... then along each row: (G g) G^T = (G (G g)^T)^T
                for a in range(TILE):
                    row = _g(c0[a], c1[a], c2[a])
                    for b in range(TILE):
                        u[TILE * a + b, col] = row[b]


@njit(cache=True, nogil=True)
def _tile_row(r, out_d, tiles_h):
    """Sample n, output plane o_D and tile row th of the r-th tile row."""
    n, rest = divmod(r, out_d * tiles_h)
    d, th = divmod(rest, tiles_h)
    return n, d, th


@njit(cache=True, nogil=True)
def _read_strip(x, n, c, plane, top, left, strip):
    """strip[i, j] = x[n, c, plane, top + i, left + j], or 0 where that lies outside x.

    This is how the transforms read x_pad, x surrounded by zeros, without a
    padded copy of x: one strip of six rows at a time, into a buffer that stays
    in the cache (a padded copy is one more pass over memory, for the forward
    pass and again for the weight gradient).
    """
    height, width = x.shape[3], x.shape[4]
    n_columns = strip.shape[1]
    start, stop = min(max(-left, 0), n_columns), min(max(width - left, 0), n_columns)
    for i in range(strip.shape[0]):
        row = top + i
        if 0 <= plane < x.shape[2] and 0 <= row < height:
            source = x[n, c, plane, row]
            for j in range(start):                       # zeros before x
                strip[i, j] = 0
            for j in range(start, stop):                 # x
                strip[i, j] = source[left + j]
            for j in range(stop, n_columns):             # zeros after x
                strip[i, j] = 0
        else:                                            # a row above or below x
            for j in range(n_columns):
                strip[i, j] = 0


# The input and gradient transforms work in two passes: first down the
# columns of each strip of tiles (one row of tiles), which leaves each tile's
# columns one after another in a table `columns`, then along the rows of all
# the chunk's tiles at once, one loop per entry of the 6x6 result. Each loop
# then reads and writes only a few arrays, with unit stride, for hundreds of
# tiles: LLVM turns such loops into vector instructions. (The tiles of a strip
# start four columns apart; reading the strip along its rows in place, at a
# stride of four and a few tiles per loop, ran 2.5 times slower.)

@njit(cache=True, nogil=True)
def _input_transform(x, pad_before, first, stop, planes, tiles_h, tiles_w, first_row, v,
                     columns):
    """v[6a + b, (first_row + c) n_tiles + t] = (B^T d_t B)[a, b] for the n_tiles tiles t
    of tile rows first .. stop - 1 of x_pad's planes, numbered (n planes + p) tiles_H + th
    (row 6a + b of v is V[a, b], (rows, n_tiles), flattened); x_pad is x with pad_before
    (p_D, p_H, p_W) zeros before it and zeros after it. columns, (6, 6, n_tiles), is
    scratch space: columns[a, j, t] = (B^T d_t)[a, j]."""
    channels = x.shape[1]
    n_tiles = (stop - first) * tiles_w
    two, four, five, _ = _multipliers(x)
    before_d, before_h, before_w = pad_before
    strip = np.empty((TILE, OUT * tiles_w + 2), dtype=x.dtype)
    for c in range(channels):
        # B^T down the six columns j of every tile ...
        for r in range(first, stop):
            n, p, th = _tile_row(r, planes, tiles_h)
            # the strip's six input rows
            _read_strip(x, n, c, p - before_d, OUT * th - before_h, -before_w, strip)
            first_tile = (r - first) * tiles_w
            for j in range(TILE):
                for tw in range(tiles_w):
                    i, t = OUT * tw + j, first_tile + tw
                    (columns[0, j, t], columns[1, j, t], columns[2, j, t], columns[3, j, t],
                     columns[4, j, t], columns[5, j, t]) = _b_transpose(
                        strip[0, i], strip[1, i], strip[2, i], strip[3, i], strip[4, i],
                        strip[5, i], two, four, five)
        # ... then B^T along row a of each: (B^T d) B = (B^T (B^T d)^T)^T, one loop per
        # entry b of _b_transpose
        start = (first_row + c) * n_tiles
        end = start + n_tiles
        for a in range(TILE):
            e0, e1, e2 = columns[a, 0], columns[a, 1], columns[a, 2]
            e3, e4, e5 = columns[a, 3], columns[a, 4], columns[a, 5]
            v0, v1, v2 = v[6 * a, start:end], v[6 * a + 1, start:end], v[6 * a + 2, start:end]
            v3, v4, v5 = v[6 * a + 3, start:end], v[6 * a + 4, start:end], v[6 * a + 5, start:end]
            for t in range(n_tiles):
                v0[t] = four * e0[t] - five * e2[t] + e4[t]
            for t in range(n_tiles):
                v1[t] = e3[t] + e4[t] - four * (e1[t] + e2[t])
            for t in range(n_tiles):
                v2[t] = e4[t] - e3[t] + four * (e1[t] - e2[t])
            for t in range(n_tiles):
                v3[t] = e4[t] - e2[t] + two * (e3[t] - e1[t])
            for t in range(n_tiles):
                v4[t] = e4[t] - e2[t] - two * (e3[t] - e1[t])
            for t in range(n_tiles):
                v5[t] = four * e1[t] - five * e3[t] + e5[t]


@njit(cache=True, nogil=True)
def _output_transform(m, first, stop, tiles_h, y):
    """y[n, k, o_D, 4 th + i, 4 tw + j] = (A^T M_t A)[i, j] for the tiles t of tile
    rows first .. stop - 1 (row 6a + b of m is M[a, b], (F, n_tiles), flattened)."""
    n_filters, out_d, tiles_w = y.shape[1], y.shape[2], y.shape[4] // OUT
    n_tiles = (stop - first) * tiles_w
    two, four, _, eight = _multipliers(y)
    strip = np.empty((TILE, OUT * tiles_w), dtype=y.dtype)          # M A for the strip
    for k in range(n_filters):
        for r in range(first, stop):
            n, d, th = _tile_row(r, out_d, tiles_h)
            start = k * n_tiles + (r - first) * tiles_w
            # A^T along row a of each M_t ...
            for a in range(TILE):
                for tw in range(tiles_w):
                    t = start + tw
                    (strip[a, 4 * tw], strip[a, 4 * tw + 1], strip[a, 4 * tw + 2],
                     strip[a, 4 * tw + 3]) = _a_transpose(
                        m[6 * a, t], m[6 * a + 1, t], m[6 * a + 2, t], m[6 * a + 3, t],
                        m[6 * a + 4, t], m[6 * a + 5, t], two, four, eight)
            # ... then down every column of the strip: four output rows
            out = y[n, k, d, OUT * th:OUT * th + OUT]
            for i in range(OUT * tiles_w):
                out[0, i], out[1, i], out[2, i], out[3, i] = _a_transpose(
                    strip[0, i], strip[1, i], strip[2, i], strip[3, i], strip[4, i],
                    strip[5, i], two, four, eight)


@njit(cache=True, nogil=True)
def _a(y0, y1, y2, y3, two, four, eight):
    """A y for a column y of four numbers (A = (A^T)^T, 6 x 4)."""
    sum_02, sum_13 = y0 + y2, y1 + y3
    weighted_02, weighted_13 = y0 + four * y2, two * y1 + eight * y3
    return (y0, sum_02 + sum_13, sum_02 - sum_13, weighted_02 + weighted_13,
            weighted_02 - weighted_13, y3)


@njit(cache=True, nogil=True)
def _gradient_transform(dy, first, stop, tiles_h, dy_hat, columns):
    """dy_hat[6a + b, k n_tiles + t] = (A dy_t A^T)[a, b] for the 4x4 blocks dy_t of dy
    in tile rows first .. stop - 1 (row 6a + b of dy_hat is DY[a, b], (F, n_tiles),
    flattened). columns, (6, 4, n_tiles), is scratch space: columns[a, j, t] = (A dy_t)[a, j]."""
    n_filters, out_d, tiles_w = dy.shape[1], dy.shape[2], dy.shape[4] // OUT
    n_tiles = (stop - first) * tiles_w
    two, four, _, eight = _multipliers(dy)
    for k in range(n_filters):
        # A down the four columns j of every block ...
        for r in range(first, stop):
            n, d, th = _tile_row(r, out_d, tiles_h)
            g = dy[n, k, d, OUT * th:OUT * th + OUT]               # the strip's four rows
            first_tile = (r - first) * tiles_w
            for j in range(OUT):
                for tw in range(tiles_w):
                    i, t = OUT * tw + j, first_tile + tw
                    (columns[0, j, t], columns[1, j, t], columns[2, j, t], columns[3, j, t],
                     columns[4, j, t], columns[5, j, t]) = _a(g[0, i], g[1, i], g[2, i],
                                                              g[3, i], two, four, eight)
        # ... then A along row a of each, one loop per entry b of _a
        start = k * n_tiles
        end = start + n_tiles
        for a in range(TILE):
            e0, e1, e2, e3 = columns[a, 0], columns[a, 1], columns[a, 2], columns[a, 3]
            h0, h1, h2 = (dy_hat[6 * a, start:end], dy_hat[6 * a + 1, start:end],
                          dy_hat[6 * a + 2, start:end])
            h3, h4, h5 = (dy_hat[6 * a + 3, start:end], dy_hat[6 * a + 4, start:end],
                          dy_hat[6 * a + 5, start:end])
            for t in range(n_tiles):
                h0[t] = e0[t]
            for t in range(n_tiles):
                h1[t] = e0[t] + e2[t] + e1[t] + e3[t]
            for t in range(n_tiles):
                h2[t] = e0[t] + e2[t] - e1[t] - e3[t]
            for t in range(n_tiles):
                h3[t] = e0[t] + four * e2[t] + two * e1[t] + eight * e3[t]
            for t in range(n_tiles):
                h4[t] = e0[t] + four * e2[t] - two * e1[t] - eight * e3[t]
            for t in range(n_tiles):
                h5[t] = e3[t]


@njit(cache=True, nogil=True)
def _g_transpose(m0, m1, m2, m3, m4, m5):
    """G^T m for a column m of six numbers, in float64 like _g."""
    return (m0 * 0.25 - (m1 + m2) / 6 + (m3 + m4) / 24,
            (m2 - m1) / 6 + (m3 - m4) / 12,
            (m3 + m4 - m1 - m2) / 6 + np.float64(m5))


@njit(cache=True, nogil=True)
def _weight_transform(m, dw):
    """dw[k, q] = G^T M G for the 6x6 arrays M = m[:, k, q] (q runs over (j_D, c))."""
    n_filters, rows = dw.shape[:2]
    m_g = np.empty((TILE, 3))                                      # M G for one (k, q)
    for k in range(n_filters):
        for q in range(rows):
            # G^T along each of the six rows of M (that is, M G) ...
            for a in range(TILE):
                m_g[a, 0], m_g[a, 1], m_g[a, 2] = _g_transpose(
                    m[6 * a, k, q], m[6 * a + 1, k, q], m[6 * a + 2, k, q], m[6 * a + 3, k, q],
                    m[6 * a + 4, k, q], m[6 * a + 5, k, q])
            # ... then down each of its three columns
            for j in range(3):
                dw[k, q, 0, j], dw[k, q, 1, j], dw[k, q, 2, j] = _g_transpose(
                    m_g[0, j], m_g[1, j], m_g[2, j], m_g[3, j], m_g[4, j], m_g[5, j])
