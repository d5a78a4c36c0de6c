"""Reductions over axes: sum, mean, max, and their gradients.

`axis` is None (every axis), an int or a tuple of ints, and `keepdims`
keeps the reduced axes with length 1, as in NumPy (these are tensor
methods in PyTorch, where the same arguments are called dim and keepdim).

    s = sum_i x_i         ds/dx_i = 1
    m = (1/n) sum_i x_i   dm/dx_i = 1/n
    M = max_i x_i         dM/dx_i = 1/t if x_i is one of the t entries equal
                          to M, else 0

The max gradient is split evenly among ties (PyTorch's amax does the
same), so it does not depend on which tied entry a loop happens to meet
first.
"""

import math

import numpy as np

from ._function import Function, normalize_axes


def _expand(grad, axes, keepdims):
    """Put the reduced axes back (as length 1) so `grad` broadcasts against x."""
    return grad if keepdims else np.expand_dims(grad, axes)


class Sum(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, x, axis, keepdims):
        self.shape, self.keepdims = x.shape, keepdims
        self.axes = normalize_axes(axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, ds):
        return np.broadcast_to(_expand(ds, self.axes, self.keepdims), self.shape)


class Mean(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, x, axis, keepdims):
        self.shape, self.keepdims = x.shape, keepdims
        self.axes = normalize_axes(axis, x.ndim)
        return x.mean(axis=self.axes, keepdims=keepdims)

    def backward(self, dm):
        count = math.prod(self.shape[a] for a in self.axes)
        return np.broadcast_to(_expand(dm, self.axes, self.keepdims) / count, self.shape)


class Max(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, x, axis, keepdims):
        self.keepdims = keepdims
        self.axes = normalize_axes(axis, x.ndim)
        if x.size == 0:
            raise ValueError(f"max of an empty tensor of shape {x.shape}")
        top = x.max(axis=self.axes, keepdims=True)
        self.is_top = x == top
        self.ties = self.is_top.sum(axis=self.axes, keepdims=True).astype(x.dtype)
        return top if keepdims else np.squeeze(top, axis=self.axes)

    def backward(self, dM):
        return self.is_top * (_expand(dM, self.axes, self.keepdims) / self.ties)


def sum(x, axis=None, keepdims=False):
    """Sum over `axis` (None: all)."""
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """Mean over `axis` (None: all)."""
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):
    """Largest entry over `axis` (None: all); gradient shared evenly among ties."""
    return Max.apply(x, axis=axis, keepdims=keepdims)
