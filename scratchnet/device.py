"""Where a tensor's numbers live: "cpu" (a NumPy array) or "cuda" (a CudaArray in GPU memory).

On the CPU a Tensor's `.data` is a NumPy array. On the GPU it is a CudaArray:
an array in GPU memory that takes part in NumPy's two dispatch protocols.
When an op in scratchnet.functional calls `np.exp(x)`, `x * y`, `x.sum(axis)`
or `np.where(m, x, 0)` on CudaArrays, NumPy hands the call to the CudaArray
(`__array_ufunc__` for ufuncs and operators, `__array_function__` for
functions like np.where and np.broadcast_to), which runs a CUDA kernel from
kernels.cuda and returns a CudaArray. So every op is written once, with
NumPy, and the CPU code is what runs on the CPU, unchanged. The ops backed
by kernels (convolution, pooling, Gram matrix, triplet loss) pick their
kernels with `kernels_for(x)`: the `kernels` package for NumPy arrays,
kernels.cuda for CudaArrays.

A CudaArray is, like a NumPy array, a flat buffer plus an offset, a shape and
strides (kernels/cuda/_device.py: View). Slices, transposes, reshapes of
contiguous arrays and broadcasts are views of the same buffer; everything
else makes a new contiguous array. What it does not support (boolean masks,
most of NumPy's functions) raises a TypeError that names the function.

Moving between devices is explicit: `to_device(array, "cuda")` copies to the
GPU, `to_device(array, "cpu")` back; np.asarray of a CudaArray is an error,
so that no copy happens unnoticed. An op whose tensors are on different
devices raises a ValueError naming both (`common_device`); constants (Python
numbers, and NumPy arrays meeting a tensor in arithmetic) follow the tensor.

The "cuda" device needs an NVIDIA GPU and the numba-cuda package
(`pip install scratchnet[gpu]`); Numba's CUDA simulator, switched on by the
environment variable NUMBA_ENABLE_CUDASIM=1 before Python starts, stands in
for the GPU (slowly) on machines without one.
"""

import functools
import math
import operator
from types import SimpleNamespace

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

import kernels

DEVICES = ("cpu", "cuda")


# ------------------------------------------------------- devices and moving

def check_device(device):
    """`device` if it names a device, else a ValueError."""
    if device not in DEVICES:
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return device


def device_of(array):
    """"cuda" for a CudaArray, "cpu" for anything else (NumPy arrays, numbers)."""
    return "cuda" if isinstance(array, CudaArray) else "cpu"


def to_device(array, device):
    """`array` on `device`: itself when it is there already, else a copy."""
    if device_of(array) == check_device(device):
        return array
    if device == "cuda":
        return CudaArray.from_host(array)
    return array.get()


def shares_memory(a, b):
    """True when the arrays a and b may hold the same memory (one a view of the other)."""
    if device_of(a) != device_of(b):
        return False
    if isinstance(a, CudaArray):
        return a.view.buffer is b.view.buffer
    return np.may_share_memory(a, b)


def common_device(op_name, arrays):
    """The one device all `arrays` are on, or a ValueError naming the op and both devices."""
    devices = [device_of(a) for a in arrays]
    for position, device in enumerate(devices):
        if device != devices[0]:
            raise ValueError(
                f"{op_name}: all tensors must be on one device, got input 0 on "
                f"{devices[0]!r} and input {position} on {device!r}; move one with "
                f".to({devices[0]!r}) or .to({device!r})"
            )
    return devices[0] if devices else "cpu"


def kernels_for(array):
    """The kernels for the device `array` is on: `kernels`, or kernels.cuda for CudaArrays.

    The one place where an op chooses its kernels: `kernels_for(x).gram(x)`
    runs on the CPU or on the GPU, with the same arguments and results.
    """
    return kernels if device_of(array) == "cpu" else CUDA_KERNELS


@functools.cache
def _gpu():
    """kernels.cuda's modules, imported on first use.

    Importing numba.cuda takes about a second and needs numba-cuda, so it
    happens only when something is put on the "cuda" device.
    """
    try:
        from numba import cuda
    except ImportError as error:
        raise RuntimeError(
            "the 'cuda' device needs the numba-cuda package: pip install 'scratchnet[gpu]'"
        ) from error
    if not cuda.is_available():
        raise RuntimeError(
            "the 'cuda' device needs an NVIDIA GPU, and numba.cuda finds none; without one, "
            "set NUMBA_ENABLE_CUDASIM=1 before starting Python to use Numba's CUDA simulator"
        )
    import kernels.cuda
    from kernels.cuda import _device, elementwise, product, reduce

    return SimpleNamespace(cuda=cuda, kernels=kernels.cuda, device=_device,
                           elementwise=elementwise, product=product, reduce=reduce)


