"""Tests for kernels.triplet: squared distances, the triplet loss, triplet selection.

Oracles: the loop references and brute-force selectors in naive_triplet.py
(themselves checked on hand-worked cases below), central finite differences
in float64, properties the results must have (symmetry, zero diagonal, the
semi-hard band), and PyTorch autograd of the same formulas composed from
simpler ops when torch is installed.
"""

import doctest
import importlib

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kernels import (
    pairwise_sq_distances,
    pairwise_sq_distances_backward,
    select_triplets,
    triplet_loss,
    triplet_loss_backward,
)
from naive_triplet import (
    naive_all_triplets,
    naive_batch_hard,
    naive_pairwise_sq_distances,
    naive_pairwise_sq_distances_backward,
    naive_semi_hard,
    naive_triplet_loss,
    naive_triplet_loss_backward,
)

DTYPES = (np.float32, np.float64)
STRATEGIES = ("all", "batch_hard", "semi_hard", "random")


def random_array(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def random_triplets(n_triplets, dim, dtype, seed):
    return tuple(random_array((n_triplets, dim), dtype, seed + k) for k in range(3))


def margins(fa, fp, fn, alpha):
    """||fa - fp||^2 - ||fa - fn||^2 + alpha in float64, (T,)."""
    fa, fp, fn = (f.astype(np.float64) for f in (fa, fp, fn))
    return np.sum((fa - fp) ** 2, axis=1) - np.sum((fa - fn) ** 2, axis=1) + alpha


def central_difference(objective, x, direction, eps=1e-6):
    return (objective(x + eps * direction) - objective(x - eps * direction)) / (2 * eps)


@st.composite
def labelled_batches(draw):
    """(labels, D, dtype): identities 0..3 and squared distances between encodings.

    Integer-valued encodings make many distances tie, which exercises the
    tie rule; Gaussian ones make them distinct.
    """
    labels = np.array(draw(st.lists(st.integers(0, 3), min_size=1, max_size=12)), dtype=np.int64)
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    shape = (labels.shape[0], draw(st.integers(1, 4)))
    if draw(st.booleans()):
        E = rng.integers(-2, 3, shape).astype(dtype)
    else:
        E = rng.standard_normal(shape).astype(dtype)
    return labels, pairwise_sq_distances(E), dtype


# ------------------------------------------------- the references, by hand

def test_naive_pairwise_hand_worked():
    E = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    # 3^2 + 4^2 = 25, 0^2 + 1^2 = 1, 3^2 + 3^2 = 18
    expected = [[0.0, 25.0, 1.0], [25.0, 0.0, 18.0], [1.0, 18.0, 0.0]]
    np.testing.assert_array_equal(naive_pairwise_sq_distances(E), expected)


def test_naive_pairwise_backward_hand_worked():
    E = np.array([[0.0], [1.0]])
    only_01 = np.array([[0.0, 1.0], [0.0, 0.0]])   # J = D_01 = (E_0 - E_1)^2
    # dJ/dE_0 = 2 (E_0 - E_1) = -2, dJ/dE_1 = -2 (E_0 - E_1) = 2
    np.testing.assert_array_equal(naive_pairwise_sq_distances_backward(only_01, E), [[-2.0], [2.0]])


def test_naive_triplet_loss_hand_worked():
    fa, fp, fn = np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]])
    assert naive_triplet_loss(fa, fp, fn, 0.5) == [0.0]    # max(1 - 4 + 0.5, 0)
    assert naive_triplet_loss(fa, fp, fn, 3.5) == [0.5]    # max(1 - 4 + 3.5, 0)
    assert naive_triplet_loss(fa, fn, fp, 0.5) == [3.5]    # max(4 - 1 + 0.5, 0)


