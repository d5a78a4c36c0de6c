"""Gram matrix ("style matrix") of a layer's activations, forward and backward.

Notation (the course's neural style transfer week):
    a^[l]    activations of layer l, here (N, n_C, *spatial), channels first,
             with 0 to 3 spatial dimensions (n_H, n_W for images)
    P        number of positions, the product of the spatial sizes (n_H n_W)
    G^[l]    the style matrix, (N, n_C, n_C)

The slide defines, for every pair of channels k, k',

    G^[l]_{kk'} = sum_i sum_j a^[l]_{ijk} a^[l]_{ijk'}

unnormalised: the style cost divides by (2 n_H n_W n_C)^2 later. Flattening
the positions of each image to one axis, a_flat[n] of shape (n_C, P), that
sum is a matrix product,

    G[n] = a_flat[n] @ a_flat[n]^T

so the forward pass is exactly one batched BLAS product.

Backward. Each entry a[n, k, p] appears in row k and in column k of G[n]:
dG_{kk'}/da_{kp} = a_{k'p} and dG_{k'k}/da_{kp} = a_{k'p}. Summing over k',

    da[n] = (dG[n] + dG[n]^T) @ a_flat[n]

again one batched matrix product (docs/derivations.md has the details).
"""

import math

import numpy as np

from ._checks import check_float_array, check_same_dtype


def gram(a):
    """G^[l] = a_flat a_flat^T for each image of a batch.

    `a` is (N, n_C, *spatial) with 0 to 3 spatial dimensions, float32 or
    float64; the result is (N, n_C, n_C) in the same dtype.

    >>> import numpy as np
    >>> a = np.array([[[1.0, 2.0], [3.0, 4.0]]])    # N = 1, n_C = 2, P = 2
    >>> gram(a)
    array([[[ 5., 11.],
            [11., 25.]]])
    """
    a_flat = _flat_activations("a", a)                    # (N, C, *spatial) -> (N, C, P)
    return np.matmul(a_flat, a_flat.transpose(0, 2, 1))   # (N, C, P) @ (N, P, C) -> (N, C, C)


def gram_backward(dG, a):
    """da = (dG + dG^T) a_flat, the gradient of sum(dG * gram(a)) with respect to a.

    `dG` is (N, n_C, n_C), `a` the forward input; the result has a's shape.
    """
    a_flat = _flat_activations("a", a)                    # (N, C, *spatial) -> (N, C, P)
    dG = _check_gram_gradient(dG, a)
    dG_sym = dG + dG.transpose(0, 2, 1)                   # (N, C, C), symmetric
    da_flat = np.matmul(dG_sym, a_flat)                   # (N, C, C) @ (N, C, P) -> (N, C, P)
    return da_flat.reshape(a.shape)                       # (N, C, P) -> (N, C, *spatial)


def _check_gram_gradient(dG, a, check_array=check_float_array):
    """Validate dG against the (already validated) activations a; return dG.

    `check_array` validates one array: check_float_array here, its twin for
    device arrays in kernels.cuda.gram, which shares this check.
    """
    dG = check_array("dG", dG, ndim=3)
    check_same_dtype(dG=dG, a=a)
    n_batch, n_channels = a.shape[:2]
    if dG.shape != (n_batch, n_channels, n_channels):
        raise ValueError(
            f"dG must have shape {(n_batch, n_channels, n_channels)} to match a "
            f"of shape {a.shape}, got {dG.shape}"
        )
    return dG


def _flat_activations(name, a):
    """Validate activations and view them as (N, n_C, P)."""
    a = check_float_array(name, a, ndim=(2, 3, 4, 5))
    n_positions = math.prod(a.shape[2:])                  # 1 when there are no spatial dims
    return a.reshape(a.shape[0], a.shape[1], n_positions)  # (N, C, *spatial) -> (N, C, P)
