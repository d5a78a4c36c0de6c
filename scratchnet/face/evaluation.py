"""Measuring a face encoder: verification 1:1, one-shot recognition 1:K, and the baselines.

Verification (1:1). Balanced pairs of pictures of held-out persons (half
show one person, half two), d = ||f(x1) - f(x2)||^2 for each, and the
metrics of scratchnet.face.metrics: LFW's 10-fold accuracy (tau fitted on
nine folds, measured on the tenth), ROC and AUC, TAR at FAR 1e-2 and 1e-3.

Verification as binary classification (the slide): the pair classifiers
y_hat = sigmoid(sum_k w_k |f(x_i)_k - f(x_j)_k| + b) and its chi-square
variant, fitted on pairs of TRAINING persons over the frozen encoder, are
scored on the same held-out pairs (y_hat > 0.5 means "same").

Recognition 1:K, one-shot. `enrolled` persons are enrolled from ONE picture
each (their first); every other picture of them is a query that should come
back with the right name, and every picture of `enrolled` further persons,
never enrolled, should come back "not recognized":

    top1       share of enrolled persons' queries answered with the right
               name (nearest enrolled person AND d <= tau_identify, the
               encoder's recognition threshold: see fit_identification_tau)
    top1_nearest  the same without the threshold (the nearest is right)
    rejection  share of non-enrolled persons' pictures answered
               "not recognized" (d > tau_identify for every enrolled person)

Which persons are enrolled moves top1 and rejection by several points, so
`evaluate` also averages them over DRAWS enrolment draws (seeds 0, 1, ...),
and reports for each draw the best threshold chosen on these very persons
(`best_threshold`): the tau where the smaller of top1 and rejection is
largest. No tau fitted on other persons can do better on both in that draw,
so its mean over the draws, best_threshold_bound, says how far the encoder
itself is from a target on both figures, wherever the fitted tau_identify
lands. The averages over the draws at ONE tau can still come out above that
mean (each draw's best tau differs), so `evaluate` also reports the one tau
for all draws where the smaller of the two averages is largest
(`best_common_threshold`): its value, best_common_bound, is the most any
single fitted tau can give top1_over_draws and rejection_over_draws together.
"""

import collections
import os
import tempfile

import numpy as np

from .database import FaceDatabase
from .datasets import pair_distances, sample_pairs
from .metrics import ten_fold_accuracy, verification_report
from .pair_classifier import KINDS, PairClassifier

CLASSIFIER_PREFIX = "classifier."
EVALUATION_PAIRS = 6000          # as many as LFW's protocol has
ENROLLED = 100                   # K of the recognition test
DRAWS = 6                        # enrolment draws that `evaluate` averages over
MAX_DRAWS = 1000                 # about a minute of draws (0.05 s each for K = 100 of 600)


def pair_embeddings(encoder, images, labels, n_pairs, seed, embeddings=None):
    """(embeddings of all images, (first, second, same)) for n_pairs balanced pairs.

    `embeddings`, when given, are encoder(images) computed already.
    """
    pairs = sample_pairs(labels, n_pairs, seed)
    return (encoder(images) if embeddings is None else embeddings), pairs


def encode_pairs(encoder, images, pairs):
    """(embeddings, pairs) with only the pictures that the pairs (first, second, same) show
    encoded, and the pairs' indices turned into rows of those embeddings."""
    first, second, same = pairs
    shown, where = np.unique(np.concatenate([first, second]), return_inverse=True)
    return encoder(images[shown]), (where[:len(first)], where[len(first):], same)


def squared_distances(embeddings, first, second):
    return np.sum((embeddings[first] - embeddings[second]) ** 2, axis=1)


def distances_between(queries, gallery):
    """D[i, k] = ||q_i - g_k||^2 for the rows of `queries` (n, d) and `gallery` (K, d), (n, K),
    by the expansion ||q_i||^2 + ||g_k||^2 - 2 q_i . g_k: one matrix product (round-off can
    leave an entry a little below 0)."""
    return (np.sum(queries ** 2, axis=1)[:, None] + np.sum(gallery ** 2, axis=1)[None, :]
            - 2 * queries @ gallery.T)


