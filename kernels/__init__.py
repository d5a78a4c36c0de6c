"""scratchnet's array kernels: NumPy arrays in, NumPy arrays out.

Channels-first layouts throughout: x is (N, C, *spatial) with 1, 2 or 3
spatial dimensions, convolution weights are (C_out, C_in / groups, *k).
Every public function validates its arguments and accepts float32 or
float64; the work runs in Numba-compiled loops cached on disk.

This package never imports scratchnet.
"""

import os

# Numba's parallel loops run on OpenMP threads, which by default spin while
# they wait for work. On a machine whose cores are busy with other work, a
# parallel call then waits for a spinning thread to be scheduled: a small
# max-pool call measured 12 ms instead of 0.06 ms. PASSIVE makes waiting
# threads sleep. It is read when OpenMP starts (at the first parallel call),
# so setting it here, before any kernel runs, is enough; a value the user
# set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .conv import (
    conv_backward_bias,
    conv_backward_input,
    conv_backward_weight,
    conv_forward,
    conv_output_shape,
)
from ._checks import as_tuple, resolve_padding
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
