"""A model seen as a chain of named layers: a^[l] = layer_l(a^[l-1]), from the input a^[0].

To show what a unit of layer l responds to, we need the activations a^[l]
and the layers below l in order. A model says how it is such a chain with
a method `named_layers()` returning (name, module) pairs; scratchnet's
models have one:

    VGG19         conv1_1 ... conv5_4 (each conv with its ReLU), pool1 ... pool4
    FaceEncoder   shrink, block1 ... blockB, flatten, embedding
    FaceResNet    stem (conv, affine, ReLU), pool, unit1 ... unit14, head

A Sequential is the chain of its layers. Any other Module is taken as the
chain of its sub-modules in the order they were assigned, which is right
for a model whose forward calls them one after another (and only then).

The chain starts from the network's input: `network_input(model, images)`
maps RGB images in [0, 1] to it with the model's `input_from_rgb` (VGG19's
preprocessing, dlib's mean subtraction), or leaves them as they are.

>>> from scratchnet import nn
>>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3))
>>> [name for name, _ in named_layers(net)]
['0', '1', '2']
>>> layer_names(net)
['0', '2']
"""

import contextlib

import numpy as np

from ..nn import Module, Sequential
from ..tensor import Tensor, no_grad


def named_layers(model):
    """(name, module) pairs whose composition, in order, is `model` (see the module docstring)."""
    if not isinstance(model, Module):
        raise TypeError(f"model: expected a scratchnet Module, got {type(model).__name__}")
    if hasattr(model, "named_layers"):
        return list(model.named_layers())
    if isinstance(model, Sequential):
        return list(model._modules.items())
    return list(model.named_children())


def layer_names(model):
    """Names of the layers whose units have a receptive field and that learn something.

    These are the layers nine_patches, layer_figure and maximize_activation
    accept: layers holding parameters (not a pooling or a ReLU alone), up to
    the first layer that is not spatial (a Flatten, a fully connected head).
    """
    from .receptive import spatial_prefix  # the arithmetic lives next door

    return [name for name, module in spatial_prefix(model)
            if any(True for _ in module.parameters())]


def check_layer(model, layer):
    """`layer` if it is one of layer_names(model), else a ValueError listing them."""
    known = layer_names(model)
    if layer not in known:
        raise ValueError(f"layer: expected one of {', '.join(known)}; got {layer!r}")
    return layer


def network_input(model, images):
    """RGB `images` in [0, 1], (N, 3, n_H, n_W), as the model's first layer takes them.

    Uses `model.input_from_rgb` when the model has one; a Tensor stays a
    Tensor (so a gradient can flow back to the image), an array an array.
    """
    to_input = getattr(model, "input_from_rgb", None)
    return images if to_input is None else to_input(images)


def run_layers(model, x, wanted):
    """Dict from each name in `wanted` to its activation a^[l], running the chain on `x`.

    `x` is the network input (an array or a Tensor); the chain stops at the
    deepest layer wanted.
    """
    remaining = set(wanted)
    activations = {}
    a = x if isinstance(x, Tensor) else Tensor(x)
    for name, layer in named_layers(model):
        if not remaining:
            break
        a = layer(a)
        if name in remaining:
            activations[name] = a
            remaining.discard(name)
    if remaining:
        raise ValueError(f"layers: {sorted(remaining)} are not layers of {type(model).__name__}")
    return activations


def layer_shapes(model, layers, image_size):
    """Dict from each layer of the chain, down to the deepest of `layers`, to the shape of its
    output, from one forward pass of a black picture of image_size x image_size pixels."""
    chain = [name for name, _ in named_layers(model)]
    unknown = sorted(set(layers) - set(chain))
    if unknown:
        raise ValueError(f"layers: {unknown} are not layers of {type(model).__name__}")
    deepest = max(chain.index(name) for name in layers)
    black = np.zeros((1, 3, image_size, image_size), np.float32)
    with frozen(model), no_grad():
        activations = run_layers(model, network_input(model, black), chain[: deepest + 1])
    return {name: a.shape for name, a in activations.items()}


@contextlib.contextmanager
def frozen(model):
    """`model` in evaluation mode with parameters that ask for no gradient, restored on exit.

    Looking at a network must not change it: batch norm keeps its running
    statistics, and a gradient taken with respect to the input image leaves
    no .grad on the weights.
    """
    modes = [(module, module.training) for module in model.modules()]
    wanted = [(param, param.requires_grad) for param in model.parameters()]
    model.eval().requires_grad_(False)
    try:
        yield model
    finally:
        for module, training in modes:
            object.__setattr__(module, "training", training)  # this module only, not inside
        for param, requires_grad in wanted:
            param.requires_grad = requires_grad
