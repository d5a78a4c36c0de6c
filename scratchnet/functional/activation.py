"""Activations and the softmax family, and their gradients.

    relu(x)    = max(x, 0)              dx = dy * [x > 0]    (kernels.relu_forward, _backward)
    sigmoid(x) = 1 / (1 + e^-x)         dx = dy * s (1 - s)
    tanh(x)                             dx = dy * (1 - t^2)
    softmax(x)_i = e^(x_i - m) / sum_j e^(x_j - m),  m = max_j x_j
                                        dx = s * (dy - sum_j dy_j s_j)
    log_softmax(x)_i = x_i - m - log sum_j e^(x_j - m)
                                        dx = dy - softmax(x) * sum_j dy_j

Subtracting the maximum m changes nothing mathematically and keeps e^(...)
from overflowing. The sigmoid is computed from e^-|x|, which never
overflows, on whichever side of 0 x lies.
"""

import numpy as np

from ..device import CudaArray, kernels_for, shares_memory
from ..tensor import Tensor
from ._function import Function, normalize_axes


class ReLU(Function):
    keeps_inputs, keeps_output = False, True  # backward reads the result only

    def forward(self, x, inplace=False):
        self.kernels = kernels_for(x)
        # in place: the result overwrites x, so the graph keeps one array, not two;
        # the backward pass reads the slope from the result (a > 0 where x > 0)
        in_place = inplace and _overwritable(x)
        self.a = self.kernels.relu_forward(x, out=x if in_place else None)
        self.overwrote = 0 if in_place else None    # x, input 0, now holds a
        return self.a

    def backward(self, dy):
        return self.kernels.relu_backward(dy, self.a)


class Sigmoid(Function):
    keeps_inputs, keeps_output = False, True  # backward reads the result only

    def forward(self, x):
        self.s = stable_sigmoid(x)
        return self.s

    def backward(self, dy):
        return dy * self.s * (1 - self.s)


class Tanh(Function):
    keeps_inputs, keeps_output = False, True  # backward reads the result only

    def forward(self, x):
        self.t = np.tanh(x)
        return self.t

    def backward(self, dy):
        return dy * (1 - self.t**2)


class Softmax(Function):
    keeps_inputs, keeps_output = False, True  # backward reads the result only

    def forward(self, x, dim):
        self.dim = dim
        e = np.exp(x - x.max(axis=dim, keepdims=True))
        self.s = e / e.sum(axis=dim, keepdims=True)
        return self.s

    def backward(self, dy):
        return self.s * (dy - np.sum(dy * self.s, axis=self.dim, keepdims=True))


class LogSoftmax(Function):
    keeps_inputs, keeps_output = False, True  # backward reads the result only

    def forward(self, x, dim):
        self.dim = dim
        shifted = x - x.max(axis=dim, keepdims=True)
        self.log_s = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
        return self.log_s

    def backward(self, dy):
        return dy - np.exp(self.log_s) * dy.sum(axis=self.dim, keepdims=True)


def relu(x, inplace=False):
    """max(x, 0); gradient 0 at x = 0 (NaN stays NaN, as in PyTorch).

    inplace=True writes the result into x's own array, as torch's relu_ does
    (when that array is contiguous; a view with gaps gets a new one): the graph
    then keeps one array where it kept two (x and the result). Use it only
    where nothing else needs x's values, e.g. right after a convolution, whose
    backward pass needs its input but not its output: if a recorded op's
    backward pass reads x's array, backward stops with an error
    (scratchnet.tensor.VersionCounter) rather than compute a wrong gradient.
    Go on with the result: x itself (and views of it made before) are refused
    as inputs of recorded ops from then on. x must be a Tensor (an array is
    wrapped anew wherever it is used, so an overwrite could not be noticed),
    and neither a leaf that requires grad nor a view of one.
    """
    if inplace and not isinstance(x, Tensor):
        raise TypeError(f"x: an in-place relu needs a Tensor, got {type(x).__name__} (its "
                        f"other uses could not notice the overwrite); use inplace=False")
    if inplace and _array_of_a_leaf_that_requires_grad(x):
        raise ValueError("x: an in-place relu cannot overwrite a leaf tensor that requires "
                         "grad, nor a view of one (its values are an input of the graph); use "
                         "inplace=False")
    return ReLU.apply(x, inplace=inplace)


def _array_of_a_leaf_that_requires_grad(x):
    """True when x's array is that of a leaf that requires grad: x is such a leaf, or a view
    of one (made by ops whose output shares their first input's memory)."""
    while x.grad_fn is not None and shares_memory(x.data, x.grad_fn.inputs[0].data):
        x = x.grad_fn.inputs[0]
    return x.requires_grad and x.grad_fn is None


def stable_sigmoid(x):
    """1 / (1 + e^-x) of an array, from e^-|x|, which is in (0, 1] and never overflows:
    1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) for x < 0."""
    small = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + small), small / (1 + small))


def _overwritable(array):
    """True when a kernel can write its result over `array`: contiguous (and writeable)."""
    if isinstance(array, CudaArray):
        return array.is_contiguous()
    return array.flags.c_contiguous and array.flags.writeable


def sigmoid(x):
    """1 / (1 + e^-x), computed without overflow."""
    return Sigmoid.apply(x)


def tanh(x):
    """Hyperbolic tangent."""
    return Tanh.apply(x)


def softmax(x, dim=-1):
    """e^x / sum e^x along `dim`, shifted by the maximum for stability."""
    (dim,) = normalize_axes(dim, x.ndim, name="dim")
    return Softmax.apply(x, dim=dim)


def log_softmax(x, dim=-1):
    """log(softmax(x)) along `dim`, without forming softmax(x) first."""
    (dim,) = normalize_axes(dim, x.ndim, name="dim")
    return LogSoftmax.apply(x, dim=dim)
