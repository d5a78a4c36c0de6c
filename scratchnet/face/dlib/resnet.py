"""dlib's face ResNet (dlib_face_recognition_resnet_model_v1) on scratchnet's ops: f(x) in R^128.

The encoder of the course's face-recognition lecture, trained by Davis King
with a metric loss on about 3 million faces: a 150 x 150 RGB face chip goes
in, a 128-d descriptor f(x) comes out, and two chips show one person when
d(x1, x2) = ||f(x1) - f(x2)||_2 < tau, with tau = 0.6 as the model was
trained (its loss_metric's distance threshold, read from the file).

Input: a^[0] = (pixel - mean_c) / 256 per channel c = R, G, B, with the
means stored in the file (122.782, 117.001, 104.298).

Layers (n_C x n_H x n_W of each output for one chip; a "unit" is
a^[l+2] = relu(shortcut(a^[l]) + affine(conv(relu(affine(conv(a^[l])))))):

    stem     conv 7x7/2, affine, relu           32 x 72 x 72
             max pool 3x3/2                     32 x 35 x 35
    level 4  3 units, 32 filters                32 x 35 x 35
    level 3  1 down unit + 3 units, 64          64 x 17 x 17
    level 2  1 down unit + 2 units, 128        128 x  8 x  8
    level 1  1 down unit + 2 units, 256        256 x  4 x  4
    level 0  1 down unit, 256                  256 x  2 x  2
    head     global average pool, fc 256 -> 128 without bias

29 convolutions in all, each with a bias. Every normalisation is stored
already folded into a per-channel affine z~ = gamma z + beta (dlib's
affine_ layer: a batch norm's running statistics turned into gamma and
beta). Convolutions of stride 1 pad by 1; those of stride 2 pad by
nothing, so 35 -> 17 -> 8 -> 3 -> 1.

In a down unit the first conv has stride 2 and the shortcut is a 2x2/2
average pool of a^[l] (no projection). The two branches may then differ in
size -- at level 1 the pool gives 128 x 4 x 4 and the convs 256 x 3 x 3 --
and dlib's add_prev adds them by zero-padding the smaller one, channels and
space, at the bottom and right (top-left aligned), not by cropping: the
sum is 256 x 4 x 4.

The file does not say which tag a skip or add_prev goes back to; the units
above are dlib's dnn_face_recognition_ex.cpp definition, and the builder
checks the file's layer sequence against it.

>>> from scratchnet import Tensor
>>> a = Tensor(np.ones((1, 2, 2, 2), dtype=np.float32))
>>> b = Tensor(np.ones((1, 3, 1, 3), dtype=np.float32))
>>> add_zero_padded(a, b).data[0, :, :, 2]
array([[1., 0.],
       [1., 0.],
       [1., 0.]], dtype=float32)
"""

import numpy as np

from ... import functional as F
from ...io.dlib_dnn import TAG_OR_SKIP, read_dlib_network_file
from ...io.dlib_format import DlibFormatError
from ...nn import (
    AvgPool2d,
    ChannelAffine,
    Conv2d,
    Identity,
    MaxPool2d,
    Module,
    Parameter,
    ReLU,
    Sequential,
)
from ...tensor import Tensor, no_grad
from .files import find_model_file

CHIP_SIZE = 150
DEFAULT_TAU = 0.6


def add_zero_padded(a, b):
    """a + b where the smaller is zero-padded after its last channel, row and column."""
    target = np.maximum(a.shape, b.shape)
    return F.add(_pad_to(a, target), _pad_to(b, target))


def _pad_to(x, target):
    """x zero-padded at the end of axes C, H, W up to `target` (N must already match)."""
    extra = [int(t - s) for t, s in zip(target, x.shape, strict=True)]
    if extra[0] != 0:
        raise ValueError(f"cannot add tensors of batch sizes {x.shape[0]} and {target[0]}")
    if not any(extra):
        return x
    return F.pad(x, (0, extra[3], 0, extra[2], 0, extra[1]))  # (W, H, C) widths, last axis first


class ConvAffine(Module):
    """conv (with bias) then affine: one conv + normalisation of the network."""

    def __init__(self, conv_record, affine_record):
        super().__init__()
        weight = conv_record.values["weight"]
        self.conv = Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:],
                           stride=conv_record.values["stride"],
                           padding=conv_record.values["padding"])
        self.conv.weight.data[...] = weight
        self.conv.bias.data[...] = conv_record.values["bias"]
        self.affine = ChannelAffine(affine_record.values["gamma"], affine_record.values["beta"])

    def named_layers(self):
        """conv then affine, as a chain (scratchnet.visualize)."""
        return [("conv", self.conv), ("affine", self.affine)]

    def forward(self, x):
        return self.affine(self.conv(x))


