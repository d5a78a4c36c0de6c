"""Max and average pooling kernels against the naive loops, finite differences and PyTorch."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import kernels
import naive_pool

# ------------------------------------------------ the naive reference itself

def test_naive_by_hand():
    x = np.array([[[[1.0, 3.0], [2.0, 4.0]]]])
    assert naive_pool.max_pool(x, 2)[0, 0, 0, 0] == 4.0
    assert naive_pool.avg_pool(x, 2)[0, 0, 0, 0] == 2.5
    np.testing.assert_array_equal(naive_pool.max_pool_grad(np.ones((1, 1, 1, 1)), x, 2),
                                  [[[[0.0, 0.0], [0.0, 1.0]]]])
    np.testing.assert_array_equal(naive_pool.avg_pool_grad(np.ones((1, 1, 1, 1)), x.shape, 2),
                                  np.full(x.shape, 0.25))


def test_naive_padding_by_hand():
    x = np.array([[[2.0, 4.0, 6.0]]])
    # windows of 2 with stride 2 and padding 1: [pad, 2], [4, 6]
    np.testing.assert_array_equal(naive_pool.max_pool(x, 2, 2, 1), [[[2.0, 6.0]]])
    np.testing.assert_array_equal(naive_pool.avg_pool(x, 2, 2, 1), [[[1.0, 5.0]]])
    np.testing.assert_array_equal(naive_pool.avg_pool(x, 2, 2, 1, count_include_pad=False),
                                  [[[2.0, 5.0]]])


def test_naive_ceil_mode_by_hand():
    x = np.array([[[2.0, 4.0, 6.0, 8.0]]])
    # windows of 3 with stride 2 and padding 1 start at -1, 1 and, rounding up, 3:
    # [pad, 2, 4], [4, 6, 8], [8, pad, past the padding]
    np.testing.assert_array_equal(naive_pool.max_pool(x, 3, 2, 1, ceil_mode=True),
                                  [[[4.0, 8.0, 8.0]]])
    # the last window's divisor counts 8 and the padding, not the position past it
    np.testing.assert_array_equal(naive_pool.avg_pool(x, 3, 2, 1, ceil_mode=True),
                                  [[[2.0, 6.0, 4.0]]])
    np.testing.assert_array_equal(
        naive_pool.avg_pool(x, 3, 2, 1, count_include_pad=False, ceil_mode=True),
        [[[3.0, 6.0, 8.0]]])
    # n = 5, f = 3, s = 3, p = 1: ceil(4 / 3) + 1 = 3 windows, but the third would start
    # at 2 * 3 - 1 = 5, in the padding after the input, so there are 2
    assert naive_pool.out_shape((1, 1, 5), 3, 3, 1, ceil_mode=True) == (1, 1, 2)


def test_naive_dilation_by_hand():
    x = np.array([[[1.0, 5.0, 2.0, 4.0, 3.0]]])
    # windows of 2 entries 2 apart (span 3), stride 1: {1, 2}, {5, 4}, {2, 3}
    np.testing.assert_array_equal(naive_pool.max_pool(x, 2, 1, dilation=2), [[[2.0, 5.0, 3.0]]])
    np.testing.assert_array_equal(naive_pool.max_pool_grad(np.ones((1, 1, 3)), x, 2, 1,
                                                           dilation=2), [[[0, 1, 1, 0, 1]]])
    # ceil_mode with the span: ceil((5 - 3) / 2) + 1 = 2 windows, from 0 and from 2
    assert naive_pool.out_shape((1, 1, 5), 2, 2, ceil_mode=True, dilation=2) == (1, 1, 2)


# ------------------------------------------------------ drawn configurations

@st.composite
def pool_configs(draw):
    nd = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * nd)))
    padding = tuple(draw(st.integers(0, f // 2)) for f in kernel)
    dilation = draw(st.one_of(st.just(1), st.tuples(*[st.integers(1, 2)] * nd)))  # max only
    sizes = tuple(draw(st.integers(1, 7 if nd < 3 else 5)) for _ in range(nd))
    x_shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) + sizes
    spans = [f if dilation == 1 else dilation[a] * (f - 1) + 1 for a, f in enumerate(kernel)]
    assume(all(n + 2 * p >= span for n, p, span in zip(sizes, padding, spans)))
    return dict(x_shape=x_shape, kernel_size=kernel, stride=stride, padding=padding,
                dilation=dilation, ceil_mode=draw(st.booleans()))


def _x(cfg, seed=0):
    # distinct values, so that the maximum of every window is unique
    rng = np.random.default_rng(seed)
    size = int(np.prod(cfg["x_shape"]))
    return rng.permutation(size).reshape(cfg["x_shape"]).astype(np.float64) / size


def _args(cfg):
    """Average pooling's arguments (it has no dilation)."""
    return cfg["kernel_size"], cfg["stride"], cfg["padding"], cfg["ceil_mode"]


