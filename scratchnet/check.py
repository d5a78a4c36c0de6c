"""`scratchnet check`: gradcheck every differentiable op on random configurations.

Each entry of CASES draws one configuration of its op from a NumPy
Generator and returns (description, fn, inputs) for `gradcheck_report`.
Inputs are float64 and small, so the full element-by-element check runs;
ops with kinks (relu, abs, max, clip, pooling, the triplet hinge) are given
inputs away from the kink, where the derivative exists.
"""

import numpy as np

from . import functional as F
from .gradcheck import gradcheck_report
from .tensor import Tensor

CASES = {}


def case(name):
    def register(draw):
        CASES[name] = draw
        return draw
    return register


def _tensor(rng, shape, away_from_zero=False):
    values = rng.standard_normal(shape)
    if away_from_zero:
        values = np.sign(values) * (0.2 + np.abs(values))
    return Tensor(values, requires_grad=True)


def _distinct(rng, shape):
    """Values pairwise at least 1/size apart, so maxima are unique and stable."""
    size = int(np.prod(shape))
    return Tensor(rng.permutation(size).reshape(shape) / size, requires_grad=True)


def _shape(rng, ndim, low=1, high=4):
    return tuple(int(s) for s in rng.integers(low, high + 1, size=ndim))


# ------------------------------------------------------------- elementwise

def _binary(name, fn, positive_right=False):
    @case(name)
    def draw(rng):
        shape = _shape(rng, 2)
        right_shape = shape[1:] if rng.random() < 0.5 else shape   # broadcasting half the time
        a = _tensor(rng, shape)
        b = _tensor(rng, right_shape, away_from_zero=positive_right)
        if positive_right:
            b = Tensor(np.abs(b.data) + 0.5, requires_grad=True)
        return f"{shape} with {right_shape}", fn, (a, b)


_binary("add", lambda a, b: a + b)
_binary("sub", lambda a, b: a - b)
_binary("mul", lambda a, b: a * b)
_binary("div", lambda a, b: a / b, positive_right=True)


@case("pow")
def _pow(rng):
    shape = _shape(rng, 2)
    base = Tensor(np.abs(rng.standard_normal(shape)) + 0.5, requires_grad=True)
    exponent = _tensor(rng, shape)
    return f"{shape} ** {shape}", lambda a, b: a ** b, (base, exponent)


def _unary(name, fn, domain="all"):
    @case(name)
    def draw(rng):
        shape = _shape(rng, 3)
        x = _tensor(rng, shape, away_from_zero=domain == "kink")
        if domain == "positive":
            x = Tensor(np.abs(x.data) + 0.5, requires_grad=True)
        return f"{shape}", fn, (x,)


_unary("neg", lambda x: -x)
_unary("exp", F.exp)
_unary("log", F.log, domain="positive")
_unary("sqrt", F.sqrt, domain="positive")
_unary("abs", F.abs, domain="kink")
_unary("relu", F.relu, domain="kink")
_unary("sigmoid", F.sigmoid)
_unary("tanh", F.tanh)


@case("clip")
def _clip(rng):
    shape = _shape(rng, 2)
    x = rng.uniform(-2, 2, size=shape)
    x[np.abs(np.abs(x) - 1) < 0.05] = 0.0           # keep away from the bounds -1, 1
    return f"{shape} to [-1, 1]", lambda t: F.clip(t, -1.0, 1.0), (Tensor(x, requires_grad=True),)


# -------------------------------------------------------------- reductions

def _reduction(name, fn, distinct=False):
    @case(name)
    def draw(rng):
        shape = _shape(rng, 3)
        axis = [None, 0, 1, (0, 2)][rng.integers(4)]
        keepdims = bool(rng.integers(2))
        x = _distinct(rng, shape) if distinct else _tensor(rng, shape)
        return f"{shape} axis={axis} keepdims={keepdims}", (
            lambda t: fn(t, axis=axis, keepdims=keepdims)), (x,)


_reduction("sum", F.sum)
_reduction("mean", F.mean)
_reduction("max", F.max, distinct=True)


@case("softmax")
def _softmax(rng):
    shape = _shape(rng, 2, 2)
    dim = int(rng.integers(2))
    return f"{shape} dim={dim}", lambda t: F.softmax(t, dim), (_tensor(rng, shape),)


