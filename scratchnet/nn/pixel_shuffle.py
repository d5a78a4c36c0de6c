"""PixelUnshuffle and PixelShuffle: space to depth and back, as layers (torch.nn's names).

    PixelUnshuffle(r)   (N, C, H, W) -> (N, C r^2, H / r, W / r)   each r x r square of
                                                                   pixels becomes channels
    PixelShuffle(r)     (N, C r^2, H, W) -> (N, C, H r, W r)       the inverse

Unlike a pooling, nothing is lost: a convolution after PixelUnshuffle sees every pixel
while it works at 1/r^2 of the positions.

>>> import numpy as np
>>> from scratchnet import Tensor
>>> PixelUnshuffle(2)(Tensor(np.zeros((1, 3, 64, 64)))).shape
(1, 12, 32, 32)
"""

from .. import functional as F
from .module import Module


class PixelUnshuffle(Module):
    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, x):
        return F.pixel_unshuffle(x, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"


class PixelShuffle(Module):
    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, x):
        return F.pixel_shuffle(x, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"
