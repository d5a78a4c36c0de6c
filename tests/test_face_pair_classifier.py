"""Verification as binary classification: y_hat = sigmoid(sum_k w_k feature_k(f_i, f_j) + b).

Oracles: the features against their formulas written in NumPy (including the
guarded chi-square denominator); the gradient of the training loss against
central finite differences (scratchnet.gradcheck, float64) and, for w, against
its closed form mean((y_hat - y) feature); symmetry in (i, j); a separable
synthetic problem that must be learned; state round trips.
"""

import doctest

import numpy as np
import pytest

from scratchnet import Tensor, gradcheck
from scratchnet import functional as F
from scratchnet.face import pair_classifier
from scratchnet.face.pair_classifier import PairClassifier, pair_features
from scratchnet.serialize import load_npz, save_npz


def unit_rows(array):
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def synthetic_pairs(n_pairs, size, seed, noise=0.3):
    """Unit embeddings: same pairs are a picture and a noisy copy, different pairs unrelated."""
    rng = np.random.default_rng(seed)
    first = unit_rows(rng.normal(size=(n_pairs, size)))
    same = np.arange(n_pairs) % 2 == 0
    copies = first + noise / np.sqrt(size) * rng.normal(size=(n_pairs, size))
    second = unit_rows(np.where(same[:, None], copies, rng.normal(size=(n_pairs, size))))
    return first.astype(np.float32), second.astype(np.float32), same


# ------------------------------------------------------------------ the features

def test_features_follow_their_formulas():
    f_i = np.array([[0.5, -0.2, 0.0, 0.3]])
    f_j = np.array([[0.1, 0.4, 0.0, -0.3]])
    absolute = pair_features(f_i, f_j, "abs").numpy()
    np.testing.assert_allclose(absolute, [[0.4, 0.6, 0.0, 0.6]])
    chi2 = pair_features(f_i, f_j, "chi2").numpy()
    # (f_i - f_j)^2 / (|f_i| + |f_j| + eps): 0.16/0.6, 0.36/0.6, 0/eps = 0, 0.36/0.6
    np.testing.assert_allclose(chi2, [[0.16 / 0.6, 0.36 / 0.6, 0.0, 0.36 / 0.6]], rtol=1e-5)


def test_chi2_equals_the_slide_formula_on_non_negative_features():
    rng = np.random.default_rng(0)
    f_i, f_j = rng.random((5, 7)) + 0.1, rng.random((5, 7)) + 0.1
    slide = (f_i - f_j) ** 2 / (f_i + f_j)
    np.testing.assert_allclose(pair_features(f_i, f_j, "chi2").numpy(), slide, rtol=1e-5)


@pytest.mark.parametrize("kind", ["abs", "chi2"])
def test_features_are_symmetric_in_the_pair(kind):
    f_i, f_j, _ = synthetic_pairs(20, 16, seed=1)
    assert np.array_equal(pair_features(f_i, f_j, kind).numpy(),
                          pair_features(f_j, f_i, kind).numpy())


def test_features_reject_an_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        pair_features(np.zeros((1, 2)), np.zeros((1, 2)), "cosine")


# ------------------------------------------------------------------ the gradient

def _loss_inputs(seed):
    """Pairs away from the kinks of |x| (no coordinate or difference near 0), float64."""
    rng = np.random.default_rng(seed)
    f_i, f_j = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    assert np.abs(f_i - f_j).min() > 1e-3 and np.abs(np.concatenate([f_i, f_j])).min() > 1e-3
    weight, bias = rng.normal(size=(1, 5)), rng.normal(size=1)
    return f_i, f_j, weight, bias, (np.arange(6) % 2).astype(np.float64)


@pytest.mark.parametrize("kind", ["abs", "chi2"])
def test_training_loss_gradient_matches_finite_differences(kind):
    f_i, f_j, weight, bias, y = _loss_inputs(seed=3)

    def loss(a, b, w, c):
        z = F.linear(pair_features(a, b, kind), w, c).reshape(-1)    # (N, 1) -> (N,)
        return F.binary_cross_entropy_with_logits(z, Tensor(y))

    inputs = tuple(Tensor(array, requires_grad=True) for array in (f_i, f_j, weight, bias))
    assert gradcheck(loss, inputs)


def test_weight_gradient_has_the_logistic_regression_closed_form():
    # dJ/dw_k = mean over pairs of (y_hat - y) |f_ik - f_jk|,  dJ/db = mean of (y_hat - y)
    f_i, f_j, weight, bias, y = _loss_inputs(seed=4)
    classifier = PairClassifier.from_state({"kind": np.array("abs"), "weight": weight,
                                            "bias": bias})
    loss = F.binary_cross_entropy_with_logits(classifier.logits(f_i, f_j), y)
    loss.backward()
    features = np.abs(f_i - f_j)
    y_hat = 1 / (1 + np.exp(-(features @ weight[0] + bias[0])))
    np.testing.assert_allclose(classifier.linear.weight.grad[0],
                               np.mean((y_hat - y)[:, None] * features, axis=0), rtol=1e-4)
    np.testing.assert_allclose(classifier.linear.bias.grad, [np.mean(y_hat - y)], rtol=1e-4)


# ------------------------------------------------------------------ fitting

