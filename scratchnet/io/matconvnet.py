"""MatConvNet's imagenet-vgg-verydeep-19.mat, the file the course's assignment loads.

The file is a MATLAB v5 .mat written by MatConvNet's Caffe importer (a
"SimpleNN" network). scipy.io.loadmat returns:

    mat["layers"]               a 1 x L cell: one 1 x 1 struct per layer,
                                conv, relu, pool, ..., in network order
    layer["name"], ["type"]     strings, e.g. "conv1_1", "conv"
    layer["weights"]            a 1 x 2 cell {W, b} for conv layers:
        W  (f_h, f_w, n_C_prev, n_C) float32, indexed [row, column, in, out]
        b  (1, n_C) or (n_C, 1)
    mat["meta"]["normalization"]["averageImage"]   (newer files), or
    mat["normalization"]["averageImage"]           (older files): the mean
        RGB image in 0..255, either one pixel ((1, 1, 3) or (3,)) or a full
        (n_H, n_W, 3) image whose per-channel average is the mean.

W keeps MATLAB's index order: loadmat hands back an array indexed exactly
as MATLAB indexes it (it reads the column-major data as a Fortran-ordered
array), so W[h, w, c, k] is MATLAB's W(h+1, w+1, c+1, k+1). The importer
built W as Caffe's (n_C, n_C_prev, f_h, f_w) blob fully reversed and then
with its first two axes swapped, which makes axis 0 the row, as in
TensorFlow's (f_h, f_w, n_C_prev, n_C): the course's notebook uses W as a
TensorFlow kernel unchanged. The fields are looked up by name, not position
(files of different MatConvNet versions order them differently).

Input: RGB, scale 255, mean = averageImage, std 1.
"""

import os

import numpy as np
import scipy.io

from .layout import VGG19_CONV_LAYERS, Preprocess, WeightsFormatError, hwio_to_oihw

IMAGENET_RGB_MEAN_255 = (123.68, 116.779, 103.939)


def read(path):
    """(params as OIHW float32 arrays, Preprocess) from a MatConvNet .mat file."""
    contents = _loadmat(path)
    if "layers" not in contents:
        raise WeightsFormatError(
            f"{path}: a MATLAB file without a 'layers' variable is not a MatConvNet "
            f"SimpleNN network (variables: {sorted(name for name, _, _ in scipy.io.whosmat(path))})")
    params = {}
    for fields in _layer_structs(contents["layers"], path):
        name = _matlab_string(fields.get("name"))
        if name in VGG19_CONV_LAYERS:
            params.update(_conv_params(name, fields, path))
    mean, note = _average_rgb(contents, path)
    source = f"MatConvNet {os.path.basename(path)}{note}"
    return params, Preprocess("RGB", 255.0, mean, source=source)


def _loadmat(path):
    try:
        return scipy.io.loadmat(path, variable_names=["layers", "meta", "normalization"])
    except Exception as error:  # scipy raises many types for a damaged file
        raise WeightsFormatError(
            f"{path}: cannot read the MATLAB file (truncated or damaged?): {error}") from error


def _layer_structs(layers, path):
    """One dict of fields per layer, whether `layers` is a cell of structs or a struct array."""
    if not isinstance(layers, np.ndarray):
        raise WeightsFormatError(f"{path}: 'layers' is not a MATLAB cell or struct array")
    return [_struct_fields(entry, path) for entry in layers.ravel()]


def _struct_fields(value, path):
    """A 1 x 1 MATLAB struct (a record array, or one record of one) as a dict."""
    if isinstance(value, np.ndarray) and value.dtype.names and value.size == 1:
        value = value.ravel()[0]
    if not isinstance(value, np.void) or not value.dtype.names:
        raise WeightsFormatError(f"{path}: expected a MATLAB struct, found {type(value).__name__}")
    return {field: value[field] for field in value.dtype.names}


def _matlab_string(value):
    """A MATLAB char array as loadmat returns it (array(['conv1_1'])) -> 'conv1_1'."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "U" and value.size == 1:
        return str(value.ravel()[0])
    return None


def _conv_params(name, fields, path):
    weights = fields.get("weights")
    if not isinstance(weights, np.ndarray) or weights.dtype != object or weights.size != 2:
        raise WeightsFormatError(f"{path}: layer {name} has no 1 x 2 'weights' cell {{W, b}}")
    kernel, bias = weights.ravel()
    kernel, bias = np.asarray(kernel), np.asarray(bias)
    if kernel.ndim != 4:
        raise WeightsFormatError(
            f"{path}: {name} kernel should be 4-d (f_h, f_w, n_C_prev, n_C), found shape {kernel.shape}")
    return {f"{name}.weight": hwio_to_oihw(kernel),
            f"{name}.bias": np.ascontiguousarray(bias.reshape(-1), dtype=np.float32)}


def _average_rgb(contents, path):
    """(mean RGB in 0..255, note for the source text) from averageImage, wherever it is."""
    average = _find_average_image(contents, path)
    if average is None:
        return IMAGENET_RGB_MEAN_255, " (no averageImage in file: standard ImageNet mean used)"
    average = np.asarray(average)
    if average.dtype.kind not in "iuf" or not np.all(np.isfinite(average)):
        raise WeightsFormatError(f"{path}: averageImage should hold finite numbers, found "
                                 f"NaN, infinity or non-numbers (dtype {average.dtype})")
    average = average.astype(np.float64)
    if average.size == 3:
        return tuple(average.reshape(3)), ""
    if average.ndim == 3 and average.shape[2] == 3:
        return tuple(average.mean(axis=(0, 1))), ""
    raise WeightsFormatError(f"{path}: averageImage has shape {average.shape}; expected 3 values "
                             "or an (n_H, n_W, 3) image")


def _find_average_image(contents, path):
    if "meta" in contents:
        meta = _struct_fields(contents["meta"], path)
        normalization = meta.get("normalization")
    else:
        normalization = contents.get("normalization")
    if normalization is None:
        return None
    average = _struct_fields(normalization, path).get("averageImage")
    # MatConvNet's importer writes [0 0] when it was given no mean
    if average is None or not np.any(average):
        return None
    return average
