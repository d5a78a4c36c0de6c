"""Tests for kernels.gram: the Gram ("style") matrix and its gradient.

Oracles: the loop reference in naive_gram.py (itself checked on hand-worked
cases below), central finite differences in float64, algebraic identities
(symmetry, positive semidefiniteness, the outer product when there are no
positions), and PyTorch autograd of a_flat @ a_flat^T when torch is installed.
"""

import doctest
import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import gram, gram_backward
from naive_gram import naive_gram, naive_gram_backward

DTYPES = (np.float32, np.float64)


@st.composite
def activation_shapes(draw):
    """(N, n_C, *spatial) with 0 to 3 spatial dimensions."""
    n_spatial = draw(st.integers(0, 3))
    spatial = tuple(draw(st.integers(1, 4)) for _ in range(n_spatial))
    return (draw(st.integers(1, 3)), draw(st.integers(1, 5))) + spatial


def random_array(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def n_positions(shape):
    return int(np.prod(shape[2:], dtype=np.int64))


# ------------------------------------------------- the reference, by hand

def test_naive_gram_hand_worked():
    a = np.array([[[1.0, 2.0], [3.0, 4.0]]])          # N = 1, n_C = 2, P = 2
    # G_00 = 1 + 4, G_01 = G_10 = 1*3 + 2*4, G_11 = 9 + 16
    np.testing.assert_array_equal(naive_gram(a), [[[5.0, 11.0], [11.0, 25.0]]])
    image = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])     # one channel, 2 x 2 pixels
    np.testing.assert_array_equal(naive_gram(image), [[[30.0]]])


def test_naive_gram_backward_hand_worked():
    a = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    # G_00 = sum_p a_0p^2, so dG_00 / da_0p = 2 a_0p and row 1 does not enter
    only_00 = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    np.testing.assert_array_equal(naive_gram_backward(only_00, a), [[[2.0, 4.0], [0.0, 0.0]]])
    # G_01 = sum_p a_0p a_1p: da_0 = a_1, da_1 = a_0
    only_01 = np.array([[[0.0, 1.0], [0.0, 0.0]]])
    np.testing.assert_array_equal(naive_gram_backward(only_01, a), [[[3.0, 4.0], [1.0, 2.0]]])


# ------------------------------------------------------------ forward

