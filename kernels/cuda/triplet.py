"""Triplet loss on the GPU: distances, loss, choosing triplets; the twin of kernels/triplet.py.

Notation as there: E (N, d) holds the encodings f(x_i), fa, fp, fn (T, d) those
of the anchors, positives and negatives, alpha the margin.

    D[i, j] = ||f_i||^2 + ||f_j||^2 - 2 f_i . f_j      clamped at 0, diagonal 0
    dE      = 2 (diag(S 1) E - S E),  S = dD + dD^T
    L       = max(||fa - fp||^2 - ||fa - fn||^2 + alpha, 0)    one per triplet
    dfa = 2 dL (fn - fp),  dfp = 2 dL (fp - fa),  dfn = 2 dL (fa - fn)   where L > 0

Thread mapping: the inner products E E^T and S E are tiled products
(product.py); every other kernel gives one thread one output entry: D[i, j],
dE[i, c], the margin of triplet t, the three gradients at (t, c), and in the
mining kernels the chosen indices of anchor a (or of pair t). `labels` stay
on the host (NumPy), as the rules that pick triplets from labels alone
("all", "random", and the anchor-positive pairs) run there exactly as in the
CPU twin; the chosen indices come back as int64 device arrays.
"""

import functools
import math

import numpy as np
from numba import cuda

from ..triplet import (
    _check_alpha,
    _check_distances_gradient,
    _check_loss_gradient,
    _check_selection,
    _check_triplet_encodings,
    _keep_nearest,
    _one_row_per_negative,
    _pair_masks,
    _random_negatives,
)
from ._device import View, check_device_array, empty, full, launch, new_view, view_of
from .elementwise import map_binary
from .product import product, strided_columns, strided_rows
from .reduce import reduce

# ------------------------------------------------------- pairwise distances

def pairwise_sq_distances(E):
    """D[i, j] = ||E_i - E_j||^2 for the rows of E, (N, d) -> (N, N), clamped at 0, diagonal 0."""
    E = check_device_array("E", E, ndim=2)
    n_points, n_features = E.shape
    rows = view_of(E).buffer
    E_rows = View(rows, 0, (1, n_points, n_features), (0, n_features, 1))
    E_columns = View(rows, 0, (1, n_features, n_points), (0, 1, n_features))  # E^T
    inner = product(strided_rows(E_rows), strided_columns(E_columns), 1, n_points, n_points,
                    n_features, E.dtype).reshape(n_points, n_points)  # (1, N, N) -> (N, N)
    D = empty((n_points, n_points), E.dtype)
    launch(_distances_kernel, D.size, D, inner)
    return D


def pairwise_sq_distances_backward(dD, E):
    """dE_i = 2 sum_j (dD_ij + dD_ji)(E_i - E_j), the gradient of sum(dD * D)."""
    dD, E = _check_distances_gradient(dD, E, check_device_array)
    n_points, n_features = E.shape
    dD_view = view_of(dD)
    S = new_view((1, n_points, n_points), E.dtype)
    dD_transposed = View(dD_view.buffer, 0, S.shape, (0, 1, n_points))      # dD^T
    map_binary("add", S, View(dD_view.buffer, 0, S.shape, (0, n_points, 1)), dD_transposed,
               E.dtype)                                                   # (1, N, N), symmetric
    row_sums = reduce("sum", S, (2,), E.dtype)                            # (1, N)
    E_view = View(view_of(E).buffer, 0, (1, n_points, n_features), (0, n_features, 1))
    S_E = product(strided_rows(S), strided_columns(E_view), 1, n_points, n_features,
                  n_points, E.dtype)                                      # (1, N, N) @ (1, N, d)
    dE = empty(E.shape, E.dtype)
    launch(_distance_gradient_kernel, dE.size, dE, row_sums.buffer, E,
           S_E.reshape(n_points, n_features))                             # (1, N, d) -> (N, d)
    return dE


@cuda.jit(cache=True)
def _distances_kernel(D, inner):
    """Thread (i, j) = divmod(thread, N) computes D[i, j] from the inner products."""
    i, j = divmod(cuda.grid(1), D.shape[1])
    if i < D.shape[0]:
        if i == j:
            D[i, j] = 0
        else:
            cross = inner[min(i, j), max(i, j)]   # one value for D[i, j] and D[j, i]: symmetric
            distance = inner[i, i] + inner[j, j] - (cross + cross)
            D[i, j] = distance if (distance >= 0 or math.isnan(distance)) else 0


