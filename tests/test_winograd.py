"""F(4x4, 3x3) (kernels.winograd) against the matrices of its formula and the naive loops.

The constant matrices B^T, G and A^T are written out here from the module's
docstring, and the 1-D identity A^T [(G g) * (B^T d)] = correlate(d, g) is
checked with them first; the transforms of the module are then checked
against these matrices, and whole convolutions (2-D and 3-D, odd sizes, both
dtypes, forward and both gradients) against tests/naive_conv.py.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import kernels
import naive_conv
from kernels import conv, winograd

B_T = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=float)
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])
A_T = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], dtype=float)
# F(4x4, 3x3) in float32 stays this close to the exact sum, relative to the
# largest output (test_float32_error_is_a_few_dozen_roundings)
FLOAT32_BOUND = 1e-5


def test_one_dimensional_identity_of_the_matrices():
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal(6), rng.standard_normal(3)
    direct = [d[o:o + 3] @ g for o in range(4)]          # y[o] = sum_j g[j] d[o + j]
    np.testing.assert_allclose(A_T @ ((G @ g) * (B_T @ d)), direct, rtol=1e-13, atol=1e-13)


def test_filter_transform_is_g_g_g_transposed():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((5, 3, 2, 3, 3))             # (F, C, f_D, 3, 3)
    u = winograd.filter_transform(w)                     # (36, F, f_D C)
    expected = np.einsum("ai,kcdij,bj->abkdc", G, w, G).reshape(36, 5, 6)
    np.testing.assert_allclose(u, expected, rtol=1e-13)


def test_input_and_output_transforms_are_the_formula():
    rng = np.random.default_rng(2)
    x_pad = rng.standard_normal((1, 2, 1, 10, 14))       # 2 x 3 tiles of one plane
    v_rows = np.empty((36, 2 * 6))                       # V[a, b] (2 channels, 6 tiles) per row
    winograd._input_transform(x_pad, (0, 0, 0), 0, 2, 1, 2, 3, 0, v_rows,   # tile rows 0, 1
                              np.empty((6, 6, 6)))
    v = v_rows.reshape(36, 2, 6)
    m = rng.standard_normal((36, 3, 6))
    y = np.zeros((1, 3, 1, 8, 12))
    winograd._output_transform(m.reshape(36, 18), 0, 2, 2, y)
    for th in range(2):
        for tw in range(3):
            t = th * 3 + tw
            for c in range(2):
                tile = x_pad[0, c, 0, 4 * th:4 * th + 6, 4 * tw:4 * tw + 6]
                np.testing.assert_allclose(v[:, c, t].reshape(6, 6), B_T @ tile @ B_T.T,
                                           rtol=1e-13, atol=1e-13)
            for k in range(3):
                block = y[0, k, 0, 4 * th:4 * th + 4, 4 * tw:4 * tw + 4]
                np.testing.assert_allclose(block, A_T @ m[:, k, t].reshape(6, 6) @ A_T.T,
                                           rtol=1e-13, atol=1e-13)


def test_gradient_transforms_are_the_adjoint_formula():
    """dw = G^T [(A dy_t A^T) * V_t] G: the transforms of dy and of the summed products."""
    rng = np.random.default_rng(5)
    dy = rng.standard_normal((1, 3, 1, 8, 12))           # 2 x 3 blocks of 4 x 4
    dy_hat = np.empty((36, 3 * 6))
    winograd._gradient_transform(dy, 0, 2, 2, dy_hat, np.empty((6, 4, 6)))
    dy_hat = dy_hat.reshape(36, 3, 6)
    m = rng.standard_normal((36, 3, 2))
    dw = np.empty((3, 2, 3, 3))
    winograd._weight_transform(m, dw)
    for k in range(3):
        for th in range(2):
            for tw in range(3):
                block = dy[0, k, 0, 4 * th:4 * th + 4, 4 * tw:4 * tw + 4]
                np.testing.assert_allclose(dy_hat[:, k, th * 3 + tw].reshape(6, 6),
                                           A_T.T @ block @ A_T, rtol=1e-13, atol=1e-13)
        for q in range(2):
            np.testing.assert_allclose(dw[k, q], G.T @ m[:, k, q].reshape(6, 6) @ G,
                                       rtol=1e-13, atol=1e-13)


def test_applies_to_3x3_stride_1_filters_with_16_rows_or_more():
    def geo(x_shape, w_shape, **options):
        return conv._geometry(x_shape, w_shape, options.get("stride", 1),
                              options.get("padding", 1), options.get("dilation", 1),
                              options.get("groups", 1))
    assert winograd.applies(geo((1, 16, 8, 8), (4, 16, 3, 3)), 16)
    assert winograd.applies(geo((1, 8, 8, 8, 8), (4, 8, 3, 3, 3)), 8)   # 8 x f_D 3 rows
    assert not winograd.applies(geo((1, 3, 8, 8), (4, 3, 3, 3)), 3)      # too few rows
    assert not winograd.applies(geo((1, 16, 8, 8), (4, 16, 3, 3), stride=2), 16)
    assert not winograd.applies(geo((1, 16, 8, 8), (4, 16, 3, 3), dilation=2), 16)
    assert not winograd.applies(geo((1, 16, 8, 8), (4, 8, 3, 3), groups=2), 16)
    assert not winograd.applies(geo((1, 16, 8, 8), (4, 16, 5, 5)), 16)
    assert not winograd.applies(geo((1, 16, 9), (4, 16, 3)), 16)        # 1-D: (1, 1, 3)



@pytest.mark.parametrize("pad_before, sizes", [((0, 1, 1), (1, 7, 9)), ((1, 0, 2), (3, 6, 7)),
                                               ((0, 2, 0), (1, 3, 2))])
def test_the_input_transform_reads_x_as_if_it_were_padded(pad_before, sizes):
    """Zeros before x (pad_before), and after it as far as the tiles reach, read in place:
    the same V as the transform of a copy of x padded with those zeros."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3) + sizes)
    planes, tiles_h, tiles_w = sizes[0] + pad_before[0] + 1, 3, 4     # reaching past x
    padded_sizes = (planes, 4 * tiles_h + 2, 4 * tiles_w + 2)
    x_pad = np.zeros((2, 3) + padded_sizes)
    inside = tuple(slice(lo, lo + n) for lo, n in zip(pad_before, sizes))
    x_pad[(slice(None), slice(None)) + inside] = x
    rows = 2 * planes * tiles_h                                     # every tile row of both samples
    in_place, from_copy = (np.empty((36, 3 * rows * tiles_w)) for _ in range(2))
    columns = np.empty((6, 6, rows * tiles_w))
    winograd._input_transform(x, pad_before, 0, rows, planes, tiles_h, tiles_w, 0, in_place,
                              columns)
    winograd._input_transform(x_pad, (0, 0, 0), 0, rows, planes, tiles_h, tiles_w, 0,
                              from_copy, columns)
    np.testing.assert_array_equal(in_place, from_copy)


