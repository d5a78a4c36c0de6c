"""VGG19's convolutional part: the pretrained ConvNet behind neural style transfer.

Five blocks of 3x3 convolutions (stride 1, padding 1, so n_H and n_W are
kept), each followed by a ReLU, with a 2x2 pooling of stride 2 between
blocks, which halves n_H and n_W:

    block 1   conv1_1 conv1_2                    n_C =  64    n_H = H
    block 2   conv2_1 conv2_2                    n_C = 128    n_H = H / 2
    block 3   conv3_1 ... conv3_4                n_C = 256    n_H = H / 4
    block 4   conv4_1 ... conv4_4                n_C = 512    n_H = H / 8
    block 5   conv5_1 ... conv5_4                n_C = 512    n_H = H / 16

For layer l, z^[l] = W^[l] * a^[l-1] + b^[l] and a^[l] = relu(z^[l]), with
W^[l] of shape (n_C^[l], n_C^[l-1], 3, 3). The name conv{b}_{i} stands for
the activation a^[l] AFTER its ReLU, as in the course's assignment and in
Keras. The fully connected layers are not part of the model: style transfer
only reads activations.

Pooling is max pooling, as the network was trained, or average pooling,
which Gatys et al. recommend for image synthesis (smoother gradients); the
weights are the same either way.

Weights (`vgg19(weights=...)`):

    None        look where weight files are usually kept (scratchnet.io lists
                the places); if none is there, fall back to random weights and
                say so in one line
    a path      a MatConvNet .mat, torchvision .pth, Keras .h5 or scratchnet
                .npz file, recognised from its content (scratchnet.io)
    "random"    fixed-seed random weights, no search
    VGGWeights  weights already read with scratchnet.io.load_vgg19_weights

Random weights are He-initialised, W^[l] ~ N(0, 2 / (9 n_C^[l-1])) and
b^[l] = 0, which keeps the second moment of the activations about the same
from layer to layer, so every layer's Gram matrix carries signal. Random
convolutional features do capture texture (Ustyuzhaninov et al., "Texture
synthesis using shallow convolutional networks with random filters", 2016;
Gatys et al. report random-weight VGG results too), but much less well than
trained ones: style transfer with them gives a weaker picture. Their input
recipe is torchvision's (RGB in [0, 1], ImageNet mean and std), so that the
first layer sees unit-scale, roughly centred inputs.

Each source of weights carries its input recipe (scratchnet.io.Preprocess):
`model.preprocess(images)` maps RGB images in [0, 1], (N, 3, n_H, n_W), to
what the weights expect, and `model.deprocess` maps back.

`model.summary((3, n_H, n_W))` lists every layer with its output shape,
parameter count and receptive field; `named_layers()` gives the layers as the
chain that scratchnet.visualize walks to show what their units respond to.

>>> import numpy as np
>>> model = vgg19(weights="random", widths=(2, 3, 4, 5, 5))
>>> x = model.preprocess(np.full((1, 3, 32, 32), 0.5, dtype=np.float32))
>>> {name: a.shape for name, a in model.features(x, ["conv1_1", "conv3_1"]).items()}
{'conv1_1': (1, 2, 32, 32), 'conv3_1': (1, 4, 8, 8)}
"""

import os
import sys

import numpy as np

from .. import functional as F
from ..io import (
    VGG19_CONV_LAYERS,
    VGG19_WIDTHS,
    Preprocess,
    VGGWeights,
    WeightsNotFound,
    expected_shapes,
    load_vgg19_weights,
)
from ..nn import AvgPool2d, Conv2d, MaxPool2d, Module, ReLU, Sequential, init
from ..tensor import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RANDOM_WEIGHTS_SEED = 0
POOLING = {"max": MaxPool2d, "avg": AvgPool2d}
# The last layer of blocks 1 to 4: a pooling follows each.
POOL_AFTER = {"conv1_2": "pool1", "conv2_2": "pool2", "conv3_4": "pool3", "conv4_4": "pool4"}

RANDOM_WEIGHTS_NOTE = (
    "no VGG19 weights file found, so using fixed-seed random weights: the result will be "
    "weaker. For real weights give --weights PATH (weights=PATH in Python) or set "
    "$SCRATCHNET_WEIGHTS, or put vgg19-dcbb9e9d.pth (torchvision), "
    "imagenet-vgg-verydeep-19.mat (MatConvNet) or "
    "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (Keras) in one of the places "
    "`scratchnet weights info` lists."
)


