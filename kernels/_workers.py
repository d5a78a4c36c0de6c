"""The worker threads and scratch buffers that the convolutions run their tiles on."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, SimpleQueue

import numpy as np
from threadpoolctl import ThreadpoolController

# A fresh array of megabytes comes from the operating system page by page,
# each page zeroed when first written: unfolding into a new array per tile
# took four times as long as unfolding into memory already touched. So each
# thread keeps one buffer per purpose and dtype, grown to the largest tile it
# has seen (about TILE_ELEMENTS numbers), and reuses it.
_thread_buffers = threading.local()


def scratch(purpose, shape, dtype):
    """An uninitialised array of `shape` in this thread's buffer for `purpose`."""
    size = int(np.prod(shape))
    buffers = _thread_buffers.__dict__.setdefault("by_key", {})
    key = (purpose, np.dtype(dtype))
    if key not in buffers or buffers[key].size < size:
        buffers[key] = np.empty(size, dtype=dtype)
    return buffers[key][:size].reshape(shape)


# Tiles run on a pool of worker threads, one per core. Each worker unfolds
# its tiles (NumPy copies, which release the GIL) and multiplies them with
# single-threaded BLAS, so that the workers and BLAS's own threads never
# fight over the cores. A single tile runs in the caller, also with one
# BLAS thread: a tile is small, and OpenBLAS splitting a small product over
# busy cores was measured up to 70 times slower than one thread doing it.
N_WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
_BLAS = ThreadpoolController()
_workers = None


def run_in_workers(work, tiles, fixed_shares=False):
    """[work(tiles drawn by worker i) for each worker i].

    By default the workers draw the tiles from one shared queue, each taking
    the next tile when it has finished its last, so a worker slowed down by
    anything else running on its core does less of the work instead of
    holding up the end.

    fixed_shares=True deals the tiles out instead: worker i gets tiles i,
    i + n, i + 2n, ... of the n workers, whatever their pace. A caller that
    adds up floats over the tiles (a weight gradient sums over the whole
    batch) needs this: floating-point addition is not associative, so a sum
    whose terms are grouped by whichever worker happened to take them
    differs from run to run in its last bits, and training, which feeds
    every step's weights into the next, would not repeat under a seed.
    """
    n_workers = min(len(tiles), N_WORKERS)
    with _BLAS.limit(limits=1, user_api="blas"):
        if n_workers == 1:
            return [work(tiles)]
        global _workers
        if _workers is None or _workers._max_workers < n_workers:
            _workers = ThreadPoolExecutor(n_workers, thread_name_prefix="conv")
        if fixed_shares:
            shares = [tiles[i::n_workers] for i in range(n_workers)]
        else:
            queue = SimpleQueue()
            for tile in tiles:
                queue.put(tile)
            shares = [_drain(queue) for _ in range(n_workers)]
        return list(_workers.map(work, shares))


def sum_in_workers(work, tiles):
    """The sum over the workers of work(tiles of worker i), the same on every run.

    The tiles are dealt out in fixed shares and the workers' results added
    in worker order, into the first one's array (each work call returns a
    fresh array of its own), so no result depends on the workers' pace.
    """
    results = run_in_workers(work, tiles, fixed_shares=True)
    total = results[0]
    for result in results[1:]:
        total += result
    return total


def _drain(queue):
    """Yield items taken from the queue until it is empty."""
    while True:
        try:
            yield queue.get_nowait()
        except Empty:
            return
