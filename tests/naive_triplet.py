"""Naive triplet-loss pieces and brute-force triplet selection, from the formulas.

    D[i, j]   = sum_k (E[i, k] - E[j, k])^2            (the difference, not the expansion)
    dE[i]     = 2 sum_j (dD[i, j] + dD[j, i]) (E[i] - E[j])
    L         = max(||fa - fp||^2 - ||fa - fn||^2 + alpha, 0)
    dfa, dfp, dfn = 2 dL (fn - fp), 2 dL (fp - fa), 2 dL (fa - fn) where L > 0, else 0

and triplet selection by enumerating candidates in plain loops. Slow on
purpose; float64 throughout. Their own hand-worked tests live in
test_triplet.py.
"""

import numpy as np


def naive_pairwise_sq_distances(E):
    E = np.asarray(E, dtype=np.float64)
    n_points, dim = E.shape
    D = np.zeros((n_points, n_points))
    for i in range(n_points):
        for j in range(n_points):
            D[i, j] = sum((E[i, k] - E[j, k]) ** 2 for k in range(dim))
    return D


def naive_pairwise_sq_distances_backward(dD, E):
    dD = np.asarray(dD, dtype=np.float64)
    E = np.asarray(E, dtype=np.float64)
    n_points = E.shape[0]
    dE = np.zeros(E.shape)
    for i in range(n_points):
        for j in range(n_points):
            dE[i] += 2.0 * (dD[i, j] + dD[j, i]) * (E[i] - E[j])
    return dE


def naive_triplet_loss(fa, fp, fn, alpha):
    fa, fp, fn = (np.asarray(f, dtype=np.float64) for f in (fa, fp, fn))
    losses = np.zeros(fa.shape[0])
    for t in range(fa.shape[0]):
        d_ap = sum((fa[t, k] - fp[t, k]) ** 2 for k in range(fa.shape[1]))
        d_an = sum((fa[t, k] - fn[t, k]) ** 2 for k in range(fa.shape[1]))
        losses[t] = max(d_ap - d_an + alpha, 0.0)
    return losses


def naive_triplet_loss_backward(dL, fa, fp, fn, alpha):
    fa, fp, fn = (np.asarray(f, dtype=np.float64) for f in (fa, fp, fn))
    losses = naive_triplet_loss(fa, fp, fn, alpha)
    dfa, dfp, dfn = np.zeros(fa.shape), np.zeros(fa.shape), np.zeros(fa.shape)
    for t in range(fa.shape[0]):
        if losses[t] > 0:
            dfa[t] = 2.0 * dL[t] * (fn[t] - fp[t])
            dfp[t] = 2.0 * dL[t] * (fp[t] - fa[t])
            dfn[t] = 2.0 * dL[t] * (fa[t] - fn[t])
    return dfa, dfp, dfn


def naive_all_triplets(labels):
    """Every (a, p, n) with p != a of a's label and n of another label."""
    n_points = len(labels)
    return [
        (a, p, n)
        for a in range(n_points)
        for p in range(n_points)
        for n in range(n_points)
        if p != a and labels[p] == labels[a] and labels[n] != labels[a]
    ]


def naive_batch_hard(labels, D, k=1):
    """{anchor: (hardest positive, [its k hardest negatives, nearest first])}.

    Ties go to the first index.
    """
    picks = {}
    for a in range(len(labels)):
        positives = [j for j in range(len(labels)) if j != a and labels[j] == labels[a]]
        negatives = [j for j in range(len(labels)) if labels[j] != labels[a]]
        if positives and negatives:
            hardest_positive = max(positives, key=lambda j: D[a, j])   # first of the maxima
            nearest = sorted(negatives, key=lambda j: D[a, j])         # stable: first on ties
            picks[a] = (hardest_positive, nearest[:k])
    return picks


def naive_semi_hard(labels, D, alpha, k=1):
    """{(anchor, positive): [negatives]} by the documented semi-hard rule.

    The k nearest negatives with d_ap < D[a, n] < d_ap + alpha; if none, the
    farthest with D[a, n] <= d_ap; if none, the nearest (all are easy).
    """
    picks = {}
    for a in range(len(labels)):
        negatives = [j for j in range(len(labels)) if labels[j] != labels[a]]
        for p in range(len(labels)):
            if p == a or labels[p] != labels[a] or not negatives:
                continue
            d_ap = D[a, p]
            semi_hard = [j for j in negatives if d_ap < D[a, j] < d_ap + alpha]
            hard = [j for j in negatives if D[a, j] <= d_ap]
            if semi_hard:
                picks[(a, p)] = sorted(semi_hard, key=lambda j: D[a, j])[:k]
            elif hard:
                picks[(a, p)] = [max(hard, key=lambda j: D[a, j])]
            else:
                picks[(a, p)] = [min(negatives, key=lambda j: D[a, j])]
    return picks