def smallest_input(layers):
    """The smallest n_H and n_W (pixels) of a picture that reaches every one of `layers`:
    2^p for the p poolings (each halves the picture) before the deepest of them."""
    deepest = max(VGG19_CONV_LAYERS.index(name) for name in layers)
    return 2 ** sum(VGG19_CONV_LAYERS.index(name) < deepest for name in POOL_AFTER)


def activation_count(layers, n_H, n_W, widths=VGG19_WIDTHS):
    """How many numbers a forward pass to the deepest of `layers` keeps for the backward pass,
    for one n_H x n_W picture: the output of each conv (its ReLU works in place) and of each
    pooling after it (VGG19.features runs the same chain)."""
    deepest = max(VGG19_CONV_LAYERS.index(name) for name in layers)
    count = 0
    for name in VGG19_CONV_LAYERS[: deepest + 1]:
        channels = widths[int(name[len("conv")]) - 1]    # conv3_2 -> block 3's width
        count += channels * n_H * n_W
        if name in POOL_AFTER and name != VGG19_CONV_LAYERS[deepest]:
            n_H, n_W = n_H // 2, n_W // 2
            count += channels * n_H * n_W
    return count


def _note_to_stderr(line):
    print(line, file=sys.stderr)


def vgg19(weights=None, pooling="max", widths=VGG19_WIDTHS, seed=RANDOM_WEIGHTS_SEED,
          note=_note_to_stderr):
    """VGG19's conv layers with `weights` (see the module docstring), in evaluation mode.

    `pooling` is "max" or "avg". `widths` (the n_C of each block) is for tests
    and experiments with small networks; weight files must match it. `seed`
    draws random weights. `note` receives the one-line message printed when
    no weights file is found (None: silent).

    The parameters do not require gradients: style transfer optimises the
    image, not the network.
    """
    model = VGG19(pooling=pooling, widths=widths)
    weights_read = _read_weights(weights, widths, note)
    if weights_read is None:
        model.load_state_dict(random_params(widths, seed))
        model.preprocessing = Preprocess(
            "RGB", 1.0, IMAGENET_MEAN, IMAGENET_STD,
            source=f"random weights (seed {seed}), ImageNet mean and std")
        model.weights_source = f"random (seed {seed})"
    else:
        model.load_state_dict(weights_read.params)
        model.preprocessing = weights_read.preprocess
        model.weights_source = weights_read.source_path
    return model.requires_grad_(False).eval()


def _read_weights(weights, widths, note):
    """A VGGWeights, or None for random weights; see vgg19."""
    if isinstance(weights, VGGWeights):
        return weights
    if isinstance(weights, str) and weights == "random":
        return None
    if weights is not None:
        if not isinstance(weights, (str, os.PathLike)):
            raise TypeError(
                "weights: expected None, 'random', a path or a VGGWeights, "
                f"got {type(weights).__name__}")
        return load_vgg19_weights(weights, widths)
    try:
        return load_vgg19_weights(None, widths)
    except WeightsNotFound:
        if os.environ.get("SCRATCHNET_WEIGHTS"):
            raise  # the user named a file that is not there: an error, not a fallback
        if note is not None:
            note(RANDOM_WEIGHTS_NOTE)
        return None


def random_params(widths=VGG19_WIDTHS, seed=RANDOM_WEIGHTS_SEED):
    """He-initialised VGG19 parameters from `seed`: W ~ N(0, 2 / fan_in), b = 0, float32."""
    generator = np.random.default_rng(seed)
    params = {}
    for name, shape in expected_shapes(widths).items():
        array = Tensor(np.zeros(shape, dtype=np.float32))
        if name.endswith(".weight"):
            init.kaiming_normal_(array, nonlinearity="relu", generator=generator)
        params[name] = array.data
    return params


