"""Verification metrics: ROC, AUC, TAR at FAR, EER, tau, LFW's 10-fold accuracy, ROC pictures.

Oracles: brute-force versions written from the definitions (a loop over every
candidate threshold and every pair), themselves checked on hand-worked cases;
hand-worked cases of the fast functions; the identity AUC = P(a different pair
is farther than a same pair, ties counting one half), counted over all
(same, different) couples; perfect, reversed and random distances.
"""

import doctest
import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from scratchnet.face import fit_threshold, metrics
from scratchnet.face.metrics import (
    auc,
    equal_error_rate,
    fit_tau,
    roc_curve,
    roc_picture,
    tar_at_far,
    ten_fold_accuracy,
    verification_report,
)

# ------------------------------------------------------------------ brute-force references

def naive_rates(distances, same, tau):
    """(FAR, TAR) of "same when d <= tau", counted pair by pair."""
    accepted_same = accepted_different = n_same = n_different = 0
    for d, s in zip(distances, same):
        if s:
            n_same += 1
            accepted_same += d <= tau
        else:
            n_different += 1
            accepted_different += d <= tau
    return accepted_different / n_different, accepted_same / n_same


def naive_candidates(distances):
    """Every threshold that changes an answer: accept nothing, then each distinct distance."""
    return [-math.inf] + sorted({float(d) for d in distances})


def naive_roc(distances, same):
    points = [naive_rates(distances, same, tau) for tau in naive_candidates(distances)]
    return [far for far, _ in points], [tar for _, tar in points]


def naive_auc(distances, same):
    """P(d_different > d_same) + P(equal) / 2 over every (same, different) couple."""
    total = count = 0.0
    for d_same, s in zip(distances, same):
        for d_different, t in zip(distances, same):
            if s and not t:
                count += 1
                total += 1.0 if d_different > d_same else 0.5 if d_different == d_same else 0.0
    return total / count


def naive_tar_at_far(distances, same, far):
    return max(tar for f, tar in (naive_rates(distances, same, tau)
                                  for tau in naive_candidates(distances)) if f <= far)


def naive_eer(distances, same):
    """(eer, chosen threshold): smallest max(FAR, FRR), then smallest |FAR - FRR|, then tau."""
    scored = []
    for tau in naive_candidates(distances):
        far, tar = naive_rates(distances, same, tau)
        frr = 1 - tar
        scored.append((max(far, frr), abs(far - frr), tau, (far + frr) / 2))
    best = min(scored)
    return best[3], best[2]


def naive_best_tau(distances, same):
    """The smallest candidate that gives the best accuracy: the midpoints between
    neighbouring distances, one above them all, and half the smallest (accepting no pair)
    when it is above 0, since a threshold on squared distances is >= 0."""
    values = sorted({float(d) for d in distances})
    candidates = ([values[0] / 2] if values[0] > 0 else []) + [
        (below + above) / 2 for below, above in itertools.pairwise(values + [values[-1] + 1.0])]
    best_tau, best_right = None, -1
    for tau in candidates:
        right = sum((d <= tau) == s for d, s in zip(distances, same))
        if right > best_right:
            best_tau, best_right = tau, right
    return best_tau


def naive_ten_fold(distances, same, fold_ids):
    accuracies = []
    for fold in sorted(set(fold_ids)):
        train = [(d, s) for d, s, f in zip(distances, same, fold_ids) if f != fold]
        test = [(d, s) for d, s, f in zip(distances, same, fold_ids) if f == fold]
        tau = naive_best_tau([d for d, _ in train], [s for _, s in train])
        accuracies.append(sum((d <= tau) == s for d, s in test) / len(test))
    return accuracies


# ------------------------------------------------------------------ the references, by hand

def test_naive_references_on_a_hand_worked_case():
    # same pairs at 0.1 and 0.3, different pairs at 0.2 and 0.4
    d, same = [0.1, 0.2, 0.3, 0.4], [True, False, True, False]
    assert naive_roc(d, same) == ([0, 0, 0.5, 0.5, 1], [0, 0.5, 0.5, 1, 1])
    # couples (same, different): (0.1, 0.2) 1, (0.1, 0.4) 1, (0.3, 0.2) 0, (0.3, 0.4) 1
    assert naive_auc(d, same) == 0.75
    assert naive_tar_at_far(d, same, 0.0) == 0.5 and naive_tar_at_far(d, same, 0.5) == 1.0
    # at tau = 0.2: FAR 0.5, FRR 0.5, the only candidate where they are equal
    assert naive_eer(d, same) == (0.5, 0.2)
    # accepting the first pair only, or the first three, both get 3 of 4 right: the first wins
    assert naive_best_tau(d, same) == pytest.approx(0.15)