def test_naive_triplet_loss_backward_hand_worked():
    fa, fp, fn = np.array([[0.0, 0.0]]), np.array([[0.0, 2.0]]), np.array([[1.0, 0.0]])
    # L = 4 - 1 + 0.5 > 0: dfa = 2 (fn - fp), dfp = 2 (fp - fa), dfn = 2 (fa - fn)
    dfa, dfp, dfn = naive_triplet_loss_backward(np.array([1.0]), fa, fp, fn, 0.5)
    np.testing.assert_array_equal(dfa, [[2.0, -4.0]])
    np.testing.assert_array_equal(dfp, [[0.0, 4.0]])
    np.testing.assert_array_equal(dfn, [[-2.0, 0.0]])
    inactive = naive_triplet_loss_backward(np.array([1.0]), fa, fn, fp, 0.5)   # L = 0
    np.testing.assert_array_equal(np.concatenate(inactive), np.zeros((3, 2)))


def test_naive_selectors_hand_worked():
    labels = np.array([0, 0, 1])
    D = np.array([[0.0, 1.0, 4.0], [1.0, 0.0, 2.0], [4.0, 2.0, 0.0]])
    assert naive_all_triplets(labels) == [(0, 1, 2), (1, 0, 2)]
    assert naive_batch_hard(labels, D) == {0: (1, [2]), 1: (0, [2])}   # 2 has no positive
    labels = np.array([0, 0, 1, 2])
    D = np.array([[0.0, 1.0, 1.5, 3.0]] * 4)                    # only row 0 is read for anchor 0
    assert naive_semi_hard(labels, D, alpha=1.0)[(0, 1)] == [2]  # 1 < 1.5 < 2: semi-hard
    # none in (1, 1.2) and none <= 1: the nearest easy one
    assert naive_semi_hard(labels, D, alpha=0.2)[(0, 1)] == [2]
    D = np.array([[0.0, 1.0, 0.5, 0.8]] * 4)
    assert naive_semi_hard(labels, D, alpha=0.2)[(0, 1)] == [3]  # both hard: the farther one


def test_naive_selectors_with_several_negatives_hand_worked():
    labels = np.array([0, 0, 1, 2, 3, 4])
    D = np.array([[0.0, 1.0, 1.6, 0.5, 1.2, 1.2]] * 6)          # anchor 0's row
    # band (1, 2): 1.6, 1.2, 1.2 semi-hard, 0.5 hard; nearest first, the tie to index 4
    assert naive_semi_hard(labels, D, alpha=1.0, k=2)[(0, 1)] == [4, 5]
    assert naive_semi_hard(labels, D, alpha=1.0, k=9)[(0, 1)] == [4, 5, 2]
    assert naive_semi_hard(labels, D, alpha=0.1, k=3)[(0, 1)] == [3]   # none in (1, 1.1)
    assert naive_batch_hard(labels, D, k=2)[0] == (1, [3, 4])


# -------------------------------------------------------- pairwise distances

@settings(max_examples=25, deadline=None)
@given(n_points=st.integers(1, 8), dim=st.integers(1, 6), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**16))
def test_pairwise_sq_distances_matches_naive(n_points, dim, dtype, seed):
    E = random_array((n_points, dim), dtype, seed)
    D = pairwise_sq_distances(E)
    assert D.dtype == dtype and D.shape == (n_points, n_points)
    # the expansion ||E_i||^2 + ||E_j||^2 - 2 E_i.E_j errs by ~ d eps (||E_i||^2 + ||E_j||^2)
    sq_norms = np.sum(E.astype(np.float64) ** 2, axis=1)
    bound = 4 * (dim + 2) * np.finfo(dtype).eps * (sq_norms[:, None] + sq_norms[None, :])
    assert np.all(np.abs(D - naive_pairwise_sq_distances(E)) <= bound + np.finfo(dtype).tiny)
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diag(D), 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pairwise_sq_distances_never_negative(dtype):
    """Close rows far from the origin: the expansion alone would dip below 0."""
    rng = np.random.default_rng(7)
    centre = 1000.0 + rng.standard_normal(64)
    E = (centre + 1e-3 * rng.standard_normal((50, 64))).astype(dtype)
    E[1] = E[0]                                             # an exact duplicate too
    D = pairwise_sq_distances(E)
    assert np.all(D >= 0)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    np.testing.assert_array_equal(D, D.T)


