"""Device arrays: the checks at the boundary, allocation, strided views, launching kernels.

The public tier of every module here calls `check_device_array`, the twin of
kernels._checks.check_float_array, before any kernel runs, so that bad input
fails with a message that names the argument, what was expected and what came.

A View describes an array the way NumPy does inside: a flat buffer of elements
and, for each axis, a size and a stride (counted in elements), so that

    a[i_0, ..., i_k] = buffer[offset + i_0 strides[0] + ... + i_k strides[k]]

A slice, a transpose or a broadcast is a View of the same buffer with another
offset and other strides (a broadcast axis has stride 0). The elementwise and
reduction kernels take Views, so they read any layout without a copy first.
"""

from collections import namedtuple

import numpy as np
from numba import cuda

from .._checks import check_float_dtype_and_ndim

View = namedtuple("View", "buffer offset shape strides")

# Threads per block of the kernels that give each thread one entry: 256 is a
# common choice, 8 warps of 32, enough for the GPU to hide memory latency.
THREADS = 256
WARP = 32


# ------------------------------------------------------ checks and allocation

def check_device_array(name, a, ndim=None):
    """Return `a` as a float32/float64 numba device array, or raise.

    Accepts numba device arrays and anything with __cuda_array_interface__
    (CuPy, PyTorch). Unlike the CPU twin it does not copy non-contiguous
    input: the array must be C-contiguous.
    """
    a = as_device_array(name, a)
    check_float_dtype_and_ndim(name, a, ndim)
    return a


def as_device_array(name, a):
    """`a` as a C-contiguous numba device array of any dtype, or a TypeError/ValueError."""
    if not cuda.devicearray.is_cuda_ndarray(a):
        if not (hasattr(a, "__cuda_array_interface__") and hasattr(cuda, "as_cuda_array")):
            raise TypeError(
                f"{name} must be a CUDA device array (numba.cuda.to_device(array) makes one), "
                f"got {type(a).__name__}"
            )
        a = cuda.as_cuda_array(a)
    if a.size and not a.is_c_contiguous():
        raise ValueError(f"{name} must be C-contiguous on the device, got strides {a.strides}")
    return a


def empty(shape, dtype):
    """An uninitialised C-contiguous device array."""
    return cuda.device_array(tuple(shape), dtype=np.dtype(dtype))


def zeros(shape, dtype):
    """A device array of zeros, filled on the device (nothing is copied from the host)."""
    return full(shape, 0, dtype)


def full(shape, value, dtype):
    """A device array of `value`, filled on the device (nothing is copied from the host)."""
    a = empty(shape, dtype)
    flat = a.reshape(a.size)                      # (*shape) -> (size,), a view
    launch(_fill, a.size, flat, np.dtype(dtype).type(value))
    return a


@cuda.jit(cache=True)
def _fill(out, value):
    """Thread i sets out[i]."""
    i = cuda.grid(1)
    if i < out.size:
        out[i] = value


# ----------------------------------------------------------------- views

def c_strides(shape):
    """Strides in elements of a C-contiguous array: the last axis varies fastest."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def view_of(a):
    """The View of a C-contiguous device array: its flat buffer, offset 0, C strides."""
    return View(a.reshape(a.size), 0, tuple(a.shape), c_strides(a.shape))  # (*shape) -> (size,)


def new_view(shape, dtype):
    """A fresh C-contiguous View (its buffer is uninitialised)."""
    shape = tuple(shape)
    return View(empty((int(np.prod(shape)),), dtype), 0, shape, c_strides(shape))


def is_contiguous(view):
    """True when the View's entries lie in C order at buffer[offset : offset + size]."""
    return all(s == c or n == 1 for n, s, c in zip(view.shape, view.strides, c_strides(view.shape)))


def broadcast_view(view, shape):
    """The View read as `shape` by NumPy's broadcasting rules: new and size-1 axes get stride 0."""
    extra = len(shape) - len(view.shape)
    strides = (0,) * extra + tuple(
        0 if n == 1 and m != 1 else s for n, m, s in zip(view.shape, shape[extra:], view.strides)
    )
    return View(view.buffer, view.offset, tuple(shape), strides)


def as_array(view):
    """A contiguous View as a device array of its shape (a view of the buffer, no copy)."""
    size = int(np.prod(view.shape))
    return view.buffer[view.offset:view.offset + size].reshape(view.shape)  # (size,) -> shape


@cuda.jit(device=True)
def element_offset(i, shape, strides):
    """Offset of entry number i (counting in C order over `shape`) of an array with `strides`."""
    offset = 0
    for axis in range(len(shape) - 1, -1, -1):
        i, index = divmod(i, shape[axis])
        offset += index * strides[axis]
    return offset


@cuda.jit(device=True)
def unravel_3d(i, sizes):
    """(d, h, w) of the flat index i over a (D, H, W) box, the last varying fastest."""
    i, w = divmod(i, sizes[2])
    d, h = divmod(i, sizes[1])
    return d, h, w


# ---------------------------------------------------------------- launching

def launch(kernel, n_threads, *args):
    """Run `kernel` on at least n_threads threads, one per entry of its output.

    Blocks hold THREADS threads, or fewer (a multiple of the warp size) when
    there is less work: a 3-entry output then runs 32 threads, not 256.
    """
    if n_threads == 0:
        return
    per_block = min(THREADS, -(-n_threads // WARP) * WARP)
    kernel[-(-n_threads // per_block), per_block](*args)
