"""How well distances verify faces: ROC, AUC, TAR at FAR, tau, 10-fold accuracy, ROC pictures.

Verification (the slide): d(img1, img2) = ||f(img1) - f(img2)||^2, and the
pair shows one person when d <= tau. Given the distances d of n pairs and
whether each pair really is one person (`same`), a threshold tau gives

    TAR(tau) = #{same pairs with d <= tau} / #{same pairs}            true accept rate
    FAR(tau) = #{different pairs with d <= tau} / #{different pairs}  false accept rate
    FRR(tau) = 1 - TAR(tau)                                          false reject rate

The ROC curve is (FAR, TAR) as tau sweeps from "accept nothing" (0, 0) to
"accept everything" (1, 1). Only the distinct distances matter: tau moves a
pair's answer when it crosses the pair's distance, and pairs at one distance
(ties) cross together, so the curve has one point per distinct distance and
ties make a diagonal step. AUC, the area under the curve (trapezoids), is
then the probability that a random different pair is farther apart than a
random same pair, ties counting one half. 1 is perfect, 0.5 is chance.

The figures a face-verification paper reports, all here:

- `tar_at_far(d, same, 1e-3)`: the TAR when at most 1 in 1000 impostors is let in;
- `fit_tau(d, same)`: the tau of best accuracy, or ("eer") of the equal error
  rate, where FAR = FRR = 1 - TAR;
- `ten_fold_accuracy`: LFW's protocol. The pairs are cut into 10 folds; tau is
  fitted on 9 folds and the accuracy measured on the 10th, for each choice of
  the 10th; the mean and standard deviation of the 10 accuracies are reported;
- `verification_report`: all of the above as one JSON-ready dict;
- `roc_picture`: ROC curves drawn to a PNG file.

A fitted tau lies halfway between two neighbouring distances (as in
`fit_threshold`), so that it does not sit exactly on a pair it was fitted on.

>>> d = np.array([0.1, 0.2, 0.3, 0.4])
>>> same = np.array([True, False, True, False])
>>> far, tar, thresholds = roc_curve(d, same)
>>> far.tolist(), tar.tolist()
([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
>>> float(auc(far, tar))
0.75
>>> fit_tau(d, same, criterion="eer")
0.25
"""

import math

import numpy as np
from PIL import Image, ImageDraw

from ..io.images import default_font
from ..serialize import atomic_write
from .datasets import fit_threshold

CRITERIA = ("accuracy", "eer")
REPORTED_FARS = {"tar_at_far_1e-2": 1e-2, "tar_at_far_1e-3": 1e-3}  # report key -> FAR


# ------------------------------------------------------------------ arguments

def _check_pairs(distances, same, need_both=True):
    """distances as float64 (n,), same as bool (n,); raise naming the argument otherwise."""
    distances = np.asarray(distances)
    if distances.ndim != 1 or len(distances) == 0:
        raise ValueError(f"distances: expected a non-empty 1-D array, got shape {distances.shape}")
    if not (np.issubdtype(distances.dtype, np.number) and np.isrealobj(distances)):
        raise TypeError(f"distances: expected real numbers, got dtype {distances.dtype}")
    distances = distances.astype(np.float64)
    if not np.all(np.isfinite(distances)):
        raise ValueError("distances: expected finite numbers, got NaN or inf")
    same = np.asarray(same)
    if same.shape != distances.shape:
        raise ValueError(f"same: expected shape {distances.shape} like distances, got {same.shape}")
    if same.dtype != np.bool_ and not np.all((same == 0) | (same == 1)):
        raise ValueError("same: expected booleans (or 0/1), got other values")
    same = same.astype(bool)
    if need_both and (same.all() or not same.any()):
        raise ValueError(f"same: expected both same and different pairs, got "
                         f"{int(same.sum())} same and {int((~same).sum())} different")
    return distances, same


# ------------------------------------------------------------------ ROC and AUC

