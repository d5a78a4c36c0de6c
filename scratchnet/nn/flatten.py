"""Flatten: join axes start_dim..end_dim into one, as between the last conv and the first Linear.

    (N, n_C, n_H, n_W) -> (N, n_C n_H n_W)     with the default start_dim=1

>>> import numpy as np
>>> from scratchnet import Tensor
>>> Flatten()(Tensor(np.zeros((2, 32, 6, 6)))).shape
(2, 1152)
"""

import numpy as np

from .module import Module


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        start, end = self.start_dim % x.ndim, self.end_dim % x.ndim
        if start > end:
            raise ValueError(
                f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}) has start after "
                f"end for an input of shape {x.shape}"
            )
        # (..., n_start, ..., n_end, ...) -> (..., n_start * ... * n_end, ...), the product
        # written out: -1 cannot be worked out when another axis (an empty batch) is 0
        joined = int(np.prod(x.shape[start:end + 1]))
        return x.reshape(x.shape[:start] + (joined,) + x.shape[end + 1:])

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
