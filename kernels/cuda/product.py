"""The tiled matrix product behind every convolution, Gram matrix and distance matrix.

For a batch of products, z = 0 ... n_batch - 1,

    C[z, i, j] = sum over k of A[z, i, k] B[z, k, j]      (rows i, columns j)

computed in tiles: block (bx, by) of batch z owns the 64 x 64 tile of C with
rows by*64 ... by*64 + 63 and columns bx*64 ... bx*64 + 63. Its 16 x 16 = 256
threads walk along k in steps of 16. At each step they copy a 64 x 16 tile of
A and a 16 x 64 tile of B into shared memory (each thread copies 4 entries of
each), wait for each other, and then thread (tx, ty) adds the products for
its 4 x 4 entries of C,

    C[z, by*64 + ty + 16 r, bx*64 + tx + 16 s]   for r, s = 0 ... 3,

which it keeps in registers until the end. Every entry of A and B read from
global memory is used 64 times from shared memory: that reuse is what makes
a tiled product fast (docs/gpu.md draws the tiles).

A and B need not exist as matrices. Each operand is read through an index
map that says where its entry lies in a flat array, or -1 for an entry that
is 0 (padding):

    A[z, i, k] = a[a_at(z, i, k, a_geo)]
    B[z, k, j] = b[b_at(b_column(z, j, b_geo), k, b_geo)]

B's map is split in two because each thread loads the same column j of B at
every step: b_column does the work for column j once (for a convolution:
where the window of output position j starts), b_at the rest for each k. For
ordinary strided matrices (gram, distances, matmul) the maps are strides;
conv.py defines the maps that read the unfolded columns of an image
straight from the image, so that the columns are never stored ("implicit
im2col").

When the tiles of C are too few to keep the GPU busy but k is long (the
weight gradient of a convolution sums over every position of every image),
the sum over k is split into parts, one block each ("split-k"); the parts
are written to C[part, z, i, j] and added up afterwards, in a fixed order,
so the result does not depend on timing.
"""

import functools
from collections import namedtuple

import numba
import numpy as np
from numba import cuda

from ._device import empty, view_of
from .reduce import reduce

TILE = 64                       # a block computes a TILE x TILE tile of C
TILE_K = 16                     # and moves along k TILE_K at a time
SIDE = 16                       # threads per block along each side: SIDE x SIDE = 256
PER_THREAD = TILE // SIDE       # 4: each thread computes PER_THREAD x PER_THREAD entries of C
PADDED_TILE = TILE + 1          # the A tile's rows, one longer to spread them over memory banks
A_ROWS_PER_PASS = SIDE * SIDE // TILE_K   # 16 rows of the A tile loaded by all threads at once
B_DEPTHS_PER_PASS = SIDE * SIDE // TILE   # 4 rows (values of k) of the B tile at once
TARGET_BLOCKS = 512             # split k until there are about this many blocks...
MIN_K_PER_SPLIT = 256           # ...but leave each part at least this much of k
MAX_GRID_Z = 65535              # the most blocks along z, CUDA's limit

# A: a flat array and a map (z, i, k, geo) -> offset or -1.
RowOperand = namedtuple("RowOperand", "array at geo")
# B: a flat array, (z, j, geo) -> column info, and (column info, k, geo) -> offset or -1.
ColumnOperand = namedtuple("ColumnOperand", "array column at geo")


# ------------------------------------------------------------ strided maps

@cuda.jit(device=True)
def strided_at(z, i, k, geo):
    """A[z, i, k] of a strided array: geo = (offset, z stride, i stride, k stride)."""
    offset, z_stride, i_stride, k_stride = geo
    return offset + z * z_stride + i * i_stride + k * k_stride


@cuda.jit(device=True)
def strided_column(z, j, geo):
    """Where column j of B[z] starts: geo = (offset, z stride, k stride, j stride)."""
    offset, z_stride, _, j_stride = geo
    return offset + z * z_stride + j * j_stride


@cuda.jit(device=True)
def strided_column_at(column, k, geo):
    """B[z, k, j], given where its column starts."""
    return column + k * geo[2]


def strided_rows(view):
    """A as a RowOperand, from a View of shape (n_batch or 1, rows, k) (stride 0 broadcasts)."""
    return RowOperand(view.buffer, strided_at, (view.offset,) + _batch_strides(view))


def strided_columns(view):
    """B as a ColumnOperand, from a View of shape (n_batch or 1, k, columns)."""
    return ColumnOperand(view.buffer, strided_column, strided_column_at,
                         (view.offset,) + _batch_strides(view))


def _batch_strides(view):
    """The View's strides, with stride 0 on a batch axis of size 1 (it is shared)."""
    z_stride = 0 if view.shape[0] == 1 else view.strides[0]
    return (z_stride,) + tuple(view.strides[1:])


# -------------------------------------------------------------- host tier

