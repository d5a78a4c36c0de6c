"""Tiny VGG19 weight files in each real format, written without the code under test.

Every file holds VGG19's 16 conv layers with tiny widths but the real
names, nesting and array layouts. Each number says where it belongs:

    W[out, in, row, col] of layer l = code(l, out, in, row, col)   (all distinct)
    b[out] of layer l               = -(16 l + out) - 0.25

and each writer fills its arrays by that formula in its own index order
(MatConvNet and Keras: [row, col, in, out]; PyTorch: [out, in, row, col]),
so no fixture transposes anything: a reader that mixes up an axis or a
layer gives numbers that do not match `expected_params`.

The PyTorch files are pickles assembled opcode by opcode, the way torch.save
lays them out (checked against real torch.save output in the tests when torch
is installed), so they need no torch.
"""

import collections
import os
import pickle
import struct
import zipfile

import numpy as np

TINY_WIDTHS = (2, 3, 4, 5, 5)
BLOCK_DEPTHS = (2, 2, 4, 4, 4)


def conv_layers(widths=TINY_WIDTHS):
    """[(layer number l from 1, name, n_C_prev, n_C)] for the 16 conv layers."""
    layers, n_prev, number = [], 3, 0
    for block, depth in enumerate(BLOCK_DEPTHS, start=1):
        for index in range(1, depth + 1):
            number += 1
            layers.append((number, f"conv{block}_{index}", n_prev, widths[block - 1]))
            n_prev = widths[block - 1]
    return layers


def closes_block(name):
    """True for the last conv layer of its block ("conv1_2", "conv3_4", ...)."""
    block, index = int(name[4]), int(name[6])
    return index == BLOCK_DEPTHS[block - 1]


def code(layer, out, inp, row, col):
    """A distinct float32-exact value for each (layer, out, in, row, col); widths <= 8."""
    return ((((layer * 8 + out) * 8 + inp) * 4 + row) * 4 + col).astype(np.float32)


def kernel_oihw(layer, n_in, n_out):
    return np.fromfunction(lambda o, i, r, c: code(layer, o, i, r, c), (n_out, n_in, 3, 3))


def kernel_hwio(layer, n_in, n_out):
    return np.fromfunction(lambda r, c, i, o: code(layer, o, i, r, c), (3, 3, n_in, n_out))


def bias(layer, n_out):
    return (-(16.0 * layer + np.arange(n_out)) - 0.25).astype(np.float32)


def expected_params(widths=TINY_WIDTHS):
    """The OIHW arrays every reader must produce from these files."""
    params = {}
    for layer, name, n_in, n_out in conv_layers(widths):
        params[f"{name}.weight"] = kernel_oihw(layer, n_in, n_out)
        params[f"{name}.bias"] = bias(layer, n_out)
    return params


# ------------------------------------------------------------------ MatConvNet

def _cell(*items):
    """A MATLAB 1 x n cell array."""
    cell = np.empty((1, len(items)), dtype=object)
    for k, item in enumerate(items):
        cell[0, k] = item
    return cell


def matconvnet_layers(widths=TINY_WIDTHS, skip=(), kernels=None):
    """The SimpleNN layer list: conv/relu pairs, a pool after each block, then fc6 and prob.

    kernels: optional dict from layer name to a replacement [row, col, in, out] kernel.
    """
    kernels = kernels or {}
    layers = []
    for layer, name, n_in, n_out in conv_layers(widths):
        if name not in skip:
            kernel = kernels.get(name, kernel_hwio(layer, n_in, n_out))
            layers.append({
                "name": name, "type": "conv",
                "weights": _cell(kernel, bias(layer, n_out).reshape(1, -1)),
                "size": np.array([[3.0, 3.0, n_in, n_out]]),
                "pad": np.array([[1.0, 1.0, 1.0, 1.0]]), "stride": np.array([[1.0, 1.0]]),
            })
        layers.append({"name": name.replace("conv", "relu"), "type": "relu", "leak": 0.0})
        if closes_block(name):
            layers.append({"name": f"pool{name[4]}", "type": "pool", "method": "max",
                           "pool": np.array([[2.0, 2.0]]), "stride": np.array([[2.0, 2.0]])})
    fc = np.ones((1, 1, widths[-1], 7), dtype=np.float32)  # kept tiny; ignored by the reader
    layers.append({"name": "fc6", "type": "conv", "weights": _cell(fc, np.zeros((1, 7), np.float32))})
    layers.append({"name": "prob", "type": "softmax"})
    return _cell(*layers)


