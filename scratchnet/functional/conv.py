"""conv1d, conv2d, conv3d: the kernels' convolution as a differentiable op.

Channels first: input a^[l-1] is (N, n_C_prev, *n_in), weight (n_C,
n_C_prev / groups, *f), bias (n_C,); the output z^[l] is (N, n_C, *n_out).
It is a cross-correlation (filters are not flipped), as in PyTorch:

    z[n, k, o] = b[k] + sum_{c, j} w[k, c, j] a_pad[n, c, o s + j d]

Backward, given dz = dJ/dz (derived in the kernels and docs/):

    da = conv_backward_input(dz, w)     a transposed convolution of dz with w
    dw = conv_backward_weight(dz, a)    the correlation of a with dz
    db = sum of dz over n and every position o

Each is computed only when that input needs a gradient. The kernels are
those of the inputs' device (`kernels` or kernels.cuda, see scratchnet.device).
"""

from ..device import kernels_for
from ._function import Function, promote

SPATIAL_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


class Conv(Function):
    def forward(self, x, w, b=None, *, stride, padding, dilation, groups):
        x, w, b = promote(x, w, b)
        self.x, self.w, self.kernels = x, w, kernels_for(x)
        self.geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        return self.kernels.conv_forward(x, w, b, **self.geometry)

    def backward(self, dz):
        needs = self.needs_input_grad + (False,)  # (x, w, b); b absent is (x, w)
        dx = dw = db = None
        if needs[0]:
            dx = self.kernels.conv_backward_input(dz, self.w, self.x.shape, **self.geometry)
        if needs[1]:
            dw = self.kernels.conv_backward_weight(dz, self.x, self.w.shape, **self.geometry)
        if needs[2]:
            db = self.kernels.conv_backward_bias(dz)
        return (dx, dw, db)[: len(self.needs_input_grad)]


def check_layout(fn_name, arg_name, tensor, axes):
    """Raise unless `tensor` has one dimension per name in `axes`."""
    if tensor.ndim != len(axes):
        raise ValueError(
            f"{fn_name} expects {arg_name} of {len(axes)} dimensions ({', '.join(axes)}), "
            f"got shape {tensor.shape}"
        )


def _conv(n_spatial, input, weight, bias, stride, padding, dilation, groups):
    name, spatial = f"conv{n_spatial}d", SPATIAL_AXES[n_spatial]
    check_layout(name, "input", input, ("N", "C_in") + spatial)
    check_layout(name, "weight", weight, ("C_out", "C_in/groups") + tuple("k" + a for a in spatial))
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return Conv.apply(*tensors, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution of input (N, C_in, L) with weight (C_out, C_in/groups, k)."""
    return _conv(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution of input (N, C_in, H, W) with weight (C_out, C_in/groups, kH, kW)."""
    return _conv(2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution of input (N, C_in, D, H, W) with weight (C_out, C_in/groups, kD, kH, kW)."""
    return _conv(3, input, weight, bias, stride, padding, dilation, groups)