class ResidualUnit(Module):
    """a^[l+2] = relu(shortcut(a^[l]) + B(relu(A(a^[l])))), shortcut: identity or 2x2/2 pool."""

    def __init__(self, first, second, pool=None):
        super().__init__()
        self.first, self.second = first, second
        self.pool = pool  # (size, stride) of the shortcut's average pool, or None

    def paths(self):
        """The two summed paths as modules (scratchnet.visualize): the branch and the shortcut."""
        shortcut = Identity() if self.pool is None else AvgPool2d(*self.pool)
        return [Sequential(self.first, ReLU(), self.second), shortcut]

    def forward(self, a):
        branch = self.second(F.relu(self.first(a)))
        shortcut = a if self.pool is None else F.avg_pool2d(a, self.pool[0], self.pool[1])
        return F.relu(add_zero_padded(branch, shortcut))


class FaceResNet(Module):
    """The network: stem, residual units, global average pool, fc 256 -> 128."""

    def __init__(self, stem, pool, units, fc_weight, mean_rgb, tau=DEFAULT_TAU):
        super().__init__()
        self.stem = stem
        self.pool = pool  # (size, stride) of the stem's max pool
        self.units = Sequential(*units)
        self.fc_weight = Parameter(np.asarray(fc_weight, dtype=np.float32))  # (128, 256)
        self.register_buffer("mean_rgb", np.asarray(mean_rgb, dtype=np.float32))
        self.tau = tau

    def preprocess(self, chips):
        """uint8 RGB chips (N, 150, 150, 3) -> a^[0] = (chip - mean) / 256, (N, 3, 150, 150)."""
        chips = check_chips(chips)
        x = (chips.astype(np.float32) - self.mean_rgb) / np.float32(256)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # (N, H, W, C) -> (N, C, H, W)

    def named_layers(self):
        """The network as a chain (scratchnet.visualize): stem (conv, affine, ReLU), pool,
        unit1 ... unit14 and head; forward runs the same operations in this order."""
        units = [(f"unit{u + 1}", unit) for u, unit in enumerate(self.units)]
        return ([("stem", Sequential(self.stem, ReLU())), ("pool", MaxPool2d(*self.pool))]
                + units + [("head", DescriptorHead(self.fc_weight))])

    def input_from_rgb(self, images):
        """RGB images in [0, 1], (N, 3, n_H, n_W), array or Tensor -> a^[0] = (255 x - mean) / 256.

        The same a^[0] as `preprocess` gives for 8-bit chips, for any picture size.
        """
        mean = self.mean_rgb.reshape(1, 3, 1, 1)
        return (images * np.float32(255) - mean) / np.float32(256)

    def forward(self, x):
        a = F.relu(self.stem(x))
        a = F.max_pool2d(a, self.pool[0], self.pool[1])
        a = self.units(a)
        pooled = F.mean(a, axis=(2, 3))  # (N, C, H, W) -> (N, C)
        return F.linear(pooled, self.fc_weight)

    def descriptor(self, chips, batch_size=16):
        """f(x) for each chip: (N, 150, 150, 3) uint8 -> (N, 128) float32, run in batches."""
        x = self.preprocess(chips)
        parts = []
        with no_grad():
            for start in range(0, len(x), batch_size):
                parts.append(self(Tensor(x[start:start + batch_size])).data)
        return np.concatenate(parts) if parts else np.zeros((0, 128), dtype=np.float32)


class DescriptorHead(Module):
    """Global average pool then fc without bias: (N, 256, n_H, n_W) -> (N, 128)."""

    def __init__(self, fc_weight):
        super().__init__()
        self.fc_weight = fc_weight  # the FaceResNet's own Parameter, shared

    def forward(self, a):
        pooled = F.mean(a, axis=(2, 3))  # (N, C, H, W) -> (N, C)
        return F.linear(pooled, self.fc_weight)


