"""The face encoder f(x): a small ConvNet from a face picture to a 128-d embedding.

The Siamese network of the course is ONE encoder applied to every picture:
d(x1, x2) = ||f(x1) - f(x2)||^2 compares two pictures through their
encodings, and the triplet loss trains f so that pictures of one person land
close together and pictures of two persons far apart.

Architecture (for 64x64 RGB input and the defaults: width w = 32, three
blocks, input halved first):

    input     average-pool 2x2                            64x64 -> 32x32
    block 1   conv 3x3 (3 -> w)     BN  ReLU  max-pool 2x2    32x32 -> 16x16
    block 2   conv 3x3 (w -> 2w)    BN  ReLU  max-pool 2x2    16x16 ->  8x8
    block 3   conv 3x3 (2w -> 4w)   BN  ReLU  max-pool 2x2     8x8  ->  4x4
              (with convs_per_block = 2, each block has a second conv 3x3 + BN + ReLU,
              keeping its channels, before the pooling, as VGG's blocks do)
    flatten   4w * 4 * 4 = 2048 numbers
    linear    2048 -> 128
    neck      batch norm of the 128 numbers (with neck=True; the default for training)
    f(x)      the 128 numbers divided by their L2 norm, so ||f(x)|| = 1

Block b doubles the channels of block b - 1 up to 4w. The first average
pooling (`downsample`) trades detail for speed: a person is told apart by
shapes and colours that survive at 32x32, and every layer after it costs
four times less; downsample=1 keeps the full resolution.

Each convolution has padding 1 (n_H and n_W kept) and no bias (the batch
norm's beta takes its place). The L2 normalisation puts every embedding on
the unit sphere, as FaceNet does: squared distances then lie in [0, 4], so
one margin alpha and one threshold tau mean the same thing for every model.
The neck (Luo et al. 2019, "Bag of tricks and a strong baseline for deep
person re-identification") standardises each of the 128 numbers over the
batch before that division, so that no coordinate dominates the direction;
on the synthetic faces it is one of three changes that together raise the
best-threshold bound of one-shot recognition by about a point and a half
(docs/face.md). With it the linear layer
has no bias, as the convolutions have none before their batch norms.
Without it (neck=False, as in files saved before it existed) the linear
layer's output, bias included, is normalised directly.

A VGG-like stack rather than a ResNet: three blocks are shallow enough to
train without shortcuts, and each layer's role is visible on its own.

>>> import numpy as np
>>> from scratchnet import Tensor, no_grad
>>> f = FaceEncoder(width=4, seed=0).eval()
>>> with no_grad():
...     e = f(Tensor(np.zeros((2, 3, 64, 64), np.float32)))
>>> e.shape, np.allclose(np.linalg.norm(e.data, axis=1), 1.0)
((2, 128), True)
"""

import numpy as np

from .. import functional as F
from ..nn import (
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Identity,
    Linear,
    MaxPool2d,
    Module,
    ReLU,
    Sequential,
)
from ..nn.rng import manual_seed

MAX_WIDTH_FACTOR = 4       # channels grow w, 2w, 4w, 4w, ...


class FaceEncoder(Module):
    """f(x): (N, 3, image_size, image_size) images in [0, 1] -> (N, embedding_size) unit vectors."""

    def __init__(self, width=32, embedding_size=128, image_size=64, blocks=3, downsample=2,
                 convs_per_block=1, neck=False, seed=None):
        super().__init__()
        for name, value in (("width", width), ("embedding_size", embedding_size),
                            ("blocks", blocks), ("downsample", downsample),
                            ("convs_per_block", convs_per_block)):
            _check_positive_int(name, value)
        _check_image_size(image_size, 2 ** blocks * downsample)
        self.width, self.embedding_size, self.image_size = width, embedding_size, image_size
        self.blocks, self.downsample, self.convs_per_block = blocks, downsample, convs_per_block
        if not isinstance(neck, (bool, np.bool_)):
            raise TypeError(f"neck: expected True or False, got {neck!r}")
        self.has_neck = bool(neck)
        if seed is not None:
            manual_seed(seed)
        channels = [3] + [width * min(2 ** b, MAX_WIDTH_FACTOR) for b in range(blocks)]
        self.shrink = AvgPool2d(downsample) if downsample > 1 else Identity()
        self.features = Sequential(*[_block(c_in, c_out, convs_per_block)
                                     for c_in, c_out in zip(channels[:-1], channels[1:])])
        final_side = image_size // (2 ** blocks * downsample)
        self.flatten = Flatten()
        self.embedding = Linear(channels[-1] * final_side * final_side, embedding_size,
                                bias=not neck)  # the neck's beta takes the bias's place
        self.neck = BatchNorm1d(embedding_size) if neck else Identity()

    def architecture(self):
        """The constructor's arguments (without seed): what rebuilds this network."""
        return {"width": self.width, "embedding_size": self.embedding_size,
                "image_size": self.image_size, "blocks": self.blocks,
                "downsample": self.downsample, "convs_per_block": self.convs_per_block,
                "neck": self.has_neck}

    def named_layers(self):
        """The network as a chain (scratchnet.visualize): shrink, block1 ... blockB, flatten,
        embedding, neck (if any); forward runs them in this order, then divides by the L2 norm."""
        blocks = [(f"block{b + 1}", block) for b, block in enumerate(self.features)]
        return ([("shrink", self.shrink)] + blocks
                + [("flatten", self.flatten), ("embedding", self.embedding)]
                + ([("neck", self.neck)] if self.has_neck else []))

    def forward(self, x):
        if x.ndim != 4 or x.shape[1:] != (3, self.image_size, self.image_size):
            raise ValueError(f"x: expected (N, 3, {self.image_size}, {self.image_size}) images, "
                             f"got shape {tuple(x.shape)}")
        features = self.flatten(self.features(self.shrink(x)))  # (N, c, s, s) -> (N, c s s)
        return F.normalize(self.neck(self.embedding(features)), dim=1)

    def extra_repr(self):
        return ", ".join(f"{name}={value}" for name, value in self.architecture().items())


def _block(c_in, c_out, convs):
    """`convs` times conv 3x3 + BN + ReLU (c_in -> c_out, then c_out -> c_out), then max-pool 2x2."""
    layers = []
    for k in range(convs):
        layers += [Conv2d(c_in if k == 0 else c_out, c_out, 3, padding=1, bias=False),
                   BatchNorm2d(c_out), ReLU()]
    return Sequential(*layers, MaxPool2d(2))


def _check_positive_int(name, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")


def _check_image_size(image_size, factor):
    _check_positive_int("image_size", image_size)
    if image_size % factor:
        raise ValueError(f"image_size: expected a multiple of {factor} (the input is halved "
                         f"log2({factor}) times), got {image_size}")
