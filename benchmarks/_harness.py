"""Timing, peak memory, agreement and Markdown tables for the benchmarks.

Timing. Each callable is called once first, untimed (Numba compiles or
loads its cache, PyTorch starts its thread pool). Then the peers of a case
are timed round-robin: every repeat calls each peer once, and each repeat
starts with a different peer, so that drift of the machine (other
processes, clock speed, cache state) is shared out evenly instead of
landing on whichever peer runs first. One call is timed with
time.perf_counter; its result is released after the clock stops.

Peak memory. Measured once per case and peer, outside the timed calls, as
the peak resident set size (RSS) of the process during the call minus the
RSS just before it. RSS counts every allocation (NumPy, Numba, PyTorch's
own allocator, BLAS buffers), which tracemalloc would not. Before the call
the free heap is handed back to the system (glibc's malloc_trim), so the
call cannot hide its temporaries in memory a previous call left behind.
The peak is read from the kernel's high-water mark, VmHWM, after resetting
it (writing 5 to /proc/self/clear_refs, Linux 4.0+): exact, and it sees
allocations made while Numba code holds the GIL. Where that reset is not
allowed, a background thread samples /proc/self/statm about every
millisecond instead; it only gets to run when the call releases the GIL
(BLAS and most NumPy loops do, Numba kernels without nogil do not), so it
can miss short peaks. Elsewhere (no /proc) memory is not reported.
"""

import gc
import os
import threading
import time

import numba
import numpy as np
from threadpoolctl import threadpool_info

from kernels._workers import N_WORKERS
from scratchnet._memory import glibc

MIB = 2 ** 20


# ------------------------------------------------------------------ timing

def time_round_robin(calls, repeats):
    """{peer: [seconds per call]} over `repeats` rounds of one call per peer."""
    names = list(calls)
    seconds = {name: [] for name in names}
    for repeat in range(repeats):
        gc.collect()
        for i in range(len(names)):
            name = names[(repeat + i) % len(names)]     # rotate who goes first
            start = time.perf_counter()
            result = calls[name]()
            seconds[name].append(time.perf_counter() - start)
            del result
    return seconds


def summarize(seconds):
    """Median, interquartile range and minimum of a list of times, in ms."""
    ms = np.asarray(seconds) * 1e3
    q1, median, q3 = np.percentile(ms, [25, 50, 75])
    return {"median_ms": median, "iqr_ms": q3 - q1, "min_ms": ms.min(), "repeats": len(ms)}


# ----------------------------------------------------------------- threads

def scratchnet_threads():
    """The threads scratchnet's kernels run on: {"conv_workers", "numba", "blas"}.

    The convolutions run their tiles on kernels._workers.N_WORKERS threads,
    one per core the process may use (os.sched_getaffinity), whatever
    NUMBA_NUM_THREADS says; the pooling, ReLU and triplet kernels on Numba's
    threads; plain NumPy products (gram, the linear layer) on BLAS's. All
    three follow the process's CPU affinity (`taskset -c 0 python -m ...`).
    """
    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return {"conv_workers": N_WORKERS, "numba": numba.get_num_threads(),
            "blas": max(blas) if blas else None}


def threads_line(threads, torch_threads):
    """One sentence: scratchnet's thread counts, PyTorch's (None: no PyTorch), and a warning
    where they differ."""
    counts = {threads["conv_workers"], threads["numba"]} | ({threads["blas"]} - {None})
    line = (f"threads: scratchnet's convolution workers {threads['conv_workers']}, "
            f"Numba {threads['numba']}, BLAS {threads['blas'] or '?'}"
            + (f"; PyTorch {torch_threads}" if torch_threads is not None else ""))
    if len(counts | ({torch_threads} - {None})) > 1:
        line += (" -- UNEQUAL: limit the cores with `taskset -c ...` instead of "
                 "NUMBA_NUM_THREADS (the convolution workers follow the CPU affinity only)")
    return line


# ------------------------------------------------------------ peak memory

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_BYTES


def _high_water_mark_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024       # reported in kB
    raise OSError("VmHWM missing from /proc/self/status")


def _reset_high_water_mark():
    """Set VmHWM to the current RSS."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def _choose_memory_method():
    try:
        _reset_high_water_mark()
        _high_water_mark_bytes()
        return "VmHWM"
    except OSError:
        pass
    try:
        _rss_bytes()
        return "sampled RSS"
    except OSError:
        return None


MEMORY_METHOD = _choose_memory_method()


def _load_malloc_trim():
    """glibc's malloc_trim, or a no-op where there is none."""
    libc = glibc()
    return libc.malloc_trim if libc is not None else (lambda pad: 0)


_malloc_trim = _load_malloc_trim()


class _RssSampler(threading.Thread):
    """Largest RSS seen, sampled every `period` seconds until stop()."""

    def __init__(self, period=1e-3):
        super().__init__(daemon=True)
        self.period = period
        self.peak = _rss_bytes()
        self._stopped = threading.Event()

    def run(self):
        while not self._stopped.wait(self.period):
            self.peak = max(self.peak, _rss_bytes())

    def stop(self):
        self._stopped.set()
        self.join()
        self.peak = max(self.peak, _rss_bytes())


def call_with_peak_memory(call):
    """(result, peak RSS above the RSS before the call in bytes, or None)."""
    gc.collect()
    _malloc_trim(0)
    if MEMORY_METHOD is None:
        return call(), None
    before = _rss_bytes()
    if MEMORY_METHOD == "VmHWM":
        _reset_high_water_mark()
        result = call()
        peak = _high_water_mark_bytes()
    else:
        sampler = _RssSampler()
        sampler.start()
        result = call()
        sampler.stop()
        peak = sampler.peak
    return result, max(peak - before, 0)


# ---------------------------------------------------------------- agreement

def as_numpy_outputs(result):
    """A call's result (array, tensor, number or tuple of them) as float64 arrays."""
    items = result if isinstance(result, (tuple, list)) else (result,)
    return [np.asarray(item.detach() if hasattr(item, "detach") else item, dtype=np.float64)
            for item in items]


def max_relative_error(result, reference):
    """Largest max|a - r| / max|r| over the outputs of two calls."""
    ours, theirs = as_numpy_outputs(result), as_numpy_outputs(reference)
    if [a.shape for a in ours] != [r.shape for r in theirs]:
        raise ValueError(
            f"outputs have shapes {[a.shape for a in ours]}, "
            f"the reference's {[r.shape for r in theirs]}"
        )
    return max(
        np.abs(a - r).max() / max(np.abs(r).max(), np.finfo(np.float64).tiny)
        for a, r in zip(ours, theirs)
    )


# ------------------------------------------------------------------ tables

def markdown_table(headers, rows, align=None):
    """A Markdown table, columns padded to line up; `align` holds '<' or '>' per column."""
    align = align or ["<"] * len(headers)
    cells = [list(map(str, headers))] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "| " + " | ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if a == ">" else ("-" * (w + 2))
                          for a, w in zip(align, widths)) + "|"
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])
