"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 convolution with 2.25 times fewer products.

For a 4x4 tile d of the zero-padded input and a 3x3 filter g, the 2x2 block of
outputs that the tile covers (stride 1, no dilation) is

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, on 4x4 arrays)

with the constant matrices

    B^T = [[1,  0, -1,  0],     G = [[  1,    0,   0],     A^T = [[1, 1,  1,  0],
           [0,  1,  1,  0],          [1/2,  1/2, 1/2],            [0, 1, -1, -1]]
           [0, -1,  1,  0],          [1/2, -1/2, 1/2],
           [0,  1,  0, -1]]          [  0,    0,   1]]

(Lavin and Gray, "Fast algorithms for convolutional neural networks", 2016;
docs/derivations.md 1.10 derives the 1-D case, F(2, 3), from which the 2-D one
follows by applying it along both axes). The direct sum spends 4 x 9 = 36
multiplications on the four outputs, the elementwise product 16.

Summed over the input channels c, the elementwise product of position (a, b)
of the tile is a matrix product, one for each of the 16 positions:

    M[a, b] = U[a, b] @ V[a, b]     U[a, b] = (G g G^T)[a, b], (n_C, n_C_prev)
                                    V[a, b] = (B^T d B)[a, b], (n_C_prev, tiles)

so the work is: transform the filters (U) and the input tiles (V), multiply in
BLAS, and transform each M back into 2x2 outputs (A^T M A). The weight
gradient is the same formula's adjoint in g (`weight_gradient`).

Three dimensions: the height and width axes are handled as above; the depth
axis (a filter depth f_D of 1 for a 2-D convolution lifted to 3-D, 3 for a
3-D one) is summed inside the products: output plane o_D needs input planes
o_D .. o_D + f_D - 1, so the columns of U run over (j_D, c), and V for that
plane is the window of f_D transformed input planes, stored one after the
other, each transformed once (`_transformed_input`).

