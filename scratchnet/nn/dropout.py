"""Dropout: inverted dropout, as in the course (course 2, regularisation).

In training each entry is kept with probability keep_prob = 1 - p and the
kept entries are divided by keep_prob, so the expected value of every
activation is unchanged and nothing needs rescaling at test time:

    d = (U(0, 1) >= p),   a = a * d / (1 - p)

In evaluation mode (model.eval()) it returns its input unchanged. The
draws come from the shared generator (scratchnet.nn.rng.manual_seed) or
the `generator` given.

>>> import numpy as np
>>> from scratchnet import Tensor
>>> layer = Dropout(0.5, generator=np.random.default_rng(0))
>>> out = layer(Tensor(np.ones(1000)))
>>> sorted(set(out.data.tolist()))
[0.0, 2.0]
"""

from .module import Module
from .rng import resolve_generator


class Dropout(Module):
    def __init__(self, p=0.5, generator=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1], got {p}")
        resolve_generator(generator)  # a TypeError now for anything but None or a Generator
        self.p, self.generator = p, generator

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = resolve_generator(self.generator).random(x.shape) >= self.p
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        return x * (keep * scale).astype(x.dtype)

    def extra_repr(self):
        return f"p={self.p}"
