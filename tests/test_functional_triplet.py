"""triplet_loss, pairwise_sq_distances, batch_triplet_loss as differentiable ops."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels
from autograd_compare import assert_matches_torch, random_tensors
from scratchnet import Tensor, gradcheck
from scratchnet import functional as F

seeds = st.integers(0, 2**32 - 1)


def triplet_from_simple_ops(a, p, n, alpha):
    """max(||a - p||^2 - ||a - n||^2 + alpha, 0) per row, from elementwise ops and sums."""
    d_ap = ((a - p) * (a - p)).sum(axis=1)
    d_an = ((a - n) * (a - n)).sum(axis=1)
    return F.relu(d_ap - d_an + alpha)


def sq_distances_from_simple_ops(E):
    """D[i, j] = sum_k (E[i, k] - E[j, k])^2 by broadcasting."""
    diff = E[:, None, :] - E[None, :, :]  # (N, 1, d) - (1, N, d) -> (N, N, d)
    return (diff * diff).sum(axis=2)


@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
@settings(max_examples=10, deadline=None)
@given(t=st.integers(1, 5), d=st.integers(1, 4), alpha=st.sampled_from([0.0, 0.2, 2.0]), seed=seeds)
def test_triplet_loss_gradient_and_composed_reference(reduction, t, d, alpha, seed):
    a, p, n = random_tensors(np.random.default_rng(seed), (t, d), (t, d), (t, d))
    loss = F.triplet_loss(a, p, n, alpha=alpha, reduction=reduction)
    per_triplet = triplet_from_simple_ops(a, p, n, alpha)
    values = per_triplet.data
    expected = {"sum": values.sum(), "mean": values.mean(), "none": values}
    np.testing.assert_allclose(loss.data, expected[reduction], rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda *x: F.triplet_loss(*x, alpha=alpha, reduction=reduction), (a, p, n))


def test_triplet_gradient_matches_composed_formula():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((6, 3)) for _ in range(3)]
    ours = [Tensor(x, requires_grad=True) for x in arrays]
    ref = [Tensor(x, requires_grad=True) for x in arrays]
    F.triplet_loss(*ours, alpha=1.0).backward()
    triplet_from_simple_ops(*ref, 1.0).sum().backward()
    for mine, expected in zip(ours, ref):
        np.testing.assert_allclose(mine.grad, expected.grad, rtol=1e-12)


def test_triplet_loss_by_hand():
    a, p, n = (Tensor(np.array([v])) for v in ([0.0, 0.0], [1.0, 0.0], [0.0, 2.0]))
    assert F.triplet_loss(a, p, n, alpha=0.5).item() == 0.0  # max(1 - 4 + 0.5, 0)
    assert F.triplet_loss(a, n, p, alpha=0.5).item() == 3.5  # max(4 - 1 + 0.5, 0)


def test_triplet_loss_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((5, 4)) for _ in range(3)]

    def torch_triplet(a, p, n):
        return torch.clamp(((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1) + 1.0, min=0).mean()

    assert_matches_torch(
        lambda *x: F.triplet_loss(*x, alpha=1.0, reduction="mean"), torch_triplet, arrays
    )


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 5), d=st.integers(1, 4), seed=seeds)
def test_pairwise_distances_gradient_and_composed_reference(n, d, seed):
    (E,) = random_tensors(np.random.default_rng(seed), (n, d))
    np.testing.assert_allclose(
        F.pairwise_sq_distances(E).data, sq_distances_from_simple_ops(E).data, atol=1e-12
    )
    assert gradcheck(F.pairwise_sq_distances, (E,))


def test_pairwise_distances_match_torch():
    torch = pytest.importorskip("torch")
    E = np.random.default_rng(2).standard_normal((5, 3))
    assert_matches_torch(F.pairwise_sq_distances, lambda e: torch.cdist(e, e) ** 2, [E], rtol=1e-6)


LABELS = np.array([0, 0, 1, 1, 1, 2])


@pytest.mark.parametrize("strategy", ["all", "batch_hard", "semi_hard", "random"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_batch_triplet_loss_gradient_flows_to_the_embeddings(strategy, reduction):
    (E,) = random_tensors(np.random.default_rng(3), (6, 3))

    def loss(e):
        return F.batch_triplet_loss(
            e, LABELS, alpha=1.0, strategy=strategy, reduction=reduction,
            rng=np.random.default_rng(0),
        )[0]

    assert gradcheck(loss, (E,))


@pytest.mark.parametrize("k", [1, 2])
def test_batch_triplet_loss_is_the_loss_on_the_mined_rows(k):
    rng = np.random.default_rng(4)
    E = rng.standard_normal((6, 3))
    loss, fraction_active = F.batch_triplet_loss(
        Tensor(E), LABELS, alpha=0.5, strategy="batch_hard", negatives_per_pair=k
    )
    a, p, n = kernels.select_triplets(
        LABELS, kernels.pairwise_sq_distances(E), strategy="batch_hard", alpha=0.5,
        negatives_per_pair=k,
    )
    assert len(a) == k * len(np.unique(a))                 # every anchor has k negatives here
    per_triplet = np.maximum(((E[a] - E[p]) ** 2).sum(1) - ((E[a] - E[n]) ** 2).sum(1) + 0.5, 0)
    np.testing.assert_allclose(loss.item(), per_triplet.sum())
    assert fraction_active == np.mean(per_triplet > 0)


def test_batch_triplet_loss_takes_a_plain_array_as_every_op_does():
    E = np.random.default_rng(5).standard_normal((6, 3))
    loss, active = F.batch_triplet_loss(E, LABELS, alpha=0.5, strategy="all")
    expected, expected_active = F.batch_triplet_loss(Tensor(E), LABELS, alpha=0.5, strategy="all")
    assert loss.item() == expected.item() and active == expected_active


def test_fraction_active_by_hand():
    # two identities on a line: 0 at x=0 and x=1, 1 at x=10 and x=12
    E = Tensor(np.array([[0.0], [1.0], [10.0], [12.0]]))
    labels = np.array([0, 0, 1, 1])
    # "all": 8 triplets (a, p, n); active only when d(a, n) < d(a, p) + alpha
    _, active = F.batch_triplet_loss(E, labels, alpha=0.5, strategy="all")
    assert active == 0.0
    _, active = F.batch_triplet_loss(E, labels, alpha=200.0, strategy="all")
    assert active == 1.0
    # alpha 90, L = d_ap - d_an + 90: anchor 1 (d_ap 1; d_an 81, 121) and
    # anchor 2 (d_ap 4; d_an 81, 100) have one active triplet each, L = 10 and 13
    loss, active = F.batch_triplet_loss(E, labels, alpha=90.0, strategy="all", reduction="none")
    assert active == 0.25
    assert sorted(loss.data[loss.data > 0]) == [10.0, 13.0]


def test_batch_without_valid_triplets_gives_zero_loss():
    E = Tensor(np.ones((3, 2)), requires_grad=True)
    loss, active = F.batch_triplet_loss(E, np.array([7, 7, 7]), reduction="mean")
    assert loss.item() == 0.0 and active == 0.0
    loss.backward()
    np.testing.assert_array_equal(E.grad, np.zeros((3, 2)))


def test_bad_arguments_are_refused():
    E = Tensor(np.ones((3, 2)))
    with pytest.raises(TypeError, match="labels must be an integer NumPy array, got a Tensor"):
        F.batch_triplet_loss(E, Tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.batch_triplet_loss(E, np.array([0, 1, 1]), reduction="max")
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.triplet_loss(E, E, E, reduction="avg")
