"""Weights on disk: dicts of NumPy arrays in .npz files, written atomically.

An .npz file is a zip archive holding one `.npy` file per array, which any
NumPy can read with `np.load`. scratchnet writes and reads it with pickling
turned off, so loading a file never runs code that came with it (object
arrays are refused on both sides).

A write never leaves a half-written file under the target name: the archive
is written to a temporary file in the same folder, flushed to disk (fsync),
and only then renamed over the target (os.replace, atomic on POSIX and
Windows). If anything fails before the rename, the target is untouched and
the temporary file is removed.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "weights.npz")
>>> save_npz(path, {"conv.weight": np.ones((2, 3)), "step": np.array(7)})
>>> loaded = load_npz(path)
>>> list(loaded), loaded["step"]
(['conv.weight', 'step'], array(7))
"""

import contextlib
import os
import secrets
import stat
import zipfile

import numpy as np


def save_npz(path, arrays):
    """Write `arrays` (a dict from name to NumPy array) to `path`, atomically.

    The file is written under exactly the name given (no ".npz" is added).
    Names are kept in the dict's order.
    """
    arrays = {name: _checked_array(name, value) for name, value in arrays.items()}
    with atomic_write(path) as file:
        _write_archive(file, arrays)


@contextlib.contextmanager
def atomic_write(path):
    """Open a binary file that appears under `path` only once fully written.

    Yields a file object on a temporary file in the same folder; on leaving
    the block it is flushed, fsynced and renamed over `path`. If the block
    raises, the temporary file is removed and `path` is left as it was.

    Rewriting a file keeps what a plain `open(path, "wb")` would keep: its
    permissions (a private face database stays private) and, when `path` is
    a symbolic link, the link (the file it points to is the one replaced).
    A failure of the file system (a full disk, a read-only folder) raises an
    OSError that names `path`, not the temporary file.
    """
    path = os.path.realpath(os.fspath(path))
    folder = os.path.dirname(path)
    try:
        handle, temporary = _create_temporary(folder, os.path.basename(path))
    except OSError as error:
        raise _naming(error, path) from None
    try:
        _keep_permissions(handle, path)
        with os.fdopen(handle, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        _remove_quietly(temporary)
        if isinstance(error, OSError) and error.filename in (temporary, None):
            raise _naming(error, path) from None
        raise
    _fsync_folder(folder)


def _keep_permissions(handle, path):
    """Give the new file (open as `handle`) the permission bits of the file at `path`, if any."""
    if not hasattr(os, "fchmod"):          # Windows: no POSIX permission bits to keep
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    os.fchmod(handle, stat.S_IMODE(mode))


def _naming(error, path):
    """An OSError like `error` that names `path`: "cannot write PATH: No space left on device"."""
    message = f"cannot write {path}: {error.strerror or error}"
    kind = type(error)              # a PermissionError stays one, for the caller's except
    return kind(error.errno, message) if error.errno else kind(message)


ZIP_START = b"PK\x03\x04"                      # the first bytes of a zip archive holding a file
ZIP_MAGICS = (ZIP_START, b"PK\x05\x06")         # an .npz is a zip archive (or an empty one)
NPY_MAGIC = b"\x93NUMPY"                        # a single .npy array


def load_npz(path):
    """The dict of arrays stored in the .npz file at `path`, in stored order.

    Reads with allow_pickle=False: a file holding Python objects raises
    ValueError instead of unpickling them.
    """
    with open(path, "rb") as file:
        start = file.read(len(NPY_MAGIC))
    if start == NPY_MAGIC:
        raise ValueError(f"{path}: a single .npy array, not an .npz archive of named arrays")
    if not start.startswith(ZIP_MAGICS):
        # np.load would take any other file for a pickle and suggest unpickling it
        raise ValueError(f"{path}: not an .npz archive of arrays (scratchnet reads arrays only, "
                         f"never pickled objects)")
    with np.load(os.fspath(path), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _write_archive(file, arrays):
    """One `<name>.npy` entry per array, as np.savez lays them out."""
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", mode="w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, array, allow_pickle=False)


def _create_temporary(folder, base):
    """Open a new, uniquely named file in `folder`; returns (descriptor, path).

    Made with mode 0o666 less the umask, as `open` would, so the renamed
    file gets ordinary permissions (tempfile.mkstemp would make it 0o600).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        path = os.path.join(folder, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue


def _checked_array(name, value):
    if not isinstance(name, str) or not name:
        raise TypeError(f"array names must be non-empty strings, got {name!r}")
    array = np.asarray(value)
    if array.dtype.hasobject:
        raise TypeError(f"{name}: cannot save an array of Python objects (dtype {array.dtype})")
    return array


def _remove_quietly(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX: the folder's entry list is data too)."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
