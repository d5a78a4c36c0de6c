"""gradcheck itself: it passes right gradients, and it catches and names wrong ones."""

import doctest
import importlib
import re

import numpy as np
import pytest

from scratchnet import GradcheckError, Tensor, gradcheck, gradcheck_report
from scratchnet import functional as F


class MulWithWrongEntry(F.Function):
    """x * y whose backward adds `bump` to dJ/dy at one `index`: a planted bug."""

    index, bump = (1, 2), 1.0

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dz):
        dy = dz * self.x
        dy[self.index] += self.bump
        return dz * self.y, dy


class CubeWithSquareDerivative(F.Function):
    """x^3 whose backward claims 2x: wrong everywhere."""

    def forward(self, x):
        self.x = x
        return x**3

    def backward(self, dz):
        return dz * 2 * self.x


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return (Tensor(rng.standard_normal((2, 3)), requires_grad=True),
            Tensor(rng.standard_normal((2, 3)), requires_grad=True))


def _numbers_after(label, message):
    return float(re.search(label + r" (-?[\d.e+-]+)", message).group(1))


def test_right_gradients_pass_for_scalar_and_array_outputs():
    x, y = _inputs()
    assert gradcheck(lambda a, b: (a * b).sum(), (x, y))
    assert gradcheck(lambda a, b: a * b, (x, y))
    assert gradcheck(lambda a, b: a * b, (x, y), fast=True)


def test_a_planted_bug_is_reported_with_input_index_and_both_values():
    x, y = _inputs()
    with pytest.raises(GradcheckError) as raised:
        gradcheck(lambda a, b: MulWithWrongEntry.apply(a, b).sum(), (x, y))
    message = str(raised.value)
    assert "input 1 at index (1, 2)" in message
    true_derivative = x.data[1, 2]  # d sum(x * y) / dy[1, 2]
    assert _numbers_after("analytic", message) == pytest.approx(true_derivative + 1.0, rel=1e-5)
    assert _numbers_after("numeric", message) == pytest.approx(true_derivative, rel=1e-5)
    assert "1 of 12 comparisons failed" in message


def test_a_planted_bug_is_caught_for_a_non_scalar_output():
    x, y = _inputs()
    with pytest.raises(GradcheckError, match=r"input 1 at index \(1, 2\)"):
        gradcheck(lambda a, b: MulWithWrongEntry.apply(a, b), (x, y))


def test_wrong_everywhere_fails_in_both_modes():
    x = Tensor(np.array([0.5, -1.5, 2.0]), requires_grad=True)
    # the worst entry is reported: at x = -1.5, 2x = -3 against 3x^2 = 6.75
    expected = r"input 0 at index \(1,\): analytic -3 vs numeric 6.75"
    with pytest.raises(GradcheckError, match=expected):
        gradcheck(lambda t: CubeWithSquareDerivative.apply(t).sum(), (x,))
    fast_mode = r"inputs \[0\] along a random direction \(fast mode\)"
    with pytest.raises(GradcheckError, match=fast_mode):
        gradcheck(lambda t: CubeWithSquareDerivative.apply(t), (x,), fast=True)


def test_gradcheck_error_is_an_assertion_error():
    assert issubclass(GradcheckError, AssertionError)


def test_report_gives_the_largest_error_and_the_verdict():
    x, y = _inputs()
    error, passed = gradcheck_report(lambda a, b: (a * b).sum(), (x, y))
    assert passed and error < 1e-8
    error, passed = gradcheck_report(lambda a, b: MulWithWrongEntry.apply(a, b).sum(), (x, y))
    assert not passed and error == pytest.approx(1.0, rel=1e-6)
    error, passed = gradcheck_report(lambda a, b: MulWithWrongEntry.apply(a, b), (x, y), fast=True)
    assert not passed and error > 1e-3


def test_inputs_are_checked_on_float64_copies_and_left_untouched():
    data = np.array([[0.3, -0.7]], dtype=np.float32)
    x = Tensor(data.copy(), requires_grad=True)
    seen_dtypes = []

    def fn(t):
        seen_dtypes.append(t.dtype)
        return F.tanh(t)

    assert gradcheck(fn, x)  # a lone Tensor is accepted too
    assert set(seen_dtypes) == {np.dtype(np.float64)}
    assert x.grad is None
    np.testing.assert_array_equal(x.data, data)


def test_only_inputs_requiring_grad_are_checked_and_others_pass_through():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    constant = Tensor(np.array([3.0, 4.0]))
    calls = []

    def fn(a, c, scale):
        calls.append(scale)
        return a * c * scale

    error, passed = gradcheck_report(fn, (x, constant, 2.0))
    assert passed and set(calls) == {2.0}
    assert len(calls) == 1 + 2 * 2  # one forward + backward, two per entry of x


def test_an_output_that_ignores_the_input_passes_with_zero_gradient():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert gradcheck(lambda t: Tensor(np.array(5.0)), (x,))


def test_bad_uses_are_refused():
    with pytest.raises(ValueError, match="at least one input Tensor with requires_grad=True"):
        gradcheck(F.exp, (Tensor(np.ones(2)),))
    with pytest.raises(TypeError, match="fn must return a Tensor, got ndarray"):
        gradcheck(lambda t: t.data, (Tensor(np.ones(2), requires_grad=True),))


def test_docstring_examples_run():
    # scratchnet.gradcheck is the function; the module is reached by its full name
    result = doctest.testmod(importlib.import_module("scratchnet.gradcheck"))
    assert result.attempted > 0 and result.failed == 0