@settings(max_examples=25, deadline=None)
@given(shape=activation_shapes(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_gram_matches_naive(shape, dtype, seed):
    a = random_array(shape, dtype, seed)
    G = gram(a)
    assert G.dtype == dtype and G.shape == (shape[0], shape[1], shape[1])
    # rounding error of a length-P dot product: <= ~P eps sum_p |a_kp a_k'p|
    bound = (n_positions(shape) + 1) * np.finfo(dtype).eps * naive_gram(np.abs(a))
    assert np.all(np.abs(G - naive_gram(a)) <= bound + np.finfo(dtype).tiny)


@settings(max_examples=25, deadline=None)
@given(shape=activation_shapes(), seed=st.integers(0, 2**16))
def test_gram_is_symmetric_positive_semidefinite(shape, seed):
    G = gram(random_array(shape, np.float64, seed))
    np.testing.assert_allclose(G, G.transpose(0, 2, 1), rtol=1e-14, atol=1e-14)
    eigenvalues = np.linalg.eigvalsh(G)                    # (N, n_C), ascending
    traces = np.trace(G, axis1=1, axis2=2)[:, None]
    assert np.all(eigenvalues >= -1e-12 * traces)


def test_gram_without_positions_is_the_outer_product():
    a = random_array((3, 4), np.float64, seed=0)           # (N, n_C): one position
    expected = a[:, :, None] * a[:, None, :]               # (N, n_C, 1) * (N, 1, n_C)
    np.testing.assert_allclose(gram(a), expected, rtol=1e-15)


def test_gram_accepts_non_contiguous_input():
    a = random_array((2, 5, 3, 4), np.float64, seed=1)
    swapped = a.transpose(0, 1, 3, 2)                      # a view, (N, C, W, H)
    np.testing.assert_allclose(gram(swapped), gram(np.ascontiguousarray(swapped)), rtol=1e-15)


# ------------------------------------------------------------ backward

@settings(max_examples=25, deadline=None)
@given(shape=activation_shapes(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_gram_backward_matches_naive(shape, dtype, seed):
    a = random_array(shape, dtype, seed)
    dG = random_array((shape[0], shape[1], shape[1]), dtype, seed + 1)
    da = gram_backward(dG, a)
    assert da.dtype == dtype and da.shape == a.shape
    bound = (shape[1] + 2) * np.finfo(dtype).eps * naive_gram_backward(np.abs(dG), np.abs(a))
    assert np.all(np.abs(da - naive_gram_backward(dG, a)) <= 2 * bound + np.finfo(dtype).tiny)


@settings(max_examples=25, deadline=None)
@given(shape=activation_shapes(), seed=st.integers(0, 2**16))
def test_gram_backward_matches_finite_differences(shape, seed):
    """<da, v> equals the central difference of sum(dG * gram(a)) along v."""
    a = random_array(shape, np.float64, seed)
    dG = random_array((shape[0], shape[1], shape[1]), np.float64, seed + 1)
    v = random_array(shape, np.float64, seed + 2)

    def objective(x):
        return np.sum(dG * gram(x))

    eps = 1e-6
    numeric = (objective(a + eps * v) - objective(a - eps * v)) / (2 * eps)
    analytic = np.sum(gram_backward(dG, a) * v)
    scale = np.sum(np.abs(dG) * naive_gram(np.abs(a) + np.abs(v)))
    assert abs(numeric - analytic) <= 1e-7 * scale


def test_gram_backward_of_symmetric_dG_is_2_dG_a():
    a = random_array((2, 3, 5), np.float64, seed=3)        # (N, C, P)
    M = random_array((2, 3, 3), np.float64, seed=4)
    dG = M + M.transpose(0, 2, 1)                          # symmetric
    np.testing.assert_allclose(gram_backward(dG, a), 2 * dG @ a, rtol=1e-13)


@settings(max_examples=15, deadline=None)
@given(shape=activation_shapes(), seed=st.integers(0, 2**16))
def test_gram_backward_matches_torch_autograd(shape, seed):
    torch = pytest.importorskip("torch")
    a = random_array(shape, np.float64, seed)
    dG = random_array((shape[0], shape[1], shape[1]), np.float64, seed + 1)
    a_t = torch.tensor(a, requires_grad=True)
    a_flat = a_t.reshape(shape[0], shape[1], -1)           # (N, C, *spatial) -> (N, C, P)
    G_t = a_flat @ a_flat.transpose(1, 2)                  # (N, C, P) @ (N, P, C)
    G_t.backward(torch.tensor(dG))
    np.testing.assert_allclose(gram(a), G_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gram_backward(dG, a), a_t.grad.numpy(), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------- errors and NaN

@pytest.mark.parametrize("shape", [(4,), (1, 2, 3, 4, 5, 6)])
def test_gram_rejects_wrong_rank(shape):
    with pytest.raises(ValueError, match=r"a must have 2 or 3 or 4 or 5 dimensions"):
        gram(np.zeros(shape))


def test_gram_rejects_integers_and_lists():
    with pytest.raises(TypeError, match=r"a must have dtype float32 or float64, got int64"):
        gram(np.ones((1, 2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match=r"a must be a numpy.ndarray, got list"):
        gram([[[1.0, 2.0]]])


def test_gram_backward_rejects_bad_dG():
    a = np.zeros((2, 3, 4))
    expected = r"dG must have shape \(2, 3, 3\) to match a .* got \(2, 3, 4\)"
    with pytest.raises(ValueError, match=expected):
        gram_backward(np.zeros((2, 3, 4)), a)
    with pytest.raises(ValueError, match=r"dG must have 3 dimensions, got shape \(3, 3\)"):
        gram_backward(np.zeros((3, 3)), a)
    with pytest.raises(TypeError, match=r"dG is float32, a is float64"):
        gram_backward(np.zeros((2, 3, 3), dtype=np.float32), a)
    with pytest.raises(TypeError, match=r"dG must have dtype float32 or float64, got int64"):
        gram_backward(np.zeros((2, 3, 3), dtype=np.int64), a)


def test_nan_propagates_through_gram_and_its_backward():
    a = random_array((2, 3, 4, 4), np.float64, seed=5)
    a[0, 1, 2, 3] = np.nan
    G = gram(a)
    nan_expected = np.zeros(G.shape, dtype=bool)
    nan_expected[0, 1, :] = nan_expected[0, :, 1] = True   # row and column of channel 1
    np.testing.assert_array_equal(np.isnan(G), nan_expected)
    da = gram_backward(np.ones_like(G), a)                 # da[n, k, p] mixes only position p
    nan_expected = np.zeros(a.shape, dtype=bool)
    nan_expected[0, :, 2, 3] = True
    np.testing.assert_array_equal(np.isnan(da), nan_expected)


def test_docstring_examples_run():
    module = importlib.import_module("kernels.gram")
    failures, attempted = doctest.testmod(module)
    assert attempted > 0 and failures == 0