def write_matconvnet(path, widths=TINY_WIDTHS, normalization="meta",
                     average_image=(120.0, 110.0, 100.0), skip=(), kernels=None):
    """A MatConvNet SimpleNN .mat. normalization: "meta" (newer files: meta.normalization),
    "top" (older files: a top-level normalization holding a whole average image), or None."""
    import scipy.io
    contents = {"layers": matconvnet_layers(widths, skip, kernels)}
    if normalization == "meta":
        contents["meta"] = {
            "inputs": {"name": "data", "size": np.array([[224.0, 224.0, 3.0, 10.0]])},
            "classes": {"name": _cell("n01440764"), "description": _cell("tench")},
            "normalization": {"averageImage": np.array(average_image).reshape(1, 1, 3),
                              "imageSize": np.array([[224.0, 224.0, 3.0]]),
                              "interpolation": "bilinear"},
        }
    elif normalization == "top":
        image = np.empty((4, 5, 3))
        image[:] = np.array(average_image)
        image[0, 0] += 1.0   # the per-channel average over the image stays (average_image)
        image[0, 1] -= 1.0
        contents["normalization"] = {"averageImage": image, "keepAspect": True}
        contents["classes"] = {"name": _cell("n01440764")}
    elif normalization is not None:
        raise ValueError(normalization)
    scipy.io.savemat(path, contents)


# --------------------------------------------------------------- PyTorch pickles

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C


def torchvision_feature_indices():
    """Index of each conv layer in torchvision's vgg19().features, by walking its layout:
    Conv2d, ReLU per layer; MaxPool2d after each block."""
    indices, position = [], 0
    for depth in BLOCK_DEPTHS:
        for _ in range(depth):
            indices.append(position)
            position += 2
        position += 1
    return indices


def torchvision_state(widths=TINY_WIDTHS):
    """A torchvision-style VGG19 state dict of NumPy arrays, classifier included."""
    state = collections.OrderedDict()
    for (layer, _name, n_in, n_out), index in zip(conv_layers(widths), torchvision_feature_indices()):
        state[f"features.{index}.weight"] = kernel_oihw(layer, n_in, n_out)
        state[f"features.{index}.bias"] = bias(layer, n_out)
    state["classifier.0.weight"] = np.full((6, widths[-1]), 0.5, dtype=np.float32)
    state["classifier.0.bias"] = np.zeros(6, dtype=np.float32)
    return state


def stored_tensors(state, layout="contiguous"):
    """Lay `state` out in storages as torch.save would see it.

    Returns (storages: key -> flat array, specs: name -> (key, offset, size, stride)).
    layout "contiguous": one storage per tensor. "shared": one storage for all,
    each tensor at its own offset. "transposed": like contiguous, but each 4-d
    tensor is stored with its last two axes swapped and viewed through strides.
    """
    storages, specs = {}, {}
    if layout == "shared":
        flat, offset = [], 0
        for name, array in state.items():
            specs[name] = ("0", offset, array.shape, _c_strides(array.shape))
            flat.append(array.ravel())
            offset += array.size
        storages["0"] = np.concatenate(flat)
        return storages, specs
    for number, (name, array) in enumerate(state.items()):
        key = str(number)
        if layout == "transposed" and array.ndim == 4:
            stored = np.ascontiguousarray(array.transpose(0, 1, 3, 2))  # (O, I, W, H) in memory
            strides = _c_strides(stored.shape)
            specs[name] = (key, 0, array.shape, (strides[0], strides[1], strides[3], strides[2]))
            storages[key] = stored.ravel()
        else:
            specs[name] = (key, 0, array.shape, _c_strides(array.shape))
            storages[key] = array.ravel()
    return storages, specs


def _c_strides(shape):
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


# opcodes of pickle protocol 2, as torch.save emits them
PROTO_2, STOP, MARK, TUPLE, EMPTY_TUPLE = b"\x80\x02", b".", b"(", b"t", b")"
REDUCE, BINPERSID, SETITEMS, NEWFALSE, NONE = b"R", b"Q", b"u", b"\x89", b"N"


def _global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def _text(value):
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value):
    return b"J" + struct.pack("<i", value)


def _tuple(items):
    return MARK + b"".join(items) + TUPLE


