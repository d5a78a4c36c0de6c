"""Naive Gram matrix and its gradient: loops written straight from the formulas.

    G[n, k, k'] = sum over positions p of a[n, k, p] a[n, k', p]

    dJ/da[n, k, p] = sum_k' dG[n, k, k'] a[n, k', p] + sum_k' dG[n, k', k] a[n, k', p]

(the first sum from entries G[k, .] in row k, the second from entries
G[., k] in column k). Slow on purpose; float64 throughout. Their own
hand-worked tests live in test_gram.py.
"""

import numpy as np


def naive_gram(a):
    a = np.asarray(a, dtype=np.float64)
    n_batch, n_channels, spatial = a.shape[0], a.shape[1], a.shape[2:]
    G = np.zeros((n_batch, n_channels, n_channels))
    for n in range(n_batch):
        for k in range(n_channels):
            for k2 in range(n_channels):
                total = 0.0
                for pos in np.ndindex(spatial):
                    total += a[(n, k) + pos] * a[(n, k2) + pos]
                G[n, k, k2] = total
    return G


def naive_gram_backward(dG, a):
    dG = np.asarray(dG, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    n_batch, n_channels, spatial = a.shape[0], a.shape[1], a.shape[2:]
    da = np.zeros(a.shape)
    for n in range(n_batch):
        for k in range(n_channels):
            for pos in np.ndindex(spatial):
                total = 0.0
                for k2 in range(n_channels):
                    total += dG[n, k, k2] * a[(n, k2) + pos]   # G[k, k2] holds a[k] a[k2]
                    total += dG[n, k2, k] * a[(n, k2) + pos]   # G[k2, k] holds a[k2] a[k]
                da[(n, k) + pos] = total
    return da