def test_naive_ten_fold_on_a_hand_worked_case():
    d = [0.1, 0.5, 0.3, 0.7, 0.2, 0.45, 0.6, 0.8]
    same = [True, False, True, False, True, False, True, False]
    # fold 1 gives tau = 0.325, all of fold 0 right; fold 0 gives tau = 0.4, 0.6 is missed
    assert naive_ten_fold(d, same, [0, 0, 0, 0, 1, 1, 1, 1]) == [1.0, 0.75]


# ------------------------------------------------------------------ ROC and AUC

def test_roc_curve_with_ties_by_hand():
    # two pairs at distance 1 (one same, one different) move together: a diagonal step
    far, tar, thresholds = roc_curve([1.0, 1.0, 2.0], [True, False, True])
    assert far.tolist() == [0.0, 1.0, 1.0]
    assert tar.tolist() == [0.0, 0.5, 1.0]
    assert thresholds.tolist() == [-np.inf, 1.0, 2.0]
    assert auc(far, tar) == 0.25   # the tie counts one half, the other couple 0


distances_and_labels = st.integers(2, 30).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 6), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n),
))


@settings(max_examples=40, deadline=None)
@given(distances_and_labels)
def test_roc_and_auc_match_the_brute_force(case):
    d, same = np.array(case[0]) * 0.25, np.array(case[1])
    assume(same.any() and not same.all())
    far, tar, thresholds = roc_curve(d, same)
    expected_far, expected_tar = naive_roc(d.tolist(), same.tolist())
    np.testing.assert_allclose(far, expected_far, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tar, expected_tar, rtol=0, atol=1e-12)
    assert thresholds[1:].tolist() == sorted(set(d.tolist()))
    assert auc(far, tar) == pytest.approx(naive_auc(d.tolist(), same.tolist()), abs=1e-12)


def test_auc_is_one_for_perfect_separation_zero_reversed_half_for_random():
    rng = np.random.default_rng(0)
    same = rng.random(4000) < 0.5
    separated = np.where(same, rng.random(4000), 2 + rng.random(4000))
    assert auc(*roc_curve(separated, same)[:2]) == 1.0
    assert auc(*roc_curve(-separated, same)[:2]) == 0.0
    # AUC of unrelated distances: mean 0.5, standard deviation about 0.009 at this size
    assert abs(auc(*roc_curve(rng.random(4000), same)[:2]) - 0.5) < 0.04


def test_auc_rejects_a_curve_going_back():
    with pytest.raises(ValueError, match="far"):
        auc([0.0, 0.5, 0.2, 1.0], [0.0, 0.5, 0.6, 1.0])


@pytest.mark.parametrize("distances, same, match", [
    ([0.1, np.nan], [True, False], "distances"),
    ([0.1, 0.2], [True, False, True], "same"),
    ([0.1, 0.2], [True, True], "same"),
    ([[0.1, 0.2]], [[True, False]], "distances"),
    ([0.1, 0.2], [2, 0], "same"),
])
def test_bad_pairs_raise_naming_the_argument(distances, same, match):
    with pytest.raises(ValueError, match=match):
        roc_curve(distances, same)


# ------------------------------------------------------------------ TAR at FAR

def test_tar_at_far_by_hand():
    # same pairs at 0.1, 0.3, 0.5; different ones at 0.2, 0.4, 0.6
    d, same = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [True, False] * 3
    assert tar_at_far(d, same, 0.0) == pytest.approx(1 / 3)     # tau = 0.1
    assert tar_at_far(d, same, 0.34) == pytest.approx(2 / 3)    # tau = 0.3, one impostor in
    assert tar_at_far(d, same, 1.0) == 1.0


def test_tar_at_far_below_the_resolution_is_the_tar_at_far_zero():
    # 3 different pairs cannot show a FAR of 1e-3: the answer is the TAR with no impostor in
    d, same = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [True, False] * 3
    assert tar_at_far(d, same, 1e-3) == tar_at_far(d, same, 0.0)


