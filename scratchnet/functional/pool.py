"""Max and average pooling in 1, 2 and 3 dimensions as differentiable ops.

Each channel is pooled on its own over windows of size f, stride s
(default f) and padding p:

    max:      y[o] = max over the window of x    dx gets dy[o] at the argmax
    average:  y[o] = mean over the window of x   dx gets dy[o] / m_o at every
              position of the window (m_o: its positions in the padded
              input, the window volume unless ceil_mode's last window runs
              past the padding; with count_include_pad=False the real
              positions in it)

The arguments are PyTorch's, in PyTorch's order; ceil_mode=True rounds the
output size up (n_out = ceil((n + 2p - f) / s) + 1, less one if the last
window would start in the padding after the input). Max pooling's dilation
d spaces the window's entries d apart (it then spans d (f - 1) + 1
positions, which take f's place in n_out). Unlike PyTorch, no
return_indices or divisor_override.

The kernels do the work; max pooling's forward returns the argmax of each
window (`indices`), which its backward routes dy through. The kernels are
those of the input's device (`kernels` or kernels.cuda, see scratchnet.device).
"""

from ..device import kernels_for
from ._function import Function
from .conv import SPATIAL_AXES, check_layout


class MaxPool(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, x, **window):
        self.x_shape, self.kernels = x.shape, kernels_for(x)
        y, self.indices = self.kernels.max_pool_forward(x, **window)
        return y

    def backward(self, dy):
        return self.kernels.max_pool_backward(dy, self.indices, self.x_shape)


class AvgPool(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, x, **window):
        self.x_shape, self.kernels, self.window = x.shape, kernels_for(x), window
        return self.kernels.avg_pool_forward(x, **window)

    def backward(self, dy):
        return self.kernels.avg_pool_backward(dy, self.x_shape, **self.window)


def _max_pool(n_spatial, input, kernel_size, stride, padding, dilation, ceil_mode):
    check_layout(f"max_pool{n_spatial}d", "input", input, ("N", "C") + SPATIAL_AXES[n_spatial])
    return MaxPool.apply(input, kernel_size=kernel_size, stride=stride, padding=padding,
                         dilation=dilation, ceil_mode=ceil_mode)


def _avg_pool(n_spatial, input, kernel_size, stride, padding, ceil_mode, count_include_pad):
    check_layout(f"avg_pool{n_spatial}d", "input", input, ("N", "C") + SPATIAL_AXES[n_spatial])
    return AvgPool.apply(input, kernel_size=kernel_size, stride=stride, padding=padding,
                         ceil_mode=ceil_mode, count_include_pad=count_include_pad)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over windows of input (N, C, L); stride defaults to kernel_size."""
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over windows of input (N, C, H, W); stride defaults to kernel_size."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over windows of input (N, C, D, H, W); stride defaults to kernel_size."""
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Mean over windows of input (N, C, L); stride defaults to kernel_size."""
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Mean over windows of input (N, C, H, W); stride defaults to kernel_size."""
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Mean over windows of input (N, C, D, H, W); stride defaults to kernel_size."""
    return _avg_pool(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad)
