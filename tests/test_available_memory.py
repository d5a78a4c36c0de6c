"""scratchnet._memory.available_memory: the system's MemAvailable, bounded by a container's
limit. The files it reads are written into a temporary folder and pointed at."""

import pytest

from scratchnet import _memory

GIB = 2 ** 30


@pytest.fixture
def fake_files(tmp_path, monkeypatch):
    """Point _memory at files under tmp_path; returns a function that writes one."""
    names = {"meminfo": tmp_path / "meminfo"}
    monkeypatch.setattr(_memory, "MEMINFO", str(names["meminfo"]))
    versions = []
    for version in ("v2", "v1"):
        folder = tmp_path / version
        folder.mkdir()
        versions.append((str(folder / "limit"), str(folder / "usage"), str(folder / "stat"),
                         "inactive_file" if version == "v2" else "total_inactive_file"))
    monkeypatch.setattr(_memory, "CGROUP_FILES", tuple(versions))

    def write(name, text):
        (tmp_path / name).write_text(text)
    return write


def test_memavailable_is_read_in_kib(fake_files):
    fake_files("meminfo", "MemTotal:  32000000 kB\nMemAvailable:   8388608 kB\n")
    assert _memory.available_memory() == 8 * GIB


@pytest.mark.parametrize("version, limit, cache_key", [
    ("v2", str(4 * GIB), "inactive_file"), ("v1", str(4 * GIB), "total_inactive_file")])
def test_a_container_limit_bounds_it(fake_files, version, limit, cache_key):
    """4 GiB limit, 3 GiB used of which 1 GiB droppable file cache: 2 GiB of room."""
    fake_files("meminfo", "MemAvailable:   8388608 kB\n")
    fake_files(f"{version}/limit", limit)
    fake_files(f"{version}/usage", str(3 * GIB))
    fake_files(f"{version}/stat", f"anon 123\n{cache_key} {GIB}\n")
    assert _memory.available_memory() == 2 * GIB


@pytest.mark.parametrize("limit", ["max", str(2 ** 63 - 4096)])
def test_no_limit_leaves_the_system_figure(fake_files, limit):
    fake_files("meminfo", "MemAvailable:   1048576 kB\n")
    fake_files("v2/limit", limit)
    fake_files("v2/usage", str(GIB))
    fake_files("v2/stat", "inactive_file 0\n")
    assert _memory.available_memory() == GIB


def test_real_figures_are_positive_or_unknown():
    available = _memory.available_memory()
    assert available is None or available > 0