def roc_curve(distances, same):
    """The ROC curve of "same person when d <= tau"; returns (far, tar, thresholds).

    Point 0 is tau = -inf (accept nothing: FAR = TAR = 0); point i > 0 has tau
    equal to the i-th smallest distinct distance, so that every pair at that
    distance or closer is accepted. The last point is (1, 1). far and tar are
    non-decreasing float64 arrays.
    """
    distances, same = _check_pairs(distances, same)
    order = np.argsort(distances, kind="stable")
    d, s = distances[order], same[order]
    last_of_each_value = np.flatnonzero(np.append(d[1:] != d[:-1], True))
    accepted_same = np.cumsum(s)[last_of_each_value]
    accepted_different = np.cumsum(~s)[last_of_each_value]
    far = np.concatenate([[0.0], accepted_different / np.count_nonzero(~s)])
    tar = np.concatenate([[0.0], accepted_same / np.count_nonzero(s)])
    thresholds = np.concatenate([[-np.inf], d[last_of_each_value]])
    return far, tar, thresholds


def auc(far, tar):
    """Area under the ROC curve by trapezoids: sum_i (far_i+1 - far_i) (tar_i + tar_i+1) / 2."""
    far, tar = np.asarray(far, dtype=np.float64), np.asarray(tar, dtype=np.float64)
    if far.ndim != 1 or far.shape != tar.shape or len(far) < 2:
        raise ValueError(f"far, tar: expected two 1-D arrays of one length >= 2, "
                         f"got shapes {far.shape} and {tar.shape}")
    if np.any(np.diff(far) < 0):
        raise ValueError("far: expected non-decreasing values, as roc_curve returns them")
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))


def tar_at_far(distances, same, far):
    """The largest TAR among the thresholds whose FAR is at most `far`.

    With m different pairs the observable FARs are 0, 1/m, 2/m, ...: when
    m < 1/far the only one at or below `far` is 0, and the answer is the TAR
    at FAR = 0 (no impostor accepted), the strictest reading and a lower bound
    of the TAR that more pairs would resolve. verification_report gives m as
    `n_different` so that a reader can tell.
    """
    if not isinstance(far, (int, float, np.floating)) or not 0 <= far <= 1:
        raise ValueError(f"far: expected a rate in [0, 1], got {far!r}")
    curve_far, curve_tar, _ = roc_curve(distances, same)
    return float(curve_tar[curve_far <= far].max())


# ------------------------------------------------------------------ choosing tau

def equal_error_rate(distances, same):
    """(eer, tau): the threshold where FAR and FRR = 1 - TAR are closest to equal.

    On finitely many pairs FAR and FRR jump rather than cross, so the ROC point
    chosen is the one with the smallest max(FAR, FRR) (ties: the smallest
    |FAR - FRR|, then the smallest tau), and eer = (FAR + FRR) / 2 there.
    """
    far, tar, thresholds = roc_curve(distances, same)
    frr = 1 - tar
    best = np.lexsort((np.abs(far - frr), np.maximum(far, frr)))[0]  # last key sorts first
    return float((far[best] + frr[best]) / 2), _tau_after(thresholds, best)


def _tau_after(thresholds, index):
    """Halfway between ROC threshold `index` and the next distance (one past the ends)."""
    distinct = thresholds[1:]
    below = thresholds[index] if index > 0 else distinct[0] - 1.0
    above = distinct[index] if index < len(distinct) else distinct[-1] + 1.0
    return float((below + above) / 2)


