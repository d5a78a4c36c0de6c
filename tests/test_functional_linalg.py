"""matmul, linear, normalize: gradients, PyTorch, edge cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

from autograd_compare import assert_matches_torch, random_tensors
from scratchnet import Tensor, gradcheck
from scratchnet import functional as F

seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=25, deadline=None)
@given(
    batch=mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3),
    n=st.integers(1, 3), k=st.integers(1, 3), m=st.integers(1, 3),
    vector_a=st.booleans(), vector_b=st.booleans(), seed=seeds,
)
def test_matmul_gradients_batched_and_with_vectors(batch, n, k, m, vector_a, vector_b, seed):
    a_shape = (k,) if vector_a else batch.input_shapes[0] + (n, k)
    b_shape = (k,) if vector_b else batch.input_shapes[1] + (k, m)
    a, b = random_tensors(np.random.default_rng(seed), a_shape, b_shape)
    np.testing.assert_allclose((a @ b).data, np.matmul(a.data, b.data))
    assert gradcheck(F.matmul, (a, b))


def test_matmul_gradient_by_hand():
    a = Tensor(np.array([[1.0, 2.0]]), requires_grad=True)
    b = Tensor(np.array([[3.0], [4.0]]), requires_grad=True)
    (a @ b).backward(np.array([[2.0]]))
    np.testing.assert_array_equal(a.grad, [[6.0, 8.0]])
    np.testing.assert_array_equal(b.grad, [[2.0], [4.0]])


def test_matmul_of_scalars_is_refused():
    with pytest.raises(ValueError, match="at least 1 dimension"):
        F.matmul(Tensor(2.0), Tensor(np.ones(3)))


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [((2, 3, 4), (4, 5)), ((4,), (2, 4, 3)), ((1, 3, 4), (2, 4, 5)), ((3, 4), (4,))],
)
def test_matmul_matches_torch(a_shape, b_shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(a_shape), rng.standard_normal(b_shape)]
    assert_matches_torch(F.matmul, torch.matmul, arrays)


@pytest.mark.parametrize("x_shape", [(5,), (3, 5), (2, 3, 5)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_gradients(x_shape, with_bias):
    rng = np.random.default_rng(1)
    x, w, b = random_tensors(rng, x_shape, (4, 5), (4,))
    if with_bias:
        assert gradcheck(F.linear, (x, w, b))
    else:
        assert gradcheck(F.linear, (x, w))


def test_linear_skips_gradients_nobody_needs():
    rng = np.random.default_rng(2)
    x, w, b = random_tensors(rng, (3, 5), (4, 5), (4,))
    x.requires_grad = False
    F.linear(x, w, b).sum().backward()
    assert x.grad is None
    np.testing.assert_allclose(b.grad, np.full(4, 3.0))


@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_matches_torch(with_bias):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((2, 3, 5)), rng.standard_normal((4, 5))]
    if with_bias:
        arrays.append(rng.standard_normal(4))
    assert_matches_torch(F.linear, torch.nn.functional.linear, arrays)


@pytest.mark.parametrize(
    "x_shape, w_shape, b_shape, message",
    [
        ((3, 5), (4, 5, 1), None,
         r"weight must be 2-D \(out_features, in_features\), got shape \(4, 5, 1\)"),
        ((3, 6), (4, 5), None,
         r"last dimension must equal weight's in_features 5, got input shape \(3, 6\)"),
        ((3, 5), (4, 5), (5,), r"bias must have shape \(4,\), got \(5,\)"),
    ],
)
def test_linear_bad_shapes_are_refused(x_shape, w_shape, b_shape, message):
    b = None if b_shape is None else Tensor(np.ones(b_shape))
    with pytest.raises(ValueError, match=message):
        F.linear(Tensor(np.ones(x_shape)), Tensor(np.ones(w_shape)), b)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@settings(max_examples=10, deadline=None)
@given(seed=seeds, dim=st.integers(-2, 1))
def test_normalize_gradients(p, seed, dim):
    (x,) = random_tensors(np.random.default_rng(seed), (3, 4))
    x.data[np.abs(x.data) < 1e-2] = 0.5  # the 1-norm has a kink at 0
    assert gradcheck(lambda t: F.normalize(t, p=p, dim=dim), (x,))


def test_normalize_gives_unit_rows():
    x = Tensor(np.random.default_rng(4).standard_normal((5, 128)))
    np.testing.assert_allclose(np.linalg.norm(F.normalize(x).data, axis=1), np.ones(5))


def test_normalize_below_eps_divides_by_eps_with_finite_gradient():
    # rows: zero, norm 5e-13 < eps = 1e-12, norm 5
    x = Tensor(np.array([[0.0, 0.0], [3e-13, 4e-13], [3.0, 4.0]]), requires_grad=True)
    y = F.normalize(x, dim=1)
    np.testing.assert_allclose(y.data, [[0.0, 0.0], [0.3, 0.4], [0.6, 0.8]])
    y.backward(np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 0.0]]))
    # below eps the divisor is the constant eps: dx = dy / eps, as in PyTorch
    np.testing.assert_allclose(x.grad[:2], [[1e12, 2e12], [1e12, 2e12]])
    # unit vector y = x / 5: dx = (dy - y <dy, y>) / 5
    np.testing.assert_allclose(x.grad[2], (np.array([1.0, 0.0]) - np.array([0.6, 0.8]) * 0.6) / 5)


@pytest.mark.parametrize("p, dim", [(2.0, 1), (1.0, 0), (3.0, -1)])
def test_normalize_matches_torch(p, dim):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).standard_normal((3, 4))
    x[0] = 0.0
    x[1] = 1e-14  # a row whose norm is below eps
    assert_matches_torch(
        lambda t: F.normalize(t, p=p, dim=dim),
        lambda t: torch.nn.functional.normalize(t, p=p, dim=dim),
        [x], rtol=1e-6,
    )


def test_normalize_refuses_p_below_one():
    with pytest.raises(ValueError, match="p must be a finite number >= 1, got 0.5"):
        F.normalize(Tensor(np.ones((2, 2))), p=0.5)
