"""scratchnet.nn: layers and models built from scratchnet's differentiable ops.

Names and semantics follow torch.nn so that what a learner knows carries
over: subclass Module, assign layers and Parameters as attributes, call
the model on a Tensor.

    import numpy as np
    from scratchnet import Tensor, nn, optim

    nn.manual_seed(0)                       # reproducible initial weights
    model = nn.Sequential(
        nn.Conv2d(3, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 10),
    )
    loss = nn.CrossEntropyLoss()(model(Tensor(images)), labels)
    loss.backward()

Weights are saved with `model.save("model.npz")` and read back with
`model.load("model.npz")`: plain .npz files, written atomically, read
without pickle. Random initialisation draws from one shared NumPy
generator, restarted by `manual_seed(seed)`; `nn.init` has the He and
Xavier initialisers.
"""

from . import init
from .activation import LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .conv import Conv1d, Conv2d, Conv3d
from .dropout import Dropout
from .flatten import Flatten
from .linear import Identity, Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import IncompatibleKeys, Module, Parameter, Sequential
from .norm import BatchNorm1d, BatchNorm2d, BatchNorm3d, ChannelAffine
from .pixel_shuffle import PixelShuffle, PixelUnshuffle
from .pool import AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d
from .rng import manual_seed

__all__ = [
    "Module", "Parameter", "Sequential", "IncompatibleKeys",
    "Conv1d", "Conv2d", "Conv3d", "Linear", "Identity", "Flatten", "Dropout",
    "PixelUnshuffle", "PixelShuffle",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "ChannelAffine",
    "ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
    "CrossEntropyLoss", "MSELoss",
    "init", "manual_seed",
]