def fit_tau(distances, same, criterion="accuracy"):
    """The tau of "same when d <= tau" that maximises accuracy, or ("eer") equalises FAR and FRR."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion: expected one of {CRITERIA}, got {criterion!r}")
    if criterion == "eer":
        return equal_error_rate(distances, same)[1]
    distances, same = _check_pairs(distances, same, need_both=False)
    return fit_threshold(distances, same)[0]


# ------------------------------------------------------------------ LFW's 10-fold accuracy

def ten_fold_accuracy(distances, same, folds=10):
    """LFW's protocol: (mean, std, per_fold) of the accuracies with tau fitted on the other folds.

    `folds` is a number k (the pairs, in their order, cut into k contiguous
    folds of nearly equal size, as LFW's pairs.txt lists them) or an array
    giving each pair's fold id. For each fold: tau = the best-accuracy tau on
    all other pairs, accuracy = the fraction of the fold's pairs that
    d <= tau classifies right. std is the sample standard deviation (ddof=1) of
    the per-fold accuracies, LFW's sigma; its standard error is std / sqrt(k).
    """
    distances, same = _check_pairs(distances, same, need_both=False)
    fold_of_pair = _fold_ids(folds, len(distances))
    per_fold = []
    for fold in np.unique(fold_of_pair):
        test = fold_of_pair == fold
        tau, _ = fit_threshold(distances[~test], same[~test])
        per_fold.append(np.mean((distances[test] <= tau) == same[test]))
    per_fold = np.array(per_fold)
    return float(per_fold.mean()), float(per_fold.std(ddof=1)), per_fold


def _fold_ids(folds, n_pairs):
    """Each pair's fold id, from a number of folds or an array of ids."""
    if isinstance(folds, (int, np.integer)) and not isinstance(folds, bool):
        if not 2 <= folds <= n_pairs:
            raise ValueError(f"folds: expected between 2 and the {n_pairs} pairs, got {folds}")
        return np.arange(n_pairs) * folds // n_pairs  # contiguous, sizes differ by at most 1
    fold_ids = np.asarray(folds)
    if fold_ids.shape != (n_pairs,) or not np.issubdtype(fold_ids.dtype, np.integer):
        raise ValueError(f"folds: expected an int or {n_pairs} integer fold ids, "
                         f"got {type(folds).__name__} of shape {fold_ids.shape}")
    if len(np.unique(fold_ids)) < 2:
        raise ValueError("folds: expected at least two different fold ids")
    return fold_ids


# ------------------------------------------------------------------ the report

def verification_report(distances, same, folds=10):
    """Every verification figure of `distances` and `same`, as a dict of plain floats and ints.

    Keys: verification_accuracy and verification_std (ten_fold_accuracy), auc,
    tau (best accuracy over all pairs) and accuracy_at_tau, tau_eer and eer,
    tar_at_far_1e-2 and tar_at_far_1e-3, n_same and n_different.
    """
    distances, same = _check_pairs(distances, same)
    mean, std, _ = ten_fold_accuracy(distances, same, folds)
    far, tar, _ = roc_curve(distances, same)
    tau, accuracy = fit_threshold(distances, same)
    eer, tau_eer = equal_error_rate(distances, same)
    report = {
        "verification_accuracy": mean,
        "verification_std": std,
        "auc": auc(far, tar),
        "tau": tau,
        "accuracy_at_tau": accuracy,
        "tau_eer": tau_eer,
        "eer": eer,
    }
    for key, rate in REPORTED_FARS.items():
        report[key] = tar_at_far(distances, same, rate)
    report["n_same"] = int(same.sum())
    report["n_different"] = int((~same).sum())
    return report


# ------------------------------------------------------------------ the picture

PICTURE_SIZE = (640, 480)                    # width, height in pixels
PLOT_BOX = (70, 20, 620, 420)                # left, top, right, bottom of the plotting area
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189),
           (255, 127, 14), (23, 190, 207), (140, 86, 75), (227, 119, 194)]
GRID, AXIS, CHANCE = (225, 225, 225), (0, 0, 0), (160, 160, 160)
LINE_WIDTH = 2
FONT_SIZE = 14


def roc_picture(curves, path, log_far=False):
    """Draw ROC curves to a PNG file at `path`, written atomically; returns the Pillow image.

    curves: a dict from label to (far, tar), e.g. {"encoder": roc_curve(d, same)[:2]}.
    Each curve gets its colour and a line in the legend. With log_far the FAR
    axis is logarithmic, from the largest power of ten at or below the smallest
    positive FAR of all curves up to 1; points at FAR = 0 are drawn on its
    left edge. Otherwise both axes are linear and the chance diagonal is drawn.
    """
    curves = _check_curves(curves)
    image = Image.new("RGB", PICTURE_SIZE, "white")
    draw = ImageDraw.Draw(image)
    font = default_font(FONT_SIZE)
    smallest_decade = _smallest_decade(curves) if log_far else None
    to_x = _log_axis(smallest_decade) if log_far else _linear_axis()
    _draw_axes(draw, font, to_x, smallest_decade)
    if not log_far:
        draw.line([_pixel(to_x, 0, 0), _pixel(to_x, 1, 1)], fill=CHANCE, width=1)
    for colour, (far, tar) in zip(_colours(len(curves)), curves.values()):
        draw.line([_pixel(to_x, x, y) for x, y in zip(far, tar)], fill=colour, width=LINE_WIDTH,
                  joint="curve")
    _draw_legend(draw, font, list(curves), _colours(len(curves)))
    with atomic_write(path) as file:
        image.save(file, format="PNG")
    return image