@pytest.mark.parametrize("sizes, padding", [((7, 9), 1), ((5, 6, 7), (1, 0, 2)), ((8, 8), 1)])
def test_the_winograd_convolution_makes_no_padded_copy(sizes, padding, monkeypatch):
    """Forward, input gradient and weight gradient, all three on the Winograd route (16
    channels in and out), right and without one call of conv._pad."""
    n_spatial = len(sizes)
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 16) + sizes), rng.standard_normal((16, 16) + (3,) * n_spatial)
    dy = rng.standard_normal(naive_conv.conv(x, w, padding=padding).shape)
    pads = []
    real_pad = conv._pad

    def counted_pad(*args, **kwargs):
        pads.append(args[0].shape)
        return real_pad(*args, **kwargs)

    monkeypatch.setattr(conv, "_pad", counted_pad)
    results = (kernels.conv_forward(x, w, padding=padding),
               kernels.conv_backward_input(dy, w, x.shape, padding=padding),
               kernels.conv_backward_weight(dy, x, w.shape, padding=padding))
    assert pads == []
    expected = (naive_conv.conv(x, w, padding=padding),
                naive_conv.conv_grad_input(dy, w, x.shape, padding=padding),
                naive_conv.conv_grad_weight(dy, x, w.shape, padding=padding))
    for got, want in zip(results, expected):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