class _CudaKernels:
    """kernels.cuda with CudaArrays in and out (the kernels themselves take numba device arrays)."""

    def __getattr__(self, name):
        kernel = getattr(_gpu().kernels, name)

        @functools.wraps(kernel)
        def on_cuda_arrays(*args, **kwargs):
            args = [_to_numba(a) for a in args]
            kwargs = {key: _to_numba(value) for key, value in kwargs.items()}
            return _from_numba(kernel(*args, **kwargs))

        return on_cuda_arrays


CUDA_KERNELS = _CudaKernels()


def _to_numba(value):
    return value.contiguous().numba_array() if isinstance(value, CudaArray) else value


def _from_numba(value):
    if isinstance(value, tuple):
        return tuple(_from_numba(v) for v in value)
    if _gpu().cuda.devicearray.is_cuda_ndarray(value):
        return CudaArray.wrap(value)
    return value


# ----------------------------------------------------------------- CudaArray

class CudaArray(NDArrayOperatorsMixin):
    """An n-dimensional array in GPU memory that NumPy's functions and operators accept.

    Make one with `to_device(array, "cuda")`; get a NumPy copy back with
    `.get()`. The operators (+, *, <, &=, @ ...) come from NumPy's
    NDArrayOperatorsMixin, which turns them into ufunc calls, which
    `__array_ufunc__` runs on the GPU.
    """

    def __init__(self, view):
        self.view = view                # a kernels.cuda View: buffer, offset, shape, strides

    # ------------------------------------------------------------ making
    @classmethod
    def from_host(cls, array):
        """A copy of a NumPy array (or anything np.asarray takes) on the GPU."""
        array = np.asarray(array, order="C")
        buffer = _gpu().cuda.to_device(array.reshape(-1))   # (*shape) -> (size,)
        device = _gpu().device
        return cls(device.View(buffer, 0, array.shape, device.c_strides(array.shape)))

    @classmethod
    def wrap(cls, numba_array):
        """A CudaArray sharing the memory of a C-contiguous numba device array."""
        return cls(_gpu().device.view_of(numba_array))

    @classmethod
    def empty(cls, shape, dtype):
        return cls(_gpu().device.new_view(tuple(shape), dtype))

    @classmethod
    def full(cls, shape, value, dtype):
        out = cls.empty(shape, dtype)
        out[...] = value
        return out

    # ------------------------------------------------------------- facts
    device = "cuda"
    shape = property(lambda self: self.view.shape)
    dtype = property(lambda self: self.view.buffer.dtype)
    ndim = property(lambda self: len(self.view.shape))
    size = property(lambda self: math.prod(self.view.shape))
    itemsize = property(lambda self: self.dtype.itemsize)
    nbytes = property(lambda self: self.size * self.dtype.itemsize)
    T = property(lambda self: self.transpose())

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        return f"CudaArray({np.array2string(self.get(), separator=', ')}, dtype={self.dtype})"

    # ------------------------------------------------------ back to the host
    def get(self):
        """A NumPy copy of the array."""
        if not self.size:
            return np.empty(self.shape, self.dtype)
        view = self.contiguous().view
        entries = view.buffer[view.offset:view.offset + self.size]   # a 1-D view, on the device
        return entries.copy_to_host().reshape(self.shape)            # (size,) -> shape, on the host

    def item(self):
        """The value of a one-entry array as a Python number."""
        if self.size != 1:
            raise ValueError(f"item() needs an array with one entry, got shape {self.shape}")
        return self.get().item()

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "a CudaArray is not converted to a NumPy array implicitly; call .get() for a copy "
            "on the host (Tensor: .cpu() or .to('cpu'))"
        )

    def __bool__(self):
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    # --------------------------------------------------------- contiguity
    def is_contiguous(self):
        return _gpu().device.is_contiguous(self.view)

    def contiguous(self):
        """Itself if its entries lie in C order in one stretch of memory, else a copy that does."""
        return self if self.is_contiguous() else self.copy()

    def numba_array(self):
        """A contiguous CudaArray as a numba device array of its shape (no copy)."""
        return _gpu().device.as_array(self.view)

    def copy(self):
        return self.astype(self.dtype, copy=True)

    def astype(self, dtype, copy=True):
        dtype = np.dtype(dtype)
        if dtype == self.dtype and not copy:
            return self
        out = CudaArray.empty(self.shape, dtype)
        _gpu().elementwise.map_unary("copy", out.view, self.view, dtype)
        return out

    # -------------------------------------------------------------- views
    def _with(self, offset, shape, strides):
        return CudaArray(self.view._replace(offset=offset, shape=tuple(shape),
                                            strides=tuple(strides)))

    def reshape(self, *shape):
        """The same entries in a new shape: a view when contiguous, else a copy first."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        shape = _resolve_shape(shape, self.size)
        base = self.contiguous()
        return base._with(base.view.offset, shape, _gpu().device.c_strides(shape))

    def ravel(self):
        return self.reshape(-1)

    def transpose(self, *axes):
        """Axes reordered (all reversed by default), as a view."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = axes[0]
        axes = tuple(reversed(range(self.ndim))) if not axes else tuple(a % self.ndim for a in axes)
        if sorted(axes) != list(range(self.ndim)):
            raise ValueError(f"axes must be a permutation of range({self.ndim}), got {axes}")
        return self._with(self.view.offset, [self.shape[a] for a in axes],
                          [self.view.strides[a] for a in axes])

    def swapaxes(self, axis1, axis2):
        axes = list(range(self.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return self.transpose(axes)

    def __getitem__(self, index):
        integer_index = _integer_array_index(index, self.ndim)
        if integer_index is None:
            return self._with(*_basic_index(self.view, index))
        axis, positions = integer_index
        positions = _device_positions(positions, self.shape[axis], axis)
        out = CudaArray.empty(self.shape[:axis] + positions.shape + self.shape[axis + 1:],
                              self.dtype)
        _gpu().elementwise.take(out.view, self.view, positions.numba_array(), axis)
        return out

    def __setitem__(self, index, value):
        """Copy `value` (a CudaArray or a number, broadcast) into self[index] (basic index)."""
        if _integer_array_index(index, self.ndim) is not None:
            raise TypeError("assigning through an integer-array index is not supported on the "
                            "cuda device; use np.add.at")
        target = self._with(*_basic_index(self.view, index))
        source = _operand(value, self.dtype)
        _gpu().elementwise.map_unary(
            "copy", target.view, _broadcast(source, target.shape), self.dtype)

    # ---------------------------------------------------------- reductions
    def sum(self, axis=None, keepdims=False, dtype=None):
        accumulate = dtype or (self.dtype if np.issubdtype(self.dtype, np.floating) else np.int64)
        return self._reduce("sum", axis, keepdims, accumulate)

    def mean(self, axis=None, keepdims=False):
        floating = self.dtype if np.issubdtype(self.dtype, np.floating) else np.float64
        total = self.astype(floating, copy=False).sum(axis=axis, keepdims=keepdims)
        count = self.size // max(total.size, 1) if self.size else 0
        return total / np.asarray(count, dtype=floating)

    def var(self, axis=None, keepdims=False):
        """The mean squared deviation from the mean (NumPy's ddof=0), computed in two passes."""
        deviations = self - self.mean(axis=axis, keepdims=True)
        return (deviations * deviations).mean(axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return self._reduce("max", axis, keepdims, self.dtype)

    def min(self, axis=None, keepdims=False):
        return self._reduce("min", axis, keepdims, self.dtype)

    def all(self, axis=None, keepdims=False):
        return self.astype(bool, copy=False)._reduce("min", axis, keepdims, np.bool_)

    def any(self, axis=None, keepdims=False):
        return self.astype(bool, copy=False)._reduce("max", axis, keepdims, np.bool_)

    def _reduce(self, name, axis, keepdims, dtype):
        axes = _normalize_axes(axis, self.ndim)
        if name != "sum" and any(self.shape[a] == 0 for a in axes):
            raise ValueError(f"zero-size array to reduction operation {name}, which has no "
                             "identity")
        result = CudaArray(_gpu().reduce.reduce(name, self.view, axes, dtype))
        if keepdims:
            kept = [1 if a in axes else n for a, n in enumerate(self.shape)]
            result = result.reshape(kept)
        return result

    # ---------------------------------------------------------- protocols
    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        name = ufunc.__name__
        if method == "at" and ufunc is np.add:
            return _add_at(*inputs)
        if name == "matmul" and method == "__call__" and out is None and not kwargs:
            return _matmul(*inputs)
        elementwise = _gpu().elementwise
        arity = 1 if name in elementwise.UNARY else 2 if name in elementwise.BINARY else 0
        if method != "__call__" or kwargs or arity != len(inputs):
            raise TypeError(f"np.{name} (method {method!r}, options {sorted(kwargs)}) is not "
                            "supported for arrays on the cuda device")
        in_dtypes = tuple(_dtype_for_resolution(x) for x in inputs)
        *loop_dtypes, out_dtype = ufunc.resolve_dtypes(in_dtypes + (None,))
        operands = [_operand(x, dtype) for x, dtype in zip(inputs, loop_dtypes)]
        shape = np.broadcast_shapes(*(o.shape for o in operands))
        result = CudaArray.empty(shape, out_dtype) if out is None else _check_out(out, shape)
        target = _unaliased(result, operands)
        views = [_broadcast(o, shape) for o in operands]
        if arity == 1:
            elementwise.map_unary(name, target.view, *views, loop_dtypes[0])
        else:
            elementwise.map_binary(name, target.view, *views, loop_dtypes[0])
        if target is not result:
            result[...] = target
        return result

    def __array_function__(self, func, types, args, kwargs):
        implementation = _FUNCTIONS.get(func)
        if implementation is None:
            raise TypeError(f"np.{func.__name__} is not supported for arrays on the cuda device")
        return implementation(*args, **kwargs)


# ---------------------------------------------------------- NumPy functions

_FUNCTIONS = {}


def _implements(*np_functions):
    """Register the function below as the CudaArray version of `np_functions`."""
    def register(implementation):
        for np_function in np_functions:
            _FUNCTIONS[np_function] = implementation
        return implementation

    return register


@_implements(np.where)
def _where(condition, x, y):
    dtype = np.result_type(_dtype_or_number(x), _dtype_or_number(y))
    operands = [_operand(condition, np.bool_), _operand(x, dtype), _operand(y, dtype)]
    shape = np.broadcast_shapes(*(o.shape for o in operands))
    out = CudaArray.empty(shape, dtype)
    _gpu().elementwise.map_where(out.view, *(_broadcast(o, shape) for o in operands), dtype)
    return out


@_implements(np.sum)
def _sum(a, axis=None, dtype=None, keepdims=False):
    return a.sum(axis=axis, keepdims=keepdims, dtype=dtype)


# These take (a, axis=None, keepdims=False), the arguments of CudaArray's
# methods of the same name, which therefore implement them as they are.
_implements(np.mean)(CudaArray.mean)
_implements(np.var)(CudaArray.var)
_implements(np.max, np.amax)(CudaArray.max)
_implements(np.min, np.amin)(CudaArray.min)
_implements(np.all)(CudaArray.all)
_implements(np.any)(CudaArray.any)


@_implements(np.clip)
def _clip(a, a_min=None, a_max=None, out=None):
    result = a if a_min is None else np.maximum(a, a_min, out=out)
    return result if a_max is None else np.minimum(result, a_max, out=out)


@_implements(np.broadcast_to)
def _broadcast_to(array, shape):
    """A view of `array` as `shape`, the repeated entries read through stride 0."""
    shape = tuple(shape)
    np.broadcast_shapes(array.shape, shape)            # raises when the shapes do not fit
    return CudaArray(_gpu().device.broadcast_view(array.view, shape))


@_implements(np.expand_dims)
def _expand_dims(a, axis):
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    ndim = a.ndim + len(axes)
    axes = {int(x) % ndim for x in axes}
    shape, source = iter(a.shape), iter(a.view.strides)
    new_shape = [1 if i in axes else next(shape) for i in range(ndim)]
    strides = [0 if i in axes else next(source) for i in range(ndim)]
    return a._with(a.view.offset, new_shape, strides)


@_implements(np.squeeze)
def _squeeze(a, axis=None):
    axes = _normalize_axes(axis, a.ndim) if axis is not None else tuple(
        i for i, n in enumerate(a.shape) if n == 1)
    if any(a.shape[i] != 1 for i in axes):
        raise ValueError(f"cannot squeeze axes {axes} of shape {a.shape}: not all of size 1")
    kept = [i for i in range(a.ndim) if i not in axes]
    return a._with(a.view.offset, [a.shape[i] for i in kept], [a.view.strides[i] for i in kept])


@_implements(np.reshape)
def _reshape(a, shape):
    return a.reshape(shape)


@_implements(np.transpose)
def _transpose(a, axes=None):
    return a.transpose(() if axes is None else axes)


@_implements(np.swapaxes)
def _swapaxes(a, axis1, axis2):
    return a.swapaxes(axis1, axis2)


@_implements(np.moveaxis)
def _moveaxis(a, source, destination):
    order = [i for i in range(a.ndim) if i != source % a.ndim]
    order.insert(destination % a.ndim, source % a.ndim)
    return a.transpose(order)


def _filled_like(value):
    """np.zeros_like (value 0) or np.ones_like (value 1) for CudaArrays."""
    def like(a, dtype=None, shape=None):
        return CudaArray.full(a.shape if shape is None else shape, value, dtype or a.dtype)

    return like


_FUNCTIONS[np.zeros_like] = _FUNCTIONS[np.empty_like] = _filled_like(0)
_FUNCTIONS[np.ones_like] = _filled_like(1)


@_implements(np.full_like)
def _full_like(a, fill_value, dtype=None, shape=None):
    return CudaArray.full(a.shape if shape is None else shape, fill_value, dtype or a.dtype)


@_implements(np.copyto)
def _copyto(dst, src, casting="same_kind"):
    """Copy `src` (a CudaArray, NumPy array or number) into the CudaArray dst."""
    if not np.can_cast(_dtype_or_number(src), dst.dtype, casting=casting):
        raise TypeError(f"cannot copy {_dtype_or_number(src)} into {dst.dtype} with "
                        f"casting={casting!r}")
    if device_of(src) == "cpu" and np.ndim(src):
        src = CudaArray.from_host(np.asarray(src))
    dst[...] = src


@_implements(np.concatenate)
def _concatenate(arrays, axis=0):
    common_device("np.concatenate", arrays)
    axis = axis % arrays[0].ndim
    shape = list(arrays[0].shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    out = CudaArray.empty(shape, np.result_type(*(a.dtype for a in arrays)))
    start = 0
    for a in arrays:
        index = (slice(None),) * axis + (slice(start, start + a.shape[axis]),)
        out[index] = a
        start += a.shape[axis]
    return out


@_implements(np.stack)
def _stack(arrays, axis=0):
    return _concatenate([np.expand_dims(a, axis) for a in arrays], axis=axis)


@_implements(np.split)
def _split(a, indices_or_sections, axis=0):
    if isinstance(indices_or_sections, (int, np.integer)):
        step = a.shape[axis] // indices_or_sections
        bounds = [step * i for i in range(1, indices_or_sections)]
    else:
        bounds = [int(i) for i in indices_or_sections]
    edges = [0] + bounds + [a.shape[axis]]
    return [a[(slice(None),) * (axis % a.ndim) + (slice(lo, hi),)]
            for lo, hi in zip(edges[:-1], edges[1:])]


@_implements(np.pad)
def _pad(array, pad_width, mode="constant", constant_values=0):
    if mode != "constant":
        raise TypeError(f"np.pad supports mode='constant' only on the cuda device, got {mode!r}")
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (array.ndim, 2))
    shape = [n + lo + hi for n, (lo, hi) in zip(array.shape, widths)]
    out = CudaArray.full(shape, constant_values, array.dtype)
    out[tuple(slice(lo, lo + n) for n, (lo, _) in zip(array.shape, widths))] = array
    return out


@_implements(np.result_type)
def _result_type(*arrays_and_dtypes):
    return np.result_type(*(a.dtype if isinstance(a, CudaArray) else a
                            for a in arrays_and_dtypes))


@_implements(np.shape)
def _shape(a):
    return a.shape


@_implements(np.ndim)
def _ndim(a):
    return a.ndim


@_implements(np.size)
def _size(a, axis=None):
    return a.size if axis is None else a.shape[axis]


@_implements(np.dot)
def _dot(a, b):
    if a.ndim > 2 or b.ndim > 2:
        raise TypeError("np.dot of arrays with more than 2 dimensions is not supported on the "
                        "cuda device; use np.matmul")
    return _matmul(a, b)


# ------------------------------------------------------------------ helpers

def _resolve_shape(shape, size):
    """A reshape target with at most one -1, checked against `size`."""
    shape = [int(n) for n in shape]
    if shape.count(-1) > 1:
        raise ValueError(f"can only specify one unknown dimension, got {tuple(shape)}")
    if -1 in shape:
        known = math.prod(n for n in shape if n != -1)
        shape[shape.index(-1)] = size // known if known else 0
    if math.prod(shape) != size:
        raise ValueError(f"cannot reshape an array of size {size} into shape {tuple(shape)}")
    return tuple(shape)


def _normalize_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for an array with {ndim} dimensions")
    return tuple(sorted({int(a) % ndim for a in axes}))


def _dtype_for_resolution(value):
    """What ufunc.resolve_dtypes wants: a dtype, or the Python type of a plain number.

    Python numbers are 'weak' (NEP 50): float32 * 0.5 stays float32.
    """
    if isinstance(value, (CudaArray, np.ndarray, np.generic)):
        return value.dtype
    if isinstance(value, bool):
        return np.dtype(bool)
    if isinstance(value, (int, float, complex)):
        return type(value)
    raise TypeError(f"expected an array or a number, got {type(value).__name__}")


def _dtype_or_number(value):
    """What np.result_type wants: a dtype, or the number itself (weak, as in NumPy)."""
    return value.dtype if isinstance(value, (CudaArray, np.ndarray, np.generic)) else value


def _operand(value, dtype):
    """A CudaArray operand: CudaArrays pass, numbers and 0-d NumPy arrays become constants."""
    if isinstance(value, CudaArray):
        return value
    if np.ndim(value):
        raise ValueError(
            f"an array on 'cpu' (shape {np.shape(value)}) met an array on 'cuda'; move it "
            "with to_device(array, 'cuda') (Tensor: .to('cuda'))"
        )
    return _constant(np.asarray(value).item(), np.dtype(dtype).str)


@functools.lru_cache(maxsize=256)
def _constant(value, dtype):
    """A number as a 0-d CudaArray, copied to the GPU once per (value, dtype)."""
    return CudaArray.from_host(np.asarray(value, dtype=dtype))


def _broadcast(array, shape):
    return _gpu().device.broadcast_view(array.view, tuple(shape))


def _check_out(out, shape):
    (target,) = out
    if not isinstance(target, CudaArray) or target.shape != shape:
        raise ValueError(f"out must be a CudaArray of shape {shape}, got {target!r}")
    return target


def _unaliased(result, operands):
    """Where to write: `result`, or a fresh array when an operand reads result's memory
    through other strides (x += x.T), since threads would then overwrite what others read."""
    for operand in operands:
        if shares_memory(operand, result) and operand.view[1:] != result.view[1:]:
            return CudaArray.empty(result.shape, result.dtype)
    return result


def _basic_index(view, index):
    """(offset, shape, strides) of view[index] for ints, slices, None and Ellipsis."""
    parts = index if isinstance(index, tuple) else (index,)
    n_indexing = sum(p is not None and p is not Ellipsis for p in parts)
    if n_indexing > len(view.shape):
        raise IndexError(f"too many indices for an array with {len(view.shape)} dimensions")
    expanded = []
    for part in parts:
        if part is Ellipsis:
            expanded.extend([slice(None)] * (len(view.shape) - n_indexing))
        else:
            expanded.append(part)
    expanded.extend([slice(None)] * (len(view.shape) + expanded.count(None) - len(expanded)))
    offset, shape, strides, axis = view.offset, [], [], 0
    for part in expanded:
        if part is None:                                  # a new axis of size 1
            shape.append(1)
            strides.append(0)
            continue
        size, stride = view.shape[axis], view.strides[axis]
        axis += 1
        if isinstance(part, slice):
            start, stop, step = part.indices(size)
            shape.append(len(range(start, stop, step)))
            strides.append(step * stride)
            offset += start * stride
        else:
            i = operator.index(part)
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of bounds for axis {axis - 1} with size {size}")
            offset += (i % size) * stride
    return offset, shape, strides


def _integer_array_index(index, ndim):
    """(axis, positions) for an index holding one 1-D integer array and full slices, else None."""
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [a for a, part in enumerate(parts) if isinstance(part, (np.ndarray, CudaArray, list))]
    if not arrays:
        return None
    axis = arrays[0]
    positions = np.asarray(parts[axis]) if isinstance(parts[axis], list) else parts[axis]
    if (len(arrays) > 1 or any(part != slice(None) for part in parts[:axis] + parts[axis + 1:])
            or positions.ndim != 1 or not np.issubdtype(positions.dtype, np.integer)):
        raise TypeError(
            "on the cuda device an array index must be one 1-D integer array, with full "
            f"slices (:) before it, got {index!r}"
        )
    return axis, positions


def _device_positions(positions, size, axis):
    """Integer positions as an int64 CudaArray, after checking they lie in [-size, size)."""
    low, high = (int(positions.min()), int(positions.max())) if positions.size else (0, 0)
    if not (-size <= low and high < size):
        bad = high if high >= size else low
        raise IndexError(f"index {bad} is out of bounds for axis {axis} with size {size}")
    return to_device(positions, "cuda").astype(np.int64, copy=False)


def _add_at(target, index, values):
    """np.add.at(target, index, values) for one integer array index: repeated positions add up."""
    integer_index = _integer_array_index(index, target.ndim)
    if integer_index is None:
        raise TypeError("np.add.at on the cuda device needs an integer array index")
    axis, positions = integer_index
    positions = _device_positions(positions, target.shape[axis], axis)
    shape = target.shape[:axis] + positions.shape + target.shape[axis + 1:]
    values = _operand(values, target.dtype).astype(target.dtype, copy=False)
    _gpu().elementwise.add_at(target.view, positions.numba_array(), axis,
                              _broadcast(values, shape))


def _matmul(a, b):
    """a @ b by NumPy's rules (batched over leading axes, 1-D operands allowed): tiled products."""
    common_device("np.matmul", (a, b))
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul needs operands with at least 1 dimension")
    dtype = np.result_type(a.dtype, b.dtype)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"matmul on the cuda device needs floats, got {a.dtype} and {b.dtype}")
    left = a.astype(dtype, copy=False)[None, :] if a.ndim == 1 else a.astype(dtype, copy=False)
    right = b.astype(dtype, copy=False)[:, None] if b.ndim == 1 else b.astype(dtype, copy=False)
    (rows, depth), (depth_b, columns) = left.shape[-2:], right.shape[-2:]
    if depth != depth_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not fit "
                         f"({depth} != {depth_b})")
    batch = np.broadcast_shapes(left.shape[:-2], right.shape[:-2])
    n_batch = math.prod(batch)
    product = _gpu().product
    out = product.product(
        product.strided_rows(_batched_view(left, batch, n_batch)),
        product.strided_columns(_batched_view(right, batch, n_batch)),
        n_batch, rows, columns, depth, dtype)                    # (n_batch, rows, columns)
    result = CudaArray.wrap(out).reshape(batch + (rows, columns))
    if b.ndim == 1:
        result = result[..., 0]                                  # (..., rows, 1) -> (..., rows)
    if a.ndim == 1:
        result = result[..., 0, :] if b.ndim != 1 else result[..., 0]
    return result


def _batched_view(matrix, batch, n_batch):
    """A (..., m, n) operand as a View (n_batch or 1, m, n) with one stride for the batch axis."""
    if not matrix.shape[:-2]:
        view = matrix.view
        return view._replace(shape=(1,) + view.shape, strides=(0,) + view.strides)
    stretched = CudaArray(_gpu().device.broadcast_view(matrix.view, batch + matrix.shape[-2:]))
    batch_shape, (batch_strides,) = _gpu().elementwise.collapse(
        batch, stretched.view.strides[:-2])
    if len(batch_shape) > 1:                                     # no single batch stride: copy
        stretched = stretched.copy()
        batch_strides = (math.prod(matrix.shape[-2:]),)
    view = stretched.view
    return view._replace(shape=(n_batch,) + view.shape[-2:],
                         strides=(batch_strides[0] if n_batch > 1 else 0,) + view.strides[-2:])
