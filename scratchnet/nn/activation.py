"""Activation layers g^[l]: a^[l] = g^[l](z^[l]), entry by entry (softmax: along `dim`).

    ReLU(z) = max(z, 0)    Sigmoid(z) = 1 / (1 + e^-z)    Tanh(z) = tanh z
    Softmax(z)_i = e^z_i / sum_j e^z_j      LogSoftmax(z) = log Softmax(z)

Each wraps the op of the same name in scratchnet.functional, which holds
the derivative.

>>> from scratchnet import Tensor
>>> ReLU()(Tensor([-1.0, 2.0]))
Tensor([0., 2.], dtype=float32)
"""

from .. import functional as F
from .module import Module


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x, inplace=self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Softmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, dim=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.log_softmax(x, dim=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"