@pytest.mark.parametrize("depth, c_in, c_out", [(2, 8, 16), (1, 16, 16), (4, 4, 8)])
def test_filter_depths_other_than_3_run_as_winograd_and_match_naive(depth, c_in, c_out,
                                                                      monkeypatch):
    """A 3-D filter (f_D, 3, 3) with f_D c_in >= 16 rows: the forward pass and the weight
    gradient take the Winograd route (and the input gradient too when c_in >= 16)."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, c_in, 4, 5, 6))
    w = rng.standard_normal((c_out, c_in, depth, 3, 3))
    padding = (0, 1, 2)     # at most d (f - 1) per axis: the input gradient may correlate too
    dy = rng.standard_normal(naive_conv.conv(x, w, padding=padding).shape)
    calls = []

    def counted(name):
        real = getattr(winograd, name)

        def call(*args):
            calls.append(name)
            return real(*args)
        return call

    for name in ("correlate", "weight_gradient"):
        monkeypatch.setattr(winograd, name, counted(name))
    results = (kernels.conv_forward(x, w, padding=padding),
               kernels.conv_backward_input(dy, w, x.shape, padding=padding),
               kernels.conv_backward_weight(dy, x, w.shape, padding=padding))
    expected_calls = ["correlate"] * (2 if c_in >= winograd.MIN_ROWS else 1) + ["weight_gradient"]
    assert calls == expected_calls
    expected = (naive_conv.conv(x, w, padding=padding),
                naive_conv.conv_grad_input(dy, w, x.shape, padding=padding),
                naive_conv.conv_grad_weight(dy, x, w.shape, padding=padding))
    for got, want in zip(results, expected):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


@st.composite
def winograd_configs(draw):
    n_spatial = draw(st.sampled_from([2, 3]))
    sizes = tuple(draw(st.integers(1, 9)) for _ in range(n_spatial))
    # at least winograd.MIN_ROWS = 16 rows of V: channels x filter depth
    c_in = draw(st.sampled_from([6, 16, 20] if n_spatial == 3 else [16, 21]))
    padding = draw(st.sampled_from([0, 1, 2, "same", (1, 0, 2)[:n_spatial]]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return dict(n=draw(st.integers(1, 3)), c_in=c_in, c_out=draw(st.integers(1, 9)),
                sizes=sizes, padding=padding, dtype=dtype)


@settings(max_examples=30, deadline=None)
@given(winograd_configs())
def test_forward_and_both_gradients_match_naive(cfg):
    n_spatial = len(cfg["sizes"])
    padding = cfg["padding"]
    pads = (padding,) * n_spatial if isinstance(padding, int) else padding
    # the filter fits in the padded input
    assume(padding == "same" or all(s + 2 * p >= 3 for s, p in zip(cfg["sizes"], pads)))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((cfg["n"], cfg["c_in"]) + cfg["sizes"])
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"]) + (3,) * n_spatial)
    geo = conv._geometry(x.shape, w.shape, 1, padding, 1, 1)
    assert winograd.applies(geo, cfg["c_in"])
    y_naive = naive_conv.conv(x, w, padding=padding)
    dy = rng.standard_normal(y_naive.shape)
    dx_naive = naive_conv.conv_grad_input(dy, w, x.shape, padding=padding)
    dtype = cfg["dtype"]

    def assert_close(got, want, scale=1.0):
        """float32: within FLOAT32_BOUND of want's largest entry; float64: to 1e-10 (of scale)."""
        if dtype == np.float32:
            np.testing.assert_allclose(got, want, rtol=0, atol=FLOAT32_BOUND * np.abs(want).max())
        else:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * scale)

    y = kernels.conv_forward(x.astype(dtype), w.astype(dtype), padding=padding)
    assert y.dtype == dtype and y.flags.c_contiguous
    assert_close(y, y_naive)
    dx = kernels.conv_backward_input(dy.astype(dtype), w.astype(dtype), x.shape, padding=padding)
    assert_close(dx, dx_naive)
    dw = kernels.conv_backward_weight(dy.astype(dtype), x.astype(dtype), w.shape, padding=padding)
    dw_naive = naive_conv.conv_grad_weight(dy, x, w.shape, padding=padding)
    assert_close(dw, dw_naive, scale=np.abs(dw_naive).max())


