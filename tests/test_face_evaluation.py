"""Measuring an encoder: verification 1:1, one-shot recognition 1:K, pair classifiers, baselines.

The encoders are stand-ins whose answers are known in advance: one that
reads each picture's person from its pixels and returns that person's
one-hot vector (a perfect encoder), one that returns random vectors
(chance), and hand-built embeddings where exactly a known share of the
queries must be answered right, wrong, or "not recognized".
"""

import json

import numpy as np
import pytest

from scratchnet.face import evaluation, load_encoder, sample_pairs
from scratchnet.face.encoder import Encoder
from scratchnet.face.pair_classifier import PairClassifier
from scratchnet.models.face_encoder import FaceEncoder

REQUIRED_KEYS = {"verification_accuracy", "auc", "tau", "top1", "rejection"}


class StandIn:
    """What FaceDatabase needs of an encoder, around a function from pictures to embeddings."""

    def __init__(self, embed, embedding_size, tau):
        self.embed, self.embedding_size, self.tau = embed, embedding_size, tau
        self.fingerprint = f"stand-in-{embedding_size}"

    def __call__(self, images):
        return self.embed(np.asarray(images)).astype(np.float32)


def labelled_pictures(n_persons, per_person, seed=0):
    """(images, labels): each (3, 2, 2) picture carries its person in pixel [0, 0, 0] and noise."""
    labels = np.repeat(np.arange(n_persons), per_person)
    images = np.random.default_rng(seed).random((len(labels), 3, 2, 2)).astype(np.float32)
    images[:, 0, 0, 0] = labels / 1000
    return images, labels


def perfect_encoder(n_persons, tau=1.0):
    """one-hot(person), then 0.05 x (4 noise pixels): d <= 0.01 within a person, >= 2 between."""
    def embed(images):
        persons = np.rint(images[:, 0, 0, 0] * 1000).astype(int)
        return np.concatenate([np.eye(n_persons)[persons],
                               0.05 * images[:, 1].reshape(len(images), 4)], axis=1)
    return StandIn(embed, n_persons + 4, tau)


def random_encoder(size=32, tau=0.5):
    """A unit vector drawn from each picture's noise pixels: nothing to do with the person."""
    def embed(images):
        seeds = (images[:, 2].reshape(len(images), 4) * 2 ** 20).astype(np.int64)
        vectors = np.stack([np.random.default_rng(list(s)).standard_normal(size) for s in seeds])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return StandIn(embed, size, tau)


# ======================================================= the whole report

def test_a_perfect_encoder_scores_one_everywhere():
    images, labels = labelled_pictures(30, 4)
    encoder = perfect_encoder(30, tau=1.0)
    report = evaluation.evaluate(encoder, images, labels, n_pairs=200, enrolled=10, seed=0)
    assert REQUIRED_KEYS <= set(report)
    json.loads(json.dumps(report))                              # one JSON object
    assert report["verification_accuracy"] == 1.0 and report["auc"] == pytest.approx(1.0)
    assert report["top1"] == 1.0 and report["top1_nearest"] == 1.0 and report["rejection"] == 1.0
    assert report["tau"] == 1.0                                  # the model's own tau
    assert 0.0 <= report["tau_fitted_here"] < 2.0
    assert report["enrolled"] == 10 and report["pairs"] == 200
    assert report["recognition_queries"] == 10 * 3 and report["rejection_queries"] == 10 * 4
    assert report["n_same"] == 100 and report["n_different"] == 100
    assert report["draws"] == evaluation.DRAWS and report["best_threshold_bound"] == 1.0
    assert report["top1_over_draws"] == 1.0 and report["rejection_over_draws"] == 1.0


def test_a_random_encoder_scores_at_chance():
    images, labels = labelled_pictures(40, 6, seed=1)
    report = evaluation.evaluate(random_encoder(tau=0.5), images, labels, n_pairs=600,
                                 enrolled=10, seed=0)
    assert report["verification_accuracy"] < 0.65
    assert 0.35 < report["auc"] < 0.65
    assert report["top1_nearest"] < 0.35          # chance: 1 in 10
    assert report["top1"] == 0.0 and report["rejection"] == 1.0   # random unit vectors: d ~ 2