@case("log_softmax")
def _log_softmax(rng):
    shape = _shape(rng, 2, 2)
    dim = int(rng.integers(2))
    return f"{shape} dim={dim}", lambda t: F.log_softmax(t, dim), (_tensor(rng, shape),)


# ------------------------------------------------------------------- shape

@case("reshape")
def _reshape(rng):
    shape = _shape(rng, 3)
    return f"{shape} -> (-1,)", lambda t: F.reshape(t, (-1,)), (_tensor(rng, shape),)


@case("transpose")
def _transpose(rng):
    shape = _shape(rng, 3)
    axes = tuple(int(a) for a in rng.permutation(3))
    return f"{shape} axes={axes}", lambda t: F.permute(t, axes), (_tensor(rng, shape),)


@case("getitem")
def _getitem(rng):
    shape = (4,) + _shape(rng, 2, 2)
    index = (np.array([0, 2, 2]), slice(None, None, -1))   # repeated rows: gradients add up
    return f"{shape}[[0, 2, 2], ::-1]", lambda t: t[index], (_tensor(rng, shape),)


@case("cat")
def _cat(rng):
    a, b = _shape(rng, 2), _shape(rng, 1)
    b = (b[0], a[1])
    return f"{a} with {b} axis 0", lambda x, y: F.cat([x, y], 0), (_tensor(rng, a), _tensor(rng, b))


@case("stack")
def _stack(rng):
    shape = _shape(rng, 2)
    return f"2 x {shape} axis 1", lambda x, y: F.stack([x, y], 1), (_tensor(rng, shape), _tensor(rng, shape))


@case("pixel_unshuffle")
def _pixel_unshuffle(rng):
    r = int(rng.integers(1, 4))
    shape = (2, int(rng.integers(1, 3)), r * int(rng.integers(1, 3)), r * int(rng.integers(1, 3)))
    return f"{shape} r={r}", lambda t: F.pixel_unshuffle(t, r), (_tensor(rng, shape),)


# ------------------------------------------------------------------ linalg

@case("matmul")
def _matmul(rng):
    batch, m, k, n = _shape(rng, 4)
    return f"({batch}, {m}, {k}) @ ({k}, {n})", lambda a, b: a @ b, (
        _tensor(rng, (batch, m, k)), _tensor(rng, (k, n)))


@case("linear")
def _linear(rng):
    n, i, o = _shape(rng, 3)
    return f"({n}, {i}) -> {o}", F.linear, (_tensor(rng, (n, i)), _tensor(rng, (o, i)), _tensor(rng, (o,)))


@case("normalize")
def _normalize(rng):
    shape = _shape(rng, 2, 2)
    return f"{shape} p=2 dim=1", lambda t: F.normalize(t, p=2, dim=1), (_tensor(rng, shape, True),)


# ------------------------------------------------------------------ losses

@case("mse_loss")
def _mse(rng):
    shape = _shape(rng, 2)
    return f"{shape}", F.mse_loss, (_tensor(rng, shape), _tensor(rng, shape))


@case("binary_cross_entropy")
def _bce(rng):
    shape = _shape(rng, 1, 2, 6)
    p = Tensor(rng.uniform(0.1, 0.9, size=shape), requires_grad=True)
    y = Tensor(rng.integers(0, 2, size=shape).astype(np.float64))
    return f"{shape}", F.binary_cross_entropy, (p, y)


@case("binary_cross_entropy_with_logits")
def _bce_logits(rng):
    shape = _shape(rng, 1, 2, 6)
    y = Tensor(rng.integers(0, 2, size=shape).astype(np.float64))
    return f"{shape}", F.binary_cross_entropy_with_logits, (_tensor(rng, shape), y)


# ------------------------------------------------------------ convolutions

