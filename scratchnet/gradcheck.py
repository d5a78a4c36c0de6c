"""Check an op's backward pass against central finite differences.

Backward computes vector-Jacobian products: for y = f(x_1, ..., x_k) and a
weight u of y's shape, it returns g_i = J_i^T u, the gradient of the scalar

    s(x) = <u, f(x)> = sum over entries of u * f(x)

with respect to each input x_i. gradcheck recomputes that gradient
numerically, in float64, from central differences, whose error is O(eps^2):

    full mode  every entry j of every checked input:
                   ds/dx_i[j] ~ (s(x + eps e_j) - s(x - eps e_j)) / (2 eps)
    fast mode  one random direction v over all checked inputs together:
                   sum_i <g_i, v_i> ~ (s(x + eps v) - s(x - eps v)) / (2 eps)

u is 1 when f returns one element, else fixed random normal numbers (from
`seed`): one random combination of the outputs rather than the full
Jacobian, which costs one backward pass instead of one per output entry
and misses an error only if it happens to be orthogonal to u. The full
mode costs two forward passes per input entry, so keep inputs small; the
fast mode costs two in all (HIPS/autograd's check).

A comparison passes when |analytic - numeric| <= atol + rtol * |numeric|.

>>> import numpy as np
>>> from scratchnet import Tensor, functional as F
>>> x = Tensor(np.array([[0.5, -1.0], [2.0, 0.1]]), requires_grad=True)
>>> gradcheck(F.sigmoid, (x,))
True
"""

from collections import namedtuple

import numpy as np

from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Backward and finite differences disagree.

    An AssertionError, because gradcheck asserts something about your code:
    in a test it reads as a failed assertion, not as a crash.
    """


Comparison = namedtuple("Comparison", "input index analytic numeric")
Comparison.__doc__ = """One derivative computed two ways.

input: the position of the input in `inputs` (fast mode: the tuple of all
checked positions); index: the entry of that input (fast mode: None).
"""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast=False, seed=0):
    """Return True if fn's backward matches finite differences, else raise GradcheckError.

    `fn` maps the `inputs` (a tuple of Tensors; other values are passed
    through unchanged) to one Tensor. Inputs with requires_grad=True are
    checked, on float64 copies. The error names the input's position, the
    index and both values of the worst mismatch.
    """
    comparisons = _compare(fn, inputs, eps, fast, seed)
    failures = [c for c in comparisons if not _within_tolerance(c, atol, rtol)]
    if failures:
        worst = max(failures, key=_abs_error)
        raise GradcheckError(_describe(worst, len(failures), len(comparisons), atol, rtol))
    return True


def gradcheck_report(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast=False, seed=0):
    """Return (max_abs_error, passed) instead of raising.

    max_abs_error is the largest |analytic - numeric| over all comparisons,
    passed whether every one is within atol + rtol * |numeric|, exactly the
    condition under which gradcheck returns True.
    """
    comparisons = _compare(fn, inputs, eps, fast, seed)
    max_abs_error = max((_abs_error(c) for c in comparisons), default=0.0)
    return max_abs_error, all(_within_tolerance(c, atol, rtol) for c in comparisons)


def _compare(fn, inputs, eps, fast, seed):
    """Every analytic derivative next to its finite-difference estimate."""
    rng = np.random.default_rng(seed)
    inputs = _float64_copies(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck needs at least one input Tensor with requires_grad=True")

    output = fn(*inputs)
    if not isinstance(output, Tensor):
        raise TypeError(f"fn must return a Tensor, got {type(output).__name__}")
    u = np.ones(output.shape) if output.size == 1 else rng.standard_normal(output.shape)
    if output.requires_grad:
        output.backward(u)
    analytic = [_grad_or_zeros(inputs[i]) for i in checked]

    @no_grad()
    def projected():
        return float(np.sum(u * fn(*inputs).data))

    if fast:
        arrays = [inputs[i].data for i in checked]
        directions = [rng.standard_normal(a.shape) for a in arrays]
        numeric = _central_difference(projected, _shift_along(arrays, directions), eps)
        along_v = sum(float(np.sum(g * v)) for g, v in zip(analytic, directions))
        return [Comparison(tuple(checked), None, along_v, numeric)]

    comparisons = []
    for position, grad in zip(checked, analytic):
        data = inputs[position].data
        for index in np.ndindex(data.shape):
            numeric = _central_difference(projected, _shift_entry(data, index), eps)
            comparisons.append(Comparison(position, index, float(grad[index]), numeric))
    return comparisons


def _float64_copies(inputs):
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    return tuple(
        Tensor(x.data.astype(np.float64), requires_grad=x.requires_grad)
        if isinstance(x, Tensor) else x
        for x in inputs
    )


def _grad_or_zeros(x):
    return np.zeros_like(x.data) if x.grad is None else x.grad


def _central_difference(projected, shift, eps):
    """(s(x + eps v) - s(x - eps v)) / (2 eps), with shift(h) moving x to x + h v."""
    shift(eps)
    plus = projected()
    shift(-eps)
    minus = projected()
    shift(0.0)  # back to x exactly
    return (plus - minus) / (2 * eps)


def _shift_entry(data, index):
    """shift(h): data[index] = its original value + h, in place."""
    original = data[index]

    def shift(h):
        data[index] = original + h

    return shift


def _shift_along(arrays, directions):
    """shift(h): each array = its original values + h * its direction, in place."""
    originals = [a.copy() for a in arrays]

    def shift(h):
        for a, original, v in zip(arrays, originals, directions):
            a[...] = original + h * v

    return shift


def _abs_error(c):
    return abs(c.analytic - c.numeric)


def _within_tolerance(c, atol, rtol):
    return _abs_error(c) <= atol + rtol * abs(c.numeric)


def _describe(c, n_failed, n_compared, atol, rtol):
    if c.index is None:
        where = f"inputs {list(c.input)} along a random direction (fast mode), index: none"
    else:
        where = f"input {c.input} at index {c.index}"
    return (
        f"gradcheck failed for {where}: analytic {c.analytic:.6g} vs numeric "
        f"{c.numeric:.6g} (|difference| {_abs_error(c):.3g} > atol + rtol*|numeric| = "
        f"{atol + rtol * abs(c.numeric):.3g}); {n_failed} of {n_compared} comparisons failed"
    )