def fit_pair_classifiers(embeddings, pairs, seed=0):
    """{kind: PairClassifier} for "abs" and "chi2", fitted on the given pairs of embeddings."""
    first, second, same = pairs
    classifiers = {}
    for kind in KINDS:
        classifier = PairClassifier(kind)
        classifier.fit(embeddings[first], embeddings[second], same, seed=seed)
        classifiers[kind] = classifier
    return classifiers


def classifiers_to_arrays(classifiers):
    """The classifiers' states as flat arrays "classifier.<kind>.<name>", to save with a model."""
    return {f"{CLASSIFIER_PREFIX}{kind}.{name}": value
            for kind, classifier in classifiers.items()
            for name, value in classifier.state().items()}


def classifiers_from_arrays(arrays):
    """What classifiers_to_arrays wrote, read back from a model file's arrays ({} if none)."""
    states = {}
    for key, value in arrays.items():
        if key.startswith(CLASSIFIER_PREFIX):
            kind, name = key[len(CLASSIFIER_PREFIX):].split(".", 1)
            states.setdefault(kind, {})[name] = value
    return {kind: PairClassifier.from_state(state) for kind, state in states.items()}


def evaluate_verification(embeddings, pairs, classifiers=None):
    """verification_report of d on the pairs, plus each pair classifier's accuracy and AUC."""
    first, second, same = pairs
    report = verification_report(squared_distances(embeddings, first, second), same)
    for kind, classifier in (classifiers or {}).items():
        probability = classifier.predict_proba(embeddings[first], embeddings[second])
        # "same" when y_hat > 0.5, i.e. when 1 - y_hat < 0.5: 1 - y_hat plays the part of d
        report[f"classifier_{kind}_accuracy"] = float(np.mean((probability > 0.5) == same))
        report[f"classifier_{kind}_auc"] = verification_report(1 - probability, same)["auc"]
    return report


def evaluate_recognition(encoder, embeddings, labels, enrolled=ENROLLED, seed=0):
    """top1, top1_nearest and rejection of one-shot recognition (module docstring)."""
    labels = np.asarray(labels)
    members, strangers = split_persons(labels, enrolled, seed)
    first_picture = {person: np.flatnonzero(labels == person)[0] for person in members}
    with tempfile.TemporaryDirectory() as folder:
        database = FaceDatabase(os.path.join(folder, "enrolled.npz"), encoder)
        database.enroll_embeddings([str(person) for person in members],
                                   embeddings[[first_picture[p] for p in members]])
        is_query = np.isin(labels, members) & ~np.isin(np.arange(len(labels)),
                                                       list(first_picture.values()))
        answers, _ = database.identify_embeddings(embeddings[is_query])
        nearest, _ = database.nearest(embeddings[is_query])
        truth = [str(person) for person in labels[is_query]]
        stranger_answers, _ = database.identify_embeddings(embeddings[np.isin(labels, strangers)])
    return {
        "enrolled": int(len(members)),
        "top1": float(np.mean([a == t for a, t in zip(answers, truth)])),
        "top1_nearest": float(np.mean([a == t for a, t in zip(nearest, truth)])),
        "rejection": float(np.mean([a is None for a in stranger_answers])),
        "recognition_queries": int(len(truth)),
        "rejection_queries": int(len(stranger_answers)),
    }


def recognition_sweep(embeddings, labels, enrolled=ENROLLED, seed=0):
    """(taus, top1, rejection): one enrolment draw's one-shot recognition at every tau at once.

    The draw and the answers of evaluate_recognition, from the distances alone:
    each query's nearest enrolled person and its d do not depend on tau, so
    top1(tau) counts the right answers with d <= tau and rejection(tau) the
    strangers' pictures with d > tau. `taus` are 0 and the midpoints between
    consecutive distinct distances, which covers every value the two figures can take.
    """
    draw = _nearest_distances(embeddings, labels, enrolled, seed)
    taus = _candidate_taus([draw])
    return (taus,) + _rates_at(taus, draw)