def _max_args(cfg):
    """Max pooling's arguments, in PyTorch's order."""
    return cfg["kernel_size"], cfg["stride"], cfg["padding"], cfg["dilation"], cfg["ceil_mode"]


def _naive_max_args(cfg):
    k, s, p, d, ceil = _max_args(cfg)
    return dict(kernel=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)


@settings(max_examples=40, deadline=None)
@given(pool_configs())
def test_max_pool_matches_naive(cfg):
    x = _x(cfg)
    y, indices = kernels.max_pool_forward(x, *_max_args(cfg))
    np.testing.assert_array_equal(y, naive_pool.max_pool(x, **_naive_max_args(cfg)))
    assert kernels.pool_output_shape(x.shape, *_max_args(cfg)) == y.shape
    # the indices point at the maxima; -1 marks a (dilated) window with no input
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    picked = np.take_along_axis(flat, indices.reshape(*indices.shape[:2], -1), axis=2)
    np.testing.assert_array_equal(np.where(indices < 0, -np.inf, picked.reshape(y.shape)), y)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    np.testing.assert_allclose(kernels.max_pool_backward(dy, indices, x.shape),
                               naive_pool.max_pool_grad(dy, x, **_naive_max_args(cfg)),
                               rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(pool_configs(), st.booleans())
def test_avg_pool_matches_naive(cfg, count_include_pad):
    x = _x(cfg)
    k, s, p, ceil = _args(cfg)
    y = kernels.avg_pool_forward(x, k, s, p, ceil, count_include_pad)
    assert kernels.pool_output_shape(x.shape, k, s, p, ceil_mode=ceil) == y.shape
    np.testing.assert_allclose(y, naive_pool.avg_pool(x, k, s, p, count_include_pad, ceil),
                               rtol=1e-12)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    np.testing.assert_allclose(
        kernels.avg_pool_backward(dy, x.shape, k, s, p, ceil, count_include_pad),
        naive_pool.avg_pool_grad(dy, x.shape, k, s, p, count_include_pad, ceil),
        rtol=1e-12, atol=1e-15)


@settings(max_examples=20, deadline=None)
@given(pool_configs(), st.booleans())
def test_gradients_match_finite_differences(cfg, count_include_pad):
    x = _x(cfg)
    k, s, p, ceil = _args(cfg)
    rng = np.random.default_rng(2)
    direction = rng.standard_normal(x.shape)
    eps = 1e-7   # smaller than the gap between distinct values: the argmax stays put
    y, indices = kernels.max_pool_forward(x, *_max_args(cfg))
    v = rng.standard_normal(y.shape)
    avg_v = rng.standard_normal(kernels.avg_pool_forward(x, k, s, p, ceil).shape)

    def max_loss(x_):       # a dilated window with no input gives -inf, a constant: left out
        y_ = kernels.max_pool_forward(x_, *_max_args(cfg))[0]
        return np.vdot(np.where(np.isfinite(y_), y_, 0.0), v)

    def avg_loss(x_):
        return np.vdot(kernels.avg_pool_forward(x_, k, s, p, ceil, count_include_pad), avg_v)

    avg_grad = kernels.avg_pool_backward(avg_v, x.shape, k, s, p, ceil, count_include_pad)
    for loss, grad in [(max_loss, kernels.max_pool_backward(v, indices, x.shape)),
                       (avg_loss, avg_grad)]:
        numeric = (loss(x + eps * direction) - loss(x - eps * direction)) / (2 * eps)
        np.testing.assert_allclose(np.vdot(grad, direction), numeric, rtol=1e-6, atol=1e-7)


@settings(max_examples=30, deadline=None)
@given(pool_configs(), st.booleans())
def test_matches_pytorch(cfg, count_include_pad):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = _x(cfg)
    k, s, p, ceil = _args(cfg)
    # PyTorch's avg_pool3d refuses inputs smaller than the window, even when padded
    assume(all(n >= f for n, f in zip(x.shape[2:], k)))
    nd = x.ndim - 2
    max_pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]
    avg_pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
    xt = torch.tensor(x, requires_grad=True)
    yt, it = max_pool(xt, *_max_args(cfg), return_indices=True)
    y, indices = kernels.max_pool_forward(x, *_max_args(cfg))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    # a window with no input: -1 here, an index past the plane in PyTorch
    np.testing.assert_array_equal(indices[indices >= 0], it.numpy()[indices >= 0])
    xt = torch.tensor(x, requires_grad=True)
    yt = avg_pool(xt, k, s, p, ceil_mode=ceil, count_include_pad=count_include_pad)
    y = kernels.avg_pool_forward(x, k, s, p, ceil, count_include_pad)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    dy = np.random.default_rng(3).standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(
        kernels.avg_pool_backward(dy, x.shape, k, s, p, ceil, count_include_pad),
        xt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n_spatial", [1, 2, 3])
def test_an_empty_batch_gives_empty_outputs_as_in_pytorch(n_spatial):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.zeros((0, 2) + (5,) * n_spatial)
    xt = torch.tensor(x, requires_grad=True)
    max_expected = getattr(F, f"max_pool{n_spatial}d")(xt, 2)
    avg_expected = getattr(F, f"avg_pool{n_spatial}d")(xt, 3, 2, 1, True)
    y, indices = kernels.max_pool_forward(x, 2)
    average = kernels.avg_pool_forward(x, 3, 2, 1, True)
    assert y.shape == indices.shape == tuple(max_expected.shape)
    assert average.shape == tuple(avg_expected.shape)
    assert kernels.max_pool_backward(y, indices, x.shape).shape == x.shape
    assert kernels.avg_pool_backward(average, x.shape, 3, 2, 1, True).shape == x.shape


def test_a_dilated_window_with_no_input_gives_minus_infinity_and_no_gradient_as_in_pytorch():
    torch = pytest.importorskip("torch")
    x = np.array([[[3.0]]])                  # one entry; windows of 2, 2 apart, padding 1
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.max_pool1d(xt, 2, 1, 1, 2)
    yt.sum().backward()
    y, indices = kernels.max_pool_forward(x, 2, 1, 1, 2)   # reads positions -1 and 1
    np.testing.assert_array_equal(y, yt.detach().numpy())
    assert y.tolist() == [[[-np.inf]]] and indices.tolist() == [[[-1]]]
    np.testing.assert_array_equal(kernels.max_pool_backward(np.ones((1, 1, 1)), indices, x.shape),
                                  xt.grad.numpy())                         # zero


def test_ceil_mode_takes_a_window_longer_than_the_padded_input_as_pytorch_does():
    x = np.array([[[0.0, 1.0, 2.0, 3.0]]])
    # f = 3, d = 3: a span of 7 over 4 + 2 padded positions; floor gives no window, ceil one,
    # reading positions -1, 2 and 5: only 2 is input
    with pytest.raises(ValueError, match=r"kernel size \(dilated\) 7 is larger"):
        kernels.max_pool_forward(x, 3, 2, 1, 3)
    y, indices = kernels.max_pool_forward(x, 3, 2, 1, 3, ceil_mode=True)
    assert y.tolist() == [[[2.0]]] and indices.tolist() == [[[2]]]
    assert kernels.pool_output_shape(x.shape, 3, 2, 1, 3, ceil_mode=True) == (1, 1, 1)
    np.testing.assert_array_equal(naive_pool.max_pool(x, 3, 2, 1, ceil_mode=True, dilation=3), y)
    torch = pytest.importorskip("torch")
    expected = torch.nn.functional.max_pool1d(torch.tensor(x), 3, 2, 1, 3, ceil_mode=True)
    np.testing.assert_array_equal(y, expected.numpy())


def test_float32_in_float32_out():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    y, indices = kernels.max_pool_forward(x, 2)
    assert y.dtype == np.float32 and indices.dtype == np.int64
    assert kernels.avg_pool_forward(x, 2).dtype == np.float32
    assert kernels.avg_pool_backward(y, x.shape, 2).dtype == np.float32
    assert kernels.max_pool_backward(y, indices, x.shape).dtype == np.float32


def test_nan_wins_max_and_spreads_through_average():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 0] = np.nan
    y, _ = kernels.max_pool_forward(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and np.isfinite(y[0, 0, 1:, 1:]).all()
    a = kernels.avg_pool_forward(x, 2)
    assert np.isnan(a[0, 0, 0, 0]) and a[0, 0, 1, 1] == (10 + 11 + 14 + 15) / 4


@pytest.mark.parametrize("window, expected_index", [([5.0, 5.0, 1.0, 2.0], 0),
                                                    ([1.0, 2.0, 3.0, np.nan], 3),
                                                    ([np.nan, 7.0, 8.0, 9.0], 0),
                                                    ([-np.inf, -np.inf, -np.inf, -np.inf], 0)])
def test_max_pool_takes_the_first_of_tied_maxima_and_a_nan_anywhere(window, expected_index):
    x = np.array(window).reshape(1, 1, 2, 2)
    y, indices = kernels.max_pool_forward(x, 2)
    np.testing.assert_array_equal(y.ravel(), [x.ravel()[expected_index]])
    assert indices.ravel().tolist() == [expected_index]


def test_non_contiguous_input():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 8)).transpose(0, 1, 3, 2)
    np.testing.assert_array_equal(kernels.max_pool_forward(x, 2)[0], naive_pool.max_pool(x, 2))