def test_pair_embeddings_are_the_encoders_with_sampled_pairs():
    images, labels = labelled_pictures(10, 3)
    encoder = perfect_encoder(10)
    embeddings, (first, second, same) = evaluation.pair_embeddings(encoder, images, labels, 40, 3)
    np.testing.assert_array_equal(embeddings, encoder(images))
    for got, expected in zip((first, second, same), sample_pairs(labels, 40, 3)):
        np.testing.assert_array_equal(got, expected)


def test_encode_pairs_encodes_only_the_pictures_the_pairs_show():
    images, labels = labelled_pictures(10, 3)
    encoder = perfect_encoder(10)
    pairs = sample_pairs(labels, 6, 3)
    embeddings, (first, second, same) = evaluation.encode_pairs(encoder, images, pairs)
    everyone = encoder(images)
    assert len(embeddings) == len(np.unique(np.concatenate(pairs[:2]))) < len(images)
    np.testing.assert_array_equal(embeddings[first], everyone[pairs[0]])
    np.testing.assert_array_equal(embeddings[second], everyone[pairs[1]])
    np.testing.assert_array_equal(same, pairs[2])


# ======================================================= recognition, answers known

def test_recognition_counts_exactly_what_was_built():
    n_persons, per_person, enrolled, tau = 30, 4, 10, 0.5
    labels = np.repeat(np.arange(n_persons), per_person)
    members, strangers = evaluation.split_persons(labels, enrolled, seed=3)
    one_hot = np.eye(n_persons)
    embeddings = np.empty((len(labels), n_persons))
    for p in range(n_persons):
        rows = np.flatnonzero(labels == p)
        nxt = one_hot[(p + 1) % n_persons]
        embeddings[rows[0]] = one_hot[p]                 # the enrolled picture (members)
        embeddings[rows[1]] = nxt - 0.5 * one_hot[p]     # nearest: p + 1 if enrolled, never p
        embeddings[rows[2]] = 0.2 * one_hot[p]           # nearest p, but d = 0.64 > tau
        embeddings[rows[3]] = 0.9 * one_hot[p]           # p, d = 0.01 <= tau
    encoder = StandIn(None, n_persons, tau)
    result = evaluation.evaluate_recognition(encoder, embeddings, labels, enrolled, seed=3)
    assert result["enrolled"] == enrolled
    assert result["recognition_queries"] == 3 * enrolled
    assert result["top1"] == pytest.approx(1 / 3)
    assert result["top1_nearest"] == pytest.approx(2 / 3)
    # a stranger's picture 1 lies within 0.25 of person s + 1: recognised when s + 1 is enrolled
    wrongly_recognised = sum((s + 1) % n_persons in set(members) for s in strangers)
    assert result["rejection_queries"] == per_person * enrolled
    assert result["rejection"] == pytest.approx(1 - wrongly_recognised / (per_person * enrolled))