@settings(max_examples=30, deadline=None)
@given(distances_and_labels, st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0]))
def test_tar_at_far_matches_the_brute_force(case, far):
    d, same = np.array(case[0]) * 0.5, np.array(case[1])
    assume(same.any() and not same.all())
    assert tar_at_far(d, same, far) == pytest.approx(naive_tar_at_far(d.tolist(), same.tolist(),
                                                                       far), abs=1e-12)


@pytest.mark.parametrize("far", [-0.1, 1.5, "0.1"])
def test_tar_at_far_rejects_a_bad_rate(far):
    with pytest.raises(ValueError, match="far"):
        tar_at_far([0.1, 0.2], [True, False], far)


# ------------------------------------------------------------------ tau

def test_equal_error_rate_by_hand():
    # same at 0.1, 0.3, different at 0.2, 0.4: FAR = FRR = 0.5 when accepting up to 0.2
    assert equal_error_rate([0.1, 0.2, 0.3, 0.4], [True, False, True, False]) == (0.5, 0.25)
    # separable: no error at all between 0.2 and 0.5
    assert equal_error_rate([0.1, 0.2, 0.5, 0.6], [True, True, False, False]) == (0.0, 0.35)


@settings(max_examples=40, deadline=None)
@given(distances_and_labels)
def test_equal_error_rate_matches_the_brute_force(case):
    d, same = np.array(case[0]) * 0.5, np.array(case[1])
    assume(same.any() and not same.all())
    eer, tau = equal_error_rate(d, same)
    expected_eer, accepted_up_to = naive_eer(d.tolist(), same.tolist())
    assert eer == pytest.approx(expected_eer, abs=1e-12)
    # tau accepts exactly what the chosen threshold accepts: it lies before the next distance
    assert naive_rates(d, same, tau) == naive_rates(d, same, accepted_up_to)
    assert fit_tau(d, same, criterion="eer") == tau


@settings(max_examples=30, deadline=None)
@given(distances_and_labels)
def test_best_accuracy_tau_is_the_brute_force_best(case):
    d, same = np.array(case[0]) * 0.5, np.array(case[1])
    tau = fit_tau(d, same)
    assert tau == pytest.approx(naive_best_tau(d.tolist(), same.tolist()))
    assert tau == fit_threshold(d, same)[0]


def test_fit_tau_rejects_an_unknown_criterion():
    with pytest.raises(ValueError, match="criterion"):
        fit_tau([0.1, 0.2], [True, False], criterion="f1")


# ------------------------------------------------------------------ 10-fold accuracy

def test_ten_fold_accuracy_by_hand():
    d = [0.1, 0.5, 0.3, 0.7, 0.2, 0.45, 0.6, 0.8]
    same = [True, False, True, False, True, False, True, False]
    mean, std, per_fold = ten_fold_accuracy(d, same, folds=2)
    assert per_fold.tolist() == [1.0, 0.75]
    assert mean == 0.875
    assert std == pytest.approx(0.25 / math.sqrt(2))   # sample std of 1 and 0.75


