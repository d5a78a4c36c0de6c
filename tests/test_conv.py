"""The N-d convolution kernels against four oracles.

1. the naive loops of tests/naive_conv.py (themselves checked by hand below),
2. float64 central finite differences,
3. the adjoint identities <conv(x), v> = <x, conv_T(v)> and the same for w,
4. PyTorch, when it is installed.
"""

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import kernels
import naive_conv

# ------------------------------------------------ the naive reference itself

def test_naive_1d_by_hand():
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    w = np.array([[[1.0, 0.0, -1.0]]])
    # y[o] = x[o] - x[o + 2]
    np.testing.assert_array_equal(naive_conv.conv(x, w), [[[-2.0, -2.0]]])
    # padded: [0, 1, 2, 3, 4, 0] -> [0 - 2, 1 - 3, 2 - 4, 3 - 0]
    np.testing.assert_array_equal(naive_conv.conv(x, w, padding=1), [[[-2.0, -2.0, -2.0, 3.0]]])
    # stride 2 keeps outputs 0 and 2 of the padded result
    np.testing.assert_array_equal(naive_conv.conv(x, w, padding=1, stride=2), [[[-2.0, -2.0]]])


def test_naive_dilation_groups_and_bias_by_hand():
    x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    w = np.array([[[1.0, 0.0, -1.0]]])
    # dilation 2: y[0] = x[0] - x[4]
    np.testing.assert_array_equal(naive_conv.conv(x, w, dilation=2), [[[-4.0]]])
    # two groups of one channel: each output channel sees only its own input channel
    x2 = np.array([[[1.0, 2.0], [10.0, 20.0]]])
    w2 = np.array([[[1.0, 1.0]], [[1.0, -1.0]]])
    np.testing.assert_array_equal(naive_conv.conv(x2, w2, b=[0.5, 0.0], groups=2),
                                  [[[3.5], [-10.0]]])


def test_naive_2d_by_hand():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2))
    # each output sums a 2x2 block: 0+1+3+4, 1+2+4+5, 3+4+6+7, 4+5+7+8
    np.testing.assert_array_equal(naive_conv.conv(x, w), [[[[8.0, 12.0], [20.0, 24.0]]]])


def test_naive_gradients_by_hand():
    x = np.array([[[1.0, 2.0, 3.0]]])
    w = np.array([[[2.0, -1.0]]])
    dy = np.array([[[1.0, 10.0]]])
    # y0 = 2 x0 - x1, y1 = 2 x1 - x2
    np.testing.assert_array_equal(naive_conv.conv_grad_input(dy, w, x.shape), [[[2.0, 19.0, -10.0]]])
    np.testing.assert_array_equal(naive_conv.conv_grad_weight(dy, x, w.shape), [[[21.0, 32.0]]])


def test_same_padding_rule_by_hand():
    # n = 5, f = 3, s = 2: ceil(5/2) = 3 outputs need 2*2 + 3 = 7 inputs, so 2 pixels: 1 + 1
    assert naive_conv.same_padding([5], [3], [2], [1]) == [(1, 1)]
    # n = 6, f = 3, s = 2: 3 outputs need 7 inputs, 1 pixel, placed after
    assert naive_conv.same_padding([6], [3], [2], [1]) == [(0, 1)]
    # stride 1, even filter 4: 3 pixels, 1 before, 2 after
    assert naive_conv.same_padding([8], [4], [1], [1]) == [(1, 2)]


# ------------------------------------------------------ drawn configurations

