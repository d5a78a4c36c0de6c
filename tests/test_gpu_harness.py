"""What surrounds the GPU code and runs without a GPU.

1. The CUDA test modules on Numba's CUDA simulator, in a child pytest, when
   they cannot run in this process (see cuda_support.py).
2. The CPU side of the device check benchmarks/gpu.py: its scratchnet and
   PyTorch versions of the style iteration and of the face training step
   must compute the same numbers (run here on "cpu"), its table and its
   refusal to run without a GPU.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from cuda_support import CUDA_TEST_MODULES, cuda_runs_here, numba_cuda_installed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------ the CUDA tests, simulated

@pytest.mark.skipif(not numba_cuda_installed(), reason="numba-cuda is not installed")
@pytest.mark.skipif(cuda_runs_here(), reason="the CUDA test modules run in this process")
def test_cuda_modules_pass_on_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *CUDA_TEST_MODULES]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"the CUDA tests failed on the simulator:\n{output[-8000:]}"
    assert " passed" in output and "skipped" not in output.splitlines()[-1], output[-2000:]


# ------------------------------------------------------------ the device check

gpu_benchmark = pytest.importorskip("benchmarks.gpu")


def test_the_check_runs_the_cuda_test_modules():
    command = gpu_benchmark.cuda_test_command()
    assert command[:3] == [sys.executable, "-m", "pytest"]
    assert tuple(command[-2:]) == CUDA_TEST_MODULES == gpu_benchmark.CUDA_TESTS
    assert all(os.path.exists(os.path.join(ROOT, path)) for path in CUDA_TEST_MODULES)


def test_style_iterations_of_both_peers_agree_on_the_cpu():
    torch = pytest.importorskip("torch")
    peers = gpu_benchmark.style_peers(torch, 16, "cpu", widths=(2, 2, 3, 3, 3))
    ours, theirs = peers["scratchnet"](), peers["torch"]()
    assert ours.shape == theirs.shape == (1, 3, 16, 16)
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4 * np.abs(theirs).max())


def test_face_steps_of_both_peers_agree_on_the_cpu():
    torch = pytest.importorskip("torch")
    images = np.random.default_rng(0).random((8, 3, 16, 16), dtype=np.float32)
    labels = np.repeat(np.arange(4), 2)
    peers = gpu_benchmark.face_peers(torch, images, labels, "cpu", widths=(2, 3, 3, 4))
    for _ in range(2):                     # the losses before and after one Adam step
        ours, theirs = peers["scratchnet"](), peers["torch"]()
        assert theirs > 0
        np.testing.assert_allclose(ours, theirs, rtol=1e-4)


def test_timing_and_the_table():
    results = gpu_benchmark.time_peers("case", {"scratchnet": lambda: np.ones(2),
                                                "torch": lambda: np.ones(2)}, repeats=3)
    assert [r["peer"] for r in results] == ["scratchnet", "torch"]
    assert results[0]["max_rel_error"] == 0.0 and results[1]["max_rel_error"] is None
    assert results[0]["x_torch"] > 0
    tests = {"returncode": 0, "seconds": 12.0, "summary": "60 passed"}
    table = gpu_benchmark.report(results, tests)
    assert table.startswith("CUDA tests passed in 12 s: 60 passed")
    assert "| case | scratchnet |" in table and "reference" in table


@pytest.mark.skipif(cuda_runs_here(), reason="a GPU or the simulator is present")
def test_the_check_refuses_to_run_without_a_gpu(capsys):
    assert gpu_benchmark.main(["--skip-tests"]) == 2
    assert "benchmarks.gpu needs" in capsys.readouterr().err
