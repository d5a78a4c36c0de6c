"""Linear (fully connected) layer and Identity.

A fully connected layer l maps each row a^[l-1] of n^[l-1] features to
n^[l] features:

    z^[l] = a^[l-1] W^T + b       W: (n^[l], n^[l-1]),  b: (n^[l],)

which is the course's z = W a + b written for a batch of row vectors
(N, n^[l-1]) -> (N, n^[l]). W has PyTorch's (out_features, in_features)
layout; default initialisation is PyTorch's (see scratchnet.nn.init).

>>> import numpy as np
>>> from scratchnet import Tensor
>>> Linear(5, 2)(Tensor(np.ones((4, 5)))).shape
(4, 2)
"""

import numpy as np

from .. import functional as F
from . import init
from .module import Module, Parameter


class Linear(Module):
    """z = x W^T + b over the last axis of x (..., in_features) -> (..., out_features)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=np.float32))
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: W and b uniform in [-1/sqrt(in_features), 1/sqrt(in_features)]."""
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Identity(Module):
    """Returns its input unchanged (a placeholder where a layer is optional)."""

    def forward(self, x):
        return x