@st.composite
def conv_configs(draw, max_size=7):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * nd)))
    dilation = draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * nd)))
    padding = draw(st.one_of(
        st.integers(0, 2), st.tuples(*[st.integers(0, 2)] * nd), st.sampled_from(["same", "valid"])
    ))
    size_cap = max_size if nd < 3 else 5
    sizes = tuple(draw(st.integers(1, size_cap)) for _ in range(nd))
    n_batch = draw(st.integers(1, 3))
    x_shape = (n_batch, c_in) + sizes
    w_shape = (c_out, c_in // groups) + kernel
    out_shape = naive_conv.output_shape(x_shape, w_shape, stride, padding, dilation)
    assume(all(s >= 1 for s in out_shape[2:]))
    return dict(x_shape=x_shape, w_shape=w_shape, stride=stride, padding=padding,
                dilation=dilation, groups=groups)


def _arrays(cfg, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(cfg["x_shape"]).astype(dtype)
    w = rng.standard_normal(cfg["w_shape"]).astype(dtype)
    b = rng.standard_normal(cfg["w_shape"][0]).astype(dtype)
    return x, w, b


def _geometry(cfg):
    return {k: cfg[k] for k in ("stride", "padding", "dilation", "groups")}


@settings(max_examples=40, deadline=None)
@given(conv_configs())
# 3D with groups and dilation together, which the draws reach only by chance
@example(dict(x_shape=(2, 4, 5, 4, 5), w_shape=(6, 2, 2, 3, 2), stride=(1, 2, 1), padding=1,
              dilation=(2, 1, 2), groups=2))
def test_forward_and_backward_match_naive(cfg):
    x, w, b = _arrays(cfg)
    geo = _geometry(cfg)
    y = kernels.conv_forward(x, w, b, **geo)
    np.testing.assert_allclose(y, naive_conv.conv(x, w, b, **geo), rtol=1e-10, atol=1e-10)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    np.testing.assert_allclose(kernels.conv_backward_input(dy, w, x.shape, **geo),
                               naive_conv.conv_grad_input(dy, w, x.shape, **geo),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(kernels.conv_backward_weight(dy, x, w.shape, **geo),
                               naive_conv.conv_grad_weight(dy, x, w.shape, **geo),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(kernels.conv_backward_bias(dy),
                               dy.sum(axis=(0,) + tuple(range(2, dy.ndim))), rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(conv_configs())
def test_adjoint_identities(cfg):
    """<conv(x, w), v> = <x, conv_T_input(v, w)> = <w, conv_T_weight(v, x)>."""
    x, w, _ = _arrays(cfg)
    geo = _geometry(cfg)
    y = kernels.conv_forward(x, w, **geo)
    v = np.random.default_rng(2).standard_normal(y.shape)
    lhs = np.vdot(y, v)
    np.testing.assert_allclose(np.vdot(x, kernels.conv_backward_input(v, w, x.shape, **geo)),
                               lhs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.vdot(w, kernels.conv_backward_weight(v, x, w.shape, **geo)),
                               lhs, rtol=1e-10, atol=1e-10)


@settings(max_examples=15, deadline=None)
@given(conv_configs(max_size=5))
def test_gradients_match_finite_differences(cfg):
    """Directional derivatives of L = <conv(x, w) + b, v> along random directions."""
    x, w, b = _arrays(cfg)
    geo = _geometry(cfg)
    rng = np.random.default_rng(3)
    v = rng.standard_normal(kernels.conv_output_shape(x.shape, w.shape, **_shape_geo(cfg)))

    def loss(x_, w_, b_):
        return np.vdot(kernels.conv_forward(x_, w_, b_, **geo), v)

    grads = (kernels.conv_backward_input(v, w, x.shape, **geo),
             kernels.conv_backward_weight(v, x, w.shape, **geo),
             kernels.conv_backward_bias(v))
    eps = 1e-6
    for which, grad in enumerate(grads):
        direction = [np.zeros_like(a) for a in (x, w, b)]
        direction[which] = rng.standard_normal(grad.shape)
        plus = [a + eps * d for a, d in zip((x, w, b), direction)]
        minus = [a - eps * d for a, d in zip((x, w, b), direction)]
        numeric = (loss(*plus) - loss(*minus)) / (2 * eps)
        np.testing.assert_allclose(np.vdot(grad, direction[which]), numeric, rtol=1e-6, atol=1e-6)


def _shape_geo(cfg):
    return {k: cfg[k] for k in ("stride", "padding", "dilation", "groups")}


@settings(max_examples=20, deadline=None)
@given(conv_configs())
def test_float32_close_to_float64(cfg):
    x, w, b = _arrays(cfg, np.float32)
    geo = _geometry(cfg)
    y = kernels.conv_forward(x, w, b, **geo)
    assert y.dtype == np.float32
    expected = naive_conv.conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **geo)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    dx = kernels.conv_backward_input(y, w, x.shape, **geo)
    dw = kernels.conv_backward_weight(y, x, w.shape, **geo)
    assert dx.dtype == np.float32 and dw.dtype == np.float32


# ------------------------------------------------------------------ PyTorch

@settings(max_examples=30, deadline=None)
@given(conv_configs(max_size=8))
def test_matches_pytorch(cfg):
    torch = pytest.importorskip("torch")
    padding = cfg["padding"]
    stride = cfg["stride"]
    strided = stride != 1 and any(s != 1 for s in np.atleast_1d(stride))
    assume(not (padding == "same" and strided))   # PyTorch's 'same' needs stride 1
    x, w, b = _arrays(cfg)
    geo = _geometry(cfg)
    conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
            3: torch.nn.functional.conv3d}[x.ndim - 2]
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    yt = conv(xt, wt, bt, **geo)
    y = kernels.conv_forward(x, w, b, **geo)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    dy = np.random.default_rng(4).standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(kernels.conv_backward_input(dy, w, x.shape, **geo),
                               xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(kernels.conv_backward_weight(dy, x, w.shape, **geo),
                               wt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(kernels.conv_backward_bias(dy), bt.grad.numpy(), rtol=1e-10)


def test_large_input_is_tiled_consistently():
    """Inputs big enough to be cut into several tiles give the same answer as one tile."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 8, 70, 300))
    w = rng.standard_normal((4, 8, 3, 3))
    y = kernels.conv_forward(x, w, padding=1)
    # cross-check a corner and the middle with a direct sum
    for n, k, i, j in [(0, 0, 0, 0), (1, 3, 35, 150), (1, 2, 69, 299)]:
        patch = np.pad(x[n], ((0, 0), (1, 1), (1, 1)))[:, i:i + 3, j:j + 3]
        assert y[n, k, i, j] == pytest.approx(np.sum(patch * w[k]), rel=1e-10)
    dy = rng.standard_normal(y.shape)
    lhs = np.vdot(y, dy)
    assert np.vdot(x, kernels.conv_backward_input(dy, w, x.shape, padding=1)) == pytest.approx(lhs)
    assert np.vdot(w, kernels.conv_backward_weight(dy, x, w.shape, padding=1)) == pytest.approx(lhs)


@settings(max_examples=25, deadline=None)
@given(conv_configs(max_size=9), st.integers(1, 40), st.sampled_from([np.float32, np.float64]))
def test_tiny_tiles_shared_by_the_workers_match_naive(cfg, tile_elements, dtype):
    """Tiles of a few numbers each, every call spread over the workers, and
    scratch buffers reused across tiles, shapes and dtypes: same answers."""
    x, w, _ = _arrays(cfg, dtype)
    geo = _geometry(cfg)
    dy = np.random.default_rng(1).standard_normal(
        naive_conv.output_shape(x.shape, w.shape, cfg["stride"], cfg["padding"],
                                cfg["dilation"])).astype(dtype)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels.conv, "TILE_ELEMENTS", tile_elements)
        patch.setattr(kernels.conv, "SHARED_ELEMENTS", 0)
        results = (kernels.conv_forward(x, w, **geo),
                   kernels.conv_backward_input(dy, w, x.shape, **geo),
                   kernels.conv_backward_weight(dy, x, w.shape, **geo))
    expected = (naive_conv.conv(x, w, None, **geo),
                naive_conv.conv_grad_input(dy, w, x.shape, **geo),
                naive_conv.conv_grad_weight(dy, x, w.shape, **geo))
    for result, reference in zip(results, expected):
        assert result.dtype == dtype
        np.testing.assert_allclose(result, reference, rtol=tol, atol=tol)


@pytest.mark.parametrize("c_in, c_out", [(16, 8), (8, 16)])   # both input-gradient routes
@pytest.mark.parametrize("tile_elements", [3000, 250_000])      # rows of a sample; whole samples
def test_workers_sharing_medium_tiles_agree_with_one_tile(c_in, c_out, tile_elements):
    """Each worker thread unfolds into its own scratch buffer, and folds into
    its own dx unless its tiles are whole samples: many mid-sized tiles on two
    workers give what one tile in the caller gives."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, c_in, 40, 40)).astype(np.float32)
    w = rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((4, c_out, 40, 40)).astype(np.float32)

    def all_passes():
        return (kernels.conv_forward(x, w, padding=1),
                kernels.conv_backward_input(dy, w, x.shape, padding=1),
                kernels.conv_backward_weight(dy, x, w.shape, padding=1))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels.conv, "TILE_ELEMENTS", 1 << 30)
        patch.setattr(kernels.conv, "SHARED_ELEMENTS", 1 << 30)
        one_tile = all_passes()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels.conv, "TILE_ELEMENTS", tile_elements)
        patch.setattr(kernels.conv, "SHARED_ELEMENTS", 0)
        for _ in range(3):
            for shared, single in zip(all_passes(), one_tile):
                np.testing.assert_allclose(shared, single, rtol=1e-5, atol=1e-4)


# ----------------------------------------------------------- special inputs

def test_non_contiguous_inputs_work():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 5, 9, 3)).transpose(0, 1, 3, 2)   # (2, 5, 3, 9), a view
    w = rng.standard_normal((4, 5, 2, 3))[:, :, ::-1]             # negative stride
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    y = kernels.conv_forward(x, w)
    np.testing.assert_allclose(y, naive_conv.conv(x, w), rtol=1e-10)


def test_nan_and_inf_propagate():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = np.nan
    x[0, 0, 0, 4] = np.inf
    w = np.ones((1, 1, 3, 3))
    y = kernels.conv_forward(x, w)
    assert np.isnan(y).all()        # every 3x3 window of the 5x5 holds the NaN
    y = kernels.conv_forward(x, w, padding=1)
    assert np.isnan(y[0, 0, 1:4, 1:4]).all()
    assert np.isposinf(y[0, 0, 0, 3]) and np.isfinite(y[0, 0, 4, 0])


def test_slide_shapes():
    """The course's 1D, 2D and 3D shape chains: 14 -> 10 x 16 -> 6 x 32."""
    for nd in (1, 2, 3):
        x = np.zeros((1, 1 if nd != 2 else 3) + (14,) * nd)
        a1 = kernels.conv_forward(x, np.zeros((16, x.shape[1]) + (5,) * nd))
        assert a1.shape == (1, 16) + (10,) * nd
        a2 = kernels.conv_forward(a1, np.zeros((32, 16) + (5,) * nd))
        assert a2.shape == (1, 32) + (6,) * nd


def test_output_shape_matches_forward():
    x = np.zeros((2, 4, 11, 9))
    w = np.zeros((6, 2, 3, 2))
    args = dict(stride=(2, 3), padding="same", dilation=(1, 2), groups=2)
    assert kernels.conv_output_shape(x.shape, w.shape, **args) == kernels.conv_forward(x, w, **args).shape
    assert kernels.conv_output_shape(x.shape, w.shape, **args) == (2, 6, 6, 3)


@pytest.mark.parametrize("n_spatial, c_in", [(1, 3), (2, 3), (2, 16), (3, 8)])  # 16, 8: Winograd
def test_an_empty_batch_gives_empty_outputs_and_a_zero_weight_gradient(n_spatial, c_in):
    torch = pytest.importorskip("torch")
    x = np.zeros((0, c_in) + (6,) * n_spatial)
    w = np.ones((4, c_in) + (3,) * n_spatial)
    b = np.ones(4)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = getattr(torch.nn.functional, f"conv{n_spatial}d")(xt, wt, torch.tensor(b), padding=1)
    yt.sum().backward()
    y = kernels.conv_forward(x, w, b, padding=1)
    assert y.shape == tuple(yt.shape) == kernels.conv_output_shape(x.shape, w.shape, padding=1)
    assert kernels.conv_backward_input(y, w, x.shape, padding=1).shape == x.shape
    np.testing.assert_array_equal(kernels.conv_backward_weight(y, x, w.shape, padding=1),
                                  wt.grad.numpy())


# ---------------------------------------------------------------- bad input

X = np.zeros((2, 4, 8, 8))
W = np.zeros((6, 4, 3, 3))


@pytest.mark.parametrize("call, error, message", [
    (lambda: kernels.conv_forward(np.zeros((4, 8)), W), ValueError, r"x must have 3 or 4 or 5 dimensions"),
    (lambda: kernels.conv_forward(X, np.zeros((6, 4, 3))), ValueError, r"w must have 4 dimensions"),
    (lambda: kernels.conv_forward(X, np.zeros((6, 3, 3, 3))), ValueError, r"w must have 4 input channels per group"),
    (lambda: kernels.conv_forward(X, np.zeros((6, 2, 3, 3)), groups=3), ValueError, r"groups=3 must divide"),
    (lambda: kernels.conv_forward(X, W, groups=0), ValueError, r"groups must be a positive int"),
    (lambda: kernels.conv_forward(X, W, padding=-1), ValueError, r"padding must be >= 0"),
    (lambda: kernels.conv_forward(X, W, padding="full"), ValueError, r"padding must be an int, a tuple, 'same' or 'valid'"),
    (lambda: kernels.conv_forward(X, W, stride=0), ValueError, r"stride must be >= 1"),
    (lambda: kernels.conv_forward(X, W, stride=(1, 2, 3)), ValueError, r"stride must be an int or a tuple of 2 ints"),
    (lambda: kernels.conv_forward(X, W, dilation=1.5), TypeError, r"dilation must be an int or a tuple"),
    (lambda: kernels.conv_forward(X, np.zeros((6, 4, 9, 9))), ValueError, r"kernel size \(dilated\) 9 is larger than the padded input 8"),
    (lambda: kernels.conv_forward(X, W, dilation=4), ValueError, r"kernel size \(dilated\) 9 is larger"),
    (lambda: kernels.conv_forward(X, W.astype(np.float32)), TypeError, r"x is float64, w is float32"),
    (lambda: kernels.conv_forward(X.astype(int), W), TypeError, r"x must have dtype float32 or float64, got int"),
    (lambda: kernels.conv_forward(X.tolist(), W), TypeError, r"x must be a numpy.ndarray, got list"),
    (lambda: kernels.conv_forward(X, W, b=np.zeros(5)), ValueError, r"b must have shape \(6,\)"),
    (lambda: kernels.conv_forward(X, np.zeros((6, 4, 0, 3))), ValueError,
     r"w must have .* a kernel size of at least 1 in every spatial dimension, got w shape \(6, 4, 0, 3\)"),
    (lambda: kernels.conv_backward_input(np.zeros((2, 6, 5, 5)), W, X.shape), ValueError, r"dy must have shape \(2, 6, 6, 6\)"),
    (lambda: kernels.conv_backward_input(np.zeros((2, 6, 6, 6)), W, (2, 4, 8)), ValueError, r"x_shape must have 4 entries"),
    (lambda: kernels.conv_backward_input(np.zeros((2, 6, 6, 6)), W, (2, 4, 0, 8)), ValueError, r"x_shape must hold positive sizes"),
    (lambda: kernels.conv_backward_weight(np.zeros((2, 6, 6, 6)), X, (6, 4, 3)), ValueError, r"w_shape must have 4 entries"),
    (lambda: kernels.conv_backward_weight(np.zeros((2, 6, 6, 6), np.float32), X, W.shape), TypeError, r"dy is float32, x is float64"),
    (lambda: kernels.conv_backward_weight(np.zeros((3, 6, 6, 6)), X, W.shape), ValueError, r"dy must have shape \(2, 6, 6, 6\)"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