def product(a, b, n_batch, rows, columns, k_size, dtype):
    """C[z, i, j] = sum_k A[z, i, k] B[z, k, j] as a new (n_batch, rows, columns) device array.

    `a` is a RowOperand, `b` a ColumnOperand, both of `dtype`.
    """
    dtype = np.dtype(dtype)
    if n_batch > MAX_GRID_Z:
        raise ValueError(f"a batch of {n_batch} products is more than CUDA's {MAX_GRID_Z} blocks")
    if not (n_batch and rows and columns):
        return empty((n_batch, rows, columns), dtype)
    grid_x, grid_y = -(-columns // TILE), -(-rows // TILE)
    k_per_split = _k_per_split(grid_x * grid_y * n_batch, k_size, n_batch)
    n_splits = max(1, -(-k_size // k_per_split))
    parts = empty((n_splits, n_batch, rows, columns), dtype)
    kernel = _product_kernel(a.at, b.column, b.at, dtype)
    kernel[(grid_x, grid_y, n_splits * n_batch), (SIDE, SIDE)](
        parts, a.array, a.geo, b.array, b.geo, k_size, k_per_split)
    if n_splits == 1:
        return parts.reshape(n_batch, rows, columns)  # (1, B, M, N) -> (B, M, N)
    total = reduce("sum", view_of(parts), (0,), dtype)  # (S, B, M, N) -> (B, M, N)
    return total.buffer.reshape(n_batch, rows, columns)


def _k_per_split(n_blocks, k_size, n_batch):
    """How much of k each part sums: all of it, unless splitting brings more blocks to work."""
    wanted = min(-(-TARGET_BLOCKS // n_blocks), -(-k_size // MIN_K_PER_SPLIT),
                 MAX_GRID_Z // n_batch)
    per_split = -(-k_size // max(wanted, 1))
    return max(TILE_K, -(-per_split // TILE_K) * TILE_K)   # a whole number of k steps


# ---------------------------------------------------------------- the kernel

@functools.cache
def _product_kernel(a_at, b_column, b_at, dtype):
    """The tiled product for these index maps and this dtype, compiled on first use.

    One kernel per dtype because shared and local arrays need their element
    type when the kernel is compiled.
    """
    element = numba.from_dtype(dtype)
    zero = dtype.type(0)

    @cuda.jit
    def tiled_product(c, a, a_geo, b, b_geo, k_size, k_per_split):
        """Thread (tx, ty) of block (bx, by, bz) computes, for z = bz mod n_batch and
        part = bz div n_batch, the sums over part's range of k of
        c[part, z, by*64 + ty + 16 r, bx*64 + tx + 16 s], r, s = 0 ... 3."""
        a_tile = cuda.shared.array((TILE_K, PADDED_TILE), element)  # A[z, i, k] at a_tile[k, i]
        b_tile = cuda.shared.array((TILE_K, TILE), element)      # B[z, k, j] at b_tile[k, j]
        sums = cuda.local.array((PER_THREAD, PER_THREAD), element)
        a_column = cuda.local.array(PER_THREAD, element)
        b_row = cuda.local.array(PER_THREAD, element)
        n_batch, rows, columns = c.shape[1], c.shape[2], c.shape[3]
        part, z = divmod(cuda.blockIdx.z, n_batch)
        first_row, first_column = cuda.blockIdx.y * TILE, cuda.blockIdx.x * TILE
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        thread = ty * SIDE + tx
        # the tile entries this thread copies: A at depth thread % 16 of rows
        # thread // 16 + 16 l; B in column thread % 64 at depths thread // 64 + 4 l
        a_depth, b_j = thread % TILE_K, first_column + thread % TILE
        column = b_column(z, min(b_j, columns - 1), b_geo)
        for r in range(PER_THREAD):
            for s in range(PER_THREAD):
                sums[r, s] = zero
        k_start = part * k_per_split
        k_stop = min(k_size, k_start + k_per_split)
        for k0 in range(k_start, k_stop, TILE_K):
            for pass_ in range(TILE // A_ROWS_PER_PASS):
                i_tile = thread // TILE_K + pass_ * A_ROWS_PER_PASS
                i, k = first_row + i_tile, k0 + a_depth
                offset = a_at(z, i, k, a_geo) if i < rows and k < k_stop else -1
                a_tile[a_depth, i_tile] = a[offset] if offset >= 0 else zero
            for pass_ in range(TILE_K // B_DEPTHS_PER_PASS):
                k_tile = thread // TILE + pass_ * B_DEPTHS_PER_PASS
                k = k0 + k_tile
                offset = b_at(column, k, b_geo) if b_j < columns and k < k_stop else -1
                b_tile[k_tile, thread % TILE] = b[offset] if offset >= 0 else zero
            cuda.syncthreads()
            for k_tile in range(TILE_K):
                for r in range(PER_THREAD):
                    a_column[r] = a_tile[k_tile, ty + r * SIDE]
                    b_row[r] = b_tile[k_tile, tx + r * SIDE]
                for r in range(PER_THREAD):
                    for s in range(PER_THREAD):
                        sums[r, s] += a_column[r] * b_row[s]
            cuda.syncthreads()
        for r in range(PER_THREAD):
            for s in range(PER_THREAD):
                i, j = first_row + ty + r * SIDE, first_column + tx + s * SIDE
                if i < rows and j < columns:
                    c[part, z, i, j] = sums[r, s]

    return tiled_product
