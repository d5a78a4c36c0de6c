"""Gram matrix ("style matrix") on the GPU, forward and backward: the twin of kernels/gram.py.

With a_flat[n] the activations of image n as a (n_C, P) matrix (P positions),

    G^[l][n] = a_flat[n] a_flat[n]^T              G_{kk'} = sum_p a_{kp} a_{k'p}
    da[n]    = (dG[n] + dG[n]^T) a_flat[n]

Both are one batched tiled product (product.py): block (bx, by) of image n
computes the 64 x 64 tile of G[n] (or of da[n]) at rows by*64.., columns
bx*64.., and thread (tx, ty) its 4 x 4 entries. B = a_flat^T is a_flat read
with its strides swapped, so nothing is transposed in memory. The sum over
P positions is long (2^18 for a 512 x 512 image) and the tiles few (one for
64 channels), so the product splits it into parts (split-k).
"""

import math

from ..gram import _check_gram_gradient
from ._device import View, c_strides, check_device_array, new_view, view_of
from .elementwise import map_binary
from .product import product, strided_columns, strided_rows


def gram(a):
    """G^[l] = a_flat a_flat^T for each image of a batch: (N, n_C, *spatial) -> (N, n_C, n_C)."""
    a = check_device_array("a", a, ndim=(2, 3, 4, 5))
    a_flat = _flat_view(a)                               # (N, C, *spatial) -> (N, C, P)
    n_batch, n_channels, n_positions = a_flat.shape
    transposed = View(a_flat.buffer, 0, (n_batch, n_positions, n_channels),
                      (a_flat.strides[0], 1, n_positions))  # (N, C, P) read as (N, P, C)
    return product(strided_rows(a_flat), strided_columns(transposed), n_batch, n_channels,
                   n_channels, n_positions, a.dtype)


def gram_backward(dG, a):
    """da = (dG + dG^T) a_flat, the gradient of sum(dG * gram(a)); the result has a's shape."""
    a = check_device_array("a", a, ndim=(2, 3, 4, 5))
    a_flat = _flat_view(a)                               # (N, C, *spatial) -> (N, C, P)
    dG = _check_gram_gradient(dG, a, check_device_array)
    n_batch, n_channels, n_positions = a_flat.shape
    dG_view = view_of(dG)
    dG_transposed = View(dG_view.buffer, 0, dG_view.shape,
                         (dG_view.strides[0], 1, n_channels))     # dG^T: strides swapped
    dG_sym = new_view(dG.shape, dG.dtype)
    map_binary("add", dG_sym, dG_view, dG_transposed, dG.dtype)  # (N, C, C), symmetric
    da = product(strided_rows(dG_sym), strided_columns(a_flat), n_batch, n_channels,
                 n_positions, n_channels, a.dtype)                # (N, C, C) @ (N, C, P)
    return da.reshape(a.shape)                                  # (N, C, P) -> (N, C, *spatial)


def _flat_view(a):
    """Activations (N, n_C, *spatial) as a View of shape (N, n_C, P)."""
    n_positions = math.prod(a.shape[2:])                  # 1 when there are no spatial dims
    shape = (a.shape[0], a.shape[1], n_positions)
    return View(a.reshape(a.size), 0, shape, c_strides(shape))