The transforms are Numba loops written so that LLVM turns them into vector
instructions (see the note above _input_transform). They release the GIL,
so chunks of tiles run on the convolution's worker threads
(kernels._workers), one per core, each with single-threaded BLAS. In
float32 the result differs from the direct sum by round-off of the same
order (the transforms only add, subtract and halve).
"""

import numpy as np
from numba import njit

from ._workers import N_WORKERS, run_in_workers, scratch, sum_in_workers

# about this many numbers of V (16 x rows x tiles) per chunk of tiles, so that
# V and M of a chunk stay in a core's cache
CHUNK_ELEMENTS = 1 << 19
# Below this many, the whole convolution runs as one chunk in the calling thread.
SHARED_ELEMENTS = 1 << 17
# Below this many rows of V (input channels x filter depth) the products are
# too thin for BLAS and unfolding wins (3 input channels: 4 times faster).
MIN_ROWS = 16


def applies(geo, in_channels):
    """True when the lifted geometry is one F(2x2, 3x3) computes, and pays:
    a 3x3 (height, width) filter, stride 1, no dilation, one group, and at
    least MIN_ROWS input channels times filter depth."""
    return (geo.groups == 1 and geo.kernel[1:] == (3, 3) and geo.stride == (1, 1, 1)
            and geo.dilation == (1, 1, 1) and in_channels * geo.kernel[0] >= MIN_ROWS)


def correlate(x_pad, w, out_sizes):
    """y[n, k, o] = sum_{c, j} w[k, c, j] x_pad[n, c, o + j] for a 3x3 (h, w) filter.

    x_pad (N, C, D_p, H_p, W_p), already zero-padded, and w (F, C, f_D, 3, 3);
    out_sizes (o_D, o_H, o_W). Returns y (N, F, o_D, o_H, o_W).
    """
    n_batch, channels = x_pad.shape[:2]
    n_filters, depth = w.shape[0], w.shape[2]
    out_d, out_h, out_w = out_sizes
    tiles_h, tiles_w = _tile_counts(out_h, out_w)
    x_pad = _padded_to(x_pad, input_sizes(out_sizes, depth))
    u = filter_transform(w)                                  # (16, F, f_D C)
    y = np.empty((n_batch, n_filters, out_d, 2 * tiles_h, 2 * tiles_w), dtype=x_pad.dtype)

    def chunk_work(chunks):
        for first, stop in chunks:
            windows = _transformed_input(x_pad, first, stop, out_d, tiles_h, tiles_w, depth)
            m_rows, m = _sixteen_matrices("winograd_m", n_filters, (stop - first) * tiles_w,
                                          x_pad.dtype)
            for v, tiles in windows:
                np.matmul(u, v, out=m[:, :, tiles])
            _output_transform(m_rows, first, stop, tiles_h, y)

    run_in_workers(chunk_work, _chunks(n_batch, out_d, tiles_h, 16 * channels * tiles_w, depth))
    if (2 * tiles_h, 2 * tiles_w) != (out_h, out_w):
        y = np.ascontiguousarray(y[..., :out_h, :out_w])
    return y


def weight_gradient(x_pad, dy, depth):
    """dw[k, c, j] = sum_{n, o} dy[n, k, o] x_pad[n, c, o + j] for a 3x3 (h, w) filter.

    The forward formula is linear in the filter g; its adjoint gives, summed
    over the tiles t (docs/derivations.md 1.10),

        dw = G^T [ sum_t (A dy_t A^T) * (B^T d_t B) ] G,

    and the sum over tiles of position (a, b) is the matrix product
    DY[a, b] @ V[a, b]^T, (n_C, tiles) @ (tiles, f_D n_C_prev).
    x_pad (N, C, D_p, H_p, W_p) as in `correlate`, dy (N, F, o_D, o_H, o_W),
    depth the filter depth f_D. Returns dw (F, C, f_D, 3, 3).
    """
    n_batch, channels = x_pad.shape[:2]
    n_filters, (out_d, out_h, out_w) = dy.shape[1], dy.shape[2:]
    tiles_h, tiles_w = _tile_counts(out_h, out_w)
    x_pad = _padded_to(x_pad, input_sizes((out_d, out_h, out_w), depth))
    dy = _padded_to(dy, (out_d, 2 * tiles_h, 2 * tiles_w))  # outputs past the end add 0
    rows = depth * channels

    def chunk_work(chunks):
        m = np.zeros((16, n_filters, rows), dtype=x_pad.dtype)  # this worker's sum over tiles
        for first, stop in chunks:
            windows = _transformed_input(x_pad, first, stop, out_d, tiles_h, tiles_w, depth)
            dy_hat_rows, dy_hat = _sixteen_matrices("winograd_m", n_filters,
                                                    (stop - first) * tiles_w, x_pad.dtype)
            _gradient_transform(dy, first, stop, tiles_h, dy_hat_rows)
            products = scratch("winograd_dw", m.shape, x_pad.dtype)
            for v, tiles in windows:
                m += np.matmul(dy_hat[:, :, tiles], v.transpose(0, 2, 1), out=products)
        return m

    chunks = _chunks(n_batch, out_d, tiles_h, 16 * channels * tiles_w, depth)
    m = sum_in_workers(chunk_work, chunks)                   # (16, F, f_D C)
    dw = np.empty((n_filters, rows, 3, 3), dtype=x_pad.dtype)
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


def _transformed_input(x_pad, first, stop, out_d, tiles_h, tiles_w, depth):
    """V for the output tile rows first .. stop - 1, as [(v, tiles)]: the products
    U @ v give the chunk's outputs `tiles` (a slice of its n_tiles).

    The rows of V are (j_D, c), in the order of U's columns. A filter depth of
    1 gives one V for the whole chunk. A deeper filter (the chunk is then whole
    output planes d0 .. d1 - 1 of one sample) needs input planes d0 .. d1 + f_D - 2:
    each is transformed once, stored plane after plane, and output plane d
    multiplies the window of input planes d .. d + f_D - 1, a view of f_D C rows.
    (Unfolding the depth offsets instead transformed every plane f_D times.)
    """
    channels, in_planes = x_pad.shape[1], x_pad.shape[2]
    if depth == 1:
        v_rows, v = _sixteen_matrices("winograd_v", channels, (stop - first) * tiles_w,
                                      x_pad.dtype)
        _input_transform(x_pad, first, stop, out_d, tiles_h, tiles_w, 0, v_rows)
        return [(v, slice(None))]
    n, d0 = divmod(first // tiles_h, out_d)
    n_out_planes, plane_tiles = (stop - first) // tiles_h, tiles_h * tiles_w
    n_planes = n_out_planes + depth - 1
    v_rows, _ = _sixteen_matrices("winograd_v", n_planes * channels, plane_tiles, x_pad.dtype)
    for p in range(n_planes):
        row = (n * in_planes + d0 + p) * tiles_h            # input tile rows of plane d0 + p
        _input_transform(x_pad, row, row + tiles_h, in_planes, tiles_h, tiles_w, p * channels,
                         v_rows)
    per_plane = channels * plane_tiles
    return [(v_rows[:, d * per_plane:(d + depth) * per_plane].reshape(16, depth * channels,
                                                                       plane_tiles),
             slice(d * plane_tiles, (d + 1) * plane_tiles)) for d in range(n_out_planes)]


def _sixteen_matrices(purpose, rows, n_tiles, dtype):
    """16 matrices of (rows, n_tiles) in this thread's scratch buffer for `purpose`.

    Returns them twice: as a C-contiguous (16, rows n_tiles + 16) array whose
    row k holds matrix k flattened (what the Numba transforms write and read:
    a unit stride they can vectorise), and as the (16, rows, n_tiles) view of
    it that BLAS multiplies. The 16 extra numbers per row start each matrix a
    cache line after a multiple of the previous one's size: with sizes of a
    power of two the 16 streams of the transforms would compete for the same
    cache sets (the input transform ran seven times slower for 64 x 512
    matrices, the filter transform eight times for 512 x 512).
    """
    size = rows * n_tiles
    flat = scratch(purpose, (16, size + 16), dtype)
    return flat, flat[:, :size].reshape(16, rows, n_tiles)


def input_sizes(out_sizes, depth):
    """(D_p, H_p, W_p) of the input that the tiles of out_sizes (o_D, o_H, o_W) read.

    Whole 4x4 tiles, two outputs apart, cover an odd o_H or o_W with one row
    or column more than the outputs need; a caller that pads x anyway pads it
    this far (kernels.conv does) and saves `correlate` a second copy.
    """
    out_d, out_h, out_w = out_sizes
    tiles_h, tiles_w = _tile_counts(out_h, out_w)
    return out_d + depth - 1, 2 * tiles_h + 2, 2 * tiles_w + 2


def _tile_counts(out_h, out_w):
    """Tiles down and across: each gives a 2x2 block of outputs, the last may overhang."""
    return -(-out_h // 2), -(-out_w // 2)


def _padded_to(array, sizes):
    """`array` (N, C, D, H, W) with zeros added after it up to `sizes`, copied only if short."""
    extra = [(0, 0), (0, 0)] + [(0, max(n - have, 0)) for n, have in
                                zip(sizes, array.shape[2:])]
    if any(after for _, after in extra):
        array = np.pad(array, extra)
    return array


def filter_transform(w):
    """U = G g G^T for every filter g = w[k, c, j_D]: (F, C, f_D, 3, 3) -> (16, F, C f_D)."""
    n_filters, channels, depth = w.shape[:3]
    u_rows, u = _sixteen_matrices("winograd_u", n_filters, channels * depth, w.dtype)
    _filter_transform(w, u_rows)     # w may be a view (the flipped filters of dx): read in place
    return u


@njit(cache=True, nogil=True)
def _b_transpose(d0, d1, d2, d3):
    """B^T d for a column d of four numbers."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@njit(cache=True, nogil=True)
