"""Triplet loss for face embeddings: distances, the loss, and choosing triplets.

Notation (the course's face recognition week):
    f(x)     the encoding of image x, a row of E, (N, d) with d = 128 usually
    A, P, N  anchor, positive (same person), negative (another person)
    alpha    the margin, >= 0
    T        number of triplets

The slide's loss, with SQUARED distances, for one triplet:

    L(A, P, N) = max(||f(A) - f(P)||^2 - ||f(A) - f(N)||^2 + alpha, 0)

and J = sum of L over the triplets (reductions belong to the autograd layer;
here `triplet_loss` returns one L per triplet).

Gradients, where the triplet is active (L > 0):

    dL/df(A) = 2 (f(N) - f(P)),  dL/df(P) = 2 (f(P) - f(A)),  dL/df(N) = 2 (f(A) - f(N))

and 0 where L = 0. At the kink (the margin exactly 0) max(., 0) has no
derivative; we take the subgradient 0 there, as PyTorch's relu does.

A batch of N embeddings yields many possible triplets; `select_triplets`
picks which to train on from the matrix of squared distances

    D[i, j] = ||f(x_i) - f(x_j)||^2 = ||f_i||^2 + ||f_j||^2 - 2 f_i . f_j

computed with that expansion so that the N x N inner products are one BLAS
product. Its gradient, for an upstream dD, is

    dE_i = 2 sum_j (dD_ij + dD_ji) (f_i - f_j)

(docs/derivations.md derives both gradients).
"""

import numpy as np
from numba import njit, prange

from ._checks import check_float_array, check_same_dtype

STRATEGIES = ("all", "batch_hard", "semi_hard", "random")


# ------------------------------------------------------- pairwise distances

def pairwise_sq_distances(E):
    """D[i, j] = ||E_i - E_j||^2 for the rows of E, (N, d) -> (N, N).

    The expansion ||E_i||^2 + ||E_j||^2 - 2 E_i . E_j loses digits when two
    rows are close compared with their length: the three terms nearly cancel
    and round-off can leave a tiny negative number, or a non-zero diagonal
    when the terms are huge or infinite. A squared distance is never
    negative and a point is at distance 0 from itself, so D is clamped at 0
    and its diagonal set to exactly 0. D is exactly symmetric. NaN in a row
    of E gives NaN in that row and column (except the diagonal).

    >>> import numpy as np
    >>> pairwise_sq_distances(np.array([[0.0, 0.0], [3.0, 4.0]]))
    array([[ 0., 25.],
           [25.,  0.]])
    """
    E = check_float_array("E", E, ndim=2)
    inner = np.dot(E, E.T)                      # (N, d) @ (d, N) -> (N, N), E_i . E_j
    sq_norms = inner.diagonal().copy()          # (N,), ||E_i||^2
    D = np.add.outer(sq_norms, sq_norms)        # (N, N), ||E_i||^2 + ||E_j||^2
    D -= 2.0 * inner
    np.maximum(D, 0.0, out=D)                   # round-off can dip below 0
    np.fill_diagonal(D, 0.0)
    return D


def pairwise_sq_distances_backward(dD, E):
    """dE_i = 2 sum_j (dD_ij + dD_ji)(E_i - E_j), the gradient of sum(dD * D).

    In matrix form, with S = dD + dD^T: dE = 2 (diag(S 1) E - S E).
    """
    dD, E = _check_distances_gradient(dD, E)
    S = dD + dD.T                                # (N, N), symmetric
    row_sums = S.sum(axis=1)                     # (N,)
    return 2.0 * (row_sums[:, None] * E - S @ E)  # (N, 1) * (N, d) - (N, N) @ (N, d) -> (N, d)


# The checks below take `check_array`, the function that validates one array:
# check_float_array here, its twin for device arrays in kernels.cuda.triplet,
# which shares them.

def _check_distances_gradient(dD, E, check_array=check_float_array):
    """Validate pairwise_sq_distances_backward's arguments; return (dD, E)."""
    E = check_array("E", E, ndim=2)
    dD = check_array("dD", dD, ndim=2)
    check_same_dtype(dD=dD, E=E)
    n_points = E.shape[0]
    if dD.shape != (n_points, n_points):
        raise ValueError(
            f"dD must have shape {(n_points, n_points)} to match E of shape "
            f"{E.shape}, got {dD.shape}"
        )
    return dD, E


# ------------------------------------------------------------- triplet loss

