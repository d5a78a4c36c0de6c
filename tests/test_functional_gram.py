"""gram_matrix: gradients, and agreement with the same formula built from simpler ops."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd_compare import assert_matches_torch, random_tensors
from scratchnet import Tensor, gradcheck
from scratchnet import functional as F


def gram_from_simple_ops(a):
    """G = a_flat a_flat^T composed from reshape, transpose and matmul."""
    a_flat = a.reshape(a.shape[0], a.shape[1], -1)  # (N, C, *spatial) -> (N, C, P)
    return a_flat @ a_flat.transpose(1, 2)  # (N, C, P) @ (N, P, C) -> (N, C, C)


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 2), c=st.integers(1, 4),
    spatial=st.lists(st.integers(1, 3), max_size=3), seed=st.integers(0, 2**32 - 1),
)
def test_gram_gradient_and_composed_reference(n, c, spatial, seed):
    (a,) = random_tensors(np.random.default_rng(seed), (n, c, *spatial))
    assert gradcheck(F.gram_matrix, (a,))

    u = np.random.default_rng(seed + 1).standard_normal((n, c, c))
    G = F.gram_matrix(a)
    G.backward(u)
    fused_grad, a.grad = a.grad, None
    G_ref = gram_from_simple_ops(a)
    G_ref.backward(u)
    np.testing.assert_allclose(G.data, G_ref.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused_grad, a.grad, rtol=1e-12, atol=1e-12)


def test_gram_is_symmetric_and_unnormalised():
    a = Tensor(np.array([[[1.0, 2.0], [3.0, 4.0]]]))
    np.testing.assert_array_equal(F.gram_matrix(a).data, [[[5.0, 11.0], [11.0, 25.0]]])


def test_gram_matches_torch():
    a = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    assert_matches_torch(F.gram_matrix, gram_from_simple_ops, [a])
