"""Receptive fields: the window of the input that a unit of layer l can see.

Along each spatial dimension, the unit of layer l at position o sees the
input pixels

    start_l + o j_l  <=  i  <  start_l + o j_l + r_l

where r_l is the receptive field's size, j_l its jump (how far the window
moves when o moves by one) and start_l where the window of unit 0 begins
(negative when it reaches into the padding). Each input pixel sees itself:
r_0 = 1, j_0 = 1, start_0 = 0. A layer with kernel size k_l, stride s_l,
dilation d_l and padding p_l before the first pixel reads positions
o s_l - p_l + t d_l (t = 0 ... k_l - 1) of a^[l-1], so

    r_l     = r_{l-1} + (k_l - 1) d_l j_{l-1}
    j_l     = j_{l-1} s_l
    start_l = start_{l-1} - p_l j_{l-1}

and n_l = floor((n_{l-1} + p_before + p_after - d_l (k_l - 1) - 1) / s_l) + 1
(a pooling with ceil_mode rounds up, as kernels.pool_output_shape counts).
Convolutions and poolings of any dimension (1 to 3) are such layers
(average pooling: d = 1; padding "same" is TensorFlow's split, as the
kernels do it). Layers that act on each position alone (ReLU, batch norm, dlib's
affine, Identity, Dropout) change nothing. A chain (Sequential, or a module
with `named_layers()`) applies the rule layer after layer. A residual unit
(a module with `paths()`, whose output is the sum of its paths) sees what
any path sees: the union of the windows, which needs every path to have the
same jump; the sum is as large as the largest path (dlib zero-pads the
smaller one).

`start_l` and `r_l` describe the window a unit would see on an endless
input. At the border part of the window lies outside the picture:
`clipped` gives what remains inside and how much was cut at each end.
Within the window a unit may skip pixels (a dilation, or a stride larger
than the kernel); the window is the smallest box holding every pixel it
reads, and its two ends are always read.

>>> from scratchnet import nn
>>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
...                     nn.Conv2d(8, 8, 3, padding=1))
>>> field = receptive_field(net, "3", (3, 32, 32))
>>> field.size, field.jump, field.start, field.output_sizes
((8, 8), (2, 2), (-3, -3), (16, 16))
>>> field.window((0, 5))
((-3, 5), (7, 15))
>>> field.clipped((0, 5))
(((0, 5), (7, 15)), ((3, 0), (0, 0)))
"""

import dataclasses

import numpy as np

from kernels import pool_output_shape, resolve_padding

from ..nn import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    ChannelAffine,
    Dropout,
    Identity,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from ..nn.conv import ConvNd
from ..nn.pool import AvgPoolNd, MaxPoolNd
from .layers import named_layers

POINTWISE = (ReLU, Sigmoid, Tanh, BatchNorm1d, BatchNorm2d, BatchNorm3d, Identity, Dropout,
             ChannelAffine)
WINDOWED = (ConvNd, MaxPoolNd, AvgPoolNd)


@dataclasses.dataclass(frozen=True)
class ReceptiveField:
    """What the units of one layer see, one entry per spatial dimension (see the module doc)."""

    size: tuple            # r_l
    jump: tuple            # j_l
    start: tuple           # start_l: first input pixel of unit 0's window
    input_sizes: tuple     # the input's spatial sizes n_0
    output_sizes: tuple    # the layer's spatial sizes n_l

    def window(self, position):
        """((first, stop), ...) per dimension: the unit at `position` sees first <= i < stop."""
        position = self._checked(position)
        return tuple((s + o * j, s + o * j + r)
                     for s, o, j, r in zip(self.start, position, self.jump, self.size))

    def clipped(self, position):
        """(the window cut to the input, (pixels cut before, pixels cut after) per dimension)."""
        inside, cut = [], []
        for (first, stop), n in zip(self.window(position), self.input_sizes):
            inside.append((max(first, 0), min(stop, n)))
            cut.append((max(0, -first), max(0, stop - n)))
        return tuple(inside), tuple(cut)

    def window_starts(self, positions):
        """start + o j for an integer array of positions (..., n_dims), as an array."""
        positions = np.asarray(positions)
        return np.asarray(self.start) + positions * np.asarray(self.jump)

    def _checked(self, position):
        position = (position,) if np.isscalar(position) else tuple(position)
        if len(position) != len(self.size) or not all(
                0 <= o < n for o, n in zip(position, self.output_sizes)):
            raise ValueError(f"position: expected {len(self.size)} indices within the layer's "
                             f"sizes {self.output_sizes}, got {position}")
        return position


def input_field(input_sizes):
    """The field of the input itself: each pixel sees itself (r = 1, j = 1, start = 0)."""
    n = len(input_sizes)
    return ReceptiveField((1,) * n, (1,) * n, (0,) * n, tuple(input_sizes), tuple(input_sizes))


def field_after(module, field):
    """The ReceptiveField of `module`'s output units, given the `field` of its input's."""
    if isinstance(module, WINDOWED):
        return _window_step(module, field)
    if isinstance(module, POINTWISE):
        return field
    if hasattr(module, "paths"):
        return _union([field_after(path, field) for path in module.paths()])
    if _is_chain(module):
        for _, layer in named_layers(module):
            field = field_after(layer, field)
        return field
    raise TypeError(f"no receptive field for a {type(module).__name__}: expected a convolution, "
                    f"a pooling, a pointwise layer, a chain of them or a module with paths()")


