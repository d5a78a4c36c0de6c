"""Max and average pooling in 1, 2 and 3 dimensions as differentiable ops.

Each channel is pooled on its own over windows of size f, stride s
(default f) and padding p:

    max:      y[o] = max over the window of x    dx gets dy[o] at the argmax
    average:  y[o] = mean over the window of x   dx gets dy[o] / m_o at every
              position of the window (m_o: window volume, or with
              count_include_pad=False the real positions in it)

The kernels do the work; max pooling's forward returns the argmax of each
window (`indices`), which its backward routes dy through. Unlike PyTorch,
no dilation, ceil_mode or return_indices. The kernels are those of the
input's device (`kernels` or kernels.cuda, see scratchnet.device).
"""

from ..device import kernels_for
from ._function import Function
from .conv import SPATIAL_AXES, check_layout


class MaxPool(Function):
    def forward(self, x, kernel_size, stride, padding):
        self.x_shape, self.kernels = x.shape, kernels_for(x)
        y, self.indices = self.kernels.max_pool_forward(x, kernel_size, stride, padding)
        return y

    def backward(self, dy):
        return self.kernels.max_pool_backward(dy, self.indices, self.x_shape)


class AvgPool(Function):
    def forward(self, x, kernel_size, stride, padding, count_include_pad):
        self.x_shape, self.kernels = x.shape, kernels_for(x)
        self.window = dict(
            kernel_size=kernel_size, stride=stride, padding=padding,
            count_include_pad=count_include_pad,
        )
        return self.kernels.avg_pool_forward(x, **self.window)

    def backward(self, dy):
        return self.kernels.avg_pool_backward(dy, self.x_shape, **self.window)


def _max_pool(n_spatial, input, kernel_size, stride, padding):
    check_layout(f"max_pool{n_spatial}d", "input", input, ("N", "C") + SPATIAL_AXES[n_spatial])
    return MaxPool.apply(input, kernel_size=kernel_size, stride=stride, padding=padding)


def _avg_pool(n_spatial, input, kernel_size, stride, padding, count_include_pad):
    check_layout(f"avg_pool{n_spatial}d", "input", input, ("N", "C") + SPATIAL_AXES[n_spatial])
    return AvgPool.apply(
        input, kernel_size=kernel_size, stride=stride, padding=padding,
        count_include_pad=count_include_pad,
    )


def max_pool1d(input, kernel_size, stride=None, padding=0):
    """Max over windows of input (N, C, L); stride defaults to kernel_size."""
    return _max_pool(1, input, kernel_size, stride, padding)


def max_pool2d(input, kernel_size, stride=None, padding=0):
    """Max over windows of input (N, C, H, W); stride defaults to kernel_size."""
    return _max_pool(2, input, kernel_size, stride, padding)


def max_pool3d(input, kernel_size, stride=None, padding=0):
    """Max over windows of input (N, C, D, H, W); stride defaults to kernel_size."""
    return _max_pool(3, input, kernel_size, stride, padding)


def avg_pool1d(input, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Mean over windows of input (N, C, L); stride defaults to kernel_size."""
    return _avg_pool(1, input, kernel_size, stride, padding, count_include_pad)


def avg_pool2d(input, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Mean over windows of input (N, C, H, W); stride defaults to kernel_size."""
    return _avg_pool(2, input, kernel_size, stride, padding, count_include_pad)


def avg_pool3d(input, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Mean over windows of input (N, C, D, H, W); stride defaults to kernel_size."""
    return _avg_pool(3, input, kernel_size, stride, padding, count_include_pad)