class VGG19(Module):
    """The 16 conv layers conv1_1 ... conv5_4 and the 4 poolings between blocks.

    Use `vgg19()` to get one with weights; this constructor leaves them at
    PyTorch's default initialisation and the preprocessing unset.
    """

    layer_names = VGG19_CONV_LAYERS

    def __init__(self, pooling="max", widths=VGG19_WIDTHS):
        super().__init__()
        if pooling not in POOLING:
            raise ValueError(f"pooling: expected 'max' or 'avg', got {pooling!r}")
        self.pooling = pooling
        self.widths = tuple(int(w) for w in widths)
        for name, shape in expected_shapes(self.widths).items():
            if name.endswith(".weight"):
                n_C, n_C_prev = shape[:2]
                setattr(self, name[: -len(".weight")], Conv2d(n_C_prev, n_C, 3, padding=1))
        for pool_name in POOL_AFTER.values():
            setattr(self, pool_name, POOLING[pooling](2, stride=2))
        self.preprocessing = None
        self.weights_source = "PyTorch default initialisation"

    def features(self, x, layers):
        """Dict from each name in `layers` to its activation a^[l] (after the ReLU).

        `x` is the network's input (what `preprocess` returns), an array or a
        Tensor of shape (N, 3, n_H, n_W). One forward pass runs the layers in
        order and stops at the deepest one requested.
        """
        wanted = self._checked_layer_names(layers)
        deepest = max(self.layer_names.index(name) for name in wanted)
        a = x if isinstance(x, Tensor) else Tensor(x)
        self._check_input(a, deepest)
        activations = {}
        for name in self.layer_names[: deepest + 1]:
            a = F.relu(getattr(self, name)(a), inplace=True)   # the conv's output is not needed
            if name in wanted:
                activations[name] = a
            if name in POOL_AFTER and name != self.layer_names[deepest]:
                a = getattr(self, POOL_AFTER[name])(a)
        return activations

    def forward(self, x):
        """a^[conv5_4], the last conv layer's activation."""
        last = self.layer_names[-1]
        return self.features(x, [last])[last]

    def preprocess(self, images):
        """RGB `images` in [0, 1], (N, 3, n_H, n_W) -> the weights' input (same kind back).

        x_pre[:, c] = (scale * x[:, pi(c)] - mean[c]) / std[c] (scratchnet.io.Preprocess).
        A NumPy array gives a NumPy array; a Tensor gives a Tensor made of
        autograd ops, so that a gradient can flow back to images in [0, 1].
        """
        recipe = self._recipe()
        if not isinstance(images, Tensor):
            return recipe.preprocess_array(images)
        _check_images("images", images)
        mean, std = _per_channel(recipe, images.dtype)
        if recipe.channel_order == "BGR":
            images = images[:, recipe.channel_permutation]
        return (images * recipe.scale - mean) / std

    def deprocess(self, x):
        """The inverse of preprocess: the weights' input -> RGB in [0, 1] (same kind back)."""
        recipe = self._recipe()
        if not isinstance(x, Tensor):
            return recipe.deprocess_array(x)
        _check_images("x", x)
        mean, std = _per_channel(recipe, x.dtype)
        rgb = (x * std + mean) / recipe.scale
        # pi is its own inverse (identity or reversal)
        return rgb[:, recipe.channel_permutation] if recipe.channel_order == "BGR" else rgb

    def named_layers(self):
        """The network as a chain (scratchnet.visualize): conv1_1 ... conv5_4, each a
        Sequential of the conv and its ReLU (so a^[l] is its output), and pool1 ... pool4.

        Running them in order on x gives the activations that features(x) returns.
        """
        layers = []
        for name in self.layer_names:
            layers.append((name, Sequential(getattr(self, name), ReLU())))
            if name in POOL_AFTER:
                layers.append((POOL_AFTER[name], getattr(self, POOL_AFTER[name])))
        return layers

    def input_from_rgb(self, images):
        """RGB images in [0, 1] -> the network's input: `preprocess` (for scratchnet.visualize)."""
        return self.preprocess(images)

    def extra_repr(self):
        return f"pooling={self.pooling!r}, widths={self.widths}"

    # ------------------------------------------------------------ checks
    def _recipe(self):
        if self.preprocessing is None:
            raise ValueError(
                "this VGG19 has no preprocessing: build it with vgg19(...), "
                "or set model.preprocessing to a scratchnet.io.Preprocess")
        return self.preprocessing

    def _checked_layer_names(self, layers):
        if isinstance(layers, str):
            layers = [layers]
        wanted = list(layers)
        unknown = [name for name in wanted if name not in self.layer_names]
        if unknown or not wanted:
            raise ValueError(
                f"layers: expected names among {', '.join(self.layer_names)}; "
                f"got {unknown if unknown else 'none'}")
        return wanted

    def _check_input(self, x, deepest):
        _check_images("x", x)
        smallest = smallest_input([self.layer_names[deepest]])
        if min(x.shape[2:]) < smallest:
            raise ValueError(
                f"x: an image of {x.shape[2]}x{x.shape[3]} pixels is too small to reach "
                f"{self.layer_names[deepest]}, which needs at least {smallest}x{smallest}")


def _check_images(argument, images):
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{argument}: expected shape (N, 3, n_H, n_W), got {images.shape}")


def _per_channel(recipe, dtype):
    """mean and std of `recipe` shaped (1, 3, 1, 1) in `dtype`."""
    mean = np.asarray(recipe.mean, dtype=dtype).reshape(1, 3, 1, 1)
    std = np.asarray(recipe.std, dtype=dtype).reshape(1, 3, 1, 1)
    return mean, std
