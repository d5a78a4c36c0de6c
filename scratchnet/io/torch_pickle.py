"""PyTorch .pth state dicts (torchvision's vgg19-dcbb9e9d.pth) read with NumPy alone.

torch.save writes a pickle. Unpickling runs whatever functions the pickle
names, so a .pth from an untrusted source can run any code; this reader
never lets it. Its unpickler resolves only the few names a state dict
needs, to harmless stand-ins, and refuses every other one before anything
is called:

    collections.OrderedDict                    the dict itself
    torch._utils._rebuild_tensor(_v2)          "a tensor viewing storage s" -> a _TensorRef
    torch._utils._rebuild_parameter            an nn.Parameter around such a tensor
    torch.FloatStorage, HalfStorage, ...       the element type of a storage

A tensor is a view of a flat storage: element [i_0, ..., i_k] sits at
storage[offset + sum_j i_j * stride_j]. The pickle holds (offset, size,
stride) and a persistent id naming the storage, whose bytes sit outside the
pickle. Two containers exist:

zip (torch >= 1.6): a zip archive with members under one folder <p>/
    <p>/data.pkl     the pickle; persistent ids ('storage', type, key, location, numel)
    <p>/data/<key>   each storage's raw bytes, in the byte order named by
                     <p>/byteorder ("little" when that member is absent)
legacy (torch < 1.6; torchvision's 2017 VGG19 files): five things in a row
    pickle  MAGIC_NUMBER (0x1950a86a20f9469cfc6c)
    pickle  PROTOCOL_VERSION (1001)
    pickle  sys_info (a dict: byte order, type sizes)
    pickle  the object; persistent ids ('storage', type, key, location, numel, view)
            where view is None or (view_key, offset, numel) into the storage `key`
    pickle  the sorted list of storage keys; then, per key in that order, the
            element count as 8 little-endian bytes and the little-endian data.
(The still older tar container, torch < 0.1.10, is not read.)
"""

import collections
import io
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass

import numpy as np

from ..serialize import ZIP_START
from .layout import VGG19_CONV_LAYERS, Preprocess, WeightsFormatError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# torch.<name>Storage -> NumPy dtype ("bfloat16" is widened to float32 on reading)
STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool",
}

# position of each conv layer in torchvision's vgg19().features: a Sequential of
# (Conv2d, ReLU) per layer and a MaxPool2d closing each block
TORCHVISION_FEATURE_INDEX = dict(zip(
    VGG19_CONV_LAYERS, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)))

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# what unpickling or unpacking a damaged file can raise
_DAMAGED_FILE_ERRORS = (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, struct.error,
                        ValueError, TypeError, KeyError, IndexError, AttributeError,
                        OverflowError, MemoryError, UnicodeDecodeError)


class UnsafePickleError(WeightsFormatError):
    """The pickle names a function or class that loading weights never needs."""


def read(path):
    """(params as OIHW float32 arrays, Preprocess) from a torchvision VGG19 state dict."""
    state = read_state_dict(path)
    params = {}
    for layer, index in TORCHVISION_FEATURE_INDEX.items():
        for kind in ("weight", "bias"):
            key = f"features.{index}.{kind}"
            if key in state:
                params[f"{layer}.{kind}"] = np.ascontiguousarray(state[key], dtype=np.float32)
    if not params:
        raise WeightsFormatError(
            f"{path}: no torchvision VGG keys (features.0.weight, ...) in this state dict; "
            + _holding(state))
    source = f"torchvision {os.path.basename(path)}"
    return params, Preprocess("RGB", 1.0, IMAGENET_MEAN, IMAGENET_STD, source=source)


def _holding(state):
    """What a state dict holds, said as the end of a sentence: a few of its names."""
    if not state:
        return ("it holds no tensors at its top level (a checkpoint that keeps the state "
                "dict inside another dict is not read: save that dict on its own)")
    names = list(state)
    more = ", ..." if len(names) > 6 else ""
    return f"it holds {len(names)} tensor{'s' if len(names) > 1 else ''}: " \
           f"{', '.join(names[:6])}{more}"


