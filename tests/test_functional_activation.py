"""relu, sigmoid, tanh, softmax, log_softmax: gradients, stability, PyTorch."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from autograd_compare import assert_matches_torch, random_tensors
from scratchnet import Tensor, gradcheck
from scratchnet import functional as F

seeds = st.integers(0, 2**32 - 1)
shapes = array_shapes(min_dims=1, max_dims=3, max_side=4)
pointwise_shapes = array_shapes(min_dims=0, max_dims=3, max_side=4)   # a 0-d tensor too


@pytest.mark.parametrize("op", [F.relu, F.sigmoid, F.tanh])
@settings(max_examples=15, deadline=None)
@given(shape=pointwise_shapes, seed=seeds)
def test_pointwise_activation_gradients(op, shape, seed):
    (x,) = random_tensors(np.random.default_rng(seed), shape)
    x.data[np.abs(x.data) < 1e-3] = 0.5  # relu's kink
    assert gradcheck(op, (x,))
    op(x).sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("op", [F.softmax, F.log_softmax])
@settings(max_examples=15, deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_softmax_family_gradients(op, shape, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    (x,) = random_tensors(np.random.default_rng(seed), shape)
    assert gradcheck(lambda t: op(t, dim=dim), (x,))


def test_softmax_rows_sum_to_one_and_log_softmax_is_its_log():
    x = Tensor(np.random.default_rng(0).standard_normal((4, 5)) * 3)
    s = F.softmax(x, dim=1).data
    np.testing.assert_allclose(s.sum(axis=1), np.ones(4))
    np.testing.assert_allclose(F.log_softmax(x, dim=1).data, np.log(s))
    # invariant to a shift of each row
    np.testing.assert_allclose(F.softmax(x + 100.0, dim=1).data, s)


def test_activation_values_by_hand():
    x = Tensor(np.array([-2.0, 0.0, 3.0]))
    np.testing.assert_array_equal(F.relu(x).data, [0.0, 0.0, 3.0])
    np.testing.assert_allclose(F.sigmoid(x).data, [1 / (1 + np.e**2), 0.5, 1 / (1 + np.e**-3)])
    np.testing.assert_allclose(F.softmax(Tensor(np.log([1.0, 3.0]))).data, [0.25, 0.75])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_inputs_stay_finite_without_warnings(dtype):
    x = Tensor(np.array([[-1000.0, 0.0, 1000.0]], dtype=dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = F.sigmoid(x)
        ls = F.log_softmax(x, dim=1)
        sm = F.softmax(x, dim=1)
        (s.sum() + ls.sum() + sm.sum()).backward()
    assert s.dtype == ls.dtype == sm.dtype == dtype
    np.testing.assert_array_equal(s.data, [[0.0, 0.5, 1.0]])
    np.testing.assert_allclose(ls.data, [[-2000.0, -1000.0, 0.0]])
    assert np.all(np.isfinite(x.grad))


def test_relu_gradient_at_zero_is_zero():
    x = Tensor(np.array([-1.0, 0.0, 1.0]), requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_pointwise_activations_match_torch(name):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((3, 4)) * 4
    assert_matches_torch(getattr(F, name), getattr(torch, name), [x])


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_family_matches_torch(name, dim):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((3, 4, 2)) * 5
    assert_matches_torch(
        lambda t: getattr(F, name)(t, dim=dim),
        lambda t: getattr(torch.nn.functional, name)(t, dim=dim),
        [x],
    )


def test_inplace_relu_writes_into_its_input_and_has_the_same_values_and_gradient():
    data = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    grads = []
    for inplace in (False, True):
        x = Tensor(data.copy(), requires_grad=True)
        z = x * 2                                  # not a leaf: may be overwritten
        y = F.relu(z, inplace=inplace)
        assert np.shares_memory(y.data, z.data) == inplace
        np.testing.assert_array_equal(y.data, np.maximum(2 * data, 0))
        (y * y).sum().backward()
        grads.append(x.grad)
    np.testing.assert_array_equal(grads[1], grads[0])
    np.testing.assert_array_equal(grads[0], 8 * data * (data > 0))   # d/dx (2x)^2 [x > 0]


def test_inplace_relu_of_a_view_with_gaps_makes_a_new_array_with_the_same_gradient():
    data = np.random.default_rng(2).standard_normal((3, 4))
    x = Tensor(data.copy(), requires_grad=True)
    z = (x * 2).T                                  # a transposed view: not C-contiguous
    assert not z.data.flags.c_contiguous
    y = F.relu(z, inplace=True)
    assert not np.shares_memory(y.data, z.data)
    np.testing.assert_array_equal(y.data, np.maximum(2 * data, 0).T)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 2.0 * (data > 0))


def test_inplace_relu_refuses_a_leaf_that_requires_grad():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="x: an in-place relu cannot overwrite a leaf tensor"):
        F.relu(x, inplace=True)
    np.testing.assert_array_equal(x.data, np.ones(3))      # untouched


def test_relu_keeps_nan_as_pytorch_does():
    torch = pytest.importorskip("torch")
    values = np.array([np.nan, -np.inf, np.inf, -1.0, 0.0, 2.0], dtype=np.float32)
    expected = torch.relu(torch.from_numpy(values)).numpy()
    np.testing.assert_array_equal(F.relu(Tensor(values)).data, expected)
    np.testing.assert_array_equal(F.relu(Tensor(values.copy()), inplace=True).data, expected)