def triplet_loss(fa, fp, fn, alpha):
    """L = max(||fa - fp||^2 - ||fa - fn||^2 + alpha, 0), one value per triplet.

    `fa`, `fp`, `fn` are (T, d) encodings of anchors, positives and
    negatives; the result is (T,) in their dtype.

    >>> import numpy as np
    >>> fa, fp, fn = np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]])
    >>> triplet_loss(fa, fp, fn, alpha=0.5)   # max(1 - 4 + 0.5, 0)
    array([0.])
    >>> triplet_loss(fa, fn, fp, alpha=0.5)   # max(4 - 1 + 0.5, 0)
    array([3.5])
    """
    fa, fp, fn = _check_triplet_encodings(fa, fp, fn)
    alpha = _check_alpha(alpha)
    return np.maximum(_margins(fa, fp, fn, alpha), 0.0)


def triplet_loss_backward(dL, fa, fp, fn, alpha):
    """(dfa, dfp, dfn): the gradients of sum(dL * triplet_loss(fa, fp, fn, alpha)).

    Active triplets (L > 0) get dfa = 2 dL (fn - fp), dfp = 2 dL (fp - fa),
    dfn = 2 dL (fa - fn); inactive ones, including those exactly at the kink
    L = 0, get zeros. NaN in the inputs stays NaN in the gradients.
    """
    fa, fp, fn = _check_triplet_encodings(fa, fp, fn)
    alpha = _check_alpha(alpha)
    dL = _check_loss_gradient(dL, fa)
    # d max(m, 0)/dm: 1 for m > 0, 0 for m <= 0 (our choice at m = 0), NaN for NaN.
    step = np.heaviside(_margins(fa, fp, fn, alpha), 0.0)
    scale = (2.0 * dL * step)[:, None]           # (T,) -> (T, 1), broadcast over d
    return scale * (fn - fp), scale * (fp - fa), scale * (fa - fn)


def _margins(fa, fp, fn, alpha):
    """||fa - fp||^2 - ||fa - fn||^2 + alpha per triplet, (T,)."""
    to_positive = fa - fp                        # (T, d)
    to_negative = fa - fn                        # (T, d)
    d_ap = np.einsum("td,td->t", to_positive, to_positive)
    d_an = np.einsum("td,td->t", to_negative, to_negative)
    return d_ap - d_an + alpha


def _check_triplet_encodings(fa, fp, fn, check_array=check_float_array):
    """Validate the encodings of the triplets, (T, d) each; return (fa, fp, fn).

    `check_array` validates one array (check_float_array, or its GPU twin).
    """
    fa = check_array("fa", fa, ndim=2)
    fp = check_array("fp", fp, ndim=2)
    fn = check_array("fn", fn, ndim=2)
    check_same_dtype(fa=fa, fp=fp, fn=fn)
    if not fa.shape == fp.shape == fn.shape:
        raise ValueError(
            f"fa, fp and fn must have one shape (T, d), got {fa.shape}, {fp.shape} and {fn.shape}"
        )
    return fa, fp, fn


def _check_loss_gradient(dL, fa, check_array=check_float_array):
    """Validate dL, one entry per triplet of fa; return it."""
    dL = check_array("dL", dL, ndim=1)
    check_same_dtype(dL=dL, fa=fa)
    if dL.shape != fa.shape[:1]:
        raise ValueError(f"dL must have shape {fa.shape[:1]} to match fa, got {dL.shape}")
    return dL


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise TypeError(f"alpha must be a number, got {alpha!r}")
    if not alpha >= 0:                           # also refuses NaN
        raise ValueError(f"alpha must be >= 0, got {alpha!r}")
    return float(alpha)


# ------------------------------------------------------- choosing triplets

