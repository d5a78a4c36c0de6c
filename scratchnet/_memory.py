"""Keep the memory that one training step frees for the next step (glibc's malloc).

A training step allocates the same large arrays every time: each layer's
output and gradient, the batch norm's normalised values, the ReLU masks
(16 MB for one activation of the face encoder's first block). glibc's
malloc serves such arrays from its heap, and gives the top of the heap back
to the operating system whenever more than a threshold of it is free (twice
the largest array it has served from the heap, so about 34 MB here). At the
end of a backward pass far more than that is free. The next step then gets
the memory back page by page, and the kernel zeroes each 4 KB page on its
first write: 7,000 to 12,000 page faults in every face training step, 33 to
87 ms of the processors' time spent in the kernel.

Raising the threshold to 256 MB keeps that memory in the process for the next
step (a face training step then takes 3 to 30 page faults). Setting it turns
off glibc's own adjustment of the size above which an array gets pages of its
own from the operating system (each freed at once), so that size is set too,
to the largest glibc allows on 64-bit systems. The process's memory stays at
its largest a step has needed, plus at most the 256 MB.

This changes the whole process, not one array, so the `scratchnet` command
calls it at start, and a library import does not.

`available_memory()` says how much memory the system can give now, for the
commands to refuse, before they start, work that could not fit.
"""

import ctypes
import ctypes.util
import math
import os

# mallopt's parameter numbers, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

KEEP_FREE_BYTES = 256 << 20      # free memory at the top of the heap kept for later
OWN_PAGES_ABOVE = 32 << 20       # arrays larger than this get pages of their own
GIB = 2 ** 30


def glibc():
    """The process's C library through ctypes if it is glibc, else None (macOS, Windows,
    musl: they manage large blocks their own way, and have no mallopt or malloc_trim)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.gnu_get_libc_version      # glibc only
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def keep_freed_memory():
    """Ask glibc's malloc to keep freed memory for the next arrays; True if it could.

    False, and nothing changed, with another C library.
    """
    libc = glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, OWN_PAGES_ABOVE)
                and mallopt(M_TRIM_THRESHOLD, KEEP_FREE_BYTES))


def as_float(count):
    """An int count as a float; infinity past the largest float (an absurd request)."""
    try:
        return float(count)
    except OverflowError:
        return math.inf


def in_gib(size):
    """Bytes as GiB for a person: one decimal, or a power of ten past a million."""
    gib = as_float(size) / GIB
    return f"{gib:.1f} GiB" if gib < 1e6 else f"{gib:.1e} GiB"


def available_memory():
    """Bytes the system can give this process now without swapping, or None if unknown.

    Linux's MemAvailable (free memory plus the caches it can drop), else the
    whole physical memory; and, inside a container whose memory is limited
    (a control group's limit, as `docker run --memory` sets), no more than
    the room left under that limit.
    """
    known = [room for room in (_system_available(), _container_room()) if room is not None]
    return min(known) if known else None


def _system_available():
    try:
        with open(MEMINFO) as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024      # "MemAvailable:  123456 kB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no sysconf, or not these names
        return None


# A control group's memory: (its limit, its use, the statistics naming the file cache it can
# drop), for cgroup v2, then v1. Without a limit, v2 writes "max" and v1 a huge number.
CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current",
     "/sys/fs/cgroup/memory.stat", "inactive_file"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes",
     "/sys/fs/cgroup/memory/memory.stat", "total_inactive_file"),
)
MEMINFO = "/proc/meminfo"
NO_LIMIT_ABOVE = 1 << 60


def _container_room():
    """The limit of this process's control group less what the group uses (its droppable file
    cache not counted, as `docker stats` counts), or None without a limit."""
    for limit_file, usage_file, stat_file, cache_key in CGROUP_FILES:
        try:
            limit = _read_text(limit_file)
            if limit == "max" or int(limit) >= NO_LIMIT_ABOVE:
                return None
            usage = int(_read_text(usage_file))
            cache = dict(line.split() for line in _read_text(stat_file).splitlines())
        except (OSError, ValueError):
            continue                   # not this version of control groups
        return max(0, int(limit) - usage + int(cache.get(cache_key, 0)))
    return None


def _read_text(path):
    with open(path) as file:
        return file.read().strip()
