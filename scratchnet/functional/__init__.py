"""scratchnet.functional: every differentiable op, as `import scratchnet.functional as F`.

Names and arguments follow torch.nn.functional where it has the op
(conv2d, max_pool2d, relu, softmax(x, dim), normalize, linear, batch_norm,
mse_loss, binary_cross_entropy ...); reductions (sum, mean, max) take NumPy's
`axis` and `keepdims`, as the arrays underneath are NumPy's.

Each op is a Function (see _function.py) with forward and backward side by
side, grouped by kind: elementwise, reduce, shape, linalg, activation,
loss, and the kernel-backed conv, pool, gram and triplet.
"""

from ._function import Function, unbroadcast
from .activation import log_softmax, relu, sigmoid, softmax, tanh
from .conv import conv1d, conv2d, conv3d
from .elementwise import abs, add, clamp, clip, div, exp, log, mul, neg, pow, sqrt, sub
from .gram import gram_matrix
from .linalg import linear, matmul, normalize
from .loss import binary_cross_entropy, binary_cross_entropy_with_logits, mse_loss
from .norm import batch_norm
from .pool import avg_pool1d, avg_pool2d, avg_pool3d, max_pool1d, max_pool2d, max_pool3d
from .reduce import max, mean, sum
from .shape import (
    cat,
    getitem,
    pad,
    permute,
    pixel_shuffle,
    pixel_unshuffle,
    reshape,
    stack,
    to_device,
    transpose,
)
from .triplet import batch_triplet_loss, pairwise_sq_distances, triplet_loss

__all__ = [
    "Function", "unbroadcast",
    "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sqrt", "abs", "clamp", "clip",
    "sum", "mean", "max",
    "reshape", "permute", "transpose", "getitem", "cat", "stack", "pad", "pixel_shuffle",
    "pixel_unshuffle", "to_device",
    "matmul", "linear", "normalize", "batch_norm",
    "relu", "sigmoid", "tanh", "softmax", "log_softmax",
    "mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "conv1d", "conv2d", "conv3d",
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "gram_matrix", "pairwise_sq_distances", "triplet_loss", "batch_triplet_loss",
]
