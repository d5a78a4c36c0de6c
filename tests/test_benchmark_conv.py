"""benchmarks/conv.py's command line and header: refused repeats, true thread counts."""

import pytest

conv = pytest.importorskip("benchmarks.conv")

from benchmarks._harness import scratchnet_threads, threads_line  # noqa: E402
from kernels._workers import N_WORKERS  # noqa: E402


@pytest.mark.parametrize("repeats", ["0", "-1"])
def test_repeats_below_one_are_refused(repeats, capsys):
    with pytest.raises(SystemExit) as exit_:
        conv.parse_arguments(["--repeats", repeats])
    assert exit_.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err


def test_the_header_counts_the_convolution_workers():
    threads = scratchnet_threads()
    assert threads["conv_workers"] == N_WORKERS
    line = threads_line(threads, N_WORKERS)
    assert f"convolution workers {N_WORKERS}" in line


def test_unequal_threads_are_called_so():
    threads = {"conv_workers": 2, "numba": 1, "blas": 1}
    assert "UNEQUAL" in threads_line(threads, 2)
    assert "UNEQUAL" not in threads_line({"conv_workers": 1, "numba": 1, "blas": 1}, 1)


def test_a_startup_only_header_claims_no_timed_calls():
    line = conv.environment_line(conv.environment(), 15, 5, timed_cases=False)
    assert "median" not in line
    assert "median of 15 (5 for vgg19)" in conv.environment_line(conv.environment(), 15, 5)