@pytest.mark.parametrize("kind", ["abs", "chi2"])
def test_learns_a_separable_problem_and_generalises(kind):
    first, second, same = synthetic_pairs(600, 32, seed=0)
    classifier = PairClassifier(kind)
    losses = classifier.fit(first, second, same, epochs=30, seed=0)
    assert len(losses) == 30 and losses[-1] < 0.3 * losses[0]
    new_first, new_second, new_same = synthetic_pairs(400, 32, seed=1)
    assert np.mean(classifier.predict(new_first, new_second) == new_same) >= 0.98
    # closer pairs look more alike: the weights of the distance features come out negative
    assert np.mean(classifier.linear.weight.data < 0) > 0.9


def test_predictions_are_symmetric_probabilities():
    first, second, same = synthetic_pairs(200, 16, seed=2)
    classifier = PairClassifier("chi2")
    classifier.fit(first, second, same, epochs=5)
    p = classifier.predict_proba(first, second)
    assert p.shape == (200,) and np.all((p >= 0) & (p <= 1))
    assert np.array_equal(p, classifier.predict_proba(second, first))


def test_fit_is_deterministic_under_a_seed():
    first, second, same = synthetic_pairs(300, 16, seed=3)
    weights = []
    for seed in (5, 5, 6):
        classifier = PairClassifier("abs")
        classifier.fit(first, second, same, epochs=3, batch_size=32, seed=seed)
        weights.append(classifier.linear.weight.data.copy())
    assert np.array_equal(weights[0], weights[1])
    assert not np.array_equal(weights[0], weights[2])   # another order of the mini-batches


# ------------------------------------------------------------------ state

def test_state_round_trips_through_an_npz_under_a_prefix(tmp_path):
    first, second, same = synthetic_pairs(200, 16, seed=4)
    classifier = PairClassifier("chi2")
    classifier.fit(first, second, same, epochs=3)
    path = tmp_path / "model.npz"
    save_npz(path, {f"pair_classifier.{key}": value for key, value in classifier.state().items()})
    stored = {key.split(".", 1)[1]: value for key, value in load_npz(path).items()}
    restored = PairClassifier.from_state(stored)
    assert restored.kind == "chi2" and restored.embedding_size == 16
    assert np.array_equal(restored.predict_proba(first, second),
                          classifier.predict_proba(first, second))


def test_state_is_a_copy():
    classifier = PairClassifier.from_state({"kind": np.array("abs"), "weight": np.ones((1, 3)),
                                            "bias": np.zeros(1)})
    classifier.state()["weight"][...] = 5
    assert np.all(classifier.linear.weight.data == 1)


# ------------------------------------------------------------------ bad input

def test_unfitted_classifier_says_so():
    with pytest.raises(RuntimeError, match="fit"):
        PairClassifier().predict_proba(np.zeros((1, 4)), np.zeros((1, 4)))
    with pytest.raises(RuntimeError, match="fit"):
        PairClassifier().state()


@pytest.mark.parametrize("first, second, same, match", [
    (np.zeros((4, 3)), np.zeros((4, 2)), [True, False] * 2, "emb_second"),
    (np.zeros((4, 3, 1)), np.zeros((4, 3, 1)), [True, False] * 2, "emb_first"),
    (np.full((4, 3), np.nan), np.zeros((4, 3)), [True, False] * 2, "emb_first"),
    (np.zeros((4, 3)), np.zeros((4, 3)), [True, False], "same"),
    (np.zeros((4, 3)), np.zeros((4, 3)), [True] * 4, "same"),
])
def test_fit_rejects_bad_pairs_naming_the_argument(first, second, same, match):
    with pytest.raises(ValueError, match=match):
        PairClassifier().fit(first, second, same)


def test_integer_embeddings_are_a_type_error():
    with pytest.raises(TypeError, match="emb_first"):
        PairClassifier().fit(np.zeros((2, 3), int), np.zeros((2, 3)), [True, False])


@pytest.mark.parametrize("argument, value", [("epochs", 0), ("lr", -1.0), ("batch_size", 2.5)])
def test_fit_rejects_bad_settings(argument, value):
    first, second, same = synthetic_pairs(10, 4, seed=0)
    with pytest.raises(ValueError, match=argument):
        PairClassifier().fit(first, second, same, **{argument: value})


def test_predicting_embeddings_of_another_size_is_refused():
    classifier = PairClassifier.from_state({"kind": np.array("abs"), "weight": np.ones((1, 3)),
                                            "bias": np.zeros(1)})
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        classifier.predict(np.zeros((2, 4)), np.zeros((2, 4)))


@pytest.mark.parametrize("state, match", [
    ({"kind": np.array("abs"), "weight": np.ones((1, 3))}, "bias"),
    ({"kind": np.array("l1"), "weight": np.ones((1, 3)), "bias": np.zeros(1)}, "kind"),
    ({"kind": np.array("abs"), "weight": np.ones(3), "bias": np.zeros(1)}, "weight"),
])
def test_from_state_rejects_incomplete_states(state, match):
    with pytest.raises(ValueError, match=match):
        PairClassifier.from_state(state)


def test_docstring_examples_run():
    result = doctest.testmod(pair_classifier)
    assert result.attempted > 0 and result.failed == 0