def select_triplets(labels, D, strategy="batch_hard", alpha=0.2, rng=None, negatives_per_pair=1):
    """Indices (a_idx, p_idx, n_idx) of the triplets to train on, int64 arrays.

    `labels` (N,) holds integer identities, `D` (N, N) the squared distances
    (from `pairwise_sq_distances`). A positive is another picture of the
    anchor's identity (p != a), a negative a picture of any other identity;
    an anchor without a positive or without a negative yields no triplet, so
    an identity with a single picture in the batch contributes only as a
    negative. Strategies:

    "all"         every valid triplet, in (a, p, n) lexicographic order. The
                  mask has N^3 entries: fine for batches of a few hundred.
    "batch_hard"  one triplet per anchor: the hardest positive (largest
                  D[a, p]) and the hardest negative (smallest D[a, n])
                  (Hermans, Beyer and Leibe 2017, "In defense of the
                  triplet loss"). Ties go to the lowest index.
    "semi_hard"   one triplet per anchor-positive pair (FaceNet, Schroff et
                  al. 2015). Each negative falls in exactly one of three
                  zones relative to d_ap = D[a, p]:
                    semi-hard  d_ap < D[a, n] < d_ap + alpha  (0 < L < alpha)
                    hard       D[a, n] <= d_ap                (L >= alpha)
                    easy       D[a, n] >= d_ap + alpha        (L = 0)
                  We take the hardest semi-hard negative (smallest D[a, n]).
                  If there is none, the least hard of the hard negatives
                  (largest D[a, n] <= d_ap): it still has a non-zero loss
                  but is not the hardest one, which FaceNet found can make
                  training collapse. If every negative is easy, the nearest
                  one (its loss is 0, so the pair adds nothing to a summed
                  loss but still counts in a mean). This is TensorFlow
                  Addons' rule except when semi-hard negatives are missing
                  while hard and easy ones both exist: Addons then takes the
                  nearest easy negative, with zero loss.
    "random"      one triplet per anchor-positive pair with a negative drawn
                  uniformly from the anchor's negatives using `rng`, a
                  numpy Generator (default np.random.default_rng(0), the
                  same draws on every call: pass your own for fresh ones).

    `negatives_per_pair` = k (>= 1) gives each anchor ("batch_hard") or each
    anchor-positive pair ("semi_hard", "random") up to k triplets instead of
    one, which share the anchor and positive: "batch_hard" takes the k
    hardest negatives, "semi_hard" the k nearest semi-hard ones (a pair
    without any gets its one fallback negative, as above), "random" draws k
    negatives (with replacement, so one may repeat). A pair's triplets are
    consecutive, the nearest negative first; an anchor with fewer
    negatives than k gets them all. "all" takes every negative whatever k.

    `alpha` (>= 0) is used by "semi_hard" only. With NaN in D no error is
    raised; the triplets chosen for the affected anchors are arbitrary.
    """
    labels, D, alpha, rng, k = _check_selection(labels, D, strategy, alpha, rng,
                                                negatives_per_pair)

    if strategy == "batch_hard":
        positives, negatives = _batch_hard_kernel(labels, D, k)   # (N,), (N, k); -1 where none
        return _one_row_per_negative(np.arange(labels.shape[0]), positives, negatives)

    is_positive, is_negative = _pair_masks(labels)                # (N, N) each
    if strategy == "all":
        is_triplet = is_positive[:, :, None] & is_negative[:, None, :]  # (N, N, N), [a, p, n]
        return tuple(idx.astype(np.int64) for idx in np.nonzero(is_triplet))

    anchors, positives = np.nonzero(is_positive)                  # every (a, p) pair
    n_negatives = is_negative.sum(axis=1)                         # (N,), per anchor
    keep = n_negatives[anchors] > 0
    anchors, positives = anchors.astype(np.int64)[keep], positives.astype(np.int64)[keep]
    if strategy == "semi_hard":
        negatives = _semi_hard_kernel(labels, D, anchors, positives, D.dtype.type(alpha), k)
    else:
        negatives = _random_negatives(is_negative, n_negatives, anchors, rng, k)
    return _one_row_per_negative(anchors, positives, negatives)


def _one_row_per_negative(anchors, positives, negatives):
    """Flatten (T,) anchors, (T,) positives and (T, k) negatives (-1 where none) into
    three int64 arrays of triplets, pair by pair, keeping each row's order; a row whose
    positive is -1 gives no triplet."""
    chosen = (negatives >= 0) & (positives[:, None] >= 0)
    rows, columns = np.nonzero(chosen)           # row-major: pair t's negatives, then t + 1's
    return (anchors[rows].astype(np.int64), positives[rows].astype(np.int64),
            negatives[rows, columns].astype(np.int64))


def _check_selection(labels, D, strategy, alpha, rng, negatives_per_pair,
                     check_array=check_float_array):
    """Validate select_triplets' arguments; return (labels as int64, D, alpha, rng, k).

    `check_array` validates D (check_float_array, or its GPU twin).
    """
    labels, D = _check_labels_and_distances(labels, D, check_array)
    alpha = _check_alpha(alpha)
    if strategy not in STRATEGIES:
        allowed = ", ".join(repr(s) for s in STRATEGIES)
        raise ValueError(f"strategy must be one of {allowed}, got {strategy!r}")
    if rng is None:
        rng = np.random.default_rng(0)
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    k = negatives_per_pair
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"negatives_per_pair must be a positive int, got {k!r}")
    return labels, D, alpha, rng, int(k)


