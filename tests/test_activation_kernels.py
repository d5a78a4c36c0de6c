"""kernels.relu_forward / relu_backward against the definition, PyTorch, and bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import kernels

DTYPES = (np.float32, np.float64)


def naive_relu(z):
    """a = max(z, 0), one entry at a time, NaN kept."""
    return np.array([0.0 if v < 0 else v for v in z.ravel()], dtype=z.dtype).reshape(z.shape)


def naive_relu_gradient(da, z):
    """dz = da * g'(z) with g'(z) = 1 where z > 0, else 0, one entry at a time (finite z)."""
    return np.array([d if v > 0 else 0.0 for d, v in zip(da.ravel(), z.ravel())],
                    dtype=da.dtype).reshape(da.shape)


@settings(max_examples=20, deadline=None)
@given(shape=array_shapes(min_dims=0, max_dims=5, max_side=5), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**16))
def test_relu_matches_its_definition(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(shape).astype(dtype)
    z.ravel()[::3] = 0.0                                      # the kink, at some entries
    da = rng.standard_normal(shape).astype(dtype)
    a = kernels.relu_forward(z)
    assert a.dtype == dtype and a.shape == z.shape and not np.shares_memory(a, z)
    np.testing.assert_array_equal(a, naive_relu(z))
    dz = kernels.relu_backward(da, a)
    assert dz.shape == z.shape                                # a 0-d z too
    np.testing.assert_array_equal(dz, naive_relu_gradient(da, z))


def test_relu_in_place_writes_over_z():
    z = np.array([[-1.5, 0.0], [2.0, -0.25]], dtype=np.float32)
    a = kernels.relu_forward(z, out=z)
    assert a is z
    np.testing.assert_array_equal(z, [[0.0, 0.0], [2.0, 0.0]])


def test_relu_keeps_nan_and_passes_its_gradient_as_pytorch_does():
    torch = pytest.importorskip("torch")
    z = np.array([np.nan, -np.inf, np.inf, -1.0, -0.0, 0.0, 3.0], dtype=np.float32)
    z_torch = torch.from_numpy(z.copy()).requires_grad_()
    torch.relu(z_torch).backward(torch.ones(len(z)))
    a = kernels.relu_forward(z)
    np.testing.assert_array_equal(a, torch.relu(torch.from_numpy(z)).numpy())
    np.testing.assert_array_equal(kernels.relu_backward(np.ones_like(z), a),
                                  z_torch.grad.numpy())


def test_relu_reads_non_contiguous_input():
    z = np.arange(-6.0, 6.0).reshape(3, 4).T                 # a transposed view
    np.testing.assert_array_equal(kernels.relu_forward(z), np.maximum(z, 0))


@pytest.mark.parametrize("call, error, message", [
    (lambda: kernels.relu_forward(np.arange(3)), TypeError, "z must have dtype float32 or float64"),
    (lambda: kernels.relu_forward([1.0, -1.0]), TypeError, "z must be a numpy.ndarray, got list"),
    (lambda: kernels.relu_forward(np.zeros(3), out=np.zeros(4)), ValueError,
     r"arrays must share one shape: z has shape \(3,\), out has shape \(4,\)"),
    (lambda: kernels.relu_forward(np.zeros(3), out=np.zeros(3, np.float32)), TypeError,
     "arrays must share one dtype: z is float64, out is float32"),
    (lambda: kernels.relu_forward(np.zeros((2, 2)), out=np.zeros((2, 2)).T), ValueError,
     "out must be a writeable C-contiguous array"),
    (lambda: kernels.relu_backward(np.zeros(3), np.zeros(2)), ValueError,
     r"arrays must share one shape: da has shape \(3,\), a has shape \(2,\)"),
    (lambda: kernels.relu_backward(np.zeros(3), np.zeros(3, np.float32)), TypeError,
     "arrays must share one dtype: da is float64, a is float32"),
])
def test_relu_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
