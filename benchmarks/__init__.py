"""Benchmarks: scratchnet's kernels timed next to PyTorch (CPU) and plain NumPy.

    python -m benchmarks.conv [--quick] [--only NAME] [--json PATH]

benchmarks/README.md explains how to run them and what every column means.
Nothing here is imported by kernels or scratchnet, and no test times anything.
"""

import os
import sys

# OpenBLAS's idle worker threads busy-wait about 0.1 s (2^28 cycles) after
# every BLAS call before they sleep. In a round-robin over peers they keep
# cores busy while the next peer runs: on 2 cores this made PyTorch's
# triplet case 2.5x slower than alone. A short spin (2^4 cycles) removes the
# interference. The same holds for OpenMP's workers (PyTorch's and Numba's):
# OMP_WAIT_POLICY=PASSIVE makes them sleep at once. Both must be set before
# NumPy or PyTorch load, hence here, in the package every benchmark imports
# first; a value already set is kept.
NUMPY_LOADED_FIRST = "numpy" in sys.modules
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
