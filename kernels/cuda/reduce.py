"""Reductions over axes (sum, max, min): one block of threads per output entry.

    out[o] = op over every entry r of the reduced axes of x[o, r]

where o runs over the kept axes. The block for output entry o lets each of
its threads walk every blockDim-th entry of the reduced part, combining into
a value of its own; then the threads combine their values in shared memory
by halving: thread t takes in the value of thread t + 128, then t + 64, ...,
until thread 0 holds the block's result (docs/gpu.md draws it).

A long reduction (more than CHUNK entries per output entry, like the sum of
all 2^24 entries of an activation) is cut into chunks, one block each, so
that the whole GPU works on it; the chunks' results are then reduced again
the same way. The order of the additions differs from NumPy's, so float
sums agree to rounding, not bit for bit.
"""

import functools

import numba
import numpy as np
from numba import cuda

from ._device import View, c_strides, element_offset, new_view
from .elementwise import _maximum, _minimum, _product, collapse

REDUCE_THREADS = 256      # the most threads of a reduction block (a power of 2)
CHUNK = 1 << 14           # the most entries one block reduces


@cuda.jit(device=True)
def _add(x, y):
    return x + y


OPS = {"sum": _add, "max": _maximum, "min": _minimum}


def reduce(name, x, axes, dtype):
    """The `name` ("sum", "max" or "min") of View x over `axes`, accumulated in `dtype`.

    Returns a contiguous View whose shape is x.shape without the reduced
    axes. The caller picks `dtype` by NumPy's rules (the sum of bools is
    int64) and refuses max/min over nothing.
    """
    kept = [a for a in range(len(x.shape)) if a not in axes]
    out_shape = tuple(x.shape[a] for a in kept)
    kept_shape, (kept_strides,) = collapse(out_shape, tuple(x.strides[a] for a in kept))
    reduced_shape, (reduced_strides,) = collapse(
        tuple(x.shape[a] for a in axes), tuple(x.strides[a] for a in axes))
    n_kept, n_reduced = int(np.prod(out_shape)), int(np.prod(reduced_shape))
    dtype = np.dtype(dtype)
    n_chunks = max(1, -(-n_reduced // CHUNK))
    partial = new_view((n_kept, n_chunks), dtype)
    if n_kept:
        threads = min(REDUCE_THREADS, max(32, 1 << (min(n_reduced, CHUNK) - 1).bit_length()))
        kernel = _reduce_kernel(OPS[name], dtype)
        kernel[n_kept * n_chunks, threads](
            partial.buffer.reshape(n_kept, n_chunks), _identity(name, dtype), x.buffer, x.offset,
            kept_shape, kept_strides, reduced_shape, reduced_strides, CHUNK)
    if n_chunks > 1:  # (n_kept, n_chunks) -> (n_kept,): reduce the chunks' results
        partial = reduce(name, partial, (1,), dtype)
    return View(partial.buffer, 0, out_shape, c_strides(out_shape))


def _identity(name, dtype):
    """The value that changes nothing: 0 for a sum, the lowest value for a max."""
    if name == "sum":
        return dtype.type(0)
    if dtype == np.bool_:
        return np.bool_(name == "min")
    if np.issubdtype(dtype, np.floating):
        return dtype.type(-np.inf if name == "max" else np.inf)
    info = np.iinfo(dtype)
    return dtype.type(info.min if name == "max" else info.max)


@functools.cache
def _reduce_kernel(op, dtype):
    element = numba.from_dtype(dtype)
    cast = dtype.type

    @cuda.jit
    def reduce_block(partial, identity, x, x_offset, kept_shape, kept_strides,
                     reduced_shape, reduced_strides, chunk):
        """Block b reduces chunk c = b mod n_chunks of output entry o = b div n_chunks
        into partial[o, c]; thread t combines the chunk's entries t, t + blockDim, ..."""
        values = cuda.shared.array(REDUCE_THREADS, element)
        n_chunks = partial.shape[1]
        entry, part = divmod(cuda.blockIdx.x, n_chunks)
        t = cuda.threadIdx.x
        base = x_offset + element_offset(entry, kept_shape, kept_strides)
        stop = min((part + 1) * chunk, _product(reduced_shape))
        value = cast(identity)
        for r in range(part * chunk + t, stop, cuda.blockDim.x):
            value = op(value, cast(x[base + element_offset(r, reduced_shape, reduced_strides)]))
        values[t] = value
        cuda.syncthreads()
        half = cuda.blockDim.x // 2
        while half > 0:                        # the tree: 128, 64, ..., 1 threads combine
            if t < half:
                values[t] = op(values[t], values[t + half])
            cuda.syncthreads()
            half //= 2
        if t == 0:
            partial[entry, part] = values[0]

    return reduce_block
