"""How long the kernels take to start: import, then the first call of each.

Run in a fresh process by benchmarks.conv, once with an empty
NUMBA_CACHE_DIR (every jitted function compiles) and once with the cache
that run filled (they load from disk). Prints one JSON object:

    import_s     time of `import kernels` (Numba included, NumPy already loaded)
    calls        [name, first call s, second call s] per kernel, in this order

The first call minus the second is the compile (or cache-loading) time.
Helpers shared between kernels compile at the first kernel that uses them:
conv_forward pays for the zero-padding loop (kernels/conv.py:
_surround_with_zeros) that the later padded convolutions reuse.
The 1-D and 3-D convolutions run through the same 3-D loops as 2-D, so
their rows show whether a new dimensionality costs a new compile.
Inputs are tiny and float32, the benchmark's dtype.
"""

import json
import time

import numpy as np


def _kernel_calls(kernels):
    """(name, zero-argument call) for every kernel the benchmarks use."""
    rng = np.random.default_rng(0)

    def normal(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    x, w, dy = normal(2, 3, 8, 8), normal(4, 3, 3, 3), normal(2, 4, 8, 8)
    dy_pool = normal(2, 3, 4, 4)
    x1, w1 = normal(2, 3, 10), normal(4, 3, 3)
    x3, w3 = normal(2, 3, 4, 4, 4), normal(4, 3, 3, 3, 3)
    # 16 input channels: the 3x3 route of kernels.winograd, compiled Numba loops
    xw, ww, dyw = normal(2, 16, 8, 8), normal(16, 16, 3, 3), normal(2, 16, 8, 8)
    a, dG = normal(1, 4, 6, 6), normal(1, 4, 4)
    E, labels = normal(16, 8), np.repeat(np.arange(4), 4)
    fa, fp, fn, dL = normal(16, 8), normal(16, 8), normal(16, 8), normal(16)
    return [
        ("conv_forward", lambda: kernels.conv_forward(x, w, padding=1)),
        ("conv_backward_input", lambda: kernels.conv_backward_input(dy, w, x.shape, 1, 1, 1, 1)),
        ("conv_backward_weight", lambda: kernels.conv_backward_weight(dy, x, w.shape, 1, 1, 1, 1)),
        ("conv_forward (1-D)", lambda: kernels.conv_forward(x1, w1, padding=1)),
        ("conv_forward (3-D)", lambda: kernels.conv_forward(x3, w3, padding=1)),
        ("conv_forward (Winograd)", lambda: kernels.conv_forward(xw, ww, padding=1)),
        ("conv_backward_input (Winograd)",
         lambda: kernels.conv_backward_input(dyw, ww, xw.shape, 1, 1, 1, 1)),
        ("conv_backward_weight (Winograd)",
         lambda: kernels.conv_backward_weight(dyw, xw, ww.shape, 1, 1, 1, 1)),
        ("avg_pool_forward", lambda: kernels.avg_pool_forward(x, 2)),
        ("avg_pool_backward", lambda: kernels.avg_pool_backward(dy_pool, x.shape, 2)),
        ("gram", lambda: kernels.gram(a)),
        ("gram_backward", lambda: kernels.gram_backward(dG, a)),
        ("pairwise_sq_distances", lambda: kernels.pairwise_sq_distances(E)),
        ("pairwise_sq_distances_backward",
         lambda: kernels.pairwise_sq_distances_backward(normal(16, 16), E)),
        ("select_triplets", lambda: kernels.select_triplets(labels, normal(16, 16))),
        ("triplet_loss", lambda: kernels.triplet_loss(fa, fp, fn, 0.2)),
        ("triplet_loss_backward", lambda: kernels.triplet_loss_backward(dL, fa, fp, fn, 0.2)),
    ]


def _seconds(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main():
    start = time.perf_counter()
    import kernels
    import_s = time.perf_counter() - start
    calls = [[name, _seconds(call), _seconds(call)] for name, call in _kernel_calls(kernels)]
    print(json.dumps({"import_s": import_s, "calls": calls}))


if __name__ == "__main__":
    main()