def _check_curves(curves):
    if not isinstance(curves, dict) or not curves:
        raise ValueError(f"curves: expected a non-empty dict from label to (far, tar), "
                         f"got {type(curves).__name__}")
    checked = {}
    for label, curve in curves.items():
        far, tar = (np.asarray(values, dtype=np.float64) for values in curve)
        if far.ndim != 1 or far.shape != tar.shape or len(far) < 2:
            raise ValueError(f"curves[{label!r}]: expected far and tar of one length >= 2, "
                             f"got shapes {far.shape} and {tar.shape}")
        if np.any((far < 0) | (far > 1) | (tar < 0) | (tar > 1)):
            raise ValueError(f"curves[{label!r}]: expected rates in [0, 1]")
        checked[str(label)] = (far, tar)
    return checked


def _colours(n):
    return [COLOURS[i % len(COLOURS)] for i in range(n)]


def _smallest_decade(curves):
    positive = [far[far > 0].min() for far, _ in curves.values() if np.any(far > 0)]
    return 10.0 ** math.floor(math.log10(min(positive))) if positive else 1e-3


def _linear_axis():
    """FAR -> fraction of the axis's width."""
    return lambda far: far


def _log_axis(smallest_decade):
    """FAR -> fraction of the width, log scale from smallest_decade to 1 (FAR 0: the left edge)."""
    span = -math.log10(smallest_decade)
    return lambda far: 1 + math.log10(max(far, smallest_decade)) / span


def _pixel(to_x, far, tar):
    """(far, tar) -> (x, y) pixel; y grows downwards in pictures."""
    left, top, right, bottom = PLOT_BOX
    return (left + to_x(far) * (right - left), bottom - tar * (bottom - top))


def _draw_axes(draw, font, to_x, smallest_decade):
    left, top, right, bottom = PLOT_BOX
    if smallest_decade is None:
        far_ticks = [(k / 5, f"{k / 5:.1f}") for k in range(6)]
    else:
        decades = range(round(math.log10(smallest_decade)), 1)
        far_ticks = [(10.0 ** e, "1" if e == 0 else f"1e{e}") for e in decades]
    for far, text in far_ticks:
        x, _ = _pixel(to_x, far, 0)
        draw.line([(x, top), (x, bottom)], fill=GRID)
        draw.line([(x, bottom), (x, bottom + 5)], fill=AXIS)
        draw.text((x, bottom + 8), text, fill=AXIS, font=font, anchor="mt")
    for k in range(6):
        _, y = _pixel(to_x, 0, k / 5)
        draw.line([(left, y), (right, y)], fill=GRID)
        draw.line([(left - 5, y), (left, y)], fill=AXIS)
        draw.text((left - 8, y), f"{k / 5:.1f}", fill=AXIS, font=font, anchor="rm")
    draw.rectangle(PLOT_BOX, outline=AXIS)
    scale = " (log scale)" if smallest_decade is not None else ""
    draw.text(((left + right) / 2, bottom + 30), f"false accept rate FAR{scale}", fill=AXIS,
              font=font, anchor="mt")
    draw.text((8, top), "TAR", fill=AXIS, font=font, anchor="la")


def _draw_legend(draw, font, labels, colours):
    """Labels and colour swatches in a box at the lower right of the plotting area."""
    _, _, right, bottom = PLOT_BOX
    line_height = FONT_SIZE + 6
    width = max(draw.textlength(label, font=font) for label in labels) + 45
    box = (right - width - 10, bottom - 10 - line_height * len(labels) - 8, right - 10, bottom - 10)
    draw.rectangle(box, fill="white", outline=AXIS)
    for row, (label, colour) in enumerate(zip(labels, colours)):
        y = box[1] + 4 + row * line_height + line_height / 2
        draw.line([(box[0] + 8, y), (box[0] + 30, y)], fill=colour, width=LINE_WIDTH + 1)
        draw.text((box[0] + 36, y), label, fill=AXIS, font=font, anchor="lm")
