"""Where the CUDA tests can run: on a GPU, on Numba's CUDA simulator, or not at all.

Numba reads NUMBA_ENABLE_CUDASIM once, when numba.cuda is first imported, and
earlier test modules of the same pytest run may have imported it already, so
a test module cannot switch the simulator on for itself. Hence:

- test_cuda_kernels.py and test_cuda_device.py run their tests in this
  process when numba.cuda works here: on a GPU, or in a run started with
  NUMBA_ENABLE_CUDASIM=1;
- otherwise they skip, and test_gpu_harness.py runs both modules in a child
  pytest with NUMBA_ENABLE_CUDASIM=1, so that one `python -m pytest` checks
  the CUDA code on any machine;
- without the numba-cuda package everything CUDA skips.
"""

import importlib.util

CUDA_TEST_MODULES = ("tests/test_cuda_kernels.py", "tests/test_cuda_device.py")


def numba_cuda_installed():
    return importlib.util.find_spec("numba_cuda") is not None


def cuda_runs_here():
    """True when numba.cuda can run kernels in this process (a GPU, or the simulator)."""
    if not numba_cuda_installed():
        return False
    from numba import cuda

    return cuda.is_available()


def skip_reason():
    if not numba_cuda_installed():
        return "numba-cuda is not installed (pip install 'scratchnet[gpu]')"
    return ("numba.cuda cannot run kernels in this process; test_gpu_harness.py runs this "
            "module on the CUDA simulator in a child process")