def _a_transpose(m0, m1, m2, m3):
    """A^T m for a column m of four numbers."""
    return m0 + m1 + m2, m1 - m2 - m3


@njit(cache=True, nogil=True)
def _g(g0, g1, g2):
    """G g for a column g of three numbers."""
    return g0, (g0 + g1 + g2) * 0.5, (g0 - g1 + g2) * 0.5, g2


@njit(cache=True, nogil=True)
def _filter_transform(w, u):
    """u[4a + b, k (f_D C) + j_D C + c] = (G g G^T)[a, b] for the 3x3 filters
    g = w[k, c, j_D] (row 4a + b of u is U[a, b], (F, f_D C), flattened)."""
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
                u[0, col], u[1, col], u[2, col], u[3, col] = _g(c0[0], c1[0], c2[0])
                u[4, col], u[5, col], u[6, col], u[7, col] = _g(c0[1], c1[1], c2[1])
                u[8, col], u[9, col], u[10, col], u[11, col] = _g(c0[2], c1[2], c2[2])
                u[12, col], u[13, col], u[14, col], u[15, col] = _g(
                    c0[3], c1[3], c2[3])


@njit(cache=True, nogil=True)
def _tile_row(r, out_d, tiles_h):
    """Sample n, output plane o_D and tile row th of the r-th tile row."""
    n, rest = divmod(r, out_d * tiles_h)
    d, th = divmod(rest, tiles_h)
    return n, d, th


