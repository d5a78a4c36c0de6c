"""scratchnet._memory: with glibc, memory a step frees serves the next step without page faults.

Each case runs in a fresh interpreter (malloc's settings are the process's),
which allocates eight 8 MB arrays at once and frees them, like the
activations of a training step, and counts the page faults of ten such steps.
"""

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="mallopt's settings are glibc's")

STEPS = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from scratchnet._memory import keep_freed_memory
    assert keep_freed_memory()

def step():
    arrays = [np.ones(2 << 20, np.float32) for _ in range(8)]   # 8 x 8 MB, then freed
    return sum(float(a[-1]) for a in arrays)

step(), step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""
PAGES_PER_STEP = 8 * (8 << 20) // 4096


def faults_per_step(mode):
    result = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True,
                            check=True)
    return float(result.stdout)


def test_without_it_glibc_gives_the_memory_back_and_faults_it_in_again():
    assert faults_per_step("default") > PAGES_PER_STEP / 10


def test_kept_memory_serves_the_next_step_without_page_faults():
    assert faults_per_step("keep") < PAGES_PER_STEP / 100
