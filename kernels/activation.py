"""The rectified linear unit, forward and backward.

The course's ReLU, entry by entry, on an array of any shape:

    a  = g(z) = max(z, 0)
    dz = da * g'(z),   g'(z) = 1 where z > 0, else 0

The backward pass reads the slope from a instead of z: a > 0 exactly where
z > 0, so the forward pass may write a over z (in place: `out=z`) and the
backward pass still has what it needs. At z = 0 the slope is taken as 0, as
PyTorch does. A NaN in z stays NaN in a, and passes da on, as in PyTorch:
the slope is 0 where a <= 0, which a NaN is not.

Each function is one pass over the entries, split over the cores. NumPy's
np.maximum(z, 0) with a mask z > 0 for the backward pass, and da * mask,
take two passes on one core; on the face encoder's largest activation the
kernels are two to three and a half times faster (docs/performance.md, *The
face step's other costs*).
"""

import numpy as np
from numba import njit, prange

from ._checks import check_float_array, check_same_dtype, check_same_shape


def relu_forward(z, out=None):
    """a = max(z, 0), z's shape and dtype; into `out` (z itself for in place) when given."""
    z = check_float_array("z", z)
    out = np.empty_like(z) if out is None else _checked_output(out, z)
    _relu(z.reshape(-1), out.reshape(-1))
    return out


def relu_backward(da, a):
    """dz = 0 where a <= 0, else da; a is the forward pass's output."""
    da, a = check_float_array("da", da), check_float_array("a", a)
    check_same_dtype(da=da, a=a)
    check_same_shape(da=da, a=a)
    dz = np.empty_like(da)
    _relu_gradient(da.reshape(-1), a.reshape(-1), dz.reshape(-1))
    return dz


def _checked_output(out, z):
    """`out` if it can take a over z's values (z itself, for in place), else an error."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    check_same_dtype(z=z, out=out)
    check_same_shape(z=z, out=out)
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writeable C-contiguous array, got one that is not")
    return out


@njit(cache=True, parallel=True)
def _relu(z, a):
    """a[i] = max(z[i], 0) over flat arrays; z < 0 is False for NaN, which is kept."""
    for i in prange(z.size):
        a[i] = 0 if z[i] < 0 else z[i]


@njit(cache=True, parallel=True)
def _relu_gradient(da, a, dz):
    """dz[i] = 0 where a[i] <= 0, else da[i], over flat arrays (a NaN passes da[i] on)."""
    for i in prange(da.size):
        dz[i] = 0 if a[i] <= 0 else da[i]
