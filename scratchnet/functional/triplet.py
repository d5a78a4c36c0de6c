"""Triplet loss for face embeddings, with and without mining, differentiable.

With f(x) the encoding of image x and SQUARED distances, as on the slide:

    L(A, P, N) = max(||f(A) - f(P)||^2 - ||f(A) - f(N)||^2 + alpha, 0)

and, where L > 0 (0 elsewhere, including the kink L = 0),

    dL/df(A) = 2 (f(N) - f(P)),  dL/df(P) = 2 (f(P) - f(A)),  dL/df(N) = 2 (f(A) - f(N))

`batch_triplet_loss` mines the triplets inside one batch of embeddings: the
pairwise distances D[i, j] = ||f_i - f_j||^2 are computed without gradient
(they only choose rows), then the loss is taken on the chosen rows, so the
gradient flows back through the row indexing to the embeddings. The kernels
are those of the embeddings' device (`kernels` or kernels.cuda, see
scratchnet.device); on "cuda" the labels stay a NumPy array.
"""

import numpy as np

from ..device import kernels_for
from ..tensor import Tensor
from ._function import Function, as_tensor, promote
from .loss import check_reduction, reduce_loss


class PairwiseSqDistances(Function):
    def forward(self, E):
        self.E, self.kernels = E, kernels_for(E)
        return self.kernels.pairwise_sq_distances(E)

    def backward(self, dD):
        return self.kernels.pairwise_sq_distances_backward(dD, self.E)


class TripletLoss(Function):
    def forward(self, fa, fp, fn, alpha):
        self.encodings, self.alpha, self.kernels = promote(fa, fp, fn), alpha, kernels_for(fa)
        return self.kernels.triplet_loss(*self.encodings, alpha)

    def backward(self, dL):
        return self.kernels.triplet_loss_backward(dL, *self.encodings, self.alpha)


def pairwise_sq_distances(E):
    """D[i, j] = ||E_i - E_j||^2 for the rows of E (N, d); D is (N, N)."""
    return PairwiseSqDistances.apply(E)


def triplet_loss(anchor, positive, negative, alpha=0.2, reduction="sum"):
    """max(||A - P||^2 - ||A - N||^2 + alpha, 0) per row of the (T, d) inputs, reduced.

    `reduction`: "sum" (the course's J, default), "mean" or "none" (shape (T,)).
    """
    check_reduction(reduction)
    return reduce_loss(TripletLoss.apply(anchor, positive, negative, alpha=alpha), reduction)


def batch_triplet_loss(embeddings, labels, alpha=0.2, strategy="batch_hard", reduction="sum",
                       rng=None, negatives_per_pair=1):
    """Mine triplets in a batch and return (loss, fraction_active).

    `embeddings` is (N, d), `labels` an integer NumPy array (N,) of
    identities. `strategy` ("batch_hard", "semi_hard", "all", "random"),
    `rng` and `negatives_per_pair` are those of kernels.select_triplets.
    fraction_active is the share of the chosen triplets with L > 0, a Python
    float. A batch with no valid triplet (one identity, or one picture per
    identity) gives a loss of 0, for reduction="mean" too, and
    fraction_active 0.0.
    """
    check_reduction(reduction)
    if isinstance(labels, Tensor):
        raise TypeError("labels must be an integer NumPy array, got a Tensor (Tensors hold floats)")
    embeddings = as_tensor(embeddings)
    kernels = kernels_for(embeddings.data)
    distances = kernels.pairwise_sq_distances(embeddings.data)
    a, p, n = kernels.select_triplets(
        np.asarray(labels), distances, strategy=strategy, alpha=alpha, rng=rng,
        negatives_per_pair=negatives_per_pair,
    )
    losses = triplet_loss(embeddings[a], embeddings[p], embeddings[n], alpha, reduction="none")
    fraction_active = float(np.mean(losses.data > 0)) if len(a) else 0.0
    if len(a) == 0 and reduction == "mean":
        reduction = "sum"  # the mean of no losses is taken as 0, not NaN
    return reduce_loss(losses, reduction), fraction_active