@settings(max_examples=25, deadline=None)
@given(n_points=st.integers(1, 8), dim=st.integers(1, 6), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**16))
def test_pairwise_backward_matches_naive(n_points, dim, dtype, seed):
    E = random_array((n_points, dim), dtype, seed)
    dD = random_array((n_points, n_points), dtype, seed + 1)
    dE = pairwise_sq_distances_backward(dD, E)
    assert dE.dtype == dtype and dE.shape == E.shape
    tol = {np.float32: 1e-4, np.float64: 1e-11}[dtype]
    np.testing.assert_allclose(dE, naive_pairwise_sq_distances_backward(dD, E), rtol=tol, atol=tol)


@settings(max_examples=25, deadline=None)
@given(n_points=st.integers(2, 8), dim=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_pairwise_backward_matches_finite_differences(n_points, dim, seed):
    E = random_array((n_points, dim), np.float64, seed)
    dD = random_array((n_points, n_points), np.float64, seed + 1)
    v = random_array((n_points, dim), np.float64, seed + 2)
    numeric = central_difference(lambda x: np.sum(dD * pairwise_sq_distances(x)), E, v)
    analytic = np.sum(pairwise_sq_distances_backward(dD, E) * v)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(n_points=st.integers(1, 8), dim=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_pairwise_matches_torch_autograd_of_differences(n_points, dim, seed):
    torch = pytest.importorskip("torch")
    E = random_array((n_points, dim), np.float64, seed)
    dD = random_array((n_points, n_points), np.float64, seed + 1)
    E_t = torch.tensor(E, requires_grad=True)
    D_t = ((E_t[:, None, :] - E_t[None, :, :]) ** 2).sum(-1)   # (N, 1, d) - (1, N, d) -> (N, N)
    D_t.backward(torch.tensor(dD))
    np.testing.assert_allclose(pairwise_sq_distances(E), D_t.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(pairwise_sq_distances_backward(dD, E), E_t.grad.numpy(),
                               rtol=1e-10, atol=1e-10)


# -------------------------------------------------------------- triplet loss

@settings(max_examples=25, deadline=None)
@given(n_triplets=st.integers(1, 10), dim=st.integers(1, 6), alpha=st.floats(0, 3),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_triplet_loss_and_backward_match_naive(n_triplets, dim, alpha, dtype, seed):
    fa, fp, fn = random_triplets(n_triplets, dim, dtype, seed)
    assume(np.all(np.abs(margins(fa, fp, fn, alpha)) > 1e-3))   # float32 may round across the kink
    expected = naive_triplet_loss(fa, fp, fn, alpha)
    L = triplet_loss(fa, fp, fn, alpha)
    assert L.dtype == dtype and L.shape == (n_triplets,)
    tol = {np.float32: 1e-4, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(L, expected, rtol=tol, atol=tol)
    dL = random_array((n_triplets,), dtype, seed + 3)
    for got, want in zip(triplet_loss_backward(dL, fa, fp, fn, alpha),
                         naive_triplet_loss_backward(dL, fa, fp, fn, alpha)):
        assert got.dtype == dtype and got.shape == fa.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@settings(max_examples=25, deadline=None)
@given(n_triplets=st.integers(1, 10), dim=st.integers(1, 6), alpha=st.floats(0, 3),
       seed=st.integers(0, 2**16))
def test_triplet_backward_matches_finite_differences(n_triplets, dim, alpha, seed):
    fa, fp, fn = random_triplets(n_triplets, dim, np.float64, seed)
    assume(np.all(np.abs(margins(fa, fp, fn, alpha)) > 1e-3))   # stay off the kink
    dL = random_array((n_triplets,), np.float64, seed + 3)
    grads = triplet_loss_backward(dL, fa, fp, fn, alpha)
    for which in range(3):
        v = random_array(fa.shape, np.float64, seed + 10 + which)

        def objective(x):
            inputs = [fa, fp, fn]
            inputs[which] = x
            return np.sum(dL * triplet_loss(*inputs, alpha))

        numeric = central_difference(objective, (fa, fp, fn)[which], v)
        np.testing.assert_allclose(np.sum(grads[which] * v), numeric, rtol=1e-6, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(n_triplets=st.integers(1, 10), dim=st.integers(1, 6), alpha=st.floats(0, 3),
       seed=st.integers(0, 2**16))
def test_triplet_matches_torch_autograd(n_triplets, dim, alpha, seed):
    torch = pytest.importorskip("torch")
    fa, fp, fn = random_triplets(n_triplets, dim, np.float64, seed)
    dL = random_array((n_triplets,), np.float64, seed + 3)
    fa_t, fp_t, fn_t = (torch.tensor(f, requires_grad=True) for f in (fa, fp, fn))
    L_t = torch.relu(((fa_t - fp_t) ** 2).sum(1) - ((fa_t - fn_t) ** 2).sum(1) + alpha)
    L_t.backward(torch.tensor(dL))
    np.testing.assert_allclose(triplet_loss(fa, fp, fn, alpha), L_t.detach().numpy(), atol=1e-12)
    for got, t in zip(triplet_loss_backward(dL, fa, fp, fn, alpha), (fa_t, fp_t, fn_t)):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_gradient_at_the_kink_is_zero():
    fa, fp, fn = np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    # ||fa - fp||^2 - ||fa - fn||^2 + alpha = 1 - 1 + 0 = 0 exactly
    assert triplet_loss(fa, fp, fn, 0.0) == [0.0]
    for grad in triplet_loss_backward(np.array([1.0]), fa, fp, fn, 0.0):
        np.testing.assert_array_equal(grad, 0.0)


def test_triplet_gradients_sum_to_zero():
    """Translating all three encodings together leaves L unchanged."""
    fa, fp, fn = random_triplets(20, 5, np.float64, seed=11)
    dfa, dfp, dfn = triplet_loss_backward(np.ones(20), fa, fp, fn, 1.0)
    np.testing.assert_allclose(dfa + dfp + dfn, 0.0, atol=1e-12)


# ------------------------------------------------------------ selection

@settings(max_examples=25, deadline=None)
@given(batch=labelled_batches())
def test_all_triplets_is_the_full_enumeration(batch):
    labels, D, _ = batch
    a_idx, p_idx, n_idx = select_triplets(labels, D, "all")
    assert a_idx.dtype == p_idx.dtype == n_idx.dtype == np.int64
    assert list(zip(a_idx.tolist(), p_idx.tolist(), n_idx.tolist())) == naive_all_triplets(labels)
    for got, want in zip(select_triplets(labels, D, "all", negatives_per_pair=2),
                         (a_idx, p_idx, n_idx)):          # every negative, whatever k
        np.testing.assert_array_equal(got, want)


@settings(max_examples=25, deadline=None)
@given(batch=labelled_batches(), k=st.sampled_from([1, 1, 2, 5]))
def test_batch_hard_picks_the_loop_argmax_and_nearest_negatives(batch, k):
    labels, D, _ = batch
    a_idx, p_idx, n_idx = select_triplets(labels, D, "batch_hard", negatives_per_pair=k)
    assert a_idx.dtype == p_idx.dtype == n_idx.dtype == np.int64
    assert grouped(a_idx, (p_idx, n_idx)) == {a: ([p] * len(n), n) for a, (p, n)
                                              in naive_batch_hard(labels, D, k).items()}


@settings(max_examples=25, deadline=None)
@given(batch=labelled_batches(), alpha=st.sampled_from([0.0, 0.2, 1.0, 5.0]),
       k=st.sampled_from([1, 1, 2, 5]))
def test_semi_hard_follows_the_documented_rule(batch, alpha, k):
    labels, D, _ = batch
    a_idx, p_idx, n_idx = select_triplets(labels, D, "semi_hard", alpha=alpha,
                                          negatives_per_pair=k)
    assert a_idx.dtype == p_idx.dtype == n_idx.dtype == np.int64
    picks = grouped(list(zip(a_idx.tolist(), p_idx.tolist())), (n_idx,))
    assert {pair: n for pair, (n,) in picks.items()} == naive_semi_hard(labels, D, alpha, k)
    for (a, p), (n,) in picks.items():                     # the band, checked on its own
        negatives = labels != labels[a]
        in_band = negatives & (D[a] > D[a, p]) & (D[a] < D[a, p] + alpha)
        if in_band.any():
            assert len(n) == min(k, in_band.sum())
            assert np.all((D[a, p] < D[a, n]) & (D[a, n] < D[a, p] + alpha))
            assert D[a, n[0]] == D[a][in_band].min()
            assert np.all(np.diff(D[a, n]) >= 0)            # nearest first


def grouped(keys, columns):
    """{key: tuple of lists}: the rows of `columns` that share a key, checking that
    each key's rows are consecutive (a pair's triplets come together)."""
    keys = [k if isinstance(k, tuple) else int(k) for k in keys]
    groups = {}
    for row, key in enumerate(keys):
        assert key not in groups or keys[row - 1] == key, f"{key}'s triplets are not together"
        groups.setdefault(key, tuple([] for _ in columns))
        for values, column in zip(groups[key], columns):
            values.append(int(column[row]))
    return groups


@settings(max_examples=25, deadline=None)
@given(batch=labelled_batches(), seed=st.integers(0, 2**16), k=st.sampled_from([1, 3]))
def test_random_gives_k_valid_triplets_per_pair(batch, seed, k):
    labels, D, _ = batch
    a_idx, p_idx, n_idx = select_triplets(labels, D, "random", rng=np.random.default_rng(seed),
                                          negatives_per_pair=k)
    assert a_idx.dtype == p_idx.dtype == n_idx.dtype == np.int64
    pairs = sorted({(a, p) for a, p, _ in naive_all_triplets(labels)})
    assert list(zip(a_idx.tolist(), p_idx.tolist())) == [pair for pair in pairs
                                                          for _ in range(k)]
    assert np.all(labels[n_idx] != labels[a_idx])
    again = select_triplets(labels, D, "random", rng=np.random.default_rng(seed),
                            negatives_per_pair=k)
    np.testing.assert_array_equal(again[2], n_idx)


def test_random_draws_every_negative():
    labels = np.array([0, 0, 1, 2, 3])
    D = pairwise_sq_distances(random_array((5, 3), np.float64, seed=0))
    rng = np.random.default_rng(1)
    counts = np.zeros(5, dtype=int)
    for _ in range(300):
        a_idx, _, n_idx = select_triplets(labels, D, "random", rng=rng)
        np.add.at(counts, n_idx[a_idx == 0], 1)
    assert counts[:2].sum() == 0 and counts.sum() == 300
    assert np.all(counts[2:] > 60)                          # about 100 each of the three


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_single_picture_identities_are_never_anchors(strategy):
    labels = np.array([5, 5, 7, 9], dtype=np.uint8)         # 7 and 9 appear once
    D = pairwise_sq_distances(random_array((4, 3), np.float32, seed=2))
    a_idx, p_idx, n_idx = select_triplets(labels, D, strategy)
    assert set(a_idx.tolist()) == {0, 1}
    assert np.all(labels[p_idx] == labels[a_idx]) and np.all(p_idx != a_idx)
    assert set(n_idx.tolist()) <= {2, 3}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_one_identity_gives_no_triplets(strategy):
    D = pairwise_sq_distances(random_array((4, 3), np.float64, seed=3))
    for indices in select_triplets(np.zeros(4, dtype=np.int32), D, strategy):
        assert indices.dtype == np.int64 and indices.shape == (0,)


# ------------------------------------------------------- errors and NaN

def test_pairwise_rejects_bad_input():
    with pytest.raises(ValueError, match=r"E must have 2 dimensions, got shape \(3,\)"):
        pairwise_sq_distances(np.zeros(3))
    with pytest.raises(TypeError, match=r"E must have dtype float32 or float64, got int64"):
        pairwise_sq_distances(np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"dD must have shape \(3, 3\) to match E .* got \(3, 2\)"):
        pairwise_sq_distances_backward(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(TypeError, match=r"dD is float32, E is float64"):
        pairwise_sq_distances_backward(np.zeros((3, 3), dtype=np.float32), np.zeros((3, 2)))


def test_triplet_loss_rejects_bad_input():
    f = np.zeros((4, 3))
    expected = r"fa, fp and fn must have one shape .* \(4, 3\), \(4, 3\) and \(4, 2\)"
    with pytest.raises(ValueError, match=expected):
        triplet_loss(f, f, np.zeros((4, 2)), 0.2)
    with pytest.raises(ValueError, match=r"fp must have 2 dimensions"):
        triplet_loss(f, np.zeros(4), f, 0.2)
    with pytest.raises(TypeError, match=r"fn must have dtype float32 or float64, got int64"):
        triplet_loss(f, f, np.zeros((4, 3), dtype=np.int64), 0.2)
    with pytest.raises(TypeError, match=r"fa is float64, fp is float32"):
        triplet_loss(f, f.astype(np.float32), f, 0.2)
    with pytest.raises(ValueError, match=r"alpha must be >= 0, got -0.1"):
        triplet_loss(f, f, f, -0.1)
    with pytest.raises(ValueError, match=r"alpha must be >= 0, got nan"):
        triplet_loss(f, f, f, float("nan"))
    with pytest.raises(TypeError, match=r"alpha must be a number, got True"):
        triplet_loss(f, f, f, True)
    with pytest.raises(ValueError, match=r"dL must have shape \(4,\) to match fa, got \(3,\)"):
        triplet_loss_backward(np.zeros(3), f, f, f, 0.2)


def test_select_triplets_rejects_bad_input():
    labels, D = np.array([0, 0, 1]), np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"labels must have 1 dimension \(N,\), got shape \(3, 1"):
        select_triplets(labels[:, None], D)
    with pytest.raises(TypeError, match=r"labels must have an integer dtype, got float64"):
        select_triplets(labels.astype(float), D)
    with pytest.raises(TypeError, match=r"labels must be a numpy.ndarray, got list"):
        select_triplets([0, 0, 1], D)
    expected = r"D must have shape \(3, 3\) to match labels of length 3, got \(3, 2\)"
    with pytest.raises(ValueError, match=expected):
        select_triplets(labels, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"D must have 2 dimensions"):
        select_triplets(labels, np.zeros(9))
    with pytest.raises(TypeError, match=r"D must have dtype float32 or float64, got int64"):
        select_triplets(labels, np.zeros((3, 3), dtype=np.int64))
    expected = r"strategy must be one of 'all', 'batch_hard', 'semi_hard', 'random', got 'hardest'"
    with pytest.raises(ValueError, match=expected):
        select_triplets(labels, D, strategy="hardest")
    with pytest.raises(ValueError, match=r"alpha must be >= 0, got -1"):
        select_triplets(labels, D, "semi_hard", alpha=-1)
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator or None, got int"):
        select_triplets(labels, D, "random", rng=0)
    for bad in (0, 1.0, True):
        with pytest.raises(ValueError, match="negatives_per_pair must be a positive int"):
            select_triplets(labels, D, "semi_hard", negatives_per_pair=bad)


def test_nan_propagates_without_crashing():
    E = random_array((6, 4), np.float64, seed=4)
    E[2, 1] = np.nan
    D = pairwise_sq_distances(E)
    nan_expected = np.zeros((6, 6), dtype=bool)
    nan_expected[2, :] = nan_expected[:, 2] = True
    nan_expected[2, 2] = False                              # the diagonal is set to 0
    np.testing.assert_array_equal(np.isnan(D), nan_expected)
    assert np.isnan(pairwise_sq_distances_backward(np.ones_like(D), E)).any()

    labels = np.array([0, 0, 1, 1, 2, 2])
    for strategy in STRATEGIES:
        a_idx, p_idx, n_idx = select_triplets(labels, D, strategy)
        assert np.all(labels[p_idx] == labels[a_idx]) and np.all(labels[n_idx] != labels[a_idx])

    fa, fp, fn = random_triplets(3, 4, np.float64, seed=5)
    fa[1, 0] = np.nan
    L = triplet_loss(fa, fp, fn, 0.2)
    np.testing.assert_array_equal(np.isnan(L), [False, True, False])
    grads = triplet_loss_backward(np.ones(3), fa, fp, fn, 0.2)
    for grad in grads:
        assert np.isnan(grad[1]).all() and not np.isnan(grad[[0, 2]]).any()


def test_docstring_examples_run():
    module = importlib.import_module("kernels.triplet")
    failures, attempted = doctest.testmod(module)
    assert attempted > 0 and failures == 0
