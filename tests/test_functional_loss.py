"""mse_loss, binary_cross_entropy(_with_logits): values, gradients, stability, PyTorch."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from autograd_compare import assert_matches_torch
from scratchnet import Tensor, gradcheck
from scratchnet import functional as F

REDUCTIONS = ["mean", "sum", "none"]
seeds = st.integers(0, 2**32 - 1)
shapes = array_shapes(min_dims=1, max_dims=3, max_side=4)


def _probabilities(rng, shape):
    return rng.uniform(0.05, 0.95, size=shape)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@settings(max_examples=10, deadline=None)
@given(shape=shapes, seed=seeds)
def test_loss_gradients_in_both_arguments(reduction, shape, seed):
    rng = np.random.default_rng(seed)
    a, b = (Tensor(rng.standard_normal(shape), requires_grad=True) for _ in range(2))
    p, y = (Tensor(_probabilities(rng, shape), requires_grad=True) for _ in range(2))
    assert gradcheck(lambda s, t: F.mse_loss(s, t, reduction), (a, b))
    assert gradcheck(lambda s, t: F.binary_cross_entropy(s, t, reduction), (p, y))
    assert gradcheck(lambda s, t: F.binary_cross_entropy_with_logits(s, t, reduction), (a, y))


def test_losses_by_hand():
    p = Tensor(np.array([0.5, 0.9]))
    y = Tensor(np.array([1.0, 0.0]))
    np.testing.assert_allclose(F.binary_cross_entropy(p, y).item(), (np.log(2) + np.log(10)) / 2)
    np.testing.assert_allclose(F.mse_loss(p, y, reduction="sum").item(), 0.25 + 0.81)
    logits = Tensor(np.array([0.0, np.log(9)]))  # sigmoid: 0.5 and 0.9
    np.testing.assert_allclose(
        F.binary_cross_entropy_with_logits(logits, y, reduction="none").data,
        F.binary_cross_entropy(p, y, reduction="none").data,
    )


def test_bce_with_logits_is_stable_for_huge_logits():
    z = Tensor(np.array([-1000.0, 1000.0, 1000.0]), requires_grad=True)
    y = Tensor(np.array([0.0, 1.0, 0.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.binary_cross_entropy_with_logits(z, y, reduction="none")
        loss.sum().backward()
    np.testing.assert_allclose(loss.data, [0.0, 0.0, 1000.0])
    np.testing.assert_array_equal(z.grad, [0.0, 0.0, 1.0])


def test_bce_at_certain_predictions_is_clamped_like_torch():
    p = Tensor(np.array([0.0, 1.0, 1.0]), requires_grad=True)
    y = Tensor(np.array([1.0, 1.0, 0.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.binary_cross_entropy(p, y, reduction="none")
        loss.sum().backward()
    np.testing.assert_array_equal(loss.data, [100.0, 0.0, 100.0])
    assert np.all(np.isfinite(p.grad))


@pytest.mark.parametrize("p", [1.5, -0.5, np.nan])
def test_bce_refuses_values_outside_zero_one_and_nan_as_torch_does(p):
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        torch.nn.functional.binary_cross_entropy(torch.tensor([p]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\], with no NaN"):
        F.binary_cross_entropy(Tensor([0.5, p]), Tensor([1.0, 1.0]))


def test_losses_refuse_mismatched_shapes_and_unknown_reductions():
    with pytest.raises(ValueError, match=r"one shape, got \(3,\) and \(2,\)"):
        F.mse_loss(Tensor(np.ones(3)), Tensor(np.ones(2)))
    with pytest.raises(ValueError, match="reduction must be one of .* got 'avg'"):
        F.mse_loss(Tensor(np.ones(3)), Tensor(np.ones(3)), reduction="avg")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_losses_match_torch(reduction):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    p, y = _probabilities(rng, (3, 4)), _probabilities(rng, (3, 4))
    assert_matches_torch(
        lambda s, t: F.mse_loss(s, t, reduction),
        lambda s, t: tf.mse_loss(s, t, reduction=reduction),
        [a, b],
    )
    assert_matches_torch(
        lambda s, t: F.binary_cross_entropy(s, t, reduction),
        lambda s, t: tf.binary_cross_entropy(s, t, reduction=reduction),
        [p, y],
    )
    assert_matches_torch(
        lambda s, t: F.binary_cross_entropy_with_logits(s, t, reduction),
        lambda s, t: tf.binary_cross_entropy_with_logits(s, t, reduction=reduction),
        [a * 5, y],
    )
