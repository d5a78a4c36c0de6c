"""The rectified linear unit on the GPU: the twin of kernels/activation.py.

    a  = max(z, 0)                  (NaN stays NaN)
    dz = 0 where a <= 0, else da    (the slope read from a, so a may overwrite z)

Thread mapping: one thread per entry, over the arrays' flat (C-order) entries.
"""

from numba import cuda

from .._checks import check_same_dtype, check_same_shape
from ._device import check_device_array, empty, launch


def relu_forward(z, out=None):
    """a = max(z, 0), z's shape and dtype; into `out` (z itself for in place) when given."""
    z = check_device_array("z", z)
    if out is None:
        out = empty(z.shape, z.dtype)
    else:
        out = check_device_array("out", out)
        check_same_dtype(z=z, out=out)
        check_same_shape(z=z, out=out)
    launch(_relu_kernel, z.size, z.reshape(z.size), out.reshape(out.size))
    return out


def relu_backward(da, a):
    """dz = 0 where a <= 0, else da; a is the forward pass's output."""
    da, a = check_device_array("da", da), check_device_array("a", a)
    check_same_dtype(da=da, a=a)
    check_same_shape(da=da, a=a)
    dz = empty(da.shape, da.dtype)
    launch(_relu_gradient_kernel, da.size, da.reshape(da.size), a.reshape(a.size),
           dz.reshape(dz.size))
    return dz


@cuda.jit(cache=True)
def _relu_kernel(z, a):
    """Thread i: a[i] = max(z[i], 0); z < 0 is False for NaN, which is kept."""
    i = cuda.grid(1)
    if i < z.size:
        a[i] = 0 if z[i] < 0 else z[i]


@cuda.jit(cache=True)
def _relu_gradient_kernel(da, a, dz):
    """Thread i: dz[i] = 0 where a[i] <= 0, else da[i]."""
    i = cuda.grid(1)
    if i < da.size:
        dz[i] = 0 if a[i] <= 0 else da[i]