# One enrolment draw's distances to the nearest enrolled person: of every query, of the
# queries whose nearest is the right person (sorted), of every stranger's picture (sorted).
_Draw = collections.namedtuple("_Draw", "queries right strangers")


def _nearest_distances(embeddings, labels, enrolled, seed):
    labels = np.asarray(labels)
    members, strangers = split_persons(labels, enrolled, seed)
    first = np.array([np.flatnonzero(labels == person)[0] for person in members])
    is_query = np.isin(labels, members)
    is_query[first] = False
    gallery = embeddings[first].astype(np.float64)

    def nearest(queries):     # (n, d) -> the nearest member of each, and its d
        d = distances_between(queries.astype(np.float64), gallery)        # (n, K)
        return members[np.argmin(d, axis=1)], np.maximum(np.min(d, axis=1), 0)

    answer, d_query = nearest(embeddings[is_query])
    right = answer == labels[is_query]
    _, d_stranger = nearest(embeddings[np.isin(labels, strangers)])
    return _Draw(d_query, np.sort(d_query[right]), np.sort(d_stranger))


def _candidate_taus(draws):
    """0 and the midpoints between consecutive distinct distances of the draws: every value
    that top1 and rejection of each draw can take is taken at one of them, and none sits on a
    distance (draws that share persons repeat distances)."""
    distances = np.unique(np.concatenate([d for draw in draws for d in (draw.queries,
                                                                        draw.strangers)]))
    return np.concatenate([[0.0], (distances[1:] + distances[:-1]) / 2])


def _rates_at(taus, draw):
    """(top1, rejection) of one draw at each of `taus`."""
    top1 = np.searchsorted(draw.right, taus, side="right") / len(draw.queries)
    rejection = 1 - np.searchsorted(draw.strangers, taus, side="right") / len(draw.strangers)
    return top1, rejection


def fit_identification_tau(embeddings, labels, enrolled=ENROLLED, draws=DRAWS, seed=0):
    """The tau for 1:K where the smaller of top1 and rejection is largest, each averaged over
    `draws` enrolment draws (seeds seed, seed + 1, ...) of these (validation) persons.

    Recognition is harder than verification: a stranger is compared with all K
    enrolled persons, and is wrongly accepted if ANY of them is within tau, so
    1:K needs a smaller tau than the best one for single pairs. top1 grows with
    tau and rejection falls, so the smaller of the two is largest where they
    meet: the tau that serves members and strangers alike, as the equal-error
    rate does for verification (one target, 0.95, for both). Averaging over
    draws makes the tau depend less on which persons one draw enrols.
    """
    return best_common_threshold(embeddings, labels, enrolled, draws, seed)[0]


def best_common_threshold(embeddings, labels, enrolled=ENROLLED, draws=DRAWS, seed=0):
    """(tau, bound): the one tau for the `draws` enrolment draws (seeds seed, seed + 1, ...)
    where the smaller of top1 and rejection, each averaged over the draws, is largest, and
    that smaller average. On validation persons it fits tau_identify; on the test persons it
    bounds what any single fitted tau can give both averages."""
    _check_draws(draws)
    each_draw = [_nearest_distances(embeddings, labels, enrolled, seed + d) for d in range(draws)]
    taus = _candidate_taus(each_draw)
    rates = [_rates_at(taus, draw) for draw in each_draw]
    top1 = np.mean([top1 for top1, _ in rates], axis=0)
    rejection = np.mean([rejection for _, rejection in rates], axis=0)
    smaller = np.minimum(top1, rejection)
    best = int(np.argmax(smaller))
    return float(taus[best]), float(smaller[best])


