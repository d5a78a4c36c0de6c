"""kernels.cuda against its CPU twins, on a GPU or on Numba's CUDA simulator.

Oracle: every CUDA kernel must give what its twin in `kernels` gives (those
are checked against naive loops, finite differences and PyTorch in their own
test modules), to rounding: the GPU adds in another order and fuses
multiply-adds. The tiled product, which the twins do not have, is checked
against NumPy's matmul. Argument errors must be the twins' errors.

On the simulator every CUDA thread is a Python thread, so shapes stay tiny
and hypothesis draws few examples; the shapes are still chosen to cross the
edges of the 64 x 64 tiles and the 16-deep steps along k where it matters.
See cuda_support.py for how this module runs when there is no GPU.
"""

import numpy as np
import pytest
from cuda_support import cuda_runs_here, skip_reason
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import kernels

if not cuda_runs_here():
    pytest.skip(skip_reason(), allow_module_level=True)

from numba import cuda  # noqa: E402

import kernels.cuda as gpu  # noqa: E402
from kernels.cuda import product as product_module  # noqa: E402
from kernels.cuda._device import View, c_strides  # noqa: E402
from kernels.cuda.elementwise import collapse  # noqa: E402

DTYPES = (np.float32, np.float64)


def on_device(a):
    return cuda.to_device(np.ascontiguousarray(a))


def host(a):
    return a.copy_to_host()


