"""What a VGG19 weights file must give: 16 conv layers and how to feed them images.

VGG19's convolutional part is five blocks of 3x3 convolutions (stride 1,
padding 1), each followed by a ReLU, with a 2x2 pooling between blocks:

    block b:   conv{b}_1 ... conv{b}_{n_b},   n_b = 2, 2, 4, 4, 4
    widths:    n_C = 64, 128, 256, 512, 512   (filters per layer in block b)

In the course's notation layer l has n_C^[l] filters of size f x f x n_C^[l-1]
(f = 3, n_C^[0] = 3 for an RGB image). scratchnet stores them as PyTorch does,
channels-first: W^[l] of shape (n_C^[l], n_C^[l-1], f, f) ("OIHW": out, in,
height, width) and b^[l] of shape (n_C^[l],), under the names
"conv{b}_{i}.weight" and "conv{b}_{i}.bias".

Each trained network expects its input prepared the way its training images
were. Every such recipe here is one per-channel affine map: for an RGB image
x in [0, 1] of shape (N, 3, n_H, n_W),

    x_pre[:, c] = (scale * x[:, pi(c)] - mean[c]) / std[c]

where pi reorders the channels (identity for "RGB", reversal for "BGR") and
mean, std are given in the network's own channel order and scale:

    source                   order  scale  mean                        std
    MatConvNet (.mat)        RGB    255    averageImage (~123.7 116.8 103.9)  1
    torchvision (.pth)       RGB    1      0.485 0.456 0.406           0.229 0.224 0.225
    Keras "caffe" (.h5)      BGR    255    103.939 116.779 123.68      1

>>> p = Preprocess("BGR", 255.0, (103.939, 116.779, 123.68), source="example")
>>> red = np.zeros((1, 3, 1, 1), dtype=np.float32); red[0, 0] = 1.0
>>> p.preprocess_array(red)[0, :, 0, 0]      # B, G, R after the mean is taken off
array([-103.939, -116.779,  131.32 ], dtype=float32)
>>> bool(np.allclose(p.deprocess_array(p.preprocess_array(red)), red))
True
"""

from dataclasses import dataclass

import numpy as np

VGG19_BLOCK_DEPTHS = (2, 2, 4, 4, 4)
VGG19_WIDTHS = (64, 128, 256, 512, 512)
KERNEL_SIZE = 3

VGG19_CONV_LAYERS = tuple(
    f"conv{block}_{index}"
    for block, depth in enumerate(VGG19_BLOCK_DEPTHS, start=1)
    for index in range(1, depth + 1)
)
VGG19_PARAM_NAMES = tuple(
    f"{layer}.{kind}" for layer in VGG19_CONV_LAYERS for kind in ("weight", "bias")
)

CHANNEL_ORDERS = ("RGB", "BGR")


class WeightsFormatError(ValueError):
    """A weights file that cannot be read: damaged, unknown, or not VGG19's conv stack."""


class WeightsNotFound(FileNotFoundError):
    """No weights file was given and none was found where they are usually kept."""


class ReaderNotInstalled(ImportError):
    """A weights file whose reader needs an optional package that is not installed."""


def expected_shapes(widths=VGG19_WIDTHS):
    """Dict from parameter name to its OIHW shape for a VGG19 whose blocks have `widths` filters."""
    if len(widths) != len(VGG19_BLOCK_DEPTHS) or not all(
        isinstance(w, (int, np.integer)) and w > 0 for w in widths
    ):
        raise ValueError(f"widths: expected 5 positive ints (one per block), got {widths!r}")
    shapes, n_C_prev = {}, 3
    for block, depth in enumerate(VGG19_BLOCK_DEPTHS, start=1):
        n_C = int(widths[block - 1])
        for index in range(1, depth + 1):
            layer = f"conv{block}_{index}"
            shapes[f"{layer}.weight"] = (n_C, n_C_prev, KERNEL_SIZE, KERNEL_SIZE)
            shapes[f"{layer}.bias"] = (n_C,)
            n_C_prev = n_C
    return shapes


def hwio_to_oihw(kernel):
    """A TensorFlow/MatConvNet kernel indexed [row, column, in, out] in PyTorch's layout."""
    # (f_h, f_w, n_C_prev, n_C) -> (n_C, n_C_prev, f_h, f_w)
    return np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1)), dtype=np.float32)