@settings(max_examples=25, deadline=None)
@given(st.integers(20, 60).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 9), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n))), st.integers(2, 10))
def test_ten_fold_accuracy_matches_the_brute_force(case, folds):
    d, same = np.array(case[0]) * 0.1, np.array(case[1])
    contiguous = [k * folds // len(d) for k in range(len(d))]
    mean, std, per_fold = ten_fold_accuracy(d, same, folds=folds)
    np.testing.assert_allclose(per_fold, naive_ten_fold(d.tolist(), same.tolist(), contiguous))
    assert mean == pytest.approx(np.mean(per_fold))
    assert std == pytest.approx(np.std(per_fold, ddof=1))
    by_ids = ten_fold_accuracy(d, same, folds=np.array(contiguous))
    assert by_ids[0] == mean and np.array_equal(by_ids[2], per_fold)


def test_ten_fold_folds_are_contiguous_and_nearly_equal():
    # 25 pairs in 10 folds: sizes 2 or 3, in the pairs' order
    ids = metrics._fold_ids(10, 25)
    assert np.all(np.diff(ids) >= 0)
    assert set(np.bincount(ids).tolist()) == {2, 3}


@pytest.mark.parametrize("folds", [1, 11, np.zeros(10, dtype=int), np.arange(5), 2.5])
def test_ten_fold_rejects_bad_folds(folds):
    with pytest.raises(ValueError, match="folds"):
        ten_fold_accuracy(np.arange(10) * 0.1, np.arange(10) % 2 == 0, folds=folds)


# ------------------------------------------------------------------ the report

def test_verification_report_holds_every_figure_as_json():
    rng = np.random.default_rng(1)
    same = rng.random(600) < 0.5
    d = rng.normal(size=600) + 2.0 * ~same
    report = verification_report(d, same)
    assert set(report) == {"verification_accuracy", "verification_std", "auc", "tau",
                           "accuracy_at_tau", "tau_eer", "eer", "tar_at_far_1e-2",
                           "tar_at_far_1e-3", "n_same", "n_different"}
    assert json.loads(json.dumps(report)) == report
    assert all(type(value) in (float, int) for value in report.values())
    mean, std, _ = ten_fold_accuracy(d, same)
    assert (report["verification_accuracy"], report["verification_std"]) == (mean, std)
    assert report["auc"] == pytest.approx(naive_auc(d.tolist(), same.tolist()))
    assert (report["tau"], report["accuracy_at_tau"]) == fit_threshold(d, same)
    assert (report["eer"], report["tau_eer"]) == equal_error_rate(d, same)
    assert report["tar_at_far_1e-2"] == tar_at_far(d, same, 1e-2)
    assert report["tar_at_far_1e-3"] == tar_at_far(d, same, 1e-3)
    assert report["n_same"] + report["n_different"] == 600
    # two unit-variance normals 2 apart: accuracy about Phi(1) = 0.84
    assert 0.78 < report["verification_accuracy"] < 0.9


# ------------------------------------------------------------------ the picture

def _plot_point(far, tar):
    """Where the linear plot draws (far, tar), from the layout constants."""
    left, top, right, bottom = metrics.PLOT_BOX
    return round(left + far * (right - left)), round(bottom - tar * (bottom - top))


def _colour_near(image, point, colour):
    """True if a pixel within one of `point` has `colour` (a line's rounding may shift it)."""
    x, y = point
    return bool(np.any(np.all(image[y - 1:y + 2, x - 1:x + 2] == colour, axis=2)))


def test_roc_picture_draws_each_curve_in_its_colour(tmp_path):
    path = tmp_path / "roc.png"
    curves = {"diagonal": ([0.0, 1.0], [0.0, 1.0]), "better": ([0.0, 0.1, 1.0], [0.0, 0.9, 1.0])}
    roc_picture(curves, path)
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (metrics.PICTURE_SIZE[1], metrics.PICTURE_SIZE[0], 3)
    first, second = metrics.COLOURS[:2]
    assert _colour_near(image, _plot_point(0.5, 0.5), first)     # the diagonal's middle
    assert _colour_near(image, _plot_point(0.55, 0.95), second)  # the second curve's last segment
    assert not _colour_near(image, _plot_point(0.5, 0.5), second)
    for colour in (first, second):                          # and each colour is a line, not a dot
        assert np.all(image == colour, axis=2).sum() > 300
    assert (image < 100).all(axis=2).sum() > 500            # black axes, ticks and text


def test_roc_picture_log_scale_differs_and_takes_far_zero(tmp_path):
    curve = {"encoder": roc_curve(np.arange(2000) % 7 + np.arange(2000) % 2 * 3,
                                  np.arange(2000) % 2 == 0)[:2]}
    linear = np.asarray(roc_picture(curve, tmp_path / "linear.png"))
    logarithmic = np.asarray(roc_picture(curve, tmp_path / "log.png", log_far=True))
    assert not np.array_equal(linear, logarithmic)
    assert np.all(logarithmic == metrics.COLOURS[0], axis=2).sum() > 300


def test_roc_picture_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "roc.png"
    roc_picture({"a": ([0.0, 1.0], [0.0, 1.0])}, path)
    before = path.read_bytes()

    def failing_save(image, file, format):
        file.write(b"\x89PNG half of a picture")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        roc_picture({"b": ([0.0, 1.0], [1.0, 1.0])}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roc.png"]  # no temporary left


@pytest.mark.parametrize("curves", [{}, [([0, 1], [0, 1])], {"a": ([0, 1], [0, 2])},
                                    {"a": ([0, 1, 1], [0, 1])}])
def test_roc_picture_rejects_bad_curves(tmp_path, curves):
    with pytest.raises(ValueError, match="curves"):
        roc_picture(curves, tmp_path / "roc.png")
    assert not (tmp_path / "roc.png").exists()


def test_docstring_examples_run():
    result = doctest.testmod(metrics)
    assert result.attempted > 0 and result.failed == 0
