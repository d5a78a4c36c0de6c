"""Weight initialisation, with PyTorch's names and fan-in/fan-out rules.

Why it matters (course 2, "weight initialisation"): if each of the n^[l-1]
inputs of a unit adds a term w a with Var(w) = sigma^2, then Var(z^[l]) is
about n^[l-1] sigma^2 Var(a^[l-1]); choosing sigma^2 ~ 1/n^[l-1] keeps the
activations (and, going back, the gradients) from growing or vanishing
layer after layer.

For a weight of shape (n_out, n_in, *k) the receptive field is
r = prod(k) (1 for a Linear weight (n_out, n_in)), and

    fan_in  = n_in  r        (inputs that feed one output unit)
    fan_out = n_out r        (outputs that one input unit feeds)

    He / Kaiming   std = gain / sqrt(fan)        uniform bound = gain sqrt(3 / fan)
    Xavier/Glorot  std = gain sqrt(2 / (fan_in + fan_out))
                   uniform bound = gain sqrt(6 / (fan_in + fan_out))

where fan is fan_in (mode="fan_in", the default) or fan_out, and gain
depends on the activation that follows (calculate_gain): sqrt(2) for ReLU,
which zeroes half its inputs, 1 for a linear layer.

Default initialisation of Linear and Conv layers (PyTorch's): weight and
bias both uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)]; for the weight this
is kaiming_uniform_(w, a=sqrt(5)). Call kaiming_normal_ yourself for plain He.

Every function fills a Tensor (or Parameter) in place and returns it. The
random numbers come from `generator` when given, else from the shared
generator that `manual_seed(seed)` restarts (see scratchnet.nn.rng).

>>> from scratchnet.nn import Parameter
>>> w = Parameter(np.empty((64, 32, 3, 3)))
>>> _ = kaiming_normal_(w, nonlinearity="relu", generator=np.random.default_rng(0))
>>> round(float(w.data.std() * np.sqrt(32 * 3 * 3) / np.sqrt(2)), 1)
1.0
"""

import math

import numpy as np

from .rng import manual_seed, resolve_generator

__all__ = [
    "calculate_gain", "compute_fans", "uniform_", "normal_", "constant_", "zeros_", "ones_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
    "default_layer_init_", "manual_seed",
]


def calculate_gain(nonlinearity, param=None):
    """The gain of the activation after the layer, as torch.nn.init.calculate_gain.

    linear, conv1d/2d/3d, sigmoid: 1;  tanh: 5/3;  relu: sqrt(2);
    leaky_relu with negative slope a (param, default 0.01): sqrt(2 / (1 + a^2)).
    """
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    raise ValueError(
        "nonlinearity must be one of linear, conv1d, conv2d, conv3d, sigmoid, tanh, relu, "
        f"leaky_relu; got {nonlinearity!r}"
    )


def compute_fans(shape):
    """(fan_in, fan_out) of a weight of shape (n_out, n_in, *k); see the module docstring."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight of 2 or more dimensions, got {shape}")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with draws from U(a, b)."""
    return _fill(tensor, resolve_generator(generator).uniform(a, b, size=tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with draws from N(mean, std^2)."""
    return _fill(tensor, resolve_generator(generator).normal(mean, std, size=tensor.shape))


def constant_(tensor, value):
    """Fill with `value`."""
    return _fill(tensor, np.full(tensor.shape, value))


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot: U(-bound, bound) with bound = gain sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = compute_fans(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot: N(0, std^2) with std = gain sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = compute_fans(tensor.shape)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He: U(-bound, bound) with bound = gain sqrt(3 / fan); `a` is leaky_relu's slope."""
    std = _kaiming_std(tensor.shape, a, mode, nonlinearity)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He: N(0, std^2) with std = gain / sqrt(fan); `a` is leaky_relu's slope."""
    return normal_(tensor, 0.0, _kaiming_std(tensor.shape, a, mode, nonlinearity), generator)


def default_layer_init_(weight, bias=None, generator=None):
    """PyTorch's default for Linear and Conv: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    For W this is kaiming_uniform_(W, a=sqrt(5)): gain sqrt(2 / (1 + 5)) = 1/sqrt(3)
    times sqrt(3 / fan_in) gives the bound 1/sqrt(fan_in).
    """
    kaiming_uniform_(weight, a=math.sqrt(5.0), generator=generator)
    if bias is not None:
        bound = 1.0 / math.sqrt(compute_fans(weight.shape)[0])
        uniform_(bias, -bound, bound, generator)
    return weight


def _kaiming_std(shape, a, mode, nonlinearity):
    fan_in, fan_out = compute_fans(shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def _fill(tensor, values):
    """Copy `values` into the tensor's array, keeping its dtype; returns the tensor."""
    tensor.data[...] = values
    return tensor
