"""scratchnet's kernels on an NVIDIA GPU, written with numba.cuda: device arrays in and out.

The same public functions as `kernels`, with the same arguments, checks and
results, for arrays that live in GPU memory (numba device arrays, made with
`numba.cuda.to_device(a)`, or any array with `__cuda_array_interface__`):

    conv_forward, conv_backward_input, conv_backward_weight, conv_backward_bias,
    conv_output_shape, max_pool_forward, max_pool_backward, avg_pool_forward,
    avg_pool_backward, pool_output_shape, gram, gram_backward, relu_forward, relu_backward,
    batch_norm_statistics, batch_norm_forward, batch_norm_backward, pairwise_sq_distances,
    pairwise_sq_distances_backward, triplet_loss, triplet_loss_backward,
    select_triplets

Every CUDA kernel is one of three shapes (docs/gpu.md draws each):

    one thread per output entry      pooling, the triplet loss, the ReLU,
                                     elementwise maps (elementwise.py)
    one block per output entry       reductions (reduce.py): the block's
                                     threads share the sum, then add up
    one block per 64 x 64 tile       every matrix product (product.py):
                                     convolutions, the Gram matrix, the
                                     pairwise distances; 256 threads each
                                     compute a 4 x 4 grid of the tile from
                                     tiles of A and B staged in shared memory

Each kernel's docstring says which thread computes which output entry.
Kernels are compiled by Numba on their first call (seconds per kernel);
they need the numba-cuda package (`pip install scratchnet[gpu]`). Without
a GPU, the environment variable NUMBA_ENABLE_CUDASIM=1, set before Numba is
imported, runs them on Numba's CUDA simulator (slowly: one Python thread
per CUDA thread), which is how the tests check them against their CPU twins.

This package never imports scratchnet.
"""

from .conv import (
    conv_backward_bias,
    conv_backward_input,
    conv_backward_weight,
    conv_forward,
    conv_output_shape,
)
from .._checks import as_tuple, resolve_padding   # argument rules: the same on either device
from .activation import relu_backward, relu_forward
from .batchnorm import batch_norm_backward, batch_norm_forward, batch_norm_statistics
from .gram import gram, gram_backward
from .pool import (
    avg_pool_backward,
    avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
    pool_output_shape,
)
from .triplet import (
    pairwise_sq_distances,
    pairwise_sq_distances_backward,
    select_triplets,
    triplet_loss,
    triplet_loss_backward,
)

__all__ = [
    "conv_forward", "conv_backward_input", "conv_backward_weight", "conv_backward_bias",
    "conv_output_shape", "resolve_padding", "as_tuple",
    "max_pool_forward", "max_pool_backward", "avg_pool_forward", "avg_pool_backward",
    "pool_output_shape",
    "gram", "gram_backward",
    "relu_forward", "relu_backward",
    "batch_norm_statistics", "batch_norm_forward", "batch_norm_backward",
    "pairwise_sq_distances", "pairwise_sq_distances_backward",
    "triplet_loss", "triplet_loss_backward", "select_triplets",
]