def random_array(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def assert_close(got, want, dtype=None):
    """Agreement to rounding: |got - want| <= tol * (1 + max |want|), tol by dtype."""
    dtype = np.dtype(dtype or want.dtype)
    assert got.shape == want.shape and got.dtype == want.dtype
    tol = 2e-5 if dtype == np.float32 else 1e-12
    scale = 1.0 + (np.abs(want).max() if want.size else 0.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale)


# ------------------------------------------------------------ the tiled product

def strided_product(a, b):
    """A @ B for (n_batch, m, k) and (n_batch, k, n) arrays, with the tiled product kernel."""
    a_view = View(on_device(a.ravel()), 0, a.shape, c_strides(a.shape))
    b_view = View(on_device(b.ravel()), 0, b.shape, c_strides(b.shape))
    out = product_module.product(
        product_module.strided_rows(a_view), product_module.strided_columns(b_view),
        a.shape[0], a.shape[1], b.shape[2], a.shape[2], a.dtype)
    return host(out)


def test_product_crosses_tile_edges():
    # 70 x 67 outputs: 2 x 2 tiles of 64, the last ones mostly empty; k = 35: three
    # steps of 16, the last one partial
    a, b = random_array((1, 70, 35), np.float64, 0), random_array((1, 35, 67), np.float64, 1)
    assert_close(strided_product(a, b), a @ b)


def test_product_splits_k_and_adds_the_parts(monkeypatch):
    monkeypatch.setattr(product_module, "MIN_K_PER_SPLIT", 16)   # split k = 40 into 3 parts
    a, b = random_array((1, 5, 40), np.float32, 2), random_array((1, 40, 3), np.float32, 3)
    assert product_module._k_per_split(1, 40, 1) == 16
    assert_close(strided_product(a, b), (a.astype(np.float64) @ b).astype(np.float32))


def test_split_k_is_chosen_for_few_tiles_and_long_sums():
    # the weight gradient of a 64-channel 3x3 layer over a 512 x 512 image: 9 tiles, k = 2^18
    per_split = product_module._k_per_split(9, 2 ** 18, 1)
    assert per_split % product_module.TILE_K == 0
    assert 9 * -(-2 ** 18 // per_split) >= product_module.TARGET_BLOCKS
    assert product_module._k_per_split(1024, 2 ** 18, 64) == 2 ** 18   # enough tiles: no split
    assert product_module._k_per_split(1, 40, 1) == 48                  # short sums: no split


def test_collapse_merges_the_axes_every_operand_walks_contiguously():
    assert collapse((2, 3, 4), (12, 4, 1), (12, 4, 1)) == ((24,), [(1,), (1,)])
    assert collapse((2, 3, 4), (12, 4, 1), (0, 1, 0)) == ((2, 3, 4), [(12, 4, 1), (0, 1, 0)])
    assert collapse((1, 64, 512), (0, 512, 1), (0, 1, 0)) == ((64, 512), [(512, 1), (1, 0)])
    assert collapse((1, 1), (1, 1)) == ((1,), [(0,)])          # one entry


def test_product_with_an_empty_sum_is_zero():
    a, b = np.zeros((1, 3, 0)), np.zeros((1, 0, 2))
    np.testing.assert_array_equal(strided_product(a, b), np.zeros((1, 3, 2)))


# ------------------------------------------------------------------ convolution

@st.composite
def conv_cases(draw):
    """A convolution whose products stay within two blocks (N G <= 2, P <= 64)."""
    n_spatial = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    n_batch = draw(st.integers(1, 3 - groups))
    channels_in = groups * draw(st.integers(1, 2))
    channels_out = groups * draw(st.integers(1, 3))
    largest = {1: 9, 2: 6, 3: 4}[n_spatial]
    sizes = tuple(draw(st.integers(1, largest)) for _ in range(n_spatial))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n_spatial))
    geometry = dict(
        stride=draw(st.integers(1, 2)),
        dilation=draw(st.integers(1, 2)),
        padding=draw(st.one_of(st.integers(0, 2), st.sampled_from(["same", "valid"]))),
        groups=groups,
    )
    x_shape = (n_batch, channels_in) + sizes
    w_shape = (channels_out, channels_in // groups) + kernel
    try:
        kernels.conv_output_shape(x_shape, w_shape, **geometry)
    except ValueError:
        assume(False)                                    # the kernel does not fit
    return x_shape, w_shape, geometry


def check_conv(x_shape, w_shape, geometry, dtype, seed=0):
    x, w = random_array(x_shape, dtype, seed), random_array(w_shape, dtype, seed + 1)
    b = random_array(w_shape[:1], dtype, seed + 2)
    y = kernels.conv_forward(x, w, b, **geometry)
    assert_close(host(gpu.conv_forward(on_device(x), on_device(w), on_device(b), **geometry)), y)
    dy = random_array(y.shape, dtype, seed + 3)
    assert_close(host(gpu.conv_backward_input(on_device(dy), on_device(w), x_shape, **geometry)),
                 kernels.conv_backward_input(dy, w, x_shape, **geometry))
    assert_close(host(gpu.conv_backward_weight(on_device(dy), on_device(x), w_shape, **geometry)),
                 kernels.conv_backward_weight(dy, x, w_shape, **geometry))
    assert_close(host(gpu.conv_backward_bias(on_device(dy))), kernels.conv_backward_bias(dy))


@settings(max_examples=4, deadline=None)
@given(case=conv_cases(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_conv_matches_the_cpu_twin(case, dtype, seed):
    check_conv(*case, dtype, seed)


@pytest.mark.parametrize("x_shape, w_shape, geometry", [
    ((1, 2, 9), (3, 2, 3), dict(stride=2, padding=2, dilation=2)),          # 1-D, the fold case
    ((1, 4, 5, 6), (4, 2, 3, 3), dict(padding="same", groups=2)),           # groups, 'same'
    ((1, 1, 3, 4, 4), (2, 1, 2, 3, 3), dict(stride=(1, 2, 1), padding=1)),  # 3-D
    ((1, 1, 9, 9), (1, 1, 3, 3), dict(padding=1)),                          # 81 positions: 2 tiles
    ((1, 8, 3, 3), (2, 8, 3, 3), dict(padding=1)),                          # k = 72: 5 steps
    ((0, 2, 5, 5), (3, 2, 3, 3), dict(padding=1)),                          # an empty batch
])
def test_conv_chosen_cases(x_shape, w_shape, geometry):
    check_conv(x_shape, w_shape, geometry, np.float32)


def test_conv_by_hand():
    # the course's 1-D example: x = 1 2 3 4, f = [1, 0, -1] gives 1 - 3, 2 - 4
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    w = np.array([[[1.0, 0.0, -1.0]]])
    np.testing.assert_array_equal(host(gpu.conv_forward(on_device(x), on_device(w))),
                                  [[[-2.0, -2.0]]])


def test_conv_errors_are_the_twins():
    x, w = np.zeros((1, 3, 6, 6), np.float32), np.zeros((4, 2, 3, 3), np.float32)
    with pytest.raises(ValueError) as cpu_error:
        kernels.conv_forward(x, w)
    with pytest.raises(ValueError) as gpu_error:
        gpu.conv_forward(on_device(x), on_device(w))
    assert str(gpu_error.value) == str(cpu_error.value)
    with pytest.raises(TypeError, match="x is float32, w is float64"):
        gpu.conv_forward(on_device(x), on_device(np.zeros((4, 3, 3, 3))))
    with pytest.raises(TypeError, match="x must be a CUDA device array.*got ndarray"):
        gpu.conv_forward(x, on_device(w))
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        gpu.conv_forward(on_device(np.zeros((1, 3, 6, 12), np.float32))[..., ::2], on_device(w))
    dy = on_device(np.zeros((1, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 4, 4, 4\)"):
        gpu.conv_backward_input(dy, on_device(np.zeros((4, 3, 3, 3), np.float32)), x.shape)


# ----------------------------------------------------------------------- pooling

@st.composite
def pool_cases(draw):
    n_spatial = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n_spatial))
    stride = draw(st.one_of(st.none(), st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, f // 2)) for f in kernel)
    sizes = tuple(draw(st.integers(1, 6 if n_spatial < 3 else 4)) for _ in range(n_spatial))
    x_shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + sizes
    dilation = draw(st.integers(1, 2))                   # for max pooling
    assume(all(n + 2 * p >= dilation * (f - 1) + 1 for n, p, f in zip(sizes, padding, kernel)))
    return x_shape, kernel, stride, padding, dilation


@settings(max_examples=8, deadline=None)
@given(case=pool_cases(), dtype=st.sampled_from(DTYPES), ceil_mode=st.booleans(),
       count_include_pad=st.booleans(), seed=st.integers(0, 2**16))
def test_pooling_matches_the_cpu_twin(case, dtype, ceil_mode, count_include_pad, seed):
    x_shape, kernel, stride, padding, dilation = case
    window = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    average = dict(window, count_include_pad=count_include_pad)
    x = random_array(x_shape, dtype, seed)
    y, indices = kernels.max_pool_forward(x, **window, dilation=dilation)
    y_gpu, indices_gpu = gpu.max_pool_forward(on_device(x), **window, dilation=dilation)
    np.testing.assert_array_equal(host(y_gpu), y)
    np.testing.assert_array_equal(host(indices_gpu), indices)
    dy = random_array(y.shape, dtype, seed + 1)
    assert_close(host(gpu.max_pool_backward(on_device(dy), indices_gpu, x_shape)),
                 kernels.max_pool_backward(dy, indices, x_shape))
    mean = kernels.avg_pool_forward(x, **average)
    np.testing.assert_array_equal(host(gpu.avg_pool_forward(on_device(x), **average)), mean)
    dy = random_array(mean.shape, dtype, seed + 2)
    np.testing.assert_array_equal(host(gpu.avg_pool_backward(on_device(dy), x_shape, **average)),
                                  kernels.avg_pool_backward(dy, x_shape, **average))


def test_a_dilated_window_with_no_input_is_the_twins():
    x = np.array([[[3.0]]])                  # windows of 2, 2 apart, padding 1: reads -1 and 1
    y, indices = kernels.max_pool_forward(x, 2, 1, 1, 2)
    y_gpu, indices_gpu = gpu.max_pool_forward(on_device(x), 2, 1, 1, 2)
    assert y.tolist() == [[[-np.inf]]] and indices.tolist() == [[[-1]]]
    np.testing.assert_array_equal(host(y_gpu), y)
    np.testing.assert_array_equal(host(indices_gpu), indices)
    dy = np.ones_like(y)
    np.testing.assert_array_equal(host(gpu.max_pool_backward(on_device(dy), indices_gpu, x.shape)),
                                  [[[0.0]]])


def test_max_pool_nan_wins_and_ties_go_first():
    x = np.array([[[1.0, 1.0, np.nan, 2.0]]])
    y, indices = gpu.max_pool_forward(on_device(x), 2)
    np.testing.assert_array_equal(host(y), [[[1.0, np.nan]]])
    np.testing.assert_array_equal(host(indices), [[[0, 2]]])


def test_pooling_errors_are_the_twins():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError) as cpu_error:
        kernels.max_pool_forward(x, 2, padding=2)
    with pytest.raises(ValueError) as gpu_error:
        gpu.max_pool_forward(on_device(x), 2, padding=2)
    assert str(gpu_error.value) == str(cpu_error.value)
    _, indices = gpu.max_pool_forward(on_device(x), 2)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 4\) or be -1"):
        gpu.max_pool_backward(on_device(np.zeros((1, 1, 2, 2))), indices, (1, 1, 2, 2))
    with pytest.raises(TypeError, match="indices must be an int64 device array"):
        gpu.max_pool_backward(on_device(np.zeros((1, 1, 2, 2))),
                              on_device(np.zeros((1, 1, 2, 2), np.int32)), (1, 1, 4, 4))


# ---------------------------------------------------------------------- Gram

@st.composite
def activation_shapes(draw):
    n_spatial = draw(st.integers(0, 3))
    spatial = tuple(draw(st.integers(1, 4)) for _ in range(n_spatial))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 5))) + spatial


