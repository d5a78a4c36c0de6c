"""The benchmark's plain NumPy peer must compute the same thing as the naive loops.

A fast wrong baseline would make every ratio in docs/performance.md meaningless.
"""

import numpy as np
import pytest

import naive_conv
import naive_pool
from benchmarks import numpy_baseline

CONFIGS = [
    dict(x_shape=(2, 4, 9), w_shape=(6, 2, 3), stride=2, padding=1, dilation=2, groups=2),
    dict(x_shape=(1, 3, 7, 6), w_shape=(4, 3, 2, 3), stride=1, padding=2, dilation=1, groups=1),
    dict(x_shape=(2, 2, 4, 5, 4), w_shape=(2, 1, 3, 1, 2), stride=(1, 2, 1), padding=1, dilation=1, groups=2),
]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_numpy_baseline_conv_matches_naive(cfg):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(cfg["x_shape"])
    w = rng.standard_normal(cfg["w_shape"])
    geo = {k: cfg[k] for k in ("stride", "padding", "dilation", "groups")}
    y = numpy_baseline.conv_forward(x, w, **geo)
    np.testing.assert_allclose(y, naive_conv.conv(x, w, **geo), rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(numpy_baseline.conv_backward_input(dy, w, x.shape, **geo),
                               naive_conv.conv_grad_input(dy, w, x.shape, **geo), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(numpy_baseline.conv_backward_weight(dy, x, w.shape, **geo),
                               naive_conv.conv_grad_weight(dy, x, w.shape, **geo), rtol=1e-10, atol=1e-12)


def test_numpy_baseline_pooling_and_gram():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 8, 6))
    y = numpy_baseline.avg_pool_forward(x, 2)
    np.testing.assert_allclose(y, naive_pool.avg_pool(x, 2), rtol=1e-12)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(numpy_baseline.avg_pool_backward(dy, x.shape, 2),
                               naive_pool.avg_pool_grad(dy, x.shape, 2), rtol=1e-12)
    a = rng.standard_normal((2, 3, 4, 5))
    flat = a.reshape(2, 3, -1)
    np.testing.assert_allclose(numpy_baseline.gram(a), np.einsum("nkp,njp->nkj", flat, flat), rtol=1e-12)