def knows_geometry(module):
    """True when field_after can follow `module` (every layer inside it is known)."""
    if isinstance(module, WINDOWED + POINTWISE):
        return True
    if hasattr(module, "paths"):
        return all(knows_geometry(path) for path in module.paths())
    return _is_chain(module) and all(knows_geometry(layer) for _, layer in named_layers(module))


def spatial_prefix(model):
    """The (name, module) layers of the model's chain up to the first one without geometry."""
    prefix = []
    for name, layer in named_layers(model):
        if not knows_geometry(layer):
            break
        prefix.append((name, layer))
    return prefix


def receptive_fields(model, input_shape, last=None):
    """[(name, ReceptiveField)] for each layer of the chain that has one, for `input_shape`,
    stopping after the layer named `last` when given.

    `input_shape` is (C, *spatial) or (N, C, *spatial) (see split_input_shape).
    """
    _, _, spatial = split_input_shape(model, input_shape)
    field = input_field(spatial)
    fields = []
    for name, layer in spatial_prefix(model):
        field = field_after(layer, field)
        fields.append((name, field))
        if name == last:
            break
    return fields


def receptive_field(model, layer, input_shape):
    """The ReceptiveField of the units of `layer` (a name of the model's chain)."""
    fields = dict(receptive_fields(model, input_shape, last=layer))
    if layer not in fields:
        raise ValueError(f"layer: expected one of {', '.join(fields)}; got {layer!r}")
    return fields[layer]


def split_input_shape(model, input_shape):
    """(N or None, C, spatial sizes) from (C, *spatial) or (N, C, *spatial).

    The two are told apart by the number of spatial dimensions of the
    model's first convolution or pooling; a model without one takes
    (features,) or (C, *spatial) as given, without the batch.
    """
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if not shape or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in shape):
        raise ValueError(f"input_shape: expected a tuple of positive ints, got {input_shape!r}")
    n_spatial = spatial_dims(model)
    if n_spatial is None:
        return None, shape[0], shape[1:]
    if len(shape) == n_spatial + 2:
        return shape[0], shape[1], shape[2:]
    if len(shape) == n_spatial + 1:
        return None, shape[0], shape[1:]
    raise ValueError(f"input_shape: the model's layers are {n_spatial}-dimensional, so expected "
                     f"(C, {n_spatial} sizes) or (N, C, {n_spatial} sizes), got {shape}")


def spatial_dims(model):
    """The number of spatial dimensions of the first convolution or pooling, or None."""
    for module in model.modules():
        if isinstance(module, WINDOWED):
            return module.n_spatial
    return None


# ---------------------------------------------------------------- the steps

def _window_step(module, field):
    """r, j, start and n after a convolution or a pooling (the recurrences above)."""
    n = module.n_spatial
    k = _per_dim(module.kernel_size, n)
    s = _per_dim(module.stride, n)
    d = _per_dim(getattr(module, "dilation", 1), n)
    pads = resolve_padding(module.padding, field.output_sizes, k, s, d)  # 'same' as kernels do
    n_outs = _output_sizes(module, field.output_sizes, k, s, d, pads)
    size, jump, start, out = [], [], [], []
    for axis in range(n):
        r_prev, j_prev, n_prev = field.size[axis], field.jump[axis], field.output_sizes[axis]
        before, after = pads[axis]
        n_out = n_outs[axis]
        if n_out < 1:
            raise ValueError(f"input_shape: too small for {type(module).__name__} in spatial "
                             f"dimension {axis}: its input there has {n_prev} positions")
        size.append(r_prev + (k[axis] - 1) * d[axis] * j_prev)
        jump.append(j_prev * s[axis])
        start.append(field.start[axis] - before * j_prev)
        out.append(n_out)
    return dataclasses.replace(field, size=tuple(size), jump=tuple(jump), start=tuple(start),
                               output_sizes=tuple(out))


def _output_sizes(module, in_sizes, k, s, d, pads):
    """n_l per spatial dimension, as the module's kernels count it (a pooling's ceil_mode
    rounds up); below 1 where the window does not fit."""
    if getattr(module, "ceil_mode", False):
        return tuple(_ceil_mode_units(n, kk, ss, before, dd)
                     for n, kk, ss, dd, (before, _) in zip(in_sizes, k, s, d, pads))
    return tuple((n + before + after - dd * (kk - 1) - 1) // ss + 1
                 for n, kk, ss, dd, (before, after) in zip(in_sizes, k, s, d, pads))


def _ceil_mode_units(n, k, s, p, d):
    """A ceil_mode pooling's units along one dimension, 0 where the kernels refuse it."""
    try:
        return pool_output_shape((1, 1, n), k, s, p, d, ceil_mode=True)[2]
    except ValueError:
        return 0


def _union(fields):
    """The field of a sum of paths: the smallest window holding every path's window."""
    jumps = {f.jump for f in fields}
    if len(jumps) != 1:
        raise ValueError(f"the paths of a residual unit move by different jumps {sorted(jumps)}: "
                         f"their windows do not line up")
    first = np.min([f.start for f in fields], axis=0)
    stop = np.max([np.add(f.start, f.size) for f in fields], axis=0)
    sizes = np.max([f.output_sizes for f in fields], axis=0)  # the smaller path is zero-padded
    return dataclasses.replace(fields[0], start=_ints(first), size=_ints(stop - first),
                               output_sizes=_ints(sizes))


def _per_dim(value, n):
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * n


def _ints(array):
    return tuple(int(v) for v in array)


def _is_chain(module):
    return isinstance(module, Sequential) or hasattr(module, "named_layers")