@pytest.mark.parametrize("x_shape", [(2, 32, 15, 22), (1, 24, 40, 64), (2, 16, 5, 6, 7),
                                     (2, 256, 14, 14)])
def test_float32_error_is_a_few_dozen_roundings(monkeypatch, x_shape):
    """F(4x4, 3x3) in float32 stays within 1e-5 of the largest output, about 80 roundings
    (float32's epsilon is 1.2e-7), and within 30 times the unfolded route's error.

    Its transforms multiply by up to 8 (A^T), 5 (B^T) and 1/24 (G) and add up to
    six terms each, which amplifies round-off; measured: 3e-6 to 5.5e-6, 5 to 20
    times the unfolded route's. A transform with a wrong sign or entry gives
    errors of the order of the outputs.
    """
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((8, x_shape[1]) + (3,) * (len(x_shape) - 2))
    exact = kernels.conv_forward(x, w, padding=1)

    def float32_error():
        y32 = kernels.conv_forward(x.astype(np.float32), w.astype(np.float32), padding=1)
        return np.abs(y32 - exact).max() / np.abs(exact).max()

    with_winograd = float32_error()
    monkeypatch.setattr(winograd, "MIN_ROWS", 10**9)     # unfold and multiply instead
    unfolded = float32_error()
    assert with_winograd < FLOAT32_BOUND and with_winograd < 30 * unfolded, (with_winograd,
                                                                              unfolded)


@pytest.mark.parametrize("chunk_elements", [1, 4000, 1 << 19])
def test_chunks_shared_by_the_workers_agree(monkeypatch, chunk_elements):
    """One tile row per chunk, a few, or whole planes: the same result."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 16, 13, 20)).astype(np.float32)
    w = rng.standard_normal((5, 16, 3, 3)).astype(np.float32)
    expected = naive_conv.conv(x.astype(np.float64), w.astype(np.float64), padding=1)
    monkeypatch.setattr(winograd, "CHUNK_ELEMENTS", chunk_elements)
    np.testing.assert_allclose(kernels.conv_forward(x, w, padding=1), expected,
                               rtol=0, atol=FLOAT32_BOUND * np.abs(expected).max())


def test_chunks_cover_every_tile_row_once_and_feed_every_worker(monkeypatch):
    monkeypatch.setattr(winograd, "N_WORKERS", 4)
    cases = [(1, 1, 10, 1, 1), (1, 1, 10, 1 << 17, 1), (3, 1, 1, 1 << 20, 1),
             (8, 1, 125, 1 << 10, 1), (1, 1, 7, 1 << 16, 1),            # filter depth 1
             (2, 6, 4, 1 << 12, 3), (1, 9, 3, 1 << 18, 3), (3, 2, 5, 1, 3)]  # depth 3
    for n_batch, out_d, tiles_h, per_row, depth in cases:
        chunks = winograd._chunks(n_batch, out_d, tiles_h, per_row, depth)
        covered = [r for first, stop in chunks for r in range(first, stop)]
        assert covered == list(range(n_batch * out_d * tiles_h))
        if depth > 1:                                    # whole planes of one sample
            plane_rows = out_d * tiles_h
            assert all(first % tiles_h == 0 and stop % tiles_h == 0
                       and first // plane_rows == (stop - 1) // plane_rows
                       for first, stop in chunks)
        if n_batch * out_d * tiles_h * per_row >= winograd.SHARED_ELEMENTS:
            assert len(chunks) >= min(4, n_batch * out_d * (tiles_h if depth == 1 else 1))
        elif depth == 1:
            assert len(chunks) == 1