X = np.zeros((2, 3, 8, 8))


@pytest.mark.parametrize("call, error, message", [
    (lambda: kernels.max_pool_forward(np.zeros((3, 8)), 2), ValueError, r"x must have 3 or 4 or 5 dimensions"),
    (lambda: kernels.max_pool_forward(X, 2, padding=2), ValueError, r"padding must be at most half of kernel_size"),
    (lambda: kernels.max_pool_forward(X, 9), ValueError, r"kernel size \(dilated\) 9 is larger than the padded input 8"),
    (lambda: kernels.max_pool_forward(X, 3, dilation=4), ValueError, r"kernel size \(dilated\) 9 is larger than the padded input 8"),
    (lambda: kernels.max_pool_forward(X, 2, dilation=0), ValueError, r"dilation must be >= 1"),
    (lambda: kernels.avg_pool_forward(X, 0), ValueError, r"kernel_size must be >= 1"),
    (lambda: kernels.avg_pool_forward(X, 2, stride=(1, 1, 1)), ValueError, r"stride must be an int or a tuple of 2 ints"),
    (lambda: kernels.avg_pool_forward(X.astype(np.int32), 2), TypeError, r"x must have dtype float32 or float64"),
    (lambda: kernels.avg_pool_forward(X, 2, count_include_pad="no"), TypeError,
     r"count_include_pad must be True or False, got 'no'"),
    (lambda: kernels.max_pool_forward(X, 2, ceil_mode=1), TypeError, r"ceil_mode must be True or False, got 1"),
    (lambda: kernels.avg_pool_backward(np.zeros((2, 3, 4, 4)), X.shape, 2, count_include_pad=None),
     TypeError, r"count_include_pad must be True or False"),
    (lambda: kernels.avg_pool_backward(np.zeros((1, 3, 4, 4)), (-1, 3, 8, 8), 2), ValueError,
     r"x_shape must hold positive sizes \(the batch size may be 0\)"),
    (lambda: kernels.avg_pool_backward(np.zeros((2, 3, 3, 3)), X.shape, 2), ValueError, r"dy must have shape \(2, 3, 4, 4\)"),
    (lambda: kernels.max_pool_backward(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 4), np.int32), X.shape),
     TypeError, r"indices must be an int64"),
    (lambda: kernels.max_pool_backward(np.zeros((2, 3, 4, 4)), np.full((2, 3, 4, 4), 64), X.shape),
     ValueError, r"indices must lie in \[0, 64\) or be -1"),
    (lambda: kernels.max_pool_backward(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 3), np.int64), X.shape),
     ValueError, r"indices must have the shape of dy"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
