"""conv1d/2d/3d as differentiable ops: gradients, PyTorch, argument errors."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from autograd_compare import assert_matches_torch, random_tensors
from scratchnet import Tensor, gradcheck
from scratchnet import functional as F

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


@st.composite
def conv_cases(draw, n_spatial):
    """Small valid convolutions: shapes and geometry for `n_spatial` dimensions."""
    groups = draw(st.sampled_from([1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    max_side = {1: 7, 2: 5, 3: 4}[n_spatial]
    sizes = tuple(draw(st.integers(1, max_side)) for _ in range(n_spatial))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n_spatial))
    stride = draw(st.integers(1, 2))
    dilation = draw(st.integers(1, 2))
    padding = draw(st.integers(0, 1))
    for n, f in zip(sizes, kernel):
        assume(n + 2 * padding >= dilation * (f - 1) + 1)
    return dict(
        x_shape=(draw(st.integers(1, 2)), c_in) + sizes,
        w_shape=(c_out, c_in // groups) + kernel,
        geometry=dict(stride=stride, padding=padding, dilation=dilation, groups=groups),
    )


@pytest.mark.parametrize("n_spatial", [1, 2, 3])
@settings(max_examples=12, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1), with_bias=st.booleans())
def test_conv_gradients(n_spatial, data, seed, with_bias):
    case = data.draw(conv_cases(n_spatial))
    x, w, b = random_tensors(
        np.random.default_rng(seed), case["x_shape"], case["w_shape"], case["w_shape"][:1]
    )
    conv, geometry = CONV[n_spatial], case["geometry"]
    if with_bias:
        assert gradcheck(lambda *t: conv(*t, **geometry), (x, w, b))
    else:
        assert gradcheck(lambda *t: conv(*t, **geometry), (x, w))


def test_conv_gradient_of_a_1x1_filter_by_hand():
    # y = w x + b per position: dx = w dy, dw = sum x dy, db = sum dy
    x = Tensor(np.arange(4.0).reshape(1, 1, 2, 2), requires_grad=True)
    w = Tensor(np.array([[[[3.0]]]]), requires_grad=True)
    b = Tensor(np.array([1.0]), requires_grad=True)
    y = F.conv2d(x, w, b)
    np.testing.assert_array_equal(y.data, 3 * x.data + 1)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((1, 1, 2, 2), 3.0))
    np.testing.assert_array_equal(w.grad, [[[[6.0]]]])
    np.testing.assert_array_equal(b.grad, [4.0])


def test_only_the_needed_gradients_are_computed():
    rng = np.random.default_rng(0)
    x, w = random_tensors(rng, (1, 2, 5, 5), (3, 2, 3, 3))
    x.requires_grad = False
    F.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad.shape == (3, 2, 3, 3)


@pytest.mark.parametrize(
    "n_spatial, geometry",
    [
        (1, dict(stride=2, padding=1, dilation=2)),
        (2, dict(stride=(1, 2), padding=(2, 0), groups=2)),
        (2, dict(padding="same", dilation=2)),
        (2, dict(padding="valid")),
        (3, dict(stride=2, padding=1)),
    ],
)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv_matches_torch(n_spatial, geometry, with_bias):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    sizes = (6,) * n_spatial
    w_shape = (6, 4 // geometry.get("groups", 1)) + (3,) * n_spatial
    arrays = [rng.standard_normal((2, 4) + sizes), rng.standard_normal(w_shape)]
    if with_bias:
        arrays.append(rng.standard_normal(6))
    theirs = getattr(torch.nn.functional, f"conv{n_spatial}d")
    assert_matches_torch(
        lambda *t: CONV[n_spatial](*t, **geometry), lambda *t: theirs(*t, **geometry), arrays
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_keeps_the_dtype_of_its_inputs(dtype):
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal((1, 2, 4, 4)).astype(dtype), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 2, 3, 3)).astype(dtype), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == w.grad.dtype == dtype


def test_conv_promotes_mixed_dtypes_and_returns_grads_in_each_dtype():
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((1, 2, 4)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    y = F.conv1d(x, w)
    y.sum().backward()
    assert y.dtype == np.float64 and x.grad.dtype == np.float32 and w.grad.dtype == np.float64


@pytest.mark.parametrize(
    "conv, x_shape, w_shape, message",
    [
        (F.conv2d, (1, 2, 5), (3, 2, 3, 3),
         r"conv2d expects input of 4 dimensions \(N, C_in, H, W\), got shape \(1, 2, 5\)"),
        (F.conv1d, (1, 2, 5, 5), (3, 2, 3),
         r"conv1d expects input of 3 dimensions \(N, C_in, L\), got shape \(1, 2, 5, 5\)"),
        (F.conv3d, (1, 2, 5, 5, 5), (3, 2, 3, 3),
         r"conv3d expects weight of 5 dimensions \(C_out, C_in/groups, kD, kH, kW\), "
         r"got shape \(3, 2, 3, 3\)"),
    ],
)
def test_wrong_dimensionality_is_refused(conv, x_shape, w_shape, message):
    with pytest.raises(ValueError, match=message):
        conv(Tensor(np.ones(x_shape)), Tensor(np.ones(w_shape)))


def test_kernel_argument_errors_reach_the_caller():
    x, w = Tensor(np.ones((1, 3, 5, 5))), Tensor(np.ones((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="input channels"):
        F.conv2d(x, w)  # 3 input channels, filters for 2
