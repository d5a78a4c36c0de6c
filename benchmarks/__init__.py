"""Benchmarks: scratchnet's kernels timed next to PyTorch (CPU) and plain NumPy.

    python -m benchmarks.conv [--quick] [--only NAME] [--json PATH]

benchmarks/README.md explains how to run them and what every column means.
Nothing here is imported by kernels or scratchnet, and no test times anything.
"""