# The three transforms below work on one row of tiles at a time, in two
# loops: first down the columns of the whole strip (every column at once),
# then along the rows, one row a of the 4x4 tiles after another. Each loop
# then reads and writes only a few arrays, which LLVM needs before it will
# turn the loop into vector instructions (with all 16 outputs of a tile
# written in one loop, it did not: 3 to 5 times slower).

@njit(cache=True, nogil=True)
def _input_transform(x_pad, first, stop, planes, tiles_h, tiles_w, first_row, v):
    """v[4a + b, (first_row + c) n_tiles + t] = (B^T d_t B)[a, b] for the n_tiles tiles t
    of tile rows first .. stop - 1 of x_pad's planes, numbered (n planes + p) tiles_H + th
    (row 4a + b of v is V[a, b], (rows, n_tiles), flattened)."""
    channels = x_pad.shape[1]
    n_tiles = (stop - first) * tiles_w
    strip = np.empty((4, 2 * tiles_w + 2), dtype=x_pad.dtype)   # B^T d for the strip
    for c in range(channels):
        row = first_row + c
        for r in range(first, stop):
            n, p, th = _tile_row(r, planes, tiles_h)
            x0, x1 = x_pad[n, c, p, 2 * th], x_pad[n, c, p, 2 * th + 1]
            x2, x3 = x_pad[n, c, p, 2 * th + 2], x_pad[n, c, p, 2 * th + 3]
            # B^T down every column of the strip of four input rows ...
            for i in range(strip.shape[1]):
                strip[0, i], strip[1, i], strip[2, i], strip[3, i] = _b_transpose(
                    x0[i], x1[i], x2[i], x3[i])
            # ... then B^T along row a of each tile (columns i = 2 tw .. 2 tw + 3):
            # (B^T d) B = (B^T (B^T d)^T)^T, one loop per entry b of _b_transpose
            start = row * n_tiles + (r - first) * tiles_w
            for a in range(4):
                e = strip[a]
                end = start + tiles_w
                v0, v1, v2, v3 = (v[4 * a, start:end], v[4 * a + 1, start:end],
                                  v[4 * a + 2, start:end], v[4 * a + 3, start:end])
                for tw in range(tiles_w):
                    v0[tw] = e[2 * tw] - e[2 * tw + 2]
                for tw in range(tiles_w):
                    v1[tw] = e[2 * tw + 1] + e[2 * tw + 2]
                for tw in range(tiles_w):
                    v2[tw] = e[2 * tw + 2] - e[2 * tw + 1]
                for tw in range(tiles_w):
                    v3[tw] = e[2 * tw + 1] - e[2 * tw + 3]


@njit(cache=True, nogil=True)
def _output_transform(m, first, stop, tiles_h, y):
    """y[n, k, o_D, 2 th + i, 2 tw + j] = (A^T M_t A)[i, j] for the tiles t of tile
    rows first .. stop - 1 (row 4a + b of m is M[a, b], (F, n_tiles), flattened)."""
    n_filters, out_d, tiles_w = y.shape[1], y.shape[2], y.shape[4] // 2
    n_tiles = (stop - first) * tiles_w
    strip = np.empty((4, 2 * tiles_w), dtype=y.dtype)           # M A for the strip
    for k in range(n_filters):
        for r in range(first, stop):
            n, d, th = _tile_row(r, out_d, tiles_h)
            start = k * n_tiles + (r - first) * tiles_w
            # A^T along row a of each M_t ...
            for a in range(4):
                for tw in range(tiles_w):
                    t = start + tw
                    strip[a, 2 * tw], strip[a, 2 * tw + 1] = _a_transpose(
                        m[4 * a, t], m[4 * a + 1, t], m[4 * a + 2, t], m[4 * a + 3, t])
            # ... then down every column of the strip: two output rows
            top, bottom = y[n, k, d, 2 * th], y[n, k, d, 2 * th + 1]
            for i in range(2 * tiles_w):
                top[i], bottom[i] = _a_transpose(strip[0, i], strip[1, i], strip[2, i],
                                                 strip[3, i])