@dataclass(frozen=True)
class Preprocess:
    """How an RGB image in [0, 1] becomes what the weights were trained on (see the module doc)."""

    channel_order: str
    scale: float
    mean: tuple
    std: tuple = (1.0, 1.0, 1.0)
    source: str = ""

    def __post_init__(self):
        if self.channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order: expected 'RGB' or 'BGR', got {self.channel_order!r}")
        object.__setattr__(self, "scale", _finite("scale", self.scale, 1, positive=True)[0])
        object.__setattr__(self, "mean", _finite("mean", self.mean, 3))
        object.__setattr__(self, "std", _finite("std", self.std, 3, positive=True))

    @property
    def channel_permutation(self):
        """pi: channel c of the network's input is channel pi[c] of the RGB image."""
        return [0, 1, 2] if self.channel_order == "RGB" else [2, 1, 0]

    def preprocess_array(self, images):
        """x_pre[:, c] = (scale * x[:, pi(c)] - mean[c]) / std[c], for RGB `images` in [0, 1]."""
        images = _checked_images(images, "images")
        mean, std = self._per_channel(images.dtype)
        return (self.scale * images[:, self.channel_permutation] - mean) / std

    def deprocess_array(self, x_pre):
        """The inverse: x[:, pi(c)] = (std[c] * x_pre[:, c] + mean[c]) / scale, back to RGB."""
        x_pre = _checked_images(x_pre, "x_pre")
        mean, std = self._per_channel(x_pre.dtype)
        # pi is its own inverse (identity or reversal), so indexing by it undoes it
        return ((std * x_pre + mean) / self.scale)[:, self.channel_permutation]

    def _per_channel(self, dtype):
        """mean and std shaped (1, 3, 1, 1) to broadcast over (N, 3, n_H, n_W)."""
        mean = np.asarray(self.mean, dtype=dtype).reshape(1, 3, 1, 1)
        std = np.asarray(self.std, dtype=dtype).reshape(1, 3, 1, 1)
        return mean, std


def _finite(argument, value, count, positive=False):
    """`value` (numbers, in an array of any shape) as a tuple of `count` finite floats, each
    > 0 when `positive`; else a ValueError naming `argument`, the expectation and what came."""
    try:
        array = np.asarray(value)
    except ValueError:                        # a ragged list: refused below
        array = np.asarray(value, dtype=object)
    numbers = array.ravel().astype(np.float64) if array.dtype.kind in "iuf" else np.array([])
    if (numbers.size != count or not np.all(np.isfinite(numbers))
            or (positive and np.any(numbers <= 0))):
        sign = " positive" if positive else ""
        expected = f"a finite{sign} number" if count == 1 else f"{count} finite{sign} numbers"
        shown = repr(array.tolist()) if array.size <= 6 else f"an array of shape {array.shape}"
        raise ValueError(f"{argument}: expected {expected}, got {shown}")
    return tuple(float(v) for v in numbers)


@dataclass(frozen=True)
class VGGWeights:
    """VGG19's 16 conv layers as float32 OIHW arrays, with the input recipe they need.

    params: dict "conv1_1.weight" -> (n_C, n_C_prev, 3, 3), "conv1_1.bias" -> (n_C,), ...
    preprocess: a Preprocess; source_path: the file they came from.
    """

    params: dict
    preprocess: Preprocess
    source_path: str

    def preprocess_array(self, images):
        """RGB images in [0, 1], (N, 3, n_H, n_W) -> the network's input (see Preprocess)."""
        return self.preprocess.preprocess_array(images)

    def deprocess_array(self, x_pre):
        """The network's input -> RGB images in [0, 1] (inverse of preprocess_array)."""
        return self.preprocess.deprocess_array(x_pre)


def _checked_images(images, argument):
    images = np.asarray(images)
    if images.dtype.kind != "f":
        raise TypeError(f"{argument}: expected a float array, got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{argument}: expected shape (N, 3, n_H, n_W), got {images.shape}")
    return images


def validate_params(params, widths, path):
    """Check that `params` holds all 32 VGG19 arrays with the shapes `widths` imply.

    widths=None takes each block's width from its first kernel, so only the
    layers' fit with each other is checked. Returns a new dict of float32
    arrays in layer order. Raises WeightsFormatError naming the missing
    layers, or the first layer whose shape is wrong with both shapes.
    """
    missing = [layer for layer in VGG19_CONV_LAYERS
               if f"{layer}.weight" not in params or f"{layer}.bias" not in params]
    if missing:
        found = len(VGG19_CONV_LAYERS) - len(missing)
        raise WeightsFormatError(
            f"{path}: missing VGG19 conv layers {', '.join(missing)} "
            f"(found {found} of {len(VGG19_CONV_LAYERS)})")
    if widths is None:
        widths = tuple(int(np.shape(params[f"conv{block}_1.weight"])[0])
                       for block in range(1, len(VGG19_BLOCK_DEPTHS) + 1))
    shapes = expected_shapes(widths)
    checked = {}
    for name, shape in shapes.items():
        array = np.asarray(params[name])
        if array.shape != shape:
            raise WeightsFormatError(
                f"{path}: {name} has shape {array.shape}, expected {shape} "
                f"(VGG19 with block widths {tuple(widths)})")
        if array.dtype.kind != "f" or not np.all(np.isfinite(array)):
            raise WeightsFormatError(f"{path}: {name} must hold finite floats (dtype {array.dtype})")
        checked[name] = np.ascontiguousarray(array, dtype=np.float32)
    return checked
