"""Verification as binary classification (the slide): a logistic unit on a pair of embeddings.

Instead of thresholding d = ||f(x_i) - f(x_j)||^2, learn which coordinates
matter. With f_i = f(x_i), f_j = f(x_j) the embeddings (d numbers each) of
the two pictures, the slide's prediction is

    y_hat = sigmoid( sum_k w_k |f_ik - f_jk| + b )            kind="abs"

and its chi-square variant replaces |f_ik - f_jk| by

    (f_ik - f_jk)^2 / (|f_ik| + |f_jk| + eps)                 kind="chi2"

The slide writes the denominator f_ik + f_jk, which suits non-negative
features (histograms, ReLU outputs). scratchnet's embeddings are
L2-normalised and have negative coordinates, where f_ik + f_jk can be 0 or
negative; |f_ik| + |f_jk| is the same number whenever both are >= 0, is
never negative, and eps = CHI2_EPS keeps it away from 0.

Both features are symmetric in (i, j), so y_hat(i, j) = y_hat(j, i) exactly.
y = 1 means "same person". The encoder f stays frozen: the classifier is
fitted on pairs of precomputed embeddings with the binary cross-entropy

    L = -(y log y_hat + (1 - y) log(1 - y_hat))

averaged over mini-batches, minimised by Adam. w and b are a
scratchnet.nn.Linear(d, 1); its gradient comes from the autograd ops the
features and the loss are made of. Fitting is logistic regression, a convex
problem, so w and b start at 0 and the `seed` only shuffles the pairs.

>>> rng = np.random.default_rng(0)
>>> first = rng.normal(size=(200, 8)).astype(np.float32)
>>> same = np.arange(200) % 2 == 0
>>> second = np.where(same[:, None], first + 0.05, rng.normal(size=(200, 8))).astype(np.float32)
>>> classifier = PairClassifier("abs")
>>> _ = classifier.fit(first, second, same, epochs=30, seed=0)
>>> float(np.mean(classifier.predict(first, second) == same))
1.0
"""

import numpy as np

from .. import functional as F
from ..nn import Linear
from ..optim import Adam
from ..tensor import Tensor, no_grad

KINDS = ("abs", "chi2")
CHI2_EPS = 1e-6


def pair_features(f_i, f_j, kind="abs"):
    """The per-coordinate features of pairs of embeddings, (N, d) and (N, d) -> (N, d) Tensor.

    kind="abs": |f_i - f_j|;  kind="chi2": (f_i - f_j)^2 / (|f_i| + |f_j| + CHI2_EPS).
    f_i and f_j are arrays or Tensors. The features are made of autograd ops, so
    gradients flow back to f_i and f_j when they are Tensors that require them.
    """
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    f_i, f_j = (f if isinstance(f, Tensor) else Tensor(f) for f in (f_i, f_j))
    difference = F.sub(f_i, f_j)
    if kind == "abs":
        return F.abs(difference)
    denominator = F.add(F.add(F.abs(f_i), F.abs(f_j)), CHI2_EPS)
    return F.div(F.mul(difference, difference), denominator)