@settings(max_examples=3, deadline=None)
@given(shape=activation_shapes(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_gram_matches_the_cpu_twin(shape, dtype, seed):
    a = random_array(shape, dtype, seed)
    G = host(gpu.gram(on_device(a)))
    assert_close(G, kernels.gram(a))
    np.testing.assert_array_equal(G, G.transpose(0, 2, 1))  # both halves from one order of sums
    dG = random_array(G.shape, dtype, seed + 1)
    assert_close(host(gpu.gram_backward(on_device(dG), on_device(a))), kernels.gram_backward(dG, a))


def test_gram_over_many_positions_splits_the_sum(monkeypatch):
    monkeypatch.setattr(product_module, "MIN_K_PER_SPLIT", 16)
    a = random_array((1, 3, 40), np.float64, 4)            # 40 positions: three parts of k
    assert product_module._k_per_split(1, 40, 1) == 16
    assert_close(host(gpu.gram(on_device(a))), kernels.gram(a))


# --------------------------------------------------------------- batch norm

@settings(max_examples=3, deadline=None)
@given(shape=activation_shapes(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16),
       batch_statistics=st.booleans())
def test_batch_norm_matches_the_cpu_twin(shape, dtype, seed, batch_statistics):
    z = random_array(shape, dtype, seed) + 2
    gamma, beta = random_array(shape[1:2], dtype, seed + 1), random_array(shape[1:2], dtype, seed + 2)
    mu, sigma2 = (host(part) for part in gpu.batch_norm_statistics(on_device(z)))
    want_mu, want_sigma2 = kernels.batch_norm_statistics(z)
    assert_close(mu, want_mu, dtype)
    assert_close(sigma2, want_sigma2, dtype)
    outputs = gpu.batch_norm_forward(on_device(z), on_device(want_mu), on_device(want_sigma2),
                                     on_device(gamma), on_device(beta), 1e-3)
    wanted = kernels.batch_norm_forward(z, want_mu, want_sigma2, gamma, beta, 1e-3)
    for got, want in zip(outputs, wanted):
        assert_close(host(got), want)
    g = random_array(shape, dtype, seed + 3)
    z_norm = wanted[1]
    gradients = gpu.batch_norm_backward(on_device(g), on_device(z_norm), on_device(want_sigma2),
                                        on_device(gamma), 1e-3, batch_statistics)
    wanted = kernels.batch_norm_backward(g, z_norm, want_sigma2, gamma, 1e-3, batch_statistics)
    for got, want in zip(gradients, wanted):
        assert_close(host(got), want)


def test_batch_norm_errors_are_the_twins():
    z = np.zeros((2, 3, 4))
    with pytest.raises(ValueError) as cpu_error:
        kernels.batch_norm_forward(z, np.zeros(3), np.ones(3), np.ones(2), np.zeros(3), 1e-5)
    with pytest.raises(ValueError) as gpu_error:
        gpu.batch_norm_forward(on_device(z), on_device(np.zeros(3)), on_device(np.ones(3)),
                               on_device(np.ones(2)), on_device(np.zeros(3)), 1e-5)
    assert str(gpu_error.value) == str(cpu_error.value)


# ------------------------------------------------------------------------ ReLU

@settings(max_examples=3, deadline=None)
@given(shape=activation_shapes(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_relu_matches_the_cpu_twin(shape, dtype, seed):
    z = random_array(shape, dtype, seed)
    z.ravel()[::5] = [np.nan, 0.0][seed % 2]
    da = random_array(shape, dtype, seed + 1)
    a = kernels.relu_forward(z)
    np.testing.assert_array_equal(host(gpu.relu_forward(on_device(z))), a)
    np.testing.assert_array_equal(host(gpu.relu_backward(on_device(da), on_device(a))),
                                  kernels.relu_backward(da, a))
    z_on_device = on_device(z)
    gpu.relu_forward(z_on_device, out=z_on_device)                 # in place
    np.testing.assert_array_equal(host(z_on_device), a)


def test_relu_errors_are_the_twins():
    for cpu_call, gpu_call in [
        (lambda: kernels.relu_forward(np.zeros(3), out=np.zeros(4)),
         lambda: gpu.relu_forward(on_device(np.zeros(3)), out=on_device(np.zeros(4)))),
        (lambda: kernels.relu_backward(np.zeros(3), np.zeros(3, np.float32)),
         lambda: gpu.relu_backward(on_device(np.zeros(3)), on_device(np.zeros(3, np.float32)))),
    ]:
        with pytest.raises((ValueError, TypeError)) as cpu_error:
            cpu_call()
        with pytest.raises(cpu_error.type) as gpu_error:
            gpu_call()
        assert str(gpu_error.value) == str(cpu_error.value)


# ------------------------------------------------------------------- triplets

@settings(max_examples=3, deadline=None)
@given(n_points=st.integers(1, 7), dim=st.integers(1, 5), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**16))
def test_distances_match_the_cpu_twin(n_points, dim, dtype, seed):
    E = random_array((n_points, dim), dtype, seed)
    D = host(gpu.pairwise_sq_distances(on_device(E)))
    assert_close(D, kernels.pairwise_sq_distances(E))
    np.testing.assert_array_equal(D, D.T)
    assert np.all(np.diag(D) == 0) and np.all(D >= 0)
    dD = random_array((n_points, n_points), dtype, seed + 1)
    assert_close(host(gpu.pairwise_sq_distances_backward(on_device(dD), on_device(E))),
                 kernels.pairwise_sq_distances_backward(dD, E))


def test_distances_of_equal_rows_are_zero_not_negative():
    E = np.array([[1e4, 1.0], [1e4, 1.0], [0.0, 0.0]], dtype=np.float32)
    D = host(gpu.pairwise_sq_distances(on_device(E)))
    assert D[0, 1] == 0.0 and np.all(D >= 0)


@settings(max_examples=8, deadline=None)
@given(n_triplets=st.integers(0, 6), dim=st.integers(1, 4), dtype=st.sampled_from(DTYPES),
       alpha=st.floats(0, 2), seed=st.integers(0, 2**16))
def test_triplet_loss_matches_the_cpu_twin(n_triplets, dim, dtype, alpha, seed):
    fa, fp, fn = (random_array((n_triplets, dim), dtype, seed + k) for k in range(3))
    assert_close(host(gpu.triplet_loss(on_device(fa), on_device(fp), on_device(fn), alpha)),
                 kernels.triplet_loss(fa, fp, fn, alpha))
    dL = random_array((n_triplets,), dtype, seed + 3)
    got = gpu.triplet_loss_backward(on_device(dL), on_device(fa), on_device(fp), on_device(fn),
                                    alpha)
    for g, want in zip(got, kernels.triplet_loss_backward(dL, fa, fp, fn, alpha)):
        assert_close(host(g), want)


def test_triplet_gradient_is_zero_at_the_kink_and_nan_for_nan():
    fa, fp, fn = np.array([[0.0], [0.0]]), np.array([[1.0], [np.nan]]), np.array([[1.0], [0.0]])
    grads = gpu.triplet_loss_backward(on_device(np.ones(2)), on_device(fa), on_device(fp),
                                      on_device(fn), 0.0)
    dfa = host(grads[0])
    assert dfa[0, 0] == 0.0 and np.isnan(dfa[1, 0])


@pytest.mark.parametrize("strategy, k", [("batch_hard", 1), ("semi_hard", 1), ("all", 1),
                                         ("random", 1), ("batch_hard", 3), ("semi_hard", 3),
                                         ("random", 3)])
def test_select_triplets_matches_the_cpu_twin(strategy, k):
    rng = np.random.default_rng(5)
    labels = np.array([0, 0, 1, 1, 1, 2, 3, 3, 4, 5])
    D = kernels.pairwise_sq_distances(rng.standard_normal((10, 3)))
    D[0, 2] = D[0, 3]                                        # a tie: the lower index wins
    want = kernels.select_triplets(labels, D, strategy, alpha=1.5,
                                   rng=np.random.default_rng(1), negatives_per_pair=k)
    got = gpu.select_triplets(labels, on_device(D), strategy, alpha=1.5,
                              rng=np.random.default_rng(1), negatives_per_pair=k)
    if k > 1 and strategy != "random":
        assert len(want[0]) > len(np.unique(want[0]))         # some anchor has several
    for g, w in zip(got, want):
        np.testing.assert_array_equal(host(g), w)
        assert host(g).dtype == np.int64


def test_triplet_errors_are_the_twins():
    fa = np.zeros((2, 3))
    with pytest.raises(ValueError) as cpu_error:
        kernels.triplet_loss(fa, fa, np.zeros((3, 3)), 0.2)
    with pytest.raises(ValueError) as gpu_error:
        gpu.triplet_loss(on_device(fa), on_device(fa), on_device(np.zeros((3, 3))), 0.2)
    assert str(gpu_error.value) == str(cpu_error.value)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        gpu.triplet_loss(on_device(fa), on_device(fa), on_device(fa), -1.0)
    with pytest.raises(ValueError, match="strategy must be one of"):
        gpu.select_triplets(np.array([0, 1]), on_device(np.zeros((2, 2))), "hardest")


def test_the_public_names_are_the_twins():
    assert gpu.__all__ == kernels.__all__