@cuda.jit(cache=True)
def _distance_gradient_kernel(dE, row_sums, E, S_E):
    """Thread (i, c) = divmod(thread, d) computes dE[i, c] = 2 (sum_j S_ij E_ic - (S E)_ic)."""
    i, c = divmod(cuda.grid(1), dE.shape[1])
    if i < dE.shape[0]:
        half = row_sums[i] * E[i, c] - S_E[i, c]
        dE[i, c] = half + half


# ------------------------------------------------------------- triplet loss

def triplet_loss(fa, fp, fn, alpha):
    """L = max(||fa - fp||^2 - ||fa - fn||^2 + alpha, 0), one value per triplet, (T,)."""
    fa, fp, fn = _check_triplet_encodings(fa, fp, fn, check_device_array)
    alpha = _check_alpha(alpha)
    margins = _margins(fa, fp, fn, alpha)
    losses = empty(margins.shape, fa.dtype)
    launch(_hinge_kernel, losses.size, losses, margins)
    return losses


def triplet_loss_backward(dL, fa, fp, fn, alpha):
    """(dfa, dfp, dfn), the gradients of sum(dL * triplet_loss(fa, fp, fn, alpha)).

    Triplets with L > 0 get 2 dL (fn - fp), 2 dL (fp - fa), 2 dL (fa - fn);
    the others, including those exactly at the kink L = 0, get zeros.
    """
    fa, fp, fn = _check_triplet_encodings(fa, fp, fn, check_device_array)
    alpha = _check_alpha(alpha)
    dL = _check_loss_gradient(dL, fa, check_device_array)
    margins = _margins(fa, fp, fn, alpha)
    gradients = tuple(empty(fa.shape, fa.dtype) for _ in range(3))
    launch(_triplet_gradient_kernel, fa.size, *gradients, dL, margins, fa, fp, fn)
    return gradients


def _margins(fa, fp, fn, alpha):
    """||fa - fp||^2 - ||fa - fn||^2 + alpha per triplet, (T,), in fa's dtype."""
    margins = empty(fa.shape[:1], fa.dtype)
    launch(_margin_kernel(fa.dtype), margins.size, margins, fa, fp, fn, fa.dtype.type(alpha))
    return margins


@functools.cache
def _margin_kernel(dtype):
    zero = dtype.type(0)

    @cuda.jit
    def margin(margins, fa, fp, fn, alpha):
        """Thread t computes the margin of triplet t, summing over the d features."""
        t = cuda.grid(1)
        if t < margins.shape[0]:
            to_positive, to_negative = zero, zero
            for c in range(fa.shape[1]):
                ap, an = fa[t, c] - fp[t, c], fa[t, c] - fn[t, c]
                to_positive += ap * ap
                to_negative += an * an
            margins[t] = to_positive - to_negative + alpha

    return margin


@cuda.jit(cache=True)
def _hinge_kernel(losses, margins):
    """Thread t computes losses[t] = max(margins[t], 0); NaN stays NaN."""
    t = cuda.grid(1)
    if t < losses.shape[0]:
        m = margins[t]
        losses[t] = m if (m > 0 or math.isnan(m)) else 0


@cuda.jit(cache=True)
def _triplet_gradient_kernel(dfa, dfp, dfn, dL, margins, fa, fp, fn):
    """Thread (t, c) = divmod(thread, d) computes entry (t, c) of the three gradients."""
    t, c = divmod(cuda.grid(1), fa.shape[1])
    if t < fa.shape[0]:
        m = margins[t]
        step = 1 if m > 0 else (m if math.isnan(m) else 0)  # d max(m, 0)/dm: 0 at the kink
        half = dL[t] * step
        scale = half + half                            # 2 dL, or 0 for inactive triplets
        dfa[t, c] = scale * (fn[t, c] - fp[t, c])
        dfp[t, c] = scale * (fp[t, c] - fa[t, c])
        dfn[t, c] = scale * (fa[t, c] - fn[t, c])


# ------------------------------------------------------- choosing triplets