class PairClassifier:
    """y_hat = sigmoid(sum_k w_k feature_k(f_i, f_j) + b), fitted on pairs of frozen embeddings.

    `fit` first, then `predict_proba` / `predict`. `state()` is a dict of arrays
    (kind, weight, bias) to store, for instance inside a model's .npz under a
    prefix, and `PairClassifier.from_state(state)` rebuilds the classifier.
    """

    def __init__(self, kind="abs"):
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.linear = None   # Linear(d, 1), made by fit or from_state

    def __repr__(self):
        size = "unfitted" if self.linear is None else f"embedding_size={self.embedding_size}"
        return f"PairClassifier(kind={self.kind!r}, {size})"

    @property
    def embedding_size(self):
        return None if self.linear is None else self.linear.in_features

    def logits(self, f_i, f_j):
        """z = sum_k w_k feature_k + b per pair: (N, d), (N, d) -> (N,) Tensor."""
        z = self.linear(pair_features(f_i, f_j, self.kind))  # (N, d) -> (N, 1)
        return z.reshape(-1)                                  # (N, 1) -> (N,)

    def fit(self, emb_first, emb_second, same, epochs=50, lr=0.05, batch_size=256, seed=0):
        """Minimise the mean binary cross-entropy with Adam; returns the mean loss of each epoch.

        emb_first, emb_second: (N, d) float embeddings of the pairs' two pictures;
        same: (N,) bools, True when the pair shows one person (both kinds needed).
        """
        emb_first, emb_second = self._check_embeddings(emb_first, emb_second, fitted=False)
        same = _check_same(same, len(emb_first))
        for name, value, kind in (("epochs", epochs, int), ("batch_size", batch_size, int),
                                  ("lr", lr, float)):
            _check_positive(name, value, kind)
        self.linear = Linear(emb_first.shape[1], 1)  # its random initial values are replaced:
        self.linear.weight.data[...] = 0
        self.linear.bias.data[...] = 0
        optimizer = Adam(self.linear.parameters(), lr=lr)
        targets = same.astype(np.float32)
        rng = np.random.default_rng(seed)
        losses = []
        for _ in range(epochs):
            order = rng.permutation(len(targets))
            epoch_loss = 0.0
            for begin in range(0, len(order), batch_size):
                batch = order[begin:begin + batch_size]
                loss = F.binary_cross_entropy_with_logits(
                    self.logits(emb_first[batch], emb_second[batch]), targets[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                epoch_loss += loss.item() * len(batch)
            losses.append(epoch_loss / len(order))
        return losses

    @no_grad()
    def predict_proba(self, emb_first, emb_second):
        """y_hat, the probability that each pair shows one person: (N, d), (N, d) -> (N,)."""
        emb_first, emb_second = self._check_embeddings(emb_first, emb_second, fitted=True)
        return F.sigmoid(self.logits(emb_first, emb_second)).numpy()

    def predict(self, emb_first, emb_second):
        """True where y_hat > 0.5: the pair is judged to show one person."""
        return self.predict_proba(emb_first, emb_second) > 0.5

    def state(self):
        """{"kind": str array, "weight": (1, d), "bias": (1,)}: copies, savable without pickle."""
        if self.linear is None:
            raise RuntimeError("PairClassifier.state: the classifier is not fitted; call fit first")
        return {"kind": np.array(self.kind), "weight": self.linear.weight.data.copy(),
                "bias": self.linear.bias.data.copy()}

    @classmethod
    def from_state(cls, state):
        """The classifier whose state() was `state` (a dict with kind, weight, bias)."""
        missing = [key for key in ("kind", "weight", "bias") if key not in state]
        if missing:
            raise ValueError(f"state: missing {', '.join(missing)}; expected kind, weight, bias")
        classifier = cls(str(state["kind"]))
        weight, bias = np.asarray(state["weight"]), np.asarray(state["bias"])
        if weight.ndim != 2 or weight.shape[0] != 1 or bias.shape != (1,):
            raise ValueError(f"state: expected weight (1, d) and bias (1,), "
                             f"got {weight.shape} and {bias.shape}")
        classifier.linear = Linear(weight.shape[1], 1)
        classifier.linear.weight.data[...] = weight
        classifier.linear.bias.data[...] = bias
        return classifier

    def _check_embeddings(self, emb_first, emb_second, fitted):
        if fitted and self.linear is None:
            raise RuntimeError("PairClassifier: the classifier is not fitted; call fit first")
        arrays = []
        for name, embeddings in (("emb_first", emb_first), ("emb_second", emb_second)):
            embeddings = np.asarray(embeddings)
            if not np.issubdtype(embeddings.dtype, np.floating):
                raise TypeError(f"{name}: expected float embeddings, got dtype {embeddings.dtype}")
            if embeddings.ndim != 2 or len(embeddings) == 0:
                raise ValueError(f"{name}: expected (N, d) embeddings with N >= 1, "
                                 f"got shape {embeddings.shape}")
            if fitted and embeddings.shape[1] != self.embedding_size:
                raise ValueError(f"{name}: expected (N, {self.embedding_size}) embeddings as "
                                 f"fitted, got shape {embeddings.shape}")
            if not np.all(np.isfinite(embeddings)):
                raise ValueError(f"{name}: expected finite numbers, got NaN or inf")
            arrays.append(embeddings.astype(np.float32))
        if arrays[0].shape != arrays[1].shape:
            raise ValueError(f"emb_second: expected the shape of emb_first {arrays[0].shape}, "
                             f"got {arrays[1].shape}")
        return arrays


def _check_same(same, n_pairs):
    same = np.asarray(same)
    booleans = same.dtype == np.bool_ or np.all((same == 0) | (same == 1))
    if same.shape != (n_pairs,) or not booleans:
        raise ValueError(f"same: expected {n_pairs} booleans, one per pair, got "
                         f"{same.dtype} of shape {same.shape}")
    same = same.astype(bool)
    if same.all() or not same.any():
        raise ValueError("same: expected both same and different pairs to learn from")
    return same


def _check_positive(name, value, kind):
    numbers = (int, np.integer) if kind is int else (int, float, np.integer, np.floating)
    if not isinstance(value, numbers) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name}: expected a positive {kind.__name__}, got {value!r}")