def state_dict_pickle(storages, specs, legacy, storage_type="FloatStorage"):
    """The pickle of an OrderedDict of tensors rebuilt by torch._utils._rebuild_tensor_v2."""
    out = PROTO_2 + _global("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + MARK
    for name, (key, offset, size, stride) in specs.items():
        storage_id = [_text("storage"), _global("torch", storage_type), _text(key),
                      _text("cpu"), _int(storages[key].size)] + ([NONE] if legacy else [])
        arguments = [_tuple(storage_id) + BINPERSID, _int(offset),
                     _tuple([_int(n) for n in size]), _tuple([_int(s) for s in stride]),
                     NEWFALSE, _global("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE]
        out += _text(name) + _global("torch._utils", "_rebuild_tensor_v2") + _tuple(arguments) + REDUCE
    return out + SETITEMS + STOP


def _py2_str(value):
    """A Python 2 str: SHORT_BINSTRING."""
    return b"U" + bytes([len(value)]) + value.encode("ascii")


def python2_state_dict_pickle(storages, specs):
    """The pickle torch 0.1.12-0.3 under Python 2 wrote (torchvision's 2017 files, as we
    understand them): tensors from torch._utils._rebuild_tensor(storage, offset, size,
    stride), byte strings, and Python 2's OrderedDict.__reduce__ (a list of [key, value])."""
    out = PROTO_2 + _global("collections", "OrderedDict") + b"]" + MARK
    for name, (key, offset, size, stride) in specs.items():
        storage_id = [_py2_str("storage"), _global("torch", "FloatStorage"), _py2_str(key),
                      _py2_str("cuda:0"), _int(storages[key].size), NONE]
        arguments = [_tuple(storage_id) + BINPERSID, _int(offset),
                     _tuple([_int(n) for n in size]), _tuple([_int(s) for s in stride])]
        pair = b"]" + MARK + _py2_str(name) + _global("torch._utils", "_rebuild_tensor") \
            + _tuple(arguments) + REDUCE + b"e"
        out += pair
    return out + b"e" + b"\x85" + REDUCE + STOP


def write_torch_zip(path, state, layout="contiguous", prefix="archive", data_pickle=None,
                    storage_type="FloatStorage", dtype="<f4"):
    """A torch >= 1.6 zip checkpoint; `data_pickle` replaces the pickle (for attack tests)."""
    storages, specs = stored_tensors(state, layout)
    pickled = data_pickle or state_dict_pickle(storages, specs, legacy=False, storage_type=storage_type)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{prefix}/data.pkl", pickled)
        archive.writestr(f"{prefix}/byteorder", "little")
        for key, flat in storages.items():
            archive.writestr(f"{prefix}/data/{key}", np.asarray(flat, dtype=dtype).tobytes())
        archive.writestr(f"{prefix}/version", "3\n")


def write_torch_legacy(path, state, layout="contiguous", main_pickle=None, python2=False):
    """A torch < 1.6 checkpoint: magic, protocol, sys_info, object, keys, then the storages."""
    storages, specs = stored_tensors(state, layout)
    if python2:
        main_pickle = python2_state_dict_pickle(storages, specs)
    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    keys = sorted(storages)
    with open(path, "wb") as file:
        file.writelines(pickle.dumps(header, protocol=2) for header in (MAGIC_NUMBER, 1001, sys_info))
        file.write(main_pickle or state_dict_pickle(storages, specs, legacy=True))
        file.write(pickle.dumps(keys, protocol=2))
        for key in keys:
            file.write(struct.pack("<q", storages[key].size))
            file.write(np.asarray(storages[key], dtype="<f4").tobytes())


def write_real_torch(path, state, legacy):
    """The same state dict written by torch.save itself (tests skip this without torch)."""
    import torch
    tensors = collections.OrderedDict((name, torch.from_numpy(np.ascontiguousarray(array)))
                                      for name, array in state.items())
    torch.save(tensors, path, _use_new_zipfile_serialization=not legacy)


class RunsShellCommand:
    """Unpickling this calls os.system(command): what a malicious .pth would hold."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


# ------------------------------------------------------------------------ Keras

def write_keras_h5(path, widths=TINY_WIDTHS, keras_version=2, skip=(), whole_model=False):
    """Keras save_weights layout: layer_names on the file, weight_names on each layer group.

    keras_version 1: datasets "block1_conv1_W_1:0", "block1_conv1_b_1:0" in the layer group;
    keras_version 2: "block1_conv1/kernel:0", "block1_conv1/bias:0", one group deeper.
    whole_model: the tree sits under "model_weights", as model.save writes it.
    """
    import h5py
    layer_names = ["input_1"]
    with h5py.File(path, "w") as h5file:
        file = h5file.create_group("model_weights") if whole_model else h5file
        file.attrs["keras_version"] = b"2.2.4" if keras_version == 2 else b"1.2.2"
        file.attrs["backend"] = b"tensorflow"
        file.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S1")
        for layer, name, n_in, n_out in conv_layers(widths):
            keras_name = f"block{name[4]}_conv{name[6]}"
            if name not in skip:  # (a VGG16 file, say, lacks block3_conv4 ...)
                layer_names.append(keras_name)
                if keras_version == 1:
                    names = [f"{keras_name}_W_1:0", f"{keras_name}_b_1:0"]
                else:
                    names = [f"{keras_name}/kernel:0", f"{keras_name}/bias:0"]
                group = file.create_group(keras_name)
                group.attrs["weight_names"] = np.array([n.encode() for n in names])
                group[names[0]] = kernel_hwio(layer, n_in, n_out)
                group[names[1]] = bias(layer, n_out)
            if closes_block(name):
                pool = f"block{name[4]}_pool"
                layer_names.append(pool)
                file.create_group(pool).attrs["weight_names"] = np.array([], dtype="S1")
        file.attrs["layer_names"] = np.array([n.encode() for n in layer_names])


def delete_from_h5(path, member):
    """Delete `member` (a group or dataset) from the HDF5 file at `path`; the layer_names
    or weight_names that list it stay, as in a damaged file."""
    import h5py
    with h5py.File(path, "a") as file:
        del file[member]


def replace_in_npz(path, changes):
    """Rewrite the .npz at `path` with the entries named in `changes` (name -> array) replaced."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = dict(archive)
    arrays.update(changes)
    with open(path, "wb") as file:
        np.savez(file, **arrays)
