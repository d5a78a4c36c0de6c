"""Max and average pooling layers in 1, 2 and 3 dimensions.

Pooling has hyperparameters f (kernel_size) and s (stride, default f) but
nothing to learn. Each channel is pooled on its own, so n_C is unchanged,
and each spatial size becomes floor((n + 2p - f) / s) + 1:

    max:      a[n, c, o] = max  of the f^d window at o s - p
    average:  a[n, c, o] = mean of the window (count_include_pad=False
              divides by the window's positions inside the input instead)

ceil_mode=True rounds the output size up instead, as in PyTorch, and max
pooling's dilation d spaces the window's entries d apart. The arguments are
PyTorch's, in PyTorch's order as far as scratchnet has them: MaxPoolNd has no
return_indices, PyTorch's fifth argument, so its ceil_mode is keyword-only.
The work is done by scratchnet.functional's max_pool*/avg_pool*.

>>> import numpy as np
>>> from scratchnet import Tensor
>>> MaxPool2d(2)(Tensor(np.zeros((1, 3, 28, 28)))).shape
(1, 3, 14, 14)
"""

from .. import functional as F
from .module import Module

MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


class MaxPoolNd(Module):
    """Max pooling for `n_spatial` dimensions; use MaxPool1d, MaxPool2d or MaxPool3d."""

    n_spatial = None

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, *, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode

    def forward(self, x):
        return MAX_POOL[self.n_spatial](x, self.kernel_size, self.stride, self.padding,
                                        self.dilation, self.ceil_mode)

    def extra_repr(self):
        text = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        text += f", dilation={self.dilation}" if self.dilation != 1 else ""
        return text + ", ceil_mode=True" if self.ceil_mode else text


class AvgPoolNd(Module):
    """Average pooling for `n_spatial` dimensions; use AvgPool1d, AvgPool2d or AvgPool3d."""

    n_spatial = None

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, x):
        return AVG_POOL[self.n_spatial](x, self.kernel_size, self.stride, self.padding,
                                        self.ceil_mode, self.count_include_pad)

    def extra_repr(self):
        text = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        text += ", ceil_mode=True" if self.ceil_mode else ""
        return text if self.count_include_pad else text + ", count_include_pad=False"


class MaxPool1d(MaxPoolNd):
    """Max over windows of (N, C, L)."""

    n_spatial = 1


class MaxPool2d(MaxPoolNd):
    """Max over windows of (N, C, H, W)."""

    n_spatial = 2


class MaxPool3d(MaxPoolNd):
    """Max over windows of (N, C, D, H, W)."""

    n_spatial = 3


class AvgPool1d(AvgPoolNd):
    """Mean over windows of (N, C, L)."""

    n_spatial = 1


class AvgPool2d(AvgPoolNd):
    """Mean over windows of (N, C, H, W)."""

    n_spatial = 2


class AvgPool3d(AvgPoolNd):
    """Mean over windows of (N, C, D, H, W)."""

    n_spatial = 3
