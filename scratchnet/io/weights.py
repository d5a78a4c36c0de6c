"""Finding, recognising and loading pretrained VGG19 weights; converting them to .npz.

    load_vgg19_weights(path=None, widths=VGG19_WIDTHS) -> VGGWeights
    save_vgg19_weights(weights, path)          scratchnet's .npz (see npz.py)
    convert_weights(in_path, out_path)         any supported file -> .npz
    find_vgg19_weights() -> path               the first file found (below)

A file's format is read from its content, never from its name:

    starts with                         format (reader)
    b"MATLAB 5.0 MAT-file"              MatConvNet .mat (matconvnet.py)
    b"\\x89HDF\\r\\n\\x1a\\n"               Keras .h5 (keras_h5.py)
    b"PK\\x03\\x04", members *.npy        scratchnet .npz (npz.py)
    b"PK\\x03\\x04", member <p>/data.pkl  PyTorch zip .pth (torch_pickle.py)
    a pickled 0x1950a86a20f9469cfc6c    PyTorch legacy .pth (torch_pickle.py)

Every reader gives the 16 conv layers as float32 OIHW arrays,
W^[l]: (n_C^[l], n_C^[l-1], 3, 3) and b^[l]: (n_C^[l],), and the input
recipe the weights were trained with (layout.Preprocess). Fully connected
layers are ignored. The arrays are then checked against VGG19's shapes for
the block widths `widths` (64, 128, 256, 512, 512 for the real network;
tests use tiny ones): a missing layer or a wrong shape is an error naming
the layer and both shapes. widths=None checks only that the layers fit
together (3 input channels, n_C_prev of each layer = n_C of the one before).

Nothing is ever downloaded. Without a path, these places are tried in order
(weights_search_paths lists them):

    1. $SCRATCHNET_WEIGHTS (a file; when set, it must exist)
    2. torch's hub cache:  $TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth
                           (TORCH_HOME defaults to $XDG_CACHE_HOME/torch or ~/.cache/torch)
    3. Keras's cache:      $KERAS_HOME/models/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5
                           (and the file with the top; KERAS_HOME defaults to ~/.keras)
    4. scratchnet's cache: $XDG_CACHE_HOME/scratchnet or ~/.cache/scratchnet:
                           vgg19.npz, imagenet-vgg-verydeep-19.mat, then the two above
    5. the current folder: imagenet-vgg-verydeep-19.mat, and
                           pretrained-model/imagenet-vgg-verydeep-19.mat (the course's place)

and WeightsNotFound, listing them all, is raised when none exists.
"""

import os
import zipfile

from ..serialize import ZIP_START
from . import keras_h5, matconvnet, npz, torch_pickle
from .layout import (
    VGG19_WIDTHS,
    VGGWeights,
    WeightsFormatError,
    WeightsNotFound,
    validate_params,
)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

READERS = {
    "matconvnet": matconvnet.read,
    "keras-h5": keras_h5.read,
    "scratchnet-npz": npz.read,
    "torch-zip": torch_pickle.read,
    "torch-legacy": torch_pickle.read,
}

TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
KERAS_FILES = ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
               "vgg19_weights_tf_dim_ordering_tf_kernels.h5")
MATCONVNET_FILE = "imagenet-vgg-verydeep-19.mat"
SCRATCHNET_FILE = "vgg19.npz"


def load_vgg19_weights(path=None, widths=VGG19_WIDTHS):
    """The VGG19 conv weights in `path` (or in the first file found), checked and converted."""
    path = find_vgg19_weights() if path is None else os.fspath(path)
    if os.path.isdir(path):
        raise FileNotFoundError(f"{path}: a folder, not a weights file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such weights file")
    params, preprocess = READERS[detect_format(path)](path)
    return VGGWeights(validate_params(params, widths, path), preprocess, os.path.abspath(path))


def save_vgg19_weights(weights, path):
    """Write `weights` (a VGGWeights) as scratchnet's .npz, atomically."""
    validate_params(weights.params, None, "weights to save")
    npz.write(weights, os.fspath(path))