def best_threshold(embeddings, labels, enrolled=ENROLLED, seed=0):
    """(tau, bound): the tau that maximises min(top1, rejection) on THESE persons, and that min.

    Chosen on the test persons themselves, it is an upper bound: no threshold
    fitted on other persons gives both top1 and rejection above `bound` here.
    """
    taus, top1, rejection = recognition_sweep(embeddings, labels, enrolled, seed)
    smaller = np.minimum(top1, rejection)
    best = int(np.argmax(smaller))
    return float(taus[best]), float(smaller[best])


def recognition_over_draws(encoder, embeddings, labels, enrolled=ENROLLED, draws=DRAWS):
    """evaluate_recognition for the enrolment draws of seeds 0 .. draws - 1: the mean and
    (min, max) of top1, rejection and top1_nearest, best_threshold's bound and tau for each
    draw, best_threshold_bound, the bounds' mean, and best_common_threshold's tau and
    bound over all the draws."""
    _check_draws(draws)
    results = [evaluate_recognition(encoder, embeddings, labels, enrolled, seed)
               for seed in range(draws)]
    report = {"draws": int(draws)}
    for key in ("top1", "rejection", "top1_nearest"):
        values = [result[key] for result in results]
        report[f"{key}_over_draws"] = float(np.mean(values))
        report[f"{key}_over_draws_range"] = [float(np.min(values)), float(np.max(values))]
    best = [best_threshold(embeddings, labels, enrolled, seed) for seed in range(draws)]
    report["best_threshold_per_draw"] = [tau for tau, _ in best]
    report["best_threshold_bound_per_draw"] = [bound for _, bound in best]
    report["best_threshold_bound"] = float(np.mean(report["best_threshold_bound_per_draw"]))
    tau, bound = best_common_threshold(embeddings, labels, enrolled, draws)
    report["best_common_threshold"], report["best_common_bound"] = tau, bound
    return report


def _check_draws(draws):
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ValueError(f"draws: expected a positive number of enrolment draws, got {draws!r}")


def split_persons(labels, enrolled, seed):
    """(members, strangers): `enrolled` persons to enrol and as many others, drawn from seed."""
    persons = np.unique(labels)
    if len(persons) < 2:
        raise ValueError(f"labels: recognition needs at least 2 persons, got {len(persons)}")
    enrolled = min(enrolled, len(persons) // 2)
    order = np.random.default_rng(seed).permutation(persons)
    return order[:enrolled], order[enrolled:2 * enrolled]


def evaluate(encoder, images, labels, classifiers=None, n_pairs=EVALUATION_PAIRS,
             enrolled=ENROLLED, seed=0, embeddings=None, draws=DRAWS):
    """Every metric of the module docstring as one JSON-serialisable dict
    (`embeddings`: encoder(images), when computed already; draws=0 leaves out
    recognition_over_draws)."""
    embeddings, pairs = pair_embeddings(encoder, images, labels, n_pairs, seed, embeddings)
    report = {"tau": float(encoder.tau),
              "tau_identify": float(getattr(encoder, "tau_identify", encoder.tau))}
    verification = evaluate_verification(embeddings, pairs, classifiers)
    verification["tau_fitted_here"] = verification.pop("tau")   # the model keeps its own tau
    report.update(verification)
    report.update(evaluate_recognition(encoder, embeddings, labels, enrolled, seed))
    if draws:
        report.update(recognition_over_draws(encoder, embeddings, labels, enrolled, draws))
    report["pairs"] = int(n_pairs)
    return report


def pixel_baseline(images, labels, n_pairs=EVALUATION_PAIRS, seed=0):
    """10-fold accuracy of raw pixels as the encoding, d = ||x1 - x2||^2, on the same pairs."""
    first, second, same = sample_pairs(labels, n_pairs, seed)
    distances = pair_distances(np.asarray(images), first, second)
    return ten_fold_accuracy(distances, same)[0]