def noisy_persons(n_persons=24, per_person=5, noise=0.6, seed=0):
    """(embeddings, labels): unit vectors around one direction per person, far enough apart
    that some queries are answered right, some wrong and some strangers accepted."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_persons), per_person)
    centres = rng.standard_normal((n_persons, 16))
    vectors = centres[labels] + noise * rng.standard_normal((len(labels), 16))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), labels


def recognition_at(tau, embeddings, labels, enrolled, seed):
    """evaluate_recognition through the face database, with an encoder whose tau is `tau`."""
    encoder = StandIn(None, embeddings.shape[1], tau)
    encoder.tau_identify = tau
    return evaluation.evaluate_recognition(encoder, embeddings, labels, enrolled, seed)


def test_the_sweep_gives_what_the_database_answers_at_each_tau():
    embeddings, labels = noisy_persons()
    taus, top1, rejection = evaluation.recognition_sweep(embeddings, labels, enrolled=8, seed=1)
    assert np.all(np.diff(taus) >= 0) and np.all(np.diff(top1) >= 0)
    assert np.all(np.diff(rejection) <= 0)
    assert 0 < top1.max() < 1 and 0 < rejection.min() < 1      # the example has all kinds
    for i in range(0, len(taus), 7):
        result = recognition_at(taus[i], embeddings, labels, 8, seed=1)
        assert result["top1"] == pytest.approx(top1[i])
        assert result["rejection"] == pytest.approx(rejection[i])


def test_best_threshold_beats_every_other_tau_and_is_reached_at_its_own():
    embeddings, labels = noisy_persons(seed=2)
    tau, bound = evaluation.best_threshold(embeddings, labels, enrolled=8, seed=0)
    reached = recognition_at(tau, embeddings, labels, 8, seed=0)
    assert min(reached["top1"], reached["rejection"]) == pytest.approx(bound)
    for other in np.linspace(0, 2.5, 26):
        result = recognition_at(other, embeddings, labels, 8, seed=0)
        assert min(result["top1"], result["rejection"]) <= bound + 1e-12


def test_fit_identification_tau_maximises_the_smaller_of_top1_and_rejection_over_draws():
    embeddings, labels = noisy_persons(seed=3)
    tau = evaluation.fit_identification_tau(embeddings, labels, enrolled=8, draws=3, seed=1)

    def smaller_of_the_means(t):      # through the database, enrolment draws of seeds 1, 2, 3
        results = [recognition_at(t, embeddings, labels, 8, seed=s) for s in (1, 2, 3)]
        return min(np.mean([r["top1"] for r in results]),
                   np.mean([r["rejection"] for r in results]))

    fitted = smaller_of_the_means(tau)
    assert 0 < fitted < 1                                       # the example has all kinds
    for other in np.linspace(0, 2.5, 26):
        assert smaller_of_the_means(other) <= fitted + 1e-12
    assert evaluation.best_common_threshold(embeddings, labels, 8, draws=3, seed=1) == \
        (tau, pytest.approx(fitted))


def test_fit_identification_tau_on_one_draw_is_that_draws_best_threshold():
    embeddings, labels = noisy_persons(seed=5)
    for seed in (0, 4):
        tau = evaluation.fit_identification_tau(embeddings, labels, enrolled=8, draws=1,
                                                seed=seed)
        assert tau == evaluation.best_threshold(embeddings, labels, enrolled=8, seed=seed)[0]
    with pytest.raises(ValueError, match="draws: expected a positive number .* got 0"):
        evaluation.fit_identification_tau(embeddings, labels, enrolled=8, draws=0)


def test_recognition_over_draws_averages_the_draws_of_seeds_0_and_up():
    embeddings, labels = noisy_persons(seed=4)
    encoder = StandIn(None, 16, 0.6)
    report = evaluation.recognition_over_draws(encoder, embeddings, labels, enrolled=8, draws=3)
    draws = [evaluation.evaluate_recognition(encoder, embeddings, labels, 8, seed=s)
             for s in range(3)]
    for key in ("top1", "rejection", "top1_nearest"):
        values = [draw[key] for draw in draws]
        assert report[f"{key}_over_draws"] == pytest.approx(np.mean(values))
        assert report[f"{key}_over_draws_range"] == [min(values), max(values)]
    bounds = [evaluation.best_threshold(embeddings, labels, 8, seed=s)[1] for s in range(3)]
    assert report["best_threshold_bound_per_draw"] == bounds
    assert report["best_threshold_bound"] == pytest.approx(np.mean(bounds))
    assert report["draws"] == 3 and len(report["best_threshold_per_draw"]) == 3
    # one tau for all draws: its smaller average is at least the two averages' smaller at the
    # encoder's own tau, and at most the draws' own best thresholds allow each draw
    common = min(report["top1_over_draws"], report["rejection_over_draws"])
    assert common <= report["best_common_bound"] <= np.mean(
        [max(evaluation.recognition_sweep(embeddings, labels, 8, s)[1]) for s in range(3)])
    assert (report["best_common_threshold"], report["best_common_bound"]) == \
        evaluation.best_common_threshold(embeddings, labels, 8, draws=3)
    json.loads(json.dumps(report))
    with pytest.raises(ValueError, match="draws: expected a positive number .* got 0"):
        evaluation.recognition_over_draws(encoder, embeddings, labels, enrolled=8, draws=0)


def test_split_persons():
    labels = np.repeat(np.arange(12), 2)
    members, strangers = evaluation.split_persons(labels, 4, seed=0)
    assert len(members) == len(strangers) == 4
    assert not set(members) & set(strangers) and set(members) | set(strangers) <= set(range(12))
    again = evaluation.split_persons(labels, 4, seed=0)
    np.testing.assert_array_equal(again[0], members)
    assert any(not np.array_equal(evaluation.split_persons(labels, 4, seed=s)[0], members)
               for s in (1, 2, 3))
    members, strangers = evaluation.split_persons(labels, 100, seed=0)    # at most half each
    assert len(members) == len(strangers) == 6
    with pytest.raises(ValueError, match="at least 2 persons, got 1"):
        evaluation.split_persons(np.zeros(4, int), 2, seed=0)


# ======================================================= pair classifiers

@pytest.fixture(scope="module")
def fitted():
    """(classifiers, embeddings, pairs) fitted on perfect-encoder embeddings."""
    images, labels = labelled_pictures(20, 4, seed=2)
    embeddings = perfect_encoder(20)(images)
    pairs = sample_pairs(labels, 200, seed=0)
    return evaluation.fit_pair_classifiers(embeddings, pairs, seed=0), embeddings, pairs


def test_both_classifiers_are_fitted_and_reported(fitted):
    classifiers, embeddings, pairs = fitted
    assert set(classifiers) == {"abs", "chi2"}
    assert all(isinstance(c, PairClassifier) and c.kind == kind for kind, c in classifiers.items())
    report = evaluation.evaluate_verification(embeddings, pairs, classifiers)
    for kind in ("abs", "chi2"):
        assert report[f"classifier_{kind}_accuracy"] > 0.9
        assert report[f"classifier_{kind}_auc"] > 0.95
    assert "classifier_abs_accuracy" not in evaluation.evaluate_verification(embeddings, pairs)


def assert_same_predictions(first, second, embeddings, pairs):
    a, b, _ = pairs
    assert set(first) == set(second)
    for kind in first:
        np.testing.assert_array_equal(first[kind].predict_proba(embeddings[a], embeddings[b]),
                                      second[kind].predict_proba(embeddings[a], embeddings[b]))


def test_classifier_arrays_round_trip(fitted):
    classifiers, embeddings, pairs = fitted
    arrays = evaluation.classifiers_to_arrays(classifiers)
    assert set(arrays) == {f"classifier.{kind}.{name}" for kind in ("abs", "chi2")
                           for name in ("kind", "weight", "bias")}
    unrelated = {"config": np.array("{}"), "encoder.embedding.weight": np.ones((2, 2))}
    back = evaluation.classifiers_from_arrays({**unrelated, **arrays})
    assert_same_predictions(back, classifiers, embeddings, pairs)
    assert evaluation.classifiers_from_arrays(unrelated) == {}


def test_classifiers_travel_inside_a_model_file(fitted, tmp_path):
    classifiers, embeddings, pairs = fitted
    path = tmp_path / "model.npz"
    network = FaceEncoder(width=4, embedding_size=8, image_size=16, blocks=1, downsample=1, seed=0)
    Encoder(network).save(path, extra=evaluation.classifiers_to_arrays(classifiers))
    _, arrays = load_encoder(path, with_arrays=True)
    assert_same_predictions(evaluation.classifiers_from_arrays(arrays), classifiers,
                            embeddings, pairs)


# ======================================================= the pixel baseline

def test_pixel_baseline():
    labels = np.repeat(np.arange(20), 4)
    rng = np.random.default_rng(0)
    faces = rng.random((20, 3, 4, 4))
    alike = (faces[labels] + 0.01 * rng.random((80, 3, 4, 4))).astype(np.float32)
    assert evaluation.pixel_baseline(alike, labels, n_pairs=200) == 1.0
    unrelated = rng.random((80, 3, 4, 4)).astype(np.float32)
    assert evaluation.pixel_baseline(unrelated, labels, n_pairs=400) < 0.65
