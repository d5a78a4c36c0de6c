"""gram_matrix: the style matrix G^[l] of neural style transfer, differentiable.

For activations a^[l] of shape (N, n_C, *spatial) and each image n,

    G^[l]_{kk'} = sum over positions i of a^[l]_{ik} a^[l]_{ik'}     (N, n_C, n_C)

unnormalised, as on the course's slide (the style cost divides later).
Backward, with a_flat the activations as (n_C, positions):

    da = (dG + dG^T) a_flat

on the device of a (`kernels` or kernels.cuda, see scratchnet.device).
"""

from ..device import kernels_for
from ._function import Function


class Gram(Function):
    def forward(self, a):
        self.a, self.kernels = a, kernels_for(a)
        return self.kernels.gram(a)

    def backward(self, dG):
        return self.kernels.gram_backward(dG, self.a)


def gram_matrix(a):
    """G[n] = a_flat[n] a_flat[n]^T for a (N, n_C, *spatial), no normalisation."""
    return Gram.apply(a)
