"""kernels.batch_norm_*: per-channel statistics, normalising, and the backward pass.

Oracles: the formulas of kernels/batchnorm.py's docstring written as plain
NumPy over a (N, C, P) view (itself checked on a hand-worked case), float64
central differences of a scalar J = sum(u * z~) through statistics and
normalising together, and float32 against float64. The functional op
(scratchnet.functional.batch_norm) is checked against PyTorch in
test_batch_norm_function.py.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels


def reference_forward(z, gamma, beta, eps):
    """(z~, z_norm, mu, sigma2) from the formulas, channel axis 1, float64."""
    axes = (0,) + tuple(range(2, z.ndim))
    per_channel = (1, -1) + (1,) * (z.ndim - 2)
    mu = z.mean(axis=axes)
    sigma2 = ((z - mu.reshape(per_channel)) ** 2).mean(axis=axes)
    z_norm = (z - mu.reshape(per_channel)) / np.sqrt(sigma2.reshape(per_channel) + eps)
    return gamma.reshape(per_channel) * z_norm + beta.reshape(per_channel), z_norm, mu, sigma2


def reference_backward(g, z_norm, sigma2, gamma, eps):
    """(dz, dgamma, dbeta) from the formulas, batch statistics."""
    axes = (0,) + tuple(range(2, g.ndim))
    per_channel = (1, -1) + (1,) * (g.ndim - 2)
    m = g.size // g.shape[1]
    s_g, s_gz = g.sum(axis=axes), (g * z_norm).sum(axis=axes)
    scale = (gamma / np.sqrt(sigma2 + eps)).reshape(per_channel)
    dz = scale * (g - s_g.reshape(per_channel) / m - z_norm * s_gz.reshape(per_channel) / m)
    return dz, s_gz, s_g


def test_the_reference_on_a_hand_worked_case():
    # one channel holding 1, 3 (N = 2, P = 1): mu = 2, sigma2 = 1, z_norm = -1, +1
    z = np.array([[[1.0]], [[3.0]]])
    z_tilde, z_norm, mu, sigma2 = reference_forward(z, np.array([2.0]), np.array([0.5]), 0.0)
    np.testing.assert_allclose(mu, [2.0])
    np.testing.assert_allclose(sigma2, [1.0])
    np.testing.assert_allclose(z_norm.ravel(), [-1.0, 1.0])
    np.testing.assert_allclose(z_tilde.ravel(), [-1.5, 2.5])
    # g = (1, 0): S_g = 1, S_gz = -1, dz = 2 ((1, 0) - 1/2 - (-1, 1) (-1) / 2) = (0, 0):
    # with two values and eps = 0, z_norm is (-1, 1) whatever z is, so z~ cannot move
    dz, dgamma, dbeta = reference_backward(np.array([[[1.0]], [[0.0]]]), z_norm, sigma2,
                                           np.array([2.0]), 0.0)
    np.testing.assert_allclose(dz.ravel(), [0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose((dgamma, dbeta), ([-1.0], [1.0]))


def shapes():
    n_spatial = st.integers(0, 3)
    return n_spatial.flatmap(lambda k: st.tuples(
        st.integers(1, 3), st.integers(1, 4), *[st.integers(1, 5) for _ in range(k)]))


@settings(max_examples=25, deadline=None)
@given(shape=shapes(), seed=st.integers(0, 2**16))
def test_forward_and_backward_match_the_formulas(shape, seed):
    rng = np.random.default_rng(seed)
    z = 3 * rng.standard_normal(shape) + 1
    gamma, beta = rng.uniform(0.5, 2.0, shape[1]), rng.standard_normal(shape[1])
    eps = 1e-3
    want_tilde, want_norm, want_mu, want_sigma2 = reference_forward(z, gamma, beta, eps)
    mu, sigma2 = kernels.batch_norm_statistics(z)
    np.testing.assert_allclose(mu, want_mu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sigma2, want_sigma2, rtol=1e-12, atol=1e-12)
    z_tilde, z_norm = kernels.batch_norm_forward(z, mu, sigma2, gamma, beta, eps)
    np.testing.assert_allclose(z_tilde, want_tilde, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(z_norm, want_norm, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(shape)
    got = kernels.batch_norm_backward(g, z_norm, sigma2, gamma, eps, batch_statistics=True)
    for got_part, want_part in zip(got, reference_backward(g, want_norm, want_sigma2, gamma, eps)):
        np.testing.assert_allclose(got_part, want_part, rtol=1e-10, atol=1e-10)


def test_backward_is_the_derivative_of_statistics_and_normalising():
    rng = np.random.default_rng(0)
    z, u = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 2, 4))
    gamma, beta, eps = np.array([1.5, 0.7]), np.array([0.1, -0.2]), 1e-2

    def J(z, gamma, beta):
        mu, sigma2 = kernels.batch_norm_statistics(z)
        return np.sum(u * kernels.batch_norm_forward(z, mu, sigma2, gamma, beta, eps)[0])

    mu, sigma2 = kernels.batch_norm_statistics(z)
    _, z_norm = kernels.batch_norm_forward(z, mu, sigma2, gamma, beta, eps)
    dz, dgamma, dbeta = kernels.batch_norm_backward(u, z_norm, sigma2, gamma, eps, True)
    h = 1e-6
    for name, array, analytic in (("z", z, dz), ("gamma", gamma, dgamma), ("beta", beta, dbeta)):
        for index in np.ndindex(array.shape):
            step = np.zeros_like(array)
            step[index] = h
            args = {"z": z, "gamma": gamma, "beta": beta}
            plus = J(**{**args, name: array + step})
            minus = J(**{**args, name: array - step})
            assert abs((plus - minus) / (2 * h) - analytic[index]) < 1e-6, (name, index)


def test_fixed_statistics_pass_the_gradient_straight_through():
    rng = np.random.default_rng(1)
    g, z_norm = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 3, 5))
    sigma2, gamma = np.array([0.5, 1.0, 4.0]), np.array([1.0, -2.0, 3.0])
    dz, dgamma, dbeta = kernels.batch_norm_backward(g, z_norm, sigma2, gamma, 0.0, False)
    np.testing.assert_allclose(dz, g * (gamma / np.sqrt(sigma2)).reshape(1, 3, 1))
    np.testing.assert_allclose(dgamma, (g * z_norm).sum(axis=(0, 2)))
    np.testing.assert_allclose(dbeta, g.sum(axis=(0, 2)))


def test_float32_agrees_with_float64_and_keeps_its_dtype():
    rng = np.random.default_rng(2)
    z = (5 * rng.standard_normal((4, 3, 6, 6)) + 100).astype(np.float32)  # a large mean
    g = rng.standard_normal(z.shape).astype(np.float32)
    gamma, beta = np.array([0.5, 1.0, 2.0], np.float32), np.array([0.0, 1.0, -1.0], np.float32)
    results = {}
    for dtype in (np.float32, np.float64):   # the same values, as float32 and as float64
        mu, sigma2 = kernels.batch_norm_statistics(z.astype(dtype))
        z_tilde, z_norm = kernels.batch_norm_forward(z.astype(dtype), mu, sigma2,
                                                     gamma.astype(dtype), beta.astype(dtype), 1e-5)
        dz, dgamma, dbeta = kernels.batch_norm_backward(g.astype(dtype), z_norm, sigma2,
                                                        gamma.astype(dtype), 1e-5, True)
        results[dtype] = dict(mu=mu, sigma2=sigma2, z_tilde=z_tilde, z_norm=z_norm, dz=dz,
                              dgamma=dgamma, dbeta=dbeta)
    single, double = results[np.float32], results[np.float64]
    for name in ("z_tilde", "z_norm", "dz", "dgamma", "dbeta"):
        assert single[name].dtype == np.float32, name
    # the statistics are float64 sums of the same values either way
    for name in ("mu", "sigma2"):
        np.testing.assert_allclose(single[name], double[name], rtol=1e-12, err_msg=name)
    # z~, z_norm and dbeta are computed in float64 and rounded to float32 once:
    # a relative error of at most 2^-24 = 6.0e-8 (measured 5.7e-8)
    for name in ("z_tilde", "z_norm", "dbeta"):
        np.testing.assert_allclose(single[name], double[name], rtol=1e-7, err_msg=name)
    # dgamma = sum g z_norm and dz read z_norm rounded to float32 (2^-24 each): dgamma
    # within a few 2^-24 of the sum (measured 1.6e-7), dz within two roundings of its
    # largest term, |dz| <= 1.2 here (measured 3.6e-8 where the bound is 1.4e-7)
    np.testing.assert_allclose(single["dgamma"], double["dgamma"], rtol=1e-6)
    np.testing.assert_allclose(single["dz"], double["dz"], rtol=0,
                               atol=2 * 2**-24 * np.abs(double["dz"]).max())


def test_non_contiguous_input_is_read_correctly():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((5, 4, 3)).transpose(2, 1, 0)     # (3, 4, 5), not contiguous
    mu, sigma2 = kernels.batch_norm_statistics(z)
    _, _, want_mu, want_sigma2 = reference_forward(z, np.ones(4), np.zeros(4), 0.0)
    np.testing.assert_allclose(mu, want_mu, rtol=1e-12)
    np.testing.assert_allclose(sigma2, want_sigma2, rtol=1e-12)


def test_bad_input_names_the_argument():
    z = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"gamma: expected shape \(3,\).*got \(2,\)"):
        kernels.batch_norm_forward(z, np.zeros(3), np.ones(3), np.ones(2), np.zeros(3), 1e-5)
    with pytest.raises(ValueError, match="z must have 2 or 3 or 4 or 5 dimensions"):
        kernels.batch_norm_statistics(np.zeros(3))
    with pytest.raises(TypeError, match="z must have dtype float32 or float64, got int64"):
        kernels.batch_norm_statistics(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"g: expected z_norm's shape \(2, 3, 4\)"):
        kernels.batch_norm_backward(np.zeros((2, 3, 5)), z, np.ones(3), np.ones(3), 1e-5, True)
    with pytest.raises(TypeError, match="arrays must share one dtype"):
        kernels.batch_norm_backward(z.astype(np.float32), z, np.ones(3), np.ones(3), 1e-5, True)
    with pytest.raises(ValueError, match="eps: expected a number >= 0, got -1e-05"):
        kernels.batch_norm_forward(z, np.zeros(3), np.ones(3), np.ones(3), np.zeros(3), -1e-5)
    with pytest.raises(ValueError, match="eps: expected a positive number, got 0.0"):
        kernels.batch_norm_backward(z, z, np.ones(3), np.ones(3), 0.0, True)
    with pytest.raises(TypeError, match="eps: expected a number >= 0, got '1e-5'"):
        kernels.batch_norm_forward(z, np.zeros(3), np.ones(3), np.ones(3), np.zeros(3), "1e-5")


def test_an_empty_batch_has_no_statistics_but_normalises_with_given_ones():
    empty = np.zeros((0, 3, 4))
    with pytest.raises(ValueError, match=r"z: expected at least one value per channel, got shape"):
        kernels.batch_norm_statistics(empty)
    with pytest.raises(ValueError, match=r"g: expected at least one value per channel"):
        kernels.batch_norm_backward(empty, empty, np.ones(3), np.ones(3), 1e-5, True)
    z_tilde, z_norm = kernels.batch_norm_forward(empty, np.zeros(3), np.ones(3), np.ones(3),
                                                 np.zeros(3), 1e-5)
    assert z_tilde.shape == z_norm.shape == empty.shape
    dz, dgamma, dbeta = kernels.batch_norm_backward(empty, empty, np.ones(3), np.ones(3), 1e-5,
                                                    False)
    assert dz.shape == empty.shape
    np.testing.assert_array_equal(dgamma, np.zeros(3))
    np.testing.assert_array_equal(dbeta, np.zeros(3))
