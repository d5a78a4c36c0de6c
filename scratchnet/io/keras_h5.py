"""Keras's vgg19_weights_tf_dim_ordering_tf_kernels(_notop).h5, read with h5py.

The file is HDF5 as Keras's `save_weights` writes it ("legacy h5" layout):

    attrs["layer_names"]            the model's layers in order: input_1,
                                    block1_conv1, ..., block5_pool (+ fc ones)
    <layer>/attrs["weight_names"]   that layer's arrays in order [kernel, bias],
                                    e.g. "block1_conv1_W_1:0", "block1_conv1_b_1:0"
                                    (Keras 1) or "block1_conv1/kernel:0" (Keras 2,
                                    one group deeper; h5py follows the "/" itself)
    kernel  (f_h, f_w, n_C_prev, n_C) float32: TensorFlow's layout, row first
    bias    (n_C,)

A whole model saved with `model.save` keeps the same tree under "model_weights".
Layer block{b}_conv{i} is VGG19's conv{b}_{i}. Input: Keras's "caffe" mode:
BGR, scale 255, mean (103.939, 116.779, 123.68) in B, G, R order, std 1.

h5py is optional: `pip install 'scratchnet[keras]'` (or `pip install h5py`).
Without it, reading raises ReaderNotInstalled (an ImportError) saying so.
"""

import os
import re

import numpy as np

from .layout import Preprocess, ReaderNotInstalled, WeightsFormatError, hwio_to_oihw

CAFFE_BGR_MEAN_255 = (103.939, 116.779, 123.68)
_KERAS_CONV = re.compile(r"block(\d)_conv(\d)")


def read(path):
    """(params as OIHW float32 arrays, Preprocess) from a Keras VGG19 weights file."""
    h5py = _import_h5py(path)
    try:
        with h5py.File(path, "r") as file:
            params = _read_conv_layers(file, path)
    except OSError as error:  # h5py's report of a damaged or truncated file
        raise WeightsFormatError(
            f"{path}: cannot read the HDF5 file (truncated or damaged?): {error}") from error
    source = f"Keras {os.path.basename(path)}"
    return params, Preprocess("BGR", 255.0, CAFFE_BGR_MEAN_255, source=source)


def _import_h5py(path):
    try:
        import h5py
    except ImportError:
        raise ReaderNotInstalled(
            f"{path}: reading Keras .h5 weights needs h5py, which is not installed: "
            "pip install 'scratchnet[keras]' (or pip install h5py)") from None
    return h5py


def _read_conv_layers(file, path):
    root = file
    if "layer_names" not in root.attrs and "model_weights" in root:
        root = root["model_weights"]
    if "layer_names" not in root.attrs:
        raise WeightsFormatError(f"{path}: an HDF5 file without 'layer_names' is not Keras weights")
    params = {}
    for layer in map(_text, root.attrs["layer_names"]):
        match = _KERAS_CONV.fullmatch(layer)
        if match:
            group = _member(root, layer, path, "layer_names lists")
            params.update(_conv_params(group, f"conv{match[1]}_{match[2]}", layer, path))
    return params


def _conv_params(group, name, layer, path):
    weight_names = [_text(n) for n in group.attrs.get("weight_names", [])]
    if len(weight_names) != 2:
        raise WeightsFormatError(f"{path}: layer {layer} should list [kernel, bias], lists {weight_names}")
    listed = f"the weight_names of {layer} lists"
    kernel, bias = (np.asarray(_member(group, weight_name, path, listed))
                    for weight_name in weight_names)
    if kernel.ndim != 4 or kernel.shape[:2] != (3, 3):
        raise WeightsFormatError(
            f"{path}: {layer} kernel should be (3, 3, n_C_prev, n_C) (TensorFlow layout), "
            f"found {kernel.shape}")
    return {f"{name}.weight": hwio_to_oihw(kernel),
            f"{name}.bias": np.ascontiguousarray(bias.reshape(-1), dtype=np.float32)}


def _member(group, name, path, listed):
    """group[name]; a WeightsFormatError when the file lacks it, though `listed` names it."""
    if name not in group:
        raise WeightsFormatError(f"{path}: {listed} {name!r}, which is not in the file "
                                 "(damaged or incomplete?)")
    return group[name]


def _text(value):
    """h5py gives attribute strings as bytes or str."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
