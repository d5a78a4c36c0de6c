"""Cross-batch memory: more negatives for each anchor, from the batches just before.

A batch of P persons x K pictures gives each anchor-positive pair (A, P)
only the P - 1 other persons of the batch to find a negative among. The
encodings the network made for the previous few batches are still nearly
where the network would put those pictures now, so keeping them, with their
persons, offers each pair many more persons at no extra forward pass (Wang
et al. 2020, "Cross-Batch Memory for Embedding Learning").

For each anchor-positive pair of the batch, `semi_hard_triplets` draws up to
k remembered encodings m of other persons in the semi-hard zone,

    d(A, P) < ||f(A) - m||^2 < d(A, P) + alpha,

at random, and each makes a triplet with the slide's loss

    L(A, P, m) = max(||f(A) - f(P)||^2 - ||f(A) - m||^2 + alpha, 0).

m is a number remembered, not a function of the weights: the gradient
reaches f(A) and f(P) only, dL/df(A) = 2 (m - f(P)) and dL/df(P) =
2 (f(P) - f(A)) where L > 0, as for any triplet. Training adds these losses,
times a weight, to the batch's J (face.training: memory_batches,
memory_weight, memory_from_step).

The memory lives on the host as NumPy arrays, whatever the device the
network trains on, and a checkpoint holds it (`arrays`, `load_arrays`), so
that a resumed run chooses the same triplets as an uninterrupted one.
"""

import numpy as np

from .evaluation import distances_between, squared_distances


class CrossBatchMemory:
    """The encodings and persons of the last `batches` batches, oldest first."""

    def __init__(self, batches):
        if isinstance(batches, bool) or not isinstance(batches, (int, np.integer)) or batches < 1:
            raise ValueError(f"batches: expected a positive int, got {batches!r}")
        self.batches = int(batches)
        self.encodings = []         # (B_i, d) float arrays, one per batch remembered
        self.labels = []            # (B_i,) int arrays, their persons

    def __len__(self):
        """How many encodings the memory holds."""
        return sum(len(labels) for labels in self.labels)

    def add(self, encodings, labels):
        """Remember a batch's encodings (N, d) and persons (N,), forgetting the oldest batch
        when `batches` are held already."""
        self.encodings.append(np.array(encodings, copy=True))
        self.labels.append(np.array(labels, dtype=np.int64, copy=True))
        del self.encodings[:-self.batches], self.labels[:-self.batches]

    def semi_hard_triplets(self, encodings, labels, alpha, rng, k):
        """Triplets of the batch's anchor-positive pairs with remembered negatives.

        `encodings` (N, d) and `labels` (N,) are the batch's; `rng` a numpy
        Generator; k the most negatives for one pair. Returns (anchors,
        positives, negatives): two int64 arrays of row indices into the
        batch and a (T, d) array of remembered encodings, one per triplet,
        a pair's triplets one after another. A pair with no remembered
        encoding in its semi-hard zone gets no triplet, and an empty memory none at all.
        """
        if not self.labels:
            none = np.zeros(0, dtype=np.int64)
            return none, none, np.zeros((0, encodings.shape[1]), dtype=encodings.dtype)
        memory, memory_labels = np.concatenate(self.encodings), np.concatenate(self.labels)
        same = labels[:, None] == labels[None, :]         # (N, N)
        np.fill_diagonal(same, False)                     # an anchor is not its own positive
        anchors, positives = np.nonzero(same)             # every (A, P) pair, (T,) each
        d_ap = squared_distances(encodings, anchors, positives)                     # (T,)
        d_am = distances_between(encodings, memory)[anchors]  # (N, M) -> (T, M), ||f(A) - m||^2
        semi_hard = ((memory_labels[None, :] != labels[anchors][:, None])
                     & (d_am > d_ap[:, None]) & (d_am < d_ap[:, None] + alpha))
        # k candidates of a row drawn without replacement: those with the k smallest random keys
        keys = rng.random(semi_hard.shape)
        keys[~semi_hard] = np.inf
        k = min(k, keys.shape[1])
        picks = np.argpartition(keys, k - 1, axis=1)[:, :k]                  # (T, k)
        drawn = np.isfinite(np.take_along_axis(keys, picks, axis=1))        # (T, k)
        rows = np.nonzero(drawn)[0]
        return (anchors[rows].astype(np.int64), positives[rows].astype(np.int64),
                memory[picks[drawn]])

    # -------------------------------------------------------------- checkpoints
    def arrays(self):
        """The memory as arrays for a checkpoint: encodings and labels of all batches, one
        after another, and how many each batch holds."""
        if not self.labels:
            return {"memory.sizes": np.zeros(0, dtype=np.int64)}
        return {"memory.encodings": np.concatenate(self.encodings),
                "memory.labels": np.concatenate(self.labels),
                "memory.sizes": np.array([len(labels) for labels in self.labels])}

    def load_arrays(self, arrays):
        """Hold what `arrays` saved (a ValueError if its batches do not fit the memory)."""
        sizes = arrays.get("memory.sizes")
        if sizes is None or len(sizes) > self.batches:
            raise ValueError(f"resume: the checkpoint holds no cross-batch memory of at most "
                             f"{self.batches} batches")
        ends = np.cumsum(sizes)[:-1]
        self.encodings = np.split(arrays["memory.encodings"], ends) if len(sizes) else []
        self.labels = np.split(arrays["memory.labels"], ends) if len(sizes) else []