def check_chips(chips):
    """chips as a (N, 150, 150, 3) uint8 array; one (150, 150, 3) chip becomes N = 1."""
    if not isinstance(chips, np.ndarray):
        raise TypeError(f"chips must be a numpy.ndarray, got {type(chips).__name__}")
    if chips.dtype != np.uint8:
        raise TypeError(f"chips must have dtype uint8 (RGB 0..255), got {chips.dtype}")
    if chips.ndim == 3:
        chips = chips[None]  # (H, W, 3) -> (1, H, W, 3)
    if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
        raise ValueError(f"chips must have shape (N, {CHIP_SIZE}, {CHIP_SIZE}, 3) or "
                         f"({CHIP_SIZE}, {CHIP_SIZE}, 3), got {chips.shape}")
    return chips


def distance(f1, f2):
    """d = ||f(x1) - f(x2)||_2 along the last axis."""
    return np.linalg.norm(np.asarray(f1) - np.asarray(f2), axis=-1)


# ---- building the model from a parsed file ----

class _Records:
    """The file's layer records, consumed in order, with checks against the expected kinds."""

    def __init__(self, network, source):
        self.layers, self.source, self.position = network.layers, source, 0

    def peek(self, count=1):
        return [layer.kind for layer in self.layers[self.position:self.position + count]]

    def take(self, *kinds):
        found = self.layers[self.position:self.position + len(kinds)]
        if [layer.kind for layer in found] != list(kinds):
            where = found[0].offset if found else -1
            raise DlibFormatError(
                f"{self.source}: not dlib's face ResNet: expected layers {list(kinds)} at layer "
                f"{self.position} (byte offset {where}), found {[layer.kind for layer in found]}",
                where)
        self.position += len(kinds)
        return found


def build_face_resnet(network, source="<network>"):
    """A FaceResNet from a parsed DlibNetwork, checking its layers against the definition."""
    if network.loss.kind != "loss_metric" or network.input.kind != "input_rgb_image_sized":
        raise DlibFormatError(f"{source}: not a face ResNet (loss {network.loss.tag!r}, "
                              f"input {network.input.tag!r})", network.loss.offset)
    records = _Records(network, source)
    conv, affine, _, pool = records.take("con", "affine", "relu", "max_pool")
    stem = ConvAffine(conv, affine)
    units = []
    while records.peek() == [TAG_OR_SKIP]:
        units.append(_build_unit(records))
    global_pool, fc = records.take("avg_pool", "fc")
    if global_pool.values["size"] != (0, 0) or records.position != len(network.layers):
        raise DlibFormatError(f"{source}: expected a global average pool then fc at the end",
                              global_pool.offset)
    tau = network.loss.values["distance_threshold"]
    fc_weight = fc.values["weight"].T  # dlib's (256, 128) for y = x W -> (128, 256) for F.linear
    return FaceResNet(stem, (pool.values["size"], pool.values["stride"]), units, fc_weight,
                      network.input.values["mean_rgb"], tau=tau)


def _build_unit(records):
    """tag1, conv, affine, relu, conv, affine, [tag2, skip1, avg_pool], add_prev, relu."""
    records.take(TAG_OR_SKIP)
    conv_a, affine_a, _, conv_b, affine_b = records.take("con", "affine", "relu", "con", "affine")
    pool = None
    if records.peek(3) == [TAG_OR_SKIP, TAG_OR_SKIP, "avg_pool"]:
        *_, pool_record = records.take(TAG_OR_SKIP, TAG_OR_SKIP, "avg_pool")
        pool = (pool_record.values["size"], pool_record.values["stride"])
    records.take("add_prev", "relu")
    return ResidualUnit(ConvAffine(conv_a, affine_a), ConvAffine(conv_b, affine_b), pool)


_loaded = {}


def load_face_resnet(path=None):
    """The face ResNet read from dlib's file (found as in files.py); loaded once per path."""
    file = find_model_file("resnet", path)
    if file not in _loaded:
        network = read_dlib_network_file(file)
        try:
            _loaded[file] = build_face_resnet(network, str(file))
        except DlibFormatError:
            raise
        except (ValueError, TypeError) as error:   # layers of impossible sizes, say
            raise DlibFormatError(f"{file}: a network scratchnet cannot build ({error})",
                                  -1) from None
    return _loaded[file]


def descriptor(chips, path=None):
    """f(x) for each 150 x 150 chip: (N, 150, 150, 3) uint8 -> (N, 128); one chip -> (128,)."""
    model = load_face_resnet(path)
    single = isinstance(chips, np.ndarray) and chips.ndim == 3
    values = model.descriptor(chips)
    return values[0] if single else values
