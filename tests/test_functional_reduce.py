"""sum, mean, max over axes: gradients, tie handling, errors, PyTorch."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from autograd_compare import assert_matches_torch, random_tensors
from scratchnet import Tensor, gradcheck
from scratchnet import functional as F


@st.composite
def shapes_and_axes(draw):
    """A shape, and an axis argument for it: None, an int or a tuple (negatives too)."""
    shape = draw(array_shapes(min_dims=1, max_dims=4, max_side=3))
    ndim = len(shape)
    axes = draw(st.lists(st.integers(-ndim, ndim - 1), unique_by=lambda a: a % ndim, max_size=ndim))
    axis = draw(st.sampled_from([None, tuple(axes)] + ([axes[0]] if axes else [])))
    return shape, axis


@pytest.mark.parametrize("reduction", [F.sum, F.mean, F.max])
@settings(max_examples=25, deadline=None)
@given(case=shapes_and_axes(), keepdims=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_reduction_gradients_and_values(reduction, case, keepdims, seed):
    shape, axis = case
    (x,) = random_tensors(np.random.default_rng(seed), shape)  # continuous: no ties in max
    expected = getattr(np, reduction.__name__)(x.data, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(reduction(x, axis=axis, keepdims=keepdims).data, expected)
    assert gradcheck(lambda t: reduction(t, axis=axis, keepdims=keepdims), (x,))


def test_max_gradient_is_split_evenly_among_ties():
    x = Tensor(np.array([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    F.max(x, axis=1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0.5, 0.0, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_mean_gradient_by_hand():
    x = Tensor(np.ones((2, 4)), requires_grad=True)
    F.mean(x, axis=1).backward(np.array([1.0, 2.0]))
    np.testing.assert_allclose(x.grad, [[0.25] * 4, [0.5] * 4])


def test_out_of_range_and_repeated_axes_are_refused():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="axis 2 is out of range for a tensor with 2 dimensions"):
        F.sum(x, axis=2)
    with pytest.raises(ValueError, match="repeats an axis"):
        F.mean(x, axis=(1, -1))


def test_max_of_empty_tensor_is_refused():
    with pytest.raises(ValueError, match="max of an empty tensor"):
        F.max(Tensor(np.ones((0, 3))))


@pytest.mark.parametrize("axis, keepdims", [(None, False), (1, True), ((0, 2), False)])
def test_reductions_match_torch(axis, keepdims):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).standard_normal((3, 4, 2))
    dim = tuple(range(3)) if axis is None else axis
    assert_matches_torch(
        lambda t: F.sum(t, axis, keepdims), lambda t: torch.sum(t, dim, keepdim=keepdims), [x]
    )
    assert_matches_torch(
        lambda t: F.mean(t, axis, keepdims), lambda t: torch.mean(t, dim, keepdim=keepdims), [x]
    )
    assert_matches_torch(
        lambda t: F.max(t, axis, keepdims), lambda t: torch.amax(t, dim, keepdim=keepdims), [x]
    )


def test_max_with_ties_matches_torch_amax():
    torch = pytest.importorskip("torch")
    x = np.array([[1.0, 5.0, 5.0], [4.0, 4.0, 4.0]])
    assert_matches_torch(lambda t: F.max(t, axis=1), lambda t: torch.amax(t, 1), [x])
