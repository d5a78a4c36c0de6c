"""Elementwise arithmetic: gradients by finite differences, broadcasting, PyTorch."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

from autograd_compare import assert_matches_torch, random_tensors
from scratchnet import Tensor, gradcheck
from scratchnet import functional as F

seeds = st.integers(0, 2**32 - 1)
pairs_of_shapes = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)

BINARY = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y,
}


def _away_from_zero(t):
    """|t| + 0.5 as a new leaf: a safe divisor, base of a power or argument of log."""
    return Tensor(np.abs(t.data) + 0.5, requires_grad=True)


@pytest.mark.parametrize("op", BINARY)
@settings(max_examples=20, deadline=None)
@given(shapes=pairs_of_shapes, seed=seeds)
def test_binary_op_gradients_with_broadcasting(op, shapes, seed):
    x, y = random_tensors(np.random.default_rng(seed), *shapes.input_shapes)
    assert gradcheck(BINARY[op], (x, _away_from_zero(y)))


@settings(max_examples=20, deadline=None)
@given(shapes=pairs_of_shapes, seed=seeds)
def test_pow_gradient_in_base_and_exponent(shapes, seed):
    x, y = random_tensors(np.random.default_rng(seed), *shapes.input_shapes)
    assert gradcheck(lambda a, b: a**b, (_away_from_zero(x), y))


def test_broadcast_gradient_is_summed_over_the_stretched_axes():
    x = Tensor(np.ones((3, 1)), requires_grad=True)
    y = Tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    (x * y).sum().backward()
    expected = np.arange(24.0).reshape(2, 3, 4).sum(axis=(0, 2))[:, None]  # (3, 1)
    np.testing.assert_array_equal(x.grad, expected)
    np.testing.assert_array_equal(y.grad, np.ones((2, 3, 4)))


def test_reflected_operators_with_numbers():
    x = Tensor(np.array([1.0, 2.0, 4.0]), requires_grad=True)
    y = 3 - x + 2 * x + 8 / x + 2**x
    np.testing.assert_allclose(y.data, 3 + x.data + 8 / x.data + 2**x.data)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 1 - 8 / x.data**2 + np.log(2) * 2**x.data)


@pytest.mark.parametrize(
    "op, positive_only",
    [(F.neg, False), (F.exp, False), (F.log, True), (F.sqrt, True), (F.abs, False)],
)
@settings(max_examples=15, deadline=None)
@given(shape=array_shapes(min_dims=0, max_dims=3, max_side=4), seed=seeds)
def test_unary_op_gradients(op, positive_only, shape, seed):
    (x,) = random_tensors(np.random.default_rng(seed), shape)
    assert gradcheck(op, (_away_from_zero(x) if positive_only else x,))


@settings(max_examples=15, deadline=None)
@given(shape=array_shapes(min_dims=1, max_dims=3, max_side=4), seed=seeds)
def test_clamp_gradient_away_from_the_bounds(shape, seed):
    (x,) = random_tensors(np.random.default_rng(seed), shape)
    x.data[np.abs(np.abs(x.data) - 0.5) < 1e-3] = 0.0  # keep off the kinks
    assert gradcheck(lambda t: F.clamp(t, -0.5, 0.5), (x,))
    assert gradcheck(lambda t: F.clip(t, min=-0.5), (x,))
    assert gradcheck(lambda t: F.clamp(t, max=0.5), (x,))


def test_clamp_passes_gradient_inside_and_on_the_bounds_only():
    x = Tensor(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), requires_grad=True)
    F.clamp(x, -1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_clamp_needs_a_bound():
    with pytest.raises(ValueError, match="at least one of min and max"):
        F.clamp(Tensor([1.0]))


def test_abs_gradient_at_zero_is_zero():
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    F.abs(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 0.0, 1.0])


def test_exponent_gradient_at_zero_base_is_zero():
    x = Tensor(np.array([0.0, 2.0]))
    y = Tensor(np.array([2.0, 3.0]), requires_grad=True)
    (x**y).sum().backward()
    np.testing.assert_allclose(y.grad, [0.0, 8.0 * np.log(2.0)])


def test_pow_gradients_at_zero_match_torch_without_warnings():
    torch = pytest.importorskip("torch")
    # x^0 has slope 0 everywhere, 0^y has slope 0 in y; 0^0.5 has an infinite slope in x
    x = np.array([0.0, 0.0, 2.0, 0.0])
    y = np.array([0.0, 2.0, 0.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_matches_torch(F.pow, torch.pow, [x, y])
        assert_matches_torch(lambda t: t**0, lambda t: t**0, [x])


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow"])
def test_binary_ops_match_torch(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2, 1, 4)), np.abs(rng.standard_normal((3, 1))) + 0.5
    if name == "pow":
        x = np.abs(x) + 0.1
    assert_matches_torch(getattr(F, name), getattr(torch, name), [x, y])


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (F.neg, "neg"), (F.exp, "exp"), (F.log, "log"), (F.sqrt, "sqrt"), (F.abs, "abs"),
        (lambda t: F.clamp(t, 0.7, 1.5), lambda t: t.clamp(0.7, 1.5)),
    ],
)
def test_unary_ops_match_torch(ours, theirs):
    torch = pytest.importorskip("torch")
    theirs = getattr(torch, theirs) if isinstance(theirs, str) else theirs
    x = np.abs(np.random.default_rng(4).standard_normal((3, 4))) + 0.1
    assert_matches_torch(ours, theirs, [x])