def read_state_dict(path):
    """Dict from name to NumPy array of the state dict saved at `path` (zip or legacy)."""
    with open(path, "rb") as file:
        is_zip = file.read(len(ZIP_START)) == ZIP_START
    try:
        return _read_zip(path) if is_zip else _read_legacy(path)
    except WeightsFormatError:
        raise
    except _DAMAGED_FILE_ERRORS as error:
        raise WeightsFormatError(
            f"{path}: cannot read this PyTorch file (truncated or damaged?): "
            f"{type(error).__name__}: {error}") from error


def has_legacy_magic(path):
    """True when the file starts with a pickled MAGIC_NUMBER (legacy torch.save).

    A pickle that names a forbidden global still raises UnsafePickleError.
    """
    with open(path, "rb") as file:
        if file.read(1) != b"\x80":
            return False
        file.seek(0)
        try:
            return _RestrictedUnpickler(file, path).load() == MAGIC_NUMBER
        except UnsafePickleError:
            raise
        except _DAMAGED_FILE_ERRORS:  # any other failure to unpickle: not this format
            return False


# ---------------------------------------------------------------- containers

def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        prefix = _zip_prefix(archive, path)
        byteorder = "little"
        if f"{prefix}byteorder" in archive.namelist():
            byteorder = archive.read(f"{prefix}byteorder").decode("ascii").strip()
        unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(f"{prefix}data.pkl")), path)
        state = unpickler.load()
        storages = {
            key: _storage_array(_zip_member(archive, f"{prefix}data/{key}", path),
                                dtype, numel, byteorder, f"storage {key}", path)
            for key, (dtype, numel) in unpickler.storages.items()
        }
    return _materialise(state, storages, path)