def convert_weights(in_path, out_path, widths=VGG19_WIDTHS):
    """Read any supported weights file and write it as scratchnet's .npz; returns the weights."""
    weights = load_vgg19_weights(in_path, widths)
    save_vgg19_weights(weights, out_path)
    return weights


def detect_format(path):
    """The format of the weights file at `path`, read from its first bytes (see module doc)."""
    path = os.fspath(path)
    with open(path, "rb") as file:
        head = file.read(512)
    if not head:
        raise WeightsFormatError(f"{path}: the file is empty")
    if head.startswith(b"MATLAB 5.0 MAT-file"):
        return "matconvnet"
    if head.startswith(b"MATLAB 7.3 MAT-file"):
        raise WeightsFormatError(
            f"{path}: a MATLAB v7.3 (HDF5) file, which scipy cannot read; "
            "save it again from MATLAB with save(..., '-v7')")
    if head.startswith(HDF5_SIGNATURE):
        return "keras-h5"
    if head.startswith(ZIP_START):
        return _zip_format(path)
    if head[257:262] == b"ustar":
        raise WeightsFormatError(
            f"{path}: a tar archive (PyTorch's pre-2017 format), which is not supported; "
            "load it with torch and save the state dict again")
    if torch_pickle.has_legacy_magic(path):
        return "torch-legacy"
    raise WeightsFormatError(
        f"{path}: unrecognised content (starts with {head[:16]!r}); expected a MatConvNet "
        ".mat, a PyTorch .pth, a Keras .h5 or a scratchnet .npz")


def _zip_format(path):
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as error:
        raise WeightsFormatError(f"{path}: a truncated or damaged zip archive ({error})") from error
    if names and all(name.endswith(".npy") for name in names):
        return "scratchnet-npz"
    if any(name.endswith("/data.pkl") for name in names):
        return "torch-zip"
    raise WeightsFormatError(
        f"{path}: a zip archive that is neither an .npz nor a PyTorch file (members: {names[:5]})")


# ------------------------------------------------------------------ search

def scratchnet_cache_dir():
    """$XDG_CACHE_HOME/scratchnet, or ~/.cache/scratchnet."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "scratchnet")


def weights_search_paths():
    """Every (path, where it comes from) tried when no path is given, in order."""
    home = os.path.expanduser("~")
    cache_base = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(cache_base, "torch")
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(home, ".keras")
    cache = scratchnet_cache_dir()
    places = []
    if os.environ.get("SCRATCHNET_WEIGHTS"):
        places.append((os.environ["SCRATCHNET_WEIGHTS"], "$SCRATCHNET_WEIGHTS"))
    places.append((os.path.join(torch_home, "hub", "checkpoints", TORCHVISION_FILE), "torch hub cache"))
    places += [(os.path.join(keras_home, "models", name), "Keras cache") for name in KERAS_FILES]
    places += [(os.path.join(cache, name), "scratchnet cache")
               for name in (SCRATCHNET_FILE, MATCONVNET_FILE, TORCHVISION_FILE) + KERAS_FILES]
    places.append((os.path.join(os.getcwd(), MATCONVNET_FILE), "current folder"))
    places.append((os.path.join(os.getcwd(), "pretrained-model", MATCONVNET_FILE), "current folder"))
    return places


def find_vgg19_weights():
    """The first existing file of weights_search_paths(), or WeightsNotFound listing them."""
    explicit = os.environ.get("SCRATCHNET_WEIGHTS")
    if explicit and not os.path.isfile(explicit):
        raise WeightsNotFound(f"$SCRATCHNET_WEIGHTS is set to {explicit!r}, which is not a file")
    places = weights_search_paths()
    for path, _where in places:
        if os.path.isfile(path):
            return path
    listing = "\n".join(f"  {path}  ({where})" for path, where in places)
    raise WeightsNotFound(
        "no VGG19 weights found (nothing is downloaded); give a path or set "
        f"$SCRATCHNET_WEIGHTS. Looked for:\n{listing}")
