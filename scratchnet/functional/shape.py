"""Ops that move entries around without changing them, and their gradients.

Each forward picks, copies or reorders entries of x; its backward sends
every entry of dJ/dy back to the place in x it came from:

    reshape, permute    the inverse reshape / permutation of dy
    pixel_(un)shuffle   a reshape and a permutation, so the same
    x[index]            a zero array of x's shape with dy added at `index`
                        (np.add.at, so an entry picked twice gets both parts)
    cat, stack          dy cut back into the pieces
    pad                 the part of dy that lies over x
    to_device           dy moved back to the device x came from
"""

import numpy as np

from ..device import check_device, device_of
from ..device import to_device as move
from ..tensor import Tensor
from ._function import Function


class Reshape(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, x, shape):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, dy):
        return dy.reshape(self.shape)


class Permute(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, x, dims):
        self.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    def backward(self, dy):
        return dy.transpose(self.inverse)


class GetItem(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, x, index):
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        return x[index]

    def backward(self, dy):
        dx = np.zeros_like(dy, shape=self.shape, dtype=self.dtype)
        if _is_basic(self.index):
            dx[self.index] = dy  # each picked entry appears once
        else:
            np.add.at(dx, self.index, dy)  # integer arrays may pick an entry twice
        return dx


class Cat(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, *arrays, dim):
        self.dim = dim
        self.offsets = np.cumsum([a.shape[dim] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=dim)

    def backward(self, dy):
        return tuple(np.split(dy, self.offsets, axis=self.dim))


class Stack(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, *arrays, dim):
        self.dim = dim
        return np.stack(arrays, axis=dim)

    def backward(self, dy):
        return tuple(np.moveaxis(dy, self.dim, 0))  # one slice per input


class Pad(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, x, widths, value):
        # the part of the output that lies over x: slice(before, before + n)
        self.inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        return np.pad(x, widths, mode="constant", constant_values=value)

    def backward(self, dy):
        return dy[self.inner]


class ToDevice(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, x, device):
        self.source = device_of(x)
        return move(x, device)

    def backward(self, dy):
        return move(dy, self.source)


def _is_basic(index):
    """True when `index` holds only ints, slices, None and Ellipsis."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice)) for p in parts)


def _check_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(p, Tensor) for p in parts):
        raise TypeError(
            "index must be ints, slices, None, Ellipsis or integer/bool NumPy arrays, "
            "got a Tensor (Tensors hold floats; index with an integer array)"
        )


def reshape(x, shape):
    """The same entries in a new shape (one entry of `shape` may be -1)."""
    return Reshape.apply(x, shape=tuple(shape))


def permute(x, dims):
    """Reorder the axes: output axis i is input axis dims[i]."""
    given = tuple(dims)
    dims = tuple(int(d) % x.ndim for d in given if -x.ndim <= d < x.ndim)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"dims must be a permutation of range({x.ndim}), got {given}")
    return Permute.apply(x, dims=dims)


def transpose(x, dim0, dim1):
    """Swap axes dim0 and dim1 (torch.transpose)."""
    dims = list(range(x.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return permute(x, dims)


def getitem(x, index):
    """x[index] for ints, slices, None, Ellipsis and integer or bool arrays."""
    _check_index(index)
    return GetItem.apply(x, index=index)


def cat(tensors, dim=0):
    """Join tensors along an existing axis (torch.cat)."""
    if len(tensors) == 0:
        raise ValueError("cat needs at least one tensor, got an empty sequence")
    return Cat.apply(*tensors, dim=dim)


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new axis (torch.stack)."""
    if len(tensors) == 0:
        raise ValueError("stack needs at least one tensor, got an empty sequence")
    return Stack.apply(*tensors, dim=dim)


def pad(x, pad, mode="constant", value=0.0):
    """Constant padding with torch.nn.functional.pad's argument order.

    `pad` lists (before, after) widths starting from the LAST axis:
    (left, right) pads the last axis, (left, right, top, bottom) the last two.
    """
    if mode != "constant":
        raise ValueError(f"pad supports mode='constant' only, got mode={mode!r}")
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(
            f"pad must hold an even number of widths, at most 2 per axis ({2 * x.ndim}), got {pad}"
        )
    if any(not isinstance(p, (int, np.integer)) or p < 0 for p in pad):
        raise ValueError(f"pad widths must be non-negative ints, got {pad}")
    pairs = [(int(pad[i]), int(pad[i + 1])) for i in range(0, len(pad), 2)]  # last axis first
    widths = [(0, 0)] * (x.ndim - len(pairs)) + pairs[::-1]
    return Pad.apply(x, widths=tuple(widths), value=value)


def pixel_unshuffle(x, downscale_factor):
    """Space to depth (torch.nn.functional.pixel_unshuffle): (*, C, H, W) -> (*, C r^2, H/r, W/r).

    Each r x r square of pixels becomes one position holding its r^2 values as channels:
    y[..., c r^2 + i r + j, h, w] = x[..., c, h r + i, w r + j]. Nothing is lost, unlike a
    pooling, and a convolution after it works at 1/r^2 of the positions.
    """
    r = _check_factor("downscale_factor", downscale_factor)
    *batch, c, h, w = _check_image_axes(x, "pixel_unshuffle")
    if h % r or w % r:
        raise ValueError(f"x: expected height and width divisible by downscale_factor = {r}, "
                         f"got shape {tuple(x.shape)}")
    squares = reshape(x, (*batch, c, h // r, r, w // r, r))   # (..., c, h', i, w', j)
    n = len(batch)
    channels_first = permute(squares, (*range(n), n, n + 2, n + 4, n + 1, n + 3))
    return reshape(channels_first, (*batch, c * r * r, h // r, w // r))


def pixel_shuffle(x, upscale_factor):
    """Depth to space, the inverse of pixel_unshuffle: (*, C r^2, H, W) -> (*, C, H r, W r)."""
    r = _check_factor("upscale_factor", upscale_factor)
    *batch, c, h, w = _check_image_axes(x, "pixel_shuffle")
    if c % (r * r):
        raise ValueError(f"x: expected channels divisible by upscale_factor^2 = {r * r}, "
                         f"got shape {tuple(x.shape)}")
    split = reshape(x, (*batch, c // (r * r), r, r, h, w))    # (..., c', i, j, h, w)
    n = len(batch)
    interleaved = permute(split, (*range(n), n, n + 3, n + 1, n + 4, n + 2))
    return reshape(interleaved, (*batch, c // (r * r), h * r, w * r))


def _check_factor(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def _check_image_axes(x, op):
    if x.ndim < 3:
        raise ValueError(f"x: {op} expects (*, C, H, W), got shape {tuple(x.shape)}")
    return tuple(x.shape)


def to_device(x, device):
    """x copied to `device` ("cpu" or "cuda"); the gradient is copied back (Tensor.to)."""
    return ToDevice.apply(x, device=check_device(device))