def select_triplets(labels, D, strategy="batch_hard", alpha=0.2, rng=None, negatives_per_pair=1):
    """Indices (a_idx, p_idx, n_idx) of the triplets to train on, as int64 device arrays.

    `labels` is a NumPy integer array (N,) on the host, `D` the (N, N) squared
    distances on the device. The strategies, their rules and
    `negatives_per_pair` are those of kernels.select_triplets, with the same
    results: "batch_hard" and "semi_hard" search D on the device (one thread
    per anchor, or per anchor-positive pair), "all" and "random" need only
    the labels. The (T, k) table of chosen negatives is flattened on the host.
    """
    labels, D, alpha, rng, k = _check_selection(labels, D, strategy, alpha, rng,
                                                negatives_per_pair, check_device_array)
    n_points = labels.shape[0]
    device_labels = cuda.to_device(labels)

    if strategy == "batch_hard":
        positives, negatives = empty((n_points,), np.int64), full((n_points, k), -1, np.int64)
        launch(_batch_hard_kernel, n_points, positives, negatives, device_labels, D)
        positives, negatives = positives.copy_to_host(), negatives.copy_to_host()
        return _to_device(*_one_row_per_negative(np.arange(n_points), positives, negatives))

    is_positive, is_negative = _pair_masks(labels)                # (N, N) each, on the host
    if strategy == "all":
        is_triplet = is_positive[:, :, None] & is_negative[:, None, :]  # (N, N, N), [a, p, n]
        return _to_device(*np.nonzero(is_triplet))

    anchors, positives = np.nonzero(is_positive)                  # every (a, p) pair
    n_negatives = is_negative.sum(axis=1)                         # (N,), per anchor
    keep = n_negatives[anchors] > 0
    anchors, positives = anchors[keep], positives[keep]
    if strategy == "random":
        negatives = _random_negatives(is_negative, n_negatives, anchors, rng, k)
        return _to_device(*_one_row_per_negative(anchors, positives, negatives))
    negatives = full((anchors.size, k), -1, np.int64)
    launch(_semi_hard_kernel, anchors.size, negatives, device_labels, D,
           *_to_device(anchors, positives), D.dtype.type(alpha))
    return _to_device(*_one_row_per_negative(anchors, positives, negatives.copy_to_host()))


def _to_device(*indices):
    return tuple(cuda.to_device(np.ascontiguousarray(i, dtype=np.int64)) for i in indices)


# The CPU twin's insertion into a short sorted list, compiled for the device.
_keep_nearest_on_device = cuda.jit(device=True)(_keep_nearest.py_func)


@cuda.jit(cache=True)
def _batch_hard_kernel(positives, negatives, labels, D):
    """Thread a finds anchor a's hardest positive (largest D[a, p]) and its k hardest
    negatives (smallest D[a, n], nearest first); -1 where there is none; ties go to the
    lowest index."""
    a = cuda.grid(1)
    if a < labels.shape[0]:
        nearest = negatives[a]                  # all -1 to begin with
        positive, count = -1, 0
        for j in range(labels.shape[0]):
            if labels[j] == labels[a]:
                if j != a and (positive < 0 or D[a, j] > D[a, positive]):
                    positive = j
            else:
                count = _keep_nearest_on_device(nearest, count, j, D[a])
        positives[a] = positive


@cuda.jit(cache=True)
def _semi_hard_kernel(negatives, labels, D, anchors, positives, alpha):
    """Thread t picks the negatives of pair t: the k nearest semi-hard ones, else the
    farthest hard one, else the nearest easy one (kernels.select_triplets)."""
    t = cuda.grid(1)
    if t < anchors.shape[0]:
        a = anchors[t]
        d_ap = D[a, positives[t]]
        nearest = negatives[t]                  # all -1 to begin with
        count, hard, easy = 0, -1, -1
        for j in range(labels.shape[0]):
            if labels[j] == labels[a]:
                continue
            d_an = D[a, j]
            if d_an > d_ap and d_an < d_ap + alpha:
                count = _keep_nearest_on_device(nearest, count, j, D[a])
            elif d_an <= d_ap:
                if hard < 0 or d_an > D[a, hard]:
                    hard = j
            elif easy < 0 or d_an < D[a, easy]:     # easy, and NaN
                easy = j
        if count == 0:
            nearest[0] = hard if hard >= 0 else easy