def _check_labels_and_distances(labels, D, check_array):
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"labels must be a numpy.ndarray, got {type(labels).__name__}")
    if labels.ndim != 1:
        raise ValueError(f"labels must have 1 dimension (N,), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must have an integer dtype, got {labels.dtype}")
    D = check_array("D", D, ndim=2)
    n_points = labels.shape[0]
    if D.shape != (n_points, n_points):
        raise ValueError(
            f"D must have shape {(n_points, n_points)} to match labels of length "
            f"{n_points}, got {D.shape}"
        )
    return labels.astype(np.int64), D            # one integer type for the kernels


def _pair_masks(labels):
    """(is_positive, is_negative), (N, N) booleans indexed [anchor, other]."""
    same = labels[:, None] == labels[None, :]    # (N, 1) == (1, N) -> (N, N)
    np.fill_diagonal(same, False)                # an anchor is not its own positive
    different = labels[:, None] != labels[None, :]
    return same, different


def _random_negatives(is_negative, n_negatives, anchors, rng, k):
    """For each anchor in `anchors`, k negative indices drawn uniformly, (T, k)."""
    candidates = np.nonzero(is_negative)[1]      # negatives of anchor 0, then anchor 1, ...
    first = np.cumsum(n_negatives) - n_negatives  # (N,), where each anchor's run starts
    picks = rng.integers(0, n_negatives[anchors][:, None], size=(anchors.shape[0], k))
    return candidates[first[anchors][:, None] + picks].astype(np.int64)  # draws in [0, count)


@njit(cache=True)
def _batch_hard_kernel(labels, D, k):
    """Hardest positive (N,) and k hardest negatives (N, k) of every anchor, -1 where none.

    One pass over the N^2 distances, about 0.3 ms for N = 512: serial,
    because starting threads costs about as much as it saves at that size.
    """
    n_points = labels.shape[0]
    positives = np.empty(n_points, np.int64)
    negatives = np.full((n_points, k), -1, np.int64)
    for a in range(n_points):
        positives[a] = _hardest_positive_nearest_negatives(labels, D[a], a, negatives[a])
    return positives, negatives


@njit(cache=True)
def _hardest_positive_nearest_negatives(labels, d_row, a, nearest):
    """argmax of d_row over a's positives (returned); its nearest negatives fill `nearest`."""
    positive, count = -1, 0
    for j in range(labels.shape[0]):
        if labels[j] == labels[a]:
            if j != a and (positive < 0 or d_row[j] > d_row[positive]):
                positive = j
        else:
            count = _keep_nearest(nearest, count, j, d_row)
    return positive


@njit(cache=True)
def _keep_nearest(nearest, count, j, d_row):
    """Put candidate j among nearest[:count], kept sorted by d_row (ties: earlier
    candidates first) and at most len(nearest) long; return the new count."""
    capacity = nearest.shape[0]
    if count == capacity and not d_row[j] < d_row[nearest[capacity - 1]]:
        return count                             # no nearer than the farthest kept
    position = min(count, capacity - 1)          # a full list drops its last entry
    while position > 0 and d_row[j] < d_row[nearest[position - 1]]:
        nearest[position] = nearest[position - 1]
        position -= 1
    nearest[position] = j
    return min(count + 1, capacity)


@njit(cache=True, parallel=True)
def _semi_hard_kernel(labels, D, anchors, positives, alpha, k):
    """The k nearest semi-hard negatives (or the one fallback) of every anchor-positive
    pair, (T, k), -1 where none."""
    negatives = np.full((anchors.shape[0], k), -1, np.int64)
    for t in prange(anchors.shape[0]):
        a = anchors[t]
        _semi_hard_negatives(labels, D[a], a, D[a, positives[t]], alpha, negatives[t])
    return negatives


@njit(cache=True)
def _semi_hard_negatives(labels, d_row, a, d_ap, alpha, nearest):
    """Fill `nearest` with the nearest semi-hard negatives; if there is none, its first
    entry is the farthest hard negative, else the nearest easy one."""
    count, hard, easy = 0, -1, -1
    for j in range(labels.shape[0]):
        if labels[j] == labels[a]:
            continue
        d_an = d_row[j]
        if d_an > d_ap and d_an < d_ap + alpha:
            count = _keep_nearest(nearest, count, j, d_row)
        elif d_an <= d_ap:
            if hard < 0 or d_an > d_row[hard]:
                hard = j
        elif easy < 0 or d_an < d_row[easy]:     # easy, and NaN
            easy = j
    if count == 0:
        nearest[0] = hard if hard >= 0 else easy
