"""Conv1d, Conv2d, Conv3d: convolution layers holding their filters W^[l] and biases b^[l].

Layer l maps a^[l-1] of shape (N, n_C_prev, *n_in) to z^[l] of shape
(N, n_C, *n_out), one output channel per filter:

    z[n, k, o] = b[k] + sum_{c, j} W[k, c, j] a_pad[n, c, o s + j d]

W^[l] has shape (n_C, n_C_prev / groups, *f) and b^[l] shape (n_C,).
Along each spatial dimension n_out = floor((n_in + 2p - d (f - 1) - 1) / s) + 1,
the course's floor((n + 2p - f) / s) + 1 when the dilation d is 1. As on the
slide, 14 -> Conv(f=5) -> 10 -> Conv(f=5) -> 6, in 1, 2 or 3 dimensions.

`padding` is an int, a tuple (one entry per spatial dimension), "valid"
(none) or "same" (n_out = ceil(n_in / s); the odd pixel goes after). The
work is done by scratchnet.functional.conv1d/2d/3d; default initialisation
is PyTorch's (see scratchnet.nn.init).

>>> import numpy as np
>>> from scratchnet import Tensor
>>> layer = Conv2d(3, 16, 5)
>>> layer.weight.shape, layer(Tensor(np.zeros((1, 3, 14, 14)))).shape
((16, 3, 5, 5), (1, 16, 10, 10))
"""

import numpy as np

from kernels import as_tuple

from .. import functional as F
from . import init
from .module import Module, Parameter

SPATIAL_NAMES = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class ConvNd(Module):
    """The convolution layer for `n_spatial` dimensions; use Conv1d, Conv2d or Conv3d."""

    n_spatial = None

    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
        groups=1, bias=True,
    ):
        super().__init__()
        _check_channels(in_channels, out_channels, groups)
        n = self.n_spatial
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = as_tuple("kernel_size", kernel_size, n, minimum=1)
        self.stride = as_tuple("stride", stride, n, minimum=1)
        self.padding = _check_padding(padding, n)
        self.dilation = as_tuple("dilation", dilation, n, minimum=1)
        weight_shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(weight_shape, dtype=np.float32))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: W and b uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)]."""
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        if x.ndim != self.n_spatial + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects input {SPATIAL_NAMES[self.n_spatial]} with "
                f"C = in_channels = {self.in_channels}, got shape {x.shape}"
            )
        return CONV[self.n_spatial](
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        text += f", stride={self.stride}"
        if self.padding != (0,) * self.n_spatial:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * self.n_spatial:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv1d(ConvNd):
    """1-D convolution: input (N, C_in, L), weight (C_out, C_in/groups, k)."""

    n_spatial = 1


class Conv2d(ConvNd):
    """2-D convolution: input (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW)."""

    n_spatial = 2


class Conv3d(ConvNd):
    """3-D convolution: input (N, C_in, D, H, W), weight (C_out, C_in/groups, kD, kH, kW)."""

    n_spatial = 3


def _check_padding(padding, n):
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
        return padding
    return as_tuple("padding", padding, n, minimum=0)


def _check_channels(in_channels, out_channels, groups):
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("groups", groups)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
            f"divisible by groups ({groups})"
        )