def _zip_prefix(archive, path):
    """The folder <p>/ holding data.pkl (torch names it after the saved file)."""
    pickles = [name for name in archive.namelist()
               if name.endswith("data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise WeightsFormatError(f"{path}: expected one <folder>/data.pkl in the zip, found {pickles}")
    return pickles[0][: -len("data.pkl")]


def _zip_member(archive, name, path):
    try:
        return archive.read(name)
    except KeyError:
        raise WeightsFormatError(f"{path}: the zip has no member {name}") from None


def _read_legacy(path):
    with open(path, "rb") as file:
        header = [_RestrictedUnpickler(file, path).load() for _ in range(3)]
        magic, protocol, _sys_info = header
        if magic != MAGIC_NUMBER:
            raise WeightsFormatError(f"{path}: not a PyTorch file (no magic number)")
        if protocol != PROTOCOL_VERSION:
            raise WeightsFormatError(f"{path}: unknown PyTorch protocol version {protocol!r}")
        unpickler = _RestrictedUnpickler(file, path)
        state = unpickler.load()
        keys = _RestrictedUnpickler(file, path).load()
        storages = {key: _read_legacy_storage(file, key, unpickler.storages, path) for key in keys}
    return _materialise(state, storages, path)


def _read_legacy_storage(file, key, declared, path):
    if key not in declared:
        raise WeightsFormatError(f"{path}: storage {key!r} is listed but no tensor uses it")
    dtype, numel = declared[key]
    count_bytes = file.read(8)
    if len(count_bytes) != 8:
        raise WeightsFormatError(f"{path}: file ends before storage {key!r} (truncated?)")
    (count,) = struct.unpack("<q", count_bytes)
    if count != numel:
        raise WeightsFormatError(f"{path}: storage {key!r} holds {count} elements, the pickle says {numel}")
    data = file.read(numel * _itemsize(dtype))
    return _storage_array(data, dtype, numel, "little", f"storage {key!r}", path)


def _itemsize(dtype):
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def _storage_array(data, dtype, numel, byteorder, what, path):
    """The first `numel` elements of raw bytes `data` as a flat native-order NumPy array."""
    needed = numel * _itemsize(dtype)
    if len(data) < needed:
        raise WeightsFormatError(
            f"{path}: {what} has {len(data)} bytes, needs {needed} (truncated?)")
    order = "<" if byteorder == "little" else ">"
    if dtype == "bfloat16":  # the upper half of a float32: shift it back into place
        halves = np.frombuffer(data, dtype=order + "u2", count=numel)
        return (halves.astype(np.uint32) << 16).view(np.float32)
    stored = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder(order), count=numel)
    return stored.astype(dtype, copy=False)


# ------------------------------------------------------------ the unpickler

@dataclass(frozen=True, slots=True)
class _StorageType:
    dtype: str


@dataclass(frozen=True, slots=True)
class _StorageRef:
    """Elements [view_offset, view_offset + numel) of the storage `key`."""
    key: str
    numel: int
    view_offset: int


@dataclass(frozen=True, slots=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor(storage, storage_offset, size, stride):
    if not isinstance(storage, _StorageRef):
        raise WeightsFormatError(f"a tensor must view a storage, got {type(storage).__name__}")
    return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       metadata=None):
    if metadata:
        raise WeightsFormatError(f"tensors with extra metadata ({metadata!r}) are not supported")
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles dicts, tuples, numbers, strings and tensor stand-ins; refuses all else.

    `storages` collects key -> (dtype, numel) of every storage the pickle names.
    """

    def __init__(self, file, path):
        super().__init__(file, encoding="utf-8")
        self.path = path
        self.storages = {}

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise UnsafePickleError(
                f"refusing to load '{module}.{name}' from {self.path}: "
                "only tensor data and dicts are allowed")
        return allowed

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and len(saved_id) in (5, 6) and saved_id[0] == "storage"):
            raise UnsafePickleError(
                f"refusing persistent id {saved_id!r:.80} in {self.path}: only storages are allowed")
        storage_type, key, _location, numel = saved_id[1:5]
        view = saved_id[5] if len(saved_id) == 6 else None
        if not (isinstance(storage_type, _StorageType) and isinstance(key, str)
                and isinstance(numel, int) and numel >= 0):
            raise WeightsFormatError(f"{self.path}: malformed storage id {saved_id!r:.120}")
        if self.storages.setdefault(key, (storage_type.dtype, numel)) != (storage_type.dtype, numel):
            raise WeightsFormatError(f"{self.path}: storage {key!r} is declared twice differently")
        if view is None:
            return _StorageRef(key, numel, 0)
        _view_key, view_offset, view_numel = view
        return _StorageRef(key, view_numel, view_offset)


# ------------------------------------------------------- arrays from the refs

def _materialise(state, storages, path):
    """Replace each _TensorRef value of the state dict by the array it describes."""
    if not isinstance(state, dict):
        raise WeightsFormatError(f"{path}: expected a state dict, found a {type(state).__name__}")
    return {name: _tensor_array(ref, storages, f"{path}: tensor {name!r}")
            for name, ref in state.items() if isinstance(ref, _TensorRef)}


def _tensor_array(ref, storages, where):
    """Copy out ref's elements storage[offset + sum_j i_j stride_j], checking every bound."""
    flat = storages[ref.storage.key]
    view = ref.storage
    if not (0 <= view.view_offset and view.view_offset + view.numel <= flat.size):
        raise WeightsFormatError(f"{where}: storage view outside its storage")
    flat = flat[view.view_offset: view.view_offset + view.numel]
    size, stride, offset = ref.size, ref.stride, ref.offset
    if not (len(size) == len(stride) and all(isinstance(v, int) and v >= 0 for v in size + stride)
            and isinstance(offset, int) and offset >= 0):
        raise WeightsFormatError(f"{where}: bad size {size}, stride {stride} or offset {offset}")
    if 0 in size:
        return np.zeros(size, dtype=flat.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= flat.size:
        raise WeightsFormatError(
            f"{where}: reads element {last} of a storage of {flat.size} (truncated or damaged?)")
    strides_bytes = tuple(s * flat.itemsize for s in stride)
    view_of_storage = np.lib.stride_tricks.as_strided(
        flat[offset:], shape=size, strides=strides_bytes, writeable=False)
    return np.array(view_of_storage)
