"""atomic_write rewrites a file the way `open(path, "wb")` would, but all at once: the file's
permissions and a symbolic link to it survive, and a failure of the file system names the
file the user asked for, not the temporary one."""

import os
import re
import stat

import numpy as np
import pytest

from scratchnet import serialize
from scratchnet.serialize import load_npz, save_npz


def named(path):
    """`path` as an error message gives it (links resolved), as a regular expression."""
    return re.escape(os.path.realpath(path))


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_rewritten_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "private.npz"
    save_npz(path, {"a": np.zeros(2)})
    os.chmod(path, 0o600)
    save_npz(path, {"a": np.ones(2)})
    assert mode_of(path) == 0o600
    np.testing.assert_array_equal(load_npz(path)["a"], np.ones(2))


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_new_file_gets_the_permissions_open_would_give(tmp_path):
    umask = os.umask(0o022)
    try:
        save_npz(tmp_path / "new.npz", {"a": np.zeros(2)})
        with open(tmp_path / "plain", "wb"):
            pass
    finally:
        os.umask(umask)
    assert mode_of(tmp_path / "new.npz") == mode_of(tmp_path / "plain") == 0o644


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="symbolic links")
def test_writing_through_a_symbolic_link_replaces_the_file_it_points_to(tmp_path):
    target, link = tmp_path / "data" / "faces.npz", tmp_path / "link.npz"
    target.parent.mkdir()
    save_npz(target, {"a": np.zeros(2)})
    link.symlink_to(target)
    save_npz(link, {"a": np.ones(2)})
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(load_npz(target)["a"], np.ones(2))
    assert sorted(p.name for p in target.parent.iterdir()) == ["faces.npz"]


def test_a_failed_write_names_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "out.npz"
    save_npz(path, {"a": np.zeros(2)})
    before = path.read_bytes()

    def disk_full(file, arrays):
        file.write(b"PK\x03\x04")
        raise OSError(28, "No space left on device")      # as a full disk's write raises

    monkeypatch.setattr(serialize, "_write_archive", disk_full)
    with pytest.raises(OSError, match=f"cannot write {named(path)}: No space left on device"):
        save_npz(path, {"a": np.ones(2)})
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]


def test_a_missing_folder_is_named_by_the_file_asked_for(tmp_path):
    path = tmp_path / "missing" / "out.npz"
    with pytest.raises(OSError, match=f"cannot write {named(path)}: No such file or directory"):
        save_npz(path, {"a": np.zeros(2)})
