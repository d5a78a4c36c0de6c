"""scratchnet's own VGG19 weights file: a plain .npz, readable without pickle.

One array per entry, all loadable with np.load(path, allow_pickle=False):

    "format"                    "scratchnet-vgg19-weights/1" (a 0-d string array)
    "conv1_1.weight" ...        (n_C, n_C_prev, 3, 3) float32, OIHW
    "conv1_1.bias" ...          (n_C,) float32
    "preprocess.channel_order"  "RGB" or "BGR"
    "preprocess.scale"          0-d float64
    "preprocess.mean"           (3,) float64, network channel order and scale
    "preprocess.std"            (3,) float64
    "preprocess.source"         0-d string: where the weights came from

`scratchnet weights convert` turns any supported file into this one; it
loads fast and needs neither scipy.io, h5py nor a pickle.
"""

import zipfile

import numpy as np

from .. import serialize
from .layout import VGG19_PARAM_NAMES, Preprocess, WeightsFormatError

FORMAT_TAG = "scratchnet-vgg19-weights/1"
PREPROCESS_KEYS = ("channel_order", "scale", "mean", "std", "source")


def write(weights, path):
    """Write a VGGWeights to `path` (atomically: the old file stays until the new one is whole)."""
    preprocess = weights.preprocess
    arrays = {"format": np.array(FORMAT_TAG)}
    arrays.update({name: np.asarray(weights.params[name], dtype=np.float32)
                   for name in VGG19_PARAM_NAMES})
    arrays.update({
        "preprocess.channel_order": np.array(preprocess.channel_order),
        "preprocess.scale": np.array(preprocess.scale, dtype=np.float64),
        "preprocess.mean": np.array(preprocess.mean, dtype=np.float64),
        "preprocess.std": np.array(preprocess.std, dtype=np.float64),
        "preprocess.source": np.array(preprocess.source),
    })
    serialize.save_npz(path, arrays)


def read(path):
    """(params, Preprocess) from a file written by `write`."""
    try:
        arrays = serialize.load_npz(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise WeightsFormatError(
            f"{path}: cannot read the .npz file (truncated or damaged?): {error}") from error
    tag = str(arrays["format"]) if "format" in arrays else None
    if tag != FORMAT_TAG:
        raise WeightsFormatError(
            f"{path}: an .npz without format tag {FORMAT_TAG!r} (found {tag!r}) is not "
            "scratchnet VGG19 weights; keys: " + ", ".join(list(arrays)[:6]))
    missing = [key for key in PREPROCESS_KEYS if f"preprocess.{key}" not in arrays]
    if missing:
        raise WeightsFormatError(f"{path}: missing preprocess fields {', '.join(missing)}")
    fields = {key: arrays[f"preprocess.{key}"] for key in PREPROCESS_KEYS}
    try:
        preprocess = Preprocess(
            channel_order=str(fields["channel_order"]), scale=fields["scale"],
            mean=fields["mean"], std=fields["std"], source=str(fields["source"]))
    except ValueError as error:   # "scale: expected a finite positive number, got ..."
        raise WeightsFormatError(f"{path}: preprocess.{error}") from error
    params = {name: arrays[name] for name in VGG19_PARAM_NAMES if name in arrays}
    return params, preprocess
