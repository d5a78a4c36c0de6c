"""model.summary(input_shape): each layer's output shape, parameter count and receptive field.

The table lays out, as Keras does, one row per layer of the model's chain
(scratchnet.visualize.layers.named_layers): its name and type, the shape of
its output a^[l], its number of parameters and the size r_l and jump j_l
of its units' receptive field (scratchnet.visualize.receptive; "-" once the
output is no longer spatial). The totals follow, then the chain of shapes
in the slides' notation: spatial sizes then channels, n_H x n_W x n_C, with
n_C left out when it is 1 and a repeated shape (a ReLU's) written once:

>>> from scratchnet import nn
>>> net = nn.Sequential(nn.Conv1d(1, 16, 5), nn.Conv1d(16, 32, 5))
>>> text = summary(net, (1, 14))
Model: Sequential
Layer (type)   Output shape   Param #   Receptive field
=======================================================
0 (Conv1d)     (N, 16, 10)         96   5, jump 1
1 (Conv1d)     (N, 32, 6)       2,592   9, jump 1
=======================================================
Total params: 2,688
Trainable params: 2,688
Non-trainable params: 0
Shapes: 14 -> 10x16 -> 6x32

`input_shape` is (C, *spatial), or (N, C, *spatial) with the batch; which
one is read from the dimensionality of the model's first convolution or
pooling (scratchnet.visualize.receptive.split_input_shape). The shapes come
from one forward pass of zeros in evaluation mode (the model's mode is
restored afterwards, and nothing is learned or recorded).
"""

import numpy as np

from ..nn import Sequential
from ..tensor import Tensor, no_grad
from .layers import frozen, named_layers
from .receptive import receptive_fields, split_input_shape

HEADER = ("Layer (type)", "Output shape", "Param #", "Receptive field")
COLUMN_GAP = 3


def summary(model, input_shape, print_fn=print):
    """The table described in the module docstring, as a string; each line goes to print_fn
    (None: print nothing)."""
    batch, channels, spatial = split_input_shape(model, input_shape)
    layers = named_layers(model)
    shapes = _output_shapes(model, layers, (batch or 1, channels) + tuple(spatial))
    fields = dict(receptive_fields(model, input_shape)) if spatial else {}
    rows = []
    for (name, layer), shape in zip(layers, shapes):
        shown = ("N" if batch is None else str(batch),) + tuple(str(v) for v in shape[1:])
        rows.append((f"{name} ({_type_name(layer)})", f"({', '.join(shown)})",
                     f"{_count(layer.parameters()):,}", _describe(fields.get(name))))
    lines = [f"Model: {type(model).__name__}"] + _table(rows)
    total = _count(model.parameters())
    trainable = _count(p for p in model.parameters() if p.requires_grad)
    lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}",
              "Shapes: " + shape_chain([(channels,) + tuple(spatial)]
                                       + [shape[1:] for shape in shapes])]
    if print_fn is not None:
        for line in lines:
            print_fn(line)
    return "\n".join(lines)


def shape_chain(shapes):
    """'14x14x3 -> 10x10x16' from per-example shapes (C, *spatial): spatial first, C if not 1."""
    written = []
    for shape in shapes:
        channels, spatial = shape[0], tuple(shape[1:])
        text = "x".join(str(v) for v in spatial + ((channels,) if channels != 1 or not spatial
                                                   else ()))
        if not written or written[-1] != text:
            written.append(text)
    return " -> ".join(written)


def _output_shapes(model, layers, input_shape):
    """The output shape of each layer, from one forward pass of zeros through the chain."""
    parameter = next(model.parameters(), None)
    dtype = np.float32 if parameter is None else parameter.dtype
    a = Tensor(np.zeros(input_shape, dtype=dtype))
    shapes = []
    with frozen(model), no_grad():
        for name, layer in layers:
            try:
                a = layer(a)
            except (ValueError, TypeError) as error:
                raise ValueError(
                    f"summary: layer {name!r} ({type(layer).__name__}) cannot take the "
                    f"output of the layers before it, shape {a.shape}: is "
                    f"{type(model).__name__} a chain of its sub-modules? Give it a "
                    f"named_layers() method ({error})") from None
            shapes.append(a.shape)
    return shapes


def _table(rows):
    widths = [max(len(row[i]) for row in rows + [HEADER]) for i in range(len(HEADER))]
    rule = "=" * (sum(widths) + COLUMN_GAP * (len(widths) - 1))
    gap = " " * COLUMN_GAP

    def line(cells):
        name, shape, count, field = cells
        parts = [name.ljust(widths[0]), shape.ljust(widths[1]),
                 count.rjust(widths[2]) if cells is not HEADER else count.ljust(widths[2]),
                 field.ljust(widths[3])]
        return gap.join(parts).rstrip()

    return [line(HEADER), rule] + [line(row) for row in rows] + [rule]


def _describe(field):
    if field is None:
        return "-"
    size = "x".join(str(r) for r in field.size)
    jumps = set(field.jump)
    jump = str(field.jump[0]) if len(jumps) == 1 else "x".join(str(j) for j in field.jump)
    return f"{size}, jump {jump}"


def _type_name(layer):
    """The layer's class; a Sequential lists its parts (Conv2d+ReLU)."""
    if isinstance(layer, Sequential) and len(layer):
        return "+".join(type(part).__name__ for part in layer)
    return type(layer).__name__


def _count(parameters):
    return sum(int(np.prod(p.shape)) for p in parameters)