@njit(cache=True, nogil=True)
def _a(y0, y1):
    """A y for a column y of two numbers (A = (A^T)^T, 4 x 2)."""
    return y0, y0 + y1, y0 - y1, -y1


@njit(cache=True, nogil=True)
def _gradient_transform(dy, first, stop, tiles_h, dy_hat):
    """dy_hat[4a + b, k n_tiles + t] = (A dy_t A^T)[a, b] for the 2x2 blocks dy_t of dy
    in tile rows first .. stop - 1 (row 4a + b of dy_hat is DY[a, b], (F, n_tiles),
    flattened)."""
    n_filters, out_d, tiles_w = dy.shape[1], dy.shape[2], dy.shape[4] // 2
    n_tiles = (stop - first) * tiles_w
    strip = np.empty((4, 2 * tiles_w), dtype=dy.dtype)          # A dy for the strip
    for k in range(n_filters):
        for r in range(first, stop):
            n, d, th = _tile_row(r, out_d, tiles_h)
            upper, lower = dy[n, k, d, 2 * th], dy[n, k, d, 2 * th + 1]
            # A down every column of the strip of two rows of dy ...
            for i in range(strip.shape[1]):
                strip[0, i], strip[1, i], strip[2, i], strip[3, i] = _a(upper[i], lower[i])
            # ... then A along row a of each block (columns 2 tw, 2 tw + 1), one loop
            # per entry b of _a
            start = k * n_tiles + (r - first) * tiles_w
            for a in range(4):
                e = strip[a]
                end = start + tiles_w
                h0, h1, h2, h3 = (dy_hat[4 * a, start:end], dy_hat[4 * a + 1, start:end],
                                  dy_hat[4 * a + 2, start:end], dy_hat[4 * a + 3, start:end])
                for tw in range(tiles_w):
                    h0[tw] = e[2 * tw]
                for tw in range(tiles_w):
                    h1[tw] = e[2 * tw] + e[2 * tw + 1]
                for tw in range(tiles_w):
                    h2[tw] = e[2 * tw] - e[2 * tw + 1]
                for tw in range(tiles_w):
                    h3[tw] = -e[2 * tw + 1]


@njit(cache=True, nogil=True)
def _g_transpose(m0, m1, m2, m3):
    """G^T m for a column m of four numbers."""
    return m0 + (m1 + m2) * 0.5, (m1 - m2) * 0.5, (m1 + m2) * 0.5 + m3


@njit(cache=True, nogil=True)
def _weight_transform(m, dw):
    """dw[k, q] = G^T M G for the 4x4 arrays M = m[:, k, q] (q runs over (j_D, c))."""
    n_filters, rows = dw.shape[:2]
    for k in range(n_filters):
        for q in range(rows):
            # G^T along each of the four rows of M (that is, M G) ...
            r0 = _g_transpose(m[0, k, q], m[1, k, q], m[2, k, q], m[3, k, q])
            r1 = _g_transpose(m[4, k, q], m[5, k, q], m[6, k, q], m[7, k, q])
            r2 = _g_transpose(m[8, k, q], m[9, k, q], m[10, k, q], m[11, k, q])
            r3 = _g_transpose(m[12, k, q], m[13, k, q], m[14, k, q], m[15, k, q])
            # ... then down each of its three columns
            for j in range(3):
                dw[k, q, 0, j], dw[k, q, 1, j], dw[k, q, 2, j] = _g_transpose(
                    r0[j], r1[j], r2[j], r3[j])