def _conv(nd):
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]

    @case(f"conv{nd}d")
    def draw(rng):
        groups = int(rng.integers(1, 3))
        c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        kernel = _shape(rng, nd, 1, 3)
        stride = int(rng.integers(1, 3))
        dilation = int(rng.integers(1, 3))
        padding = ["same", "valid", 0, 1][rng.integers(4)]
        span = max(dilation * (k - 1) + 1 for k in kernel)
        sizes = _shape(rng, nd, span, span + (3 if nd < 3 else 1))
        x_shape = (int(rng.integers(1, 3)), c_in) + sizes
        w_shape = (c_out, c_in // groups) + kernel
        args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        description = f"x{x_shape} w{w_shape} s={stride} p={padding!r} d={dilation} g={groups}"
        return description, lambda x, w, b: conv(x, w, b, **args), (
            _tensor(rng, x_shape), _tensor(rng, w_shape), _tensor(rng, (c_out,)))


def _pool(kind, nd):
    pool = getattr(F, f"{kind}_pool{nd}d")

    @case(f"{kind}_pool{nd}d")
    def draw(rng):
        kernel = int(rng.integers(1, 4))
        stride = int(rng.integers(1, 3))
        padding = int(rng.integers(0, kernel // 2 + 1))
        x_shape = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) + _shape(
            rng, nd, kernel, kernel + (3 if nd < 3 else 1))
        description = f"x{x_shape} k={kernel} s={stride} p={padding}"
        return description, lambda x: pool(x, kernel, stride, padding), (_distinct(rng, x_shape),)


for _nd in (1, 2, 3):
    _conv(_nd)
    _pool("max", _nd)
    _pool("avg", _nd)


# ----------------------------------------------------- style and face ops

@case("gram_matrix")
def _gram(rng):
    shape = (int(rng.integers(1, 3)),) + _shape(rng, 3)
    return f"{shape}", F.gram_matrix, (_tensor(rng, shape),)


@case("pairwise_sq_distances")
def _pairwise(rng):
    shape = _shape(rng, 2, 2, 5)
    return f"{shape}", F.pairwise_sq_distances, (_tensor(rng, shape),)


@case("triplet_loss")
def _triplet(rng):
    n, d = _shape(rng, 2, 2, 5)
    anchor, positive, negative = (rng.standard_normal((n, d)) for _ in range(3))
    # alpha chosen so no triplet sits on the hinge: |d(A,P) - d(A,N) + alpha| >= 0.1
    gap = ((anchor - positive) ** 2).sum(1) - ((anchor - negative) ** 2).sum(1)
    alpha = 0.2
    while np.min(np.abs(gap + alpha)) < 0.1:
        alpha += 0.1
    reduction = ["sum", "mean", "none"][rng.integers(3)]
    return f"{n} x {d} alpha={alpha:.1f} reduction={reduction}", (
        lambda a, p, q: F.triplet_loss(a, p, q, alpha=alpha, reduction=reduction)), tuple(
        Tensor(t, requires_grad=True) for t in (anchor, positive, negative))


@case("batch_norm")
def _batch_norm(rng):
    nd, channels = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    shape = (int(rng.integers(2, 4)), channels) + _shape(rng, nd, 2, 3)
    training = bool(rng.integers(0, 2))
    running_mean, running_var = rng.standard_normal(channels), rng.uniform(0.5, 2.0, channels)

    def batch_norm(x, gamma, beta):   # fresh copies: the running estimates change in place
        return F.batch_norm(x, running_mean.copy(), running_var.copy(), gamma, beta,
                            training=training)
    mode = "training mode (batch statistics)" if training else "evaluation mode (running)"
    return f"x{shape} {mode}", batch_norm, (
        _tensor(rng, shape), _tensor(rng, (channels,)), _tensor(rng, (channels,)))


def run(seed=0, per_op=3, only=None, print_row=print):
    """Gradcheck every op `per_op` times; print one row per check; return all passed."""
    rng = np.random.default_rng(seed)
    all_passed = True
    print_row(f"{'op':<34} {'configuration':<58} {'max error':>10}  verdict")
    for name, draw in CASES.items():
        if only and name not in only:
            continue
        for _ in range(per_op):
            description, fn, inputs = draw(rng)
            try:
                error, passed = gradcheck_report(fn, inputs)
            except Exception as exc:          # a crash is a failure, reported with its reason
                error, passed = float("nan"), False
                description += f" ({type(exc).__name__}: {exc})"
            all_passed &= passed
            print_row(f"{name:<34} {description:<58} {error:>10.2e}  {'ok' if passed else 'FAIL'}")
    return all_passed
