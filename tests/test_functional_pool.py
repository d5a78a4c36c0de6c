"""max_pool and avg_pool in 1-3 dimensions as differentiable ops."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd_compare import assert_matches_torch, random_tensors
from scratchnet import Tensor, gradcheck
from scratchnet import functional as F

MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


@st.composite
def pool_cases(draw, n_spatial):
    kernel = draw(st.integers(1, 3))
    padding = draw(st.integers(0, kernel // 2))
    stride = draw(st.sampled_from([None, 1, 2]))
    max_side = {1: 6, 2: 4, 3: 3}[n_spatial]
    min_side = max(kernel - 2 * padding, 1)
    sizes = tuple(draw(st.integers(min_side, max_side)) for _ in range(n_spatial))
    return (1, draw(st.integers(1, 2))) + sizes, dict(
        kernel_size=kernel, stride=stride, padding=padding
    )


@pytest.mark.parametrize("n_spatial", [1, 2, 3])
@settings(max_examples=10, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1), count_include_pad=st.booleans())
def test_pool_gradients(n_spatial, data, seed, count_include_pad):
    shape, window = data.draw(pool_cases(n_spatial))
    (x,) = random_tensors(np.random.default_rng(seed), shape)  # continuous: no ties
    assert gradcheck(lambda t: MAX_POOL[n_spatial](t, **window), (x,))
    assert gradcheck(
        lambda t: AVG_POOL[n_spatial](t, **window, count_include_pad=count_include_pad), (x,)
    )


def test_max_pool_sends_the_gradient_to_the_maximum():
    x = Tensor(np.array([[[1.0, 5.0, 2.0, 0.0]]]), requires_grad=True)
    y = F.max_pool1d(x, 2)
    np.testing.assert_array_equal(y.data, [[[5.0, 2.0]]])
    y.backward(np.array([[[10.0, 20.0]]]))
    np.testing.assert_array_equal(x.grad, [[[0.0, 10.0, 20.0, 0.0]]])


def test_avg_pool_spreads_the_gradient_over_the_window():
    x = Tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    F.avg_pool2d(x, 2).backward(np.array([[[[8.0]]]]))
    np.testing.assert_array_equal(x.grad, np.full((1, 1, 2, 2), 2.0))


@pytest.mark.parametrize("n_spatial", [1, 2, 3])
@pytest.mark.parametrize(
    "window",
    [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=1)],
)
def test_pools_match_torch(n_spatial, window):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = np.random.default_rng(0).standard_normal((2, 3) + (5,) * n_spatial)
    assert_matches_torch(
        lambda t: MAX_POOL[n_spatial](t, **window),
        lambda t: getattr(tf, f"max_pool{n_spatial}d")(t, **window),
        [x],
    )
    for include in (True, False):
        assert_matches_torch(
            lambda t, include=include: AVG_POOL[n_spatial](t, **window, count_include_pad=include),
            lambda t, include=include: getattr(tf, f"avg_pool{n_spatial}d")(
                t, **window, count_include_pad=include
            ),
            [x],
        )


@pytest.mark.parametrize(
    "pool, shape, message",
    [
        (F.max_pool2d, (1, 2, 5),
         r"max_pool2d expects input of 4 dimensions \(N, C, H, W\), got shape \(1, 2, 5\)"),
        (F.avg_pool1d, (1, 2, 5, 5),
         r"avg_pool1d expects input of 3 dimensions \(N, C, L\), got shape \(1, 2, 5, 5\)"),
        (F.max_pool3d, (2, 5, 5), r"max_pool3d expects input of 5 dimensions \(N, C, D, H, W\)"),
    ],
)
def test_wrong_dimensionality_is_refused(pool, shape, message):
    with pytest.raises(ValueError, match=message):
        pool(Tensor(np.ones(shape)), 2)


@pytest.mark.parametrize("n_spatial", [1, 2, 3])
def test_positional_arguments_mean_what_they_mean_in_torch(n_spatial):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = np.random.default_rng(1).standard_normal((2, 3) + (6,) * n_spatial)
    # (kernel_size, stride, padding, ceil_mode, count_include_pad) for average pooling,
    # (kernel_size, stride, padding, dilation, ceil_mode) for max pooling
    for arguments in [(3, 1, 1, False), (3, 2, 1, True), (3, 2, 1, True, False)]:
        assert_matches_torch(lambda t: AVG_POOL[n_spatial](t, *arguments),
                             lambda t: getattr(tf, f"avg_pool{n_spatial}d")(t, *arguments), [x])
    for arguments in [(3, 2, 1, 1, True), (2, 2, 0, 1, True), (3, 1, 1, 2, False),
                      (2, 2, 1, (2, 1, 2)[:n_spatial], True)]:
        assert_matches_torch(lambda t: MAX_POOL[n_spatial](t, *arguments),
                             lambda t: getattr(tf, f"max_pool{n_spatial}d")(t, *arguments), [x])


@pytest.mark.parametrize("n_spatial", [1, 2])
@settings(max_examples=8, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1), count_include_pad=st.booleans())
def test_ceil_mode_gradients(n_spatial, data, seed, count_include_pad):
    shape, window = data.draw(pool_cases(n_spatial))
    (x,) = random_tensors(np.random.default_rng(seed), shape)
    assert gradcheck(lambda t: MAX_POOL[n_spatial](t, **window, ceil_mode=True), (x,))
    assert gradcheck(lambda t: AVG_POOL[n_spatial](
        t, **window, ceil_mode=True, count_include_pad=count_include_pad), (x,))


def test_max_pool_dilation_must_be_positive():
    with pytest.raises(ValueError, match=r"dilation must be >= 1 in every dimension, got 0"):
        F.max_pool2d(Tensor(np.ones((1, 1, 5, 5))), 2, 1, 0, 0)


def test_count_include_pad_must_be_a_bool():
    with pytest.raises(TypeError, match="count_include_pad must be True or False, got 'no'"):
        F.avg_pool2d(Tensor(np.ones((1, 1, 5, 5))), 3, 1, 1, False, "no")


@pytest.mark.parametrize("n_spatial", [1, 2, 3])
def test_an_empty_batch_gives_an_empty_output_and_gradient(n_spatial):
    x = Tensor(np.zeros((0, 3) + (4,) * n_spatial), requires_grad=True)
    for pool in (MAX_POOL[n_spatial], AVG_POOL[n_spatial]):
        y = pool(x, 2)
        assert y.shape == (0, 3) + (2,) * n_spatial
        y.sum().backward()
        assert x.grad.shape == x.shape


def test_kernel_argument_errors_reach_the_caller():
    with pytest.raises(ValueError, match="padding must be at most half"):
        F.max_pool2d(Tensor(np.ones((1, 1, 5, 5))), 2, padding=2)
