"""Reading VGG19 weights from MatConvNet .mat, PyTorch .pth, Keras .h5 and scratchnet .npz.

The files come from tests/weight_fixtures.py: tiny widths, real names, nesting
and layouts, every number a function of (layer, out, in, row, col). Each
reader must land every number where that formula says (elementwise, so a
swapped axis or layer fails), give its source's input recipe, recognise
the format from content alone, refuse pickled code, and say clearly what is
wrong with a damaged file.
"""

import doctest
import importlib
import os
import pathlib
import pickle
import shutil
import sys
import zipfile

import naive_conv
import numpy as np
import pytest
import scipy.io
import weight_fixtures as fx
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import scratchnet.io
from scratchnet.io import (
    VGG19_CONV_LAYERS,
    Preprocess,
    ReaderNotInstalled,
    UnsafePickleError,
    WeightsFormatError,
    WeightsNotFound,
    convert_weights,
    detect_format,
    expected_shapes,
    find_vgg19_weights,
    load_vgg19_weights,
    read_state_dict,
    save_vgg19_weights,
    weights_search_paths,
)
from scratchnet.io.torch_pickle import TORCHVISION_FEATURE_INDEX

TINY = fx.TINY_WIDTHS


def _write_mat(path):
    fx.write_matconvnet(path)


def _write_torch_zip(path):
    fx.write_torch_zip(path, fx.torchvision_state())


def _write_torch_legacy(path):
    fx.write_torch_legacy(path, fx.torchvision_state())


def _write_keras(path):
    pytest.importorskip("h5py")
    fx.write_keras_h5(path)


def _write_npz(path):
    fx.write_matconvnet(str(path) + ".source.mat")
    convert_weights(str(path) + ".source.mat", path, widths=TINY)


WRITERS = {
    "matconvnet": _write_mat,
    "torch-zip": _write_torch_zip,
    "torch-legacy": _write_torch_legacy,
    "keras-h5": _write_keras,
    "scratchnet-npz": _write_npz,
}


def assert_expected_params(params, widths=TINY):
    expected = fx.expected_params(widths)
    assert list(params) == list(expected)
    for name, array in expected.items():
        assert params[name].dtype == np.float32, name
        np.testing.assert_array_equal(params[name], array, err_msg=name)


# ------------------------------------------------------------- VGG19 itself

def test_layer_names_and_real_shapes_match_the_vgg19_paper():
    assert VGG19_CONV_LAYERS == (
        "conv1_1", "conv1_2", "conv2_1", "conv2_2",
        "conv3_1", "conv3_2", "conv3_3", "conv3_4",
        "conv4_1", "conv4_2", "conv4_3", "conv4_4",
        "conv5_1", "conv5_2", "conv5_3", "conv5_4")
    shapes = expected_shapes()
    assert shapes["conv1_1.weight"] == (64, 3, 3, 3)
    assert shapes["conv1_2.weight"] == (64, 64, 3, 3)
    assert shapes["conv2_1.weight"] == (128, 64, 3, 3)
    assert shapes["conv3_1.weight"] == (256, 128, 3, 3)
    assert shapes["conv3_4.weight"] == (256, 256, 3, 3)
    assert shapes["conv4_1.weight"] == (512, 256, 3, 3)
    assert shapes["conv5_1.weight"] == (512, 512, 3, 3)
    assert shapes["conv5_4.bias"] == (512,)
    # 20,024,384 conv parameters: VGG19's 143.7M less its three fully connected layers
    assert sum(int(np.prod(s)) for s in shapes.values()) == 20_024_384


def test_bad_widths_argument_is_rejected():
    with pytest.raises(ValueError, match="widths"):
        expected_shapes((64, 128))


# --------------------------------------------------------- the fixtures' own checks

def test_fixture_codes_are_distinct_so_any_misplacement_shows():
    values = np.concatenate([a.ravel() for a in fx.expected_params().values()])
    assert len(np.unique(values)) == values.size


def test_fixture_kernel_layouts_hold_the_same_numbers_by_index():
    hwio, oihw = fx.kernel_hwio(3, 4, 5), fx.kernel_oihw(3, 4, 5)
    assert hwio.shape == (3, 3, 4, 5) and oihw.shape == (5, 4, 3, 3)
    assert hwio[2, 0, 3, 1] == oihw[1, 3, 2, 0] == fx.code(np.array(3), 1, 3, 2, 0)


def test_torchvision_feature_indices_from_its_layout():
    # torchvision's vgg19 `features`: [Conv, ReLU] x 2, Pool, [Conv, ReLU] x 2, Pool, then x 4 ...
    literal = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    assert fx.torchvision_feature_indices() == literal
    assert list(TORCHVISION_FEATURE_INDEX.values()) == literal


def test_torchvision_feature_indices_match_torchvision():
    torchvision = pytest.importorskip("torchvision")
    features = torchvision.models.vgg19(weights=None).features
    conv_positions = [k for k, module in enumerate(features) if type(module).__name__ == "Conv2d"]
    assert conv_positions == fx.torchvision_feature_indices()


# --------------------------------------------------------------- MatConvNet

def test_matconvnet_fixture_nests_as_the_course_notebook_reads_it(tmp_path):
    path = tmp_path / "imagenet-vgg-verydeep-19.mat"
    fx.write_matconvnet(path)
    vgg_layers = scipy.io.loadmat(path)["layers"]
    # the assignment: W = vgg_layers[0][layer][0][0][2][0][0]; name = ...[0][0][0][0]
    assert vgg_layers[0][0][0][0][0][0] == "conv1_1"
    np.testing.assert_array_equal(vgg_layers[0][0][0][0][2][0][0], fx.kernel_hwio(1, 3, 2))
    assert vgg_layers[0][2][0][0][0][0] == "conv1_2"


def test_matconvnet_every_number_lands_in_place(tmp_path):
    path = tmp_path / "imagenet-vgg-verydeep-19.mat"
    fx.write_matconvnet(path, average_image=(123.5, 116.25, 104.0))
    weights = load_vgg19_weights(path, widths=TINY)
    assert_expected_params(weights.params)
    p = weights.preprocess
    assert (p.channel_order, p.scale, p.std) == ("RGB", 255.0, (1.0, 1.0, 1.0))
    assert p.mean == (123.5, 116.25, 104.0)
    assert p.source == "MatConvNet imagenet-vgg-verydeep-19.mat"
    assert weights.source_path == str(path.resolve())


def test_matconvnet_kernel_rows_are_image_rows(tmp_path):
    """A vertical-edge kernel, written in MATLAB's [row, col, in, out], must find a vertical edge."""
    edge = np.array([1.0, 0.0, -1.0], dtype=np.float32)
    kernel = np.zeros((3, 3, 3, 2), dtype=np.float32)
    kernel[:, :, :, 0] = edge[None, :, None]   # varies along columns: vertical edges
    kernel[:, :, :, 1] = edge[:, None, None]   # varies along rows: horizontal edges
    path = tmp_path / "edges.mat"
    fx.write_matconvnet(path, kernels={"conv1_1": kernel})
    w = load_vgg19_weights(path, widths=TINY).params["conv1_1.weight"]
    image = np.zeros((1, 3, 6, 6))
    image[:, :, :, :3] = 1.0                   # bright left half: an edge between columns 2 and 3
    response = naive_conv.conv(image, w.astype(np.float64))[0]
    # by hand: channel 0 = sum over 3 rows x 3 channels of x[col c] - x[col c + 2]
    np.testing.assert_array_equal(response[0], np.tile([0.0, 9.0, 9.0, 0.0], (4, 1)))
    np.testing.assert_array_equal(response[1], np.zeros((4, 4)))


def test_matconvnet_kernel_acts_as_the_course_tensorflow_kernel(tmp_path):
    """TensorFlow's conv with W[row, col, in, out] == PyTorch-layout conv with the loaded W."""
    path = tmp_path / "vgg.mat"
    fx.write_matconvnet(path)
    w_hwio = scipy.io.loadmat(path)["layers"][0][0][0][0]["weights"][0][0]   # conv1_1
    w_oihw = load_vgg19_weights(path, widths=TINY).params["conv1_1.weight"]
    x = np.random.default_rng(0).normal(size=(1, 3, 5, 6))
    tf_style = np.zeros((2, 3, 4))
    for o in range(2):
        for r in range(3):
            for c in range(4):
                # y[r, c, o] = sum_{dr, dc, i} x[r + dr, c + dc, i] W[dr, dc, i, o]
                tf_style[o, r, c] = sum(x[0, i, r + dr, c + dc] * w_hwio[dr, dc, i, o]
                                        for dr in range(3) for dc in range(3) for i in range(3))
    np.testing.assert_allclose(naive_conv.conv(x, w_oihw.astype(np.float64))[0], tf_style, rtol=1e-12)


def test_matconvnet_older_top_level_normalization_with_a_whole_average_image(tmp_path):
    path = tmp_path / "old.mat"
    fx.write_matconvnet(path, normalization="top", average_image=(120.0, 110.0, 100.0))
    weights = load_vgg19_weights(path, widths=TINY)
    assert_expected_params(weights.params)
    np.testing.assert_allclose(weights.preprocess.mean, (120.0, 110.0, 100.0))


@pytest.mark.parametrize("normalization, average", [(None, None), ("meta", (0.0, 0.0, 0.0))])
def test_matconvnet_without_a_mean_falls_back_and_says_so(tmp_path, normalization, average):
    path = tmp_path / "nomean.mat"
    fx.write_matconvnet(path, normalization=normalization, average_image=average)
    preprocess = load_vgg19_weights(path, widths=TINY).preprocess
    assert preprocess.mean == (123.68, 116.779, 103.939)
    assert "standard ImageNet mean" in preprocess.source


def test_matconvnet_missing_layers_are_all_named(tmp_path):
    path = tmp_path / "partial.mat"
    fx.write_matconvnet(path, skip=("conv3_2", "conv5_4"))
    message = r"missing VGG19 conv layers conv3_2, conv5_4 \(found 14 of 16\)"
    with pytest.raises(WeightsFormatError, match=message):
        load_vgg19_weights(path, widths=TINY)


def test_matconvnet_file_without_layers_is_explained(tmp_path):
    path = tmp_path / "other.mat"
    scipy.io.savemat(path, {"x": np.ones(3)})
    with pytest.raises(WeightsFormatError, match=r"without a 'layers'.*\(variables: \['x'\]\)"):
        load_vgg19_weights(path, widths=TINY)


# ------------------------------------------------------------------ PyTorch

@pytest.mark.parametrize("layout", ["contiguous", "shared", "transposed"])
@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_torch_every_number_lands_in_place(tmp_path, layout, container):
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    if container == "zip":
        fx.write_torch_zip(path, fx.torchvision_state(), layout, prefix="vgg19-dcbb9e9d")
    else:
        fx.write_torch_legacy(path, fx.torchvision_state(), layout)
    assert detect_format(path) == f"torch-{container}"
    weights = load_vgg19_weights(path, widths=TINY)
    assert_expected_params(weights.params)
    p = weights.preprocess
    assert (p.channel_order, p.scale) == ("RGB", 1.0)
    assert p.mean == (0.485, 0.456, 0.406) and p.std == (0.229, 0.224, 0.225)
    assert p.source == "torchvision vgg19-dcbb9e9d.pth"


def test_torch_legacy_file_as_python_2_wrote_it(tmp_path):
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    fx.write_torch_legacy(path, fx.torchvision_state(), "shared", python2=True)
    assert_expected_params(load_vgg19_weights(path, widths=TINY).params)


def test_torch_state_dict_keeps_every_tensor(tmp_path):
    path = tmp_path / "w.pth"
    state = fx.torchvision_state()
    fx.write_torch_zip(path, state, "shared")
    loaded = read_state_dict(path)
    assert list(loaded) == list(state)
    for name in state:
        np.testing.assert_array_equal(loaded[name], state[name])


@pytest.mark.parametrize("storage_type, dtype", [("HalfStorage", "<f2"), ("DoubleStorage", "<f8")])
def test_torch_other_float_storages_are_read(tmp_path, storage_type, dtype):
    path = tmp_path / "half.pth"
    state = {"x": np.arange(12, dtype=np.float32).reshape(3, 4) / 4}   # exact in float16
    fx.write_torch_zip(path, state, storage_type=storage_type, dtype=dtype)
    loaded = read_state_dict(path)["x"]
    assert loaded.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(loaded, state["x"])


def test_hand_written_torch_files_are_what_torch_load_reads(tmp_path):
    torch = pytest.importorskip("torch")
    state = fx.torchvision_state()
    for layout in ("contiguous", "transposed"):
        zip_path, legacy_path = tmp_path / f"z{layout}.pth", tmp_path / f"l{layout}.pth"
        fx.write_torch_zip(zip_path, state, layout)
        fx.write_torch_legacy(legacy_path, state, layout)
        python2_path = tmp_path / f"p{layout}.pth"
        fx.write_torch_legacy(python2_path, state, layout, python2=True)
        for path in (zip_path, legacy_path, python2_path):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
            assert list(loaded) == list(state)
            for name, array in state.items():
                np.testing.assert_array_equal(loaded[name].numpy(), array)


@pytest.mark.parametrize("legacy", [False, True])
def test_files_written_by_real_torch_save(tmp_path, legacy):
    torch = pytest.importorskip("torch")
    path = tmp_path / "real.pth"
    fx.write_real_torch(path, fx.torchvision_state(), legacy)
    assert detect_format(path) == ("torch-legacy" if legacy else "torch-zip")
    assert_expected_params(load_vgg19_weights(path, widths=TINY).params)
    # views: a transposed tensor and two slices of one storage keep their strides and offsets
    base = torch.arange(60, dtype=torch.float32).reshape(3, 4, 5)
    views = {"t": base.transpose(0, 2), "a": base.flatten()[7:19].reshape(3, 4),
             "b": base[1, :, ::2], "bf": base[0].to(torch.bfloat16)}
    torch.save(views, path, _use_new_zipfile_serialization=not legacy)
    loaded = read_state_dict(path)
    for name, tensor in views.items():
        np.testing.assert_array_equal(loaded[name], tensor.float().numpy(), err_msg=name)


def _system_global():
    return f"{os.system.__module__}.system"


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("container", ["zip", "legacy", "bare pickle"])
def test_pickled_code_is_refused_and_never_run(tmp_path, protocol, container):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(fx.RunsShellCommand(f"touch {marker}"), protocol=protocol)
    path = tmp_path / "evil.pth"
    if container == "zip":
        fx.write_torch_zip(path, {}, data_pickle=payload)
    elif container == "legacy":
        fx.write_torch_legacy(path, {}, main_pickle=payload)
    else:
        path.write_bytes(payload)
    with pytest.raises(UnsafePickleError, match=rf"refusing to load '{_system_global()}' from .*evil.pth: "
                                                "only tensor data and dicts are allowed"):
        load_vgg19_weights(path, widths=TINY)
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [
    ("torch.storage", "_load_from_bytes"), ("builtins", "eval"), ("torchvision.models.vgg", "VGG"),
    ("numpy.core.multiarray", "_reconstruct"),
])
def test_any_other_global_is_refused_by_name(tmp_path, module, name):
    payload = (fx.PROTO_2 + fx._global(module, name) + fx._tuple([fx._text("x")]) + fx.REDUCE + fx.STOP)
    path = tmp_path / "odd.pth"
    fx.write_torch_zip(path, {}, data_pickle=payload)
    with pytest.raises(UnsafePickleError, match=rf"refusing to load '{module}.{name}'"):
        read_state_dict(path)


def test_persistent_ids_other_than_storages_are_refused(tmp_path):
    payload = (fx.PROTO_2 + fx._tuple([fx._text("module"), fx._text("x"), fx._text("y"), fx._text("z")])
               + fx.BINPERSID + fx.STOP)
    path = tmp_path / "module.pth"
    fx.write_torch_zip(path, {}, data_pickle=payload)
    with pytest.raises(UnsafePickleError, match="only storages are allowed"):
        read_state_dict(path)


def test_a_tensor_reaching_past_its_storage_is_an_error(tmp_path):
    storages = {"0": np.arange(6, dtype=np.float32)}
    specs = {"w": ("0", 2, (2, 3), (3, 1))}          # needs elements up to 2 + 5 = 7 of 6
    path = tmp_path / "oob.pth"
    fx.write_torch_zip(path, {}, data_pickle=fx.state_dict_pickle(storages, specs, legacy=False))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("archive/data/0", storages["0"].tobytes())
    with pytest.raises(WeightsFormatError, match="tensor 'w': reads element 7 of a storage of 6"):
        read_state_dict(path)


def test_state_dict_without_vgg_keys_lists_what_it_holds(tmp_path):
    path = tmp_path / "resnet.pth"
    fx.write_torch_zip(path, {"conv1.weight": np.ones((2, 3, 3, 3), np.float32)})
    with pytest.raises(WeightsFormatError, match=r"no torchvision VGG keys.*"
                                                 r"it holds 1 tensor: conv1\.weight$"):
        load_vgg19_weights(path, widths=TINY)


def test_a_file_without_tensors_at_its_top_level_is_said_in_a_whole_sentence(tmp_path):
    """A checkpoint nesting its state dict holds no tensors at its top level; the message
    ended in "it holds 0 tensors, e.g. "."""
    path = tmp_path / "nested.pth"
    fx.write_torch_zip(path, {})
    with pytest.raises(WeightsFormatError) as refused:
        load_vgg19_weights(path, widths=TINY)
    assert str(refused.value).endswith("it holds no tensors at its top level (a checkpoint "
                                       "that keeps the state dict inside another dict is not "
                                       "read: save that dict on its own)")


# --------------------------------------------------------------------- Keras

@pytest.mark.parametrize("keras_version", [1, 2])
@pytest.mark.parametrize("whole_model", [False, True])
def test_keras_every_number_lands_in_place(tmp_path, keras_version, whole_model):
    pytest.importorskip("h5py")
    path = tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    fx.write_keras_h5(path, keras_version=keras_version, whole_model=whole_model)
    weights = load_vgg19_weights(path, widths=TINY)
    assert_expected_params(weights.params)
    p = weights.preprocess
    assert (p.channel_order, p.scale, p.std) == ("BGR", 255.0, (1.0, 1.0, 1.0))
    assert p.mean == (103.939, 116.779, 123.68)                 # B, G, R
    assert p.source.startswith("Keras vgg19_weights")


def test_keras_missing_layer_is_named(tmp_path):
    pytest.importorskip("h5py")
    path = tmp_path / "k.h5"
    fx.write_keras_h5(path, skip=("conv4_3",))
    with pytest.raises(WeightsFormatError, match="conv4_3"):
        load_vgg19_weights(path, widths=TINY)


@pytest.mark.parametrize("member, message", [
    ("block3_conv2", "layer_names lists 'block3_conv2', which is not in the file"),
    ("block3_conv2/block3_conv2/bias:0",
     "the weight_names of block3_conv2 lists 'block3_conv2/bias:0', which is not in the file"),
])
def test_keras_file_lacking_what_it_lists_names_the_file_and_the_member(tmp_path, member,
                                                                        message):
    pytest.importorskip("h5py")
    path = tmp_path / "k.h5"
    fx.write_keras_h5(path)
    fx.delete_from_h5(path, member)
    with pytest.raises(WeightsFormatError, match=f"k.h5: {message}"):
        load_vgg19_weights(path, widths=TINY)


def test_keras_without_h5py_says_what_to_install(tmp_path, monkeypatch):
    pytest.importorskip("h5py")
    path = tmp_path / "k.h5"
    fx.write_keras_h5(path)
    monkeypatch.setitem(sys.modules, "h5py", None)     # `import h5py` now fails
    with pytest.raises(ReaderNotInstalled, match=r"k.h5: .*pip install 'scratchnet\[keras\]'"):
        load_vgg19_weights(path, widths=TINY)
    assert issubclass(ReaderNotInstalled, ImportError)


# ------------------------------------------------------- detection by content

@pytest.mark.parametrize("fmt", list(WRITERS))
@pytest.mark.parametrize("misleading_name", ["weights.pth", "weights.mat", "weights.h5", "weights"])
def test_format_comes_from_content_not_name(tmp_path, fmt, misleading_name):
    written = tmp_path / "original"
    WRITERS[fmt](written)
    path = tmp_path / misleading_name
    shutil.copyfile(written, path)
    assert detect_format(path) == fmt
    assert_expected_params(load_vgg19_weights(path, widths=TINY).params)


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"just some text, not weights", "unrecognised content"),
    (b"MATLAB 7.3 MAT-file, Platform: GLNXA64" + bytes(500), "v7.3"),
    (bytes(257) + b"ustar" + bytes(250), "tar archive"),
    (b"\x80\x02K\x07.", "unrecognised content"),     # a pickle, but not torch's magic number
])
def test_unknown_content_is_explained(tmp_path, content, message):
    path = tmp_path / "x.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsFormatError, match=message):
        load_vgg19_weights(path, widths=TINY)


def test_a_zip_of_something_else_is_explained(tmp_path):
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(WeightsFormatError, match="neither an .npz nor a PyTorch file"):
        load_vgg19_weights(path, widths=TINY)


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_truncated_files_are_reported_with_their_name(tmp_path, fmt):
    path = tmp_path / "cut"
    WRITERS[fmt](path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsFormatError, match=r"cut: .*truncated"):
        load_vgg19_weights(path, widths=TINY)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        load_vgg19_weights(tmp_path / "absent.mat")
    (tmp_path / "weights.pth").mkdir()
    with pytest.raises(FileNotFoundError, match="weights.pth: a folder, not a weights file"):
        load_vgg19_weights(tmp_path / "weights.pth")


# --------------------------------------------------------------- validation

def test_real_widths_reject_tiny_weights_naming_layer_and_shapes(tmp_path):
    path = tmp_path / "tiny.mat"
    fx.write_matconvnet(path)
    with pytest.raises(WeightsFormatError, match=r"conv1_1\.weight has shape \(2, 3, 3, 3\), "
                                                 r"expected \(64, 3, 3, 3\)"):
        load_vgg19_weights(path)


def test_widths_none_checks_only_that_layers_fit_together(tmp_path):
    path = tmp_path / "tiny.mat"
    fx.write_matconvnet(path)
    assert_expected_params(load_vgg19_weights(path, widths=None).params)
    bad = fx.kernel_hwio(5, 4, 4)                  # conv3_1 must take 3 channels, not 4
    fx.write_matconvnet(path, kernels={"conv3_1": bad})
    message = r"conv3_1\.weight has shape \(4, 4, 3, 3\), expected \(4, 3, 3, 3\)"
    with pytest.raises(WeightsFormatError, match=message):
        load_vgg19_weights(path, widths=None)


# --------------------------------------------------------------- preprocess

PIXEL = np.array([1.0, 0.5, 0.0]).reshape(1, 3, 1, 1)   # R, G, B


@pytest.mark.parametrize("fmt, expected", [
    ("matconvnet", [255 - 120.0, 127.5 - 110.0, 0 - 100.0]),                    # fixture's mean
    ("torch-zip", [(1 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0 - 0.406) / 0.225]),
    ("keras-h5", [0 - 103.939, 127.5 - 116.779, 255 - 123.68]),                  # B, G, R
])
def test_preprocess_by_hand_per_source(tmp_path, fmt, expected):
    path = tmp_path / "w"
    WRITERS[fmt](path)
    weights = load_vgg19_weights(path, widths=TINY)
    np.testing.assert_allclose(weights.preprocess_array(PIXEL).ravel(), expected, rtol=1e-12)
    np.testing.assert_allclose(weights.deprocess_array(weights.preprocess_array(PIXEL)), PIXEL, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), order=st.sampled_from(["RGB", "BGR"]),
       shape=hnp.array_shapes(min_dims=4, max_dims=4, max_side=4).map(lambda s: (s[0], 3) + s[2:]),
       data=st.data())
def test_deprocess_undoes_preprocess(dtype, order, shape, data):
    images = data.draw(hnp.arrays(dtype, shape, elements=st.floats(0, 1, width=32)))
    p = Preprocess(order, 255.0 if order == "BGR" else 1.0, (0.4, 0.5, 0.6), (0.2, 0.3, 0.25))
    x_pre = p.preprocess_array(images)
    assert x_pre.dtype == dtype and x_pre.shape == shape
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(p.deprocess_array(x_pre), images, atol=tolerance)
    # channel c of x_pre comes from channel pi(c) of the image
    source_channel = 0 if order == "RGB" else 2
    np.testing.assert_allclose(x_pre[:, 0], (p.scale * images[:, source_channel] - 0.4) / 0.2,
                               rtol=1e-5, atol=tolerance)


def test_preprocess_rejects_bad_input():
    p = Preprocess("RGB", 1.0, (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match=r"images: expected shape \(N, 3, n_H, n_W\)"):
        p.preprocess_array(np.zeros((1, 4, 2, 2)))
    with pytest.raises(TypeError, match="images: expected a float array"):
        p.preprocess_array(np.zeros((1, 3, 2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="channel_order"):
        Preprocess("GBR", 1.0, (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="positive"):
        Preprocess("RGB", 1.0, (0.0, 0.0, 0.0), (1.0, 0.0, 1.0))


@pytest.mark.parametrize("fields, message", [
    ({"mean": (np.nan, 0.0, 0.0)}, "mean: expected 3 finite numbers, got [nan, 0.0, 0.0]"),
    ({"std": (1.0, np.inf, 1.0)}, "std: expected 3 finite positive numbers, got [1.0, inf, 1.0]"),
    ({"scale": np.nan}, "scale: expected a finite positive number, got nan"),
    ({"scale": np.ones(3)}, "scale: expected a finite positive number, got [1.0, 1.0, 1.0]"),
    ({"scale": "255"}, "scale: expected a finite positive number, got '255'"),
    ({"mean": (1.0, 2.0)}, "mean: expected 3 finite numbers, got [1.0, 2.0]"),
    ({"mean": [1.0, [2.0, 3.0]]}, "mean: expected 3 finite numbers, got [1.0, [2.0, 3.0]]"),
    ({"mean": np.zeros((4, 4))}, "mean: expected 3 finite numbers, got an array of shape (4, 4)"),
])
def test_preprocess_refuses_values_that_are_not_finite_numbers(fields, message):
    arguments = {"channel_order": "RGB", "scale": 1.0, "mean": (0.0, 0.0, 0.0), **fields}
    with pytest.raises(ValueError) as refused:
        Preprocess(**arguments)
    assert str(refused.value) == message


# ------------------------------------------------------- conversion, .npz

@pytest.mark.parametrize("fmt", ["matconvnet", "torch-zip", "torch-legacy", "keras-h5"])
def test_conversion_round_trip(tmp_path, fmt):
    source = tmp_path / "source"
    WRITERS[fmt](source)
    out = tmp_path / "vgg19.npz"
    out.write_bytes(b"an older file, to be replaced")
    original = convert_weights(source, out, widths=TINY)
    assert detect_format(out) == "scratchnet-npz"
    converted = load_vgg19_weights(out, widths=TINY)
    assert_expected_params(converted.params)
    assert converted.preprocess == original.preprocess
    assert converted.source_path == str(out.resolve())
    with np.load(out, allow_pickle=False) as archive:   # no entry needs pickle
        assert str(archive["format"]) == "scratchnet-vgg19-weights/1"
        assert str(archive["preprocess.channel_order"]) == original.preprocess.channel_order


def test_npz_without_our_format_tag_is_explained(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, **{"conv1_1.weight": np.ones((2, 3, 3, 3))})
    with pytest.raises(WeightsFormatError, match="not scratchnet VGG19 weights"):
        load_vgg19_weights(path, widths=TINY)


@pytest.mark.parametrize("key, value, message", [
    ("scale", np.ones(3), "scale: expected a finite positive number, got [1.0, 1.0, 1.0]"),
    ("scale", np.array("255"), "scale: expected a finite positive number, got '255'"),
    ("mean", np.array([np.nan, 0.0, 0.0]), "mean: expected 3 finite numbers, got [nan, 0.0, 0.0]"),
    ("std", np.array("one"), "std: expected 3 finite positive numbers, got 'one'"),
    ("channel_order", np.array("GBR"), "channel_order: expected 'RGB' or 'BGR', got 'GBR'"),
])
def test_npz_with_a_bad_preprocess_field_names_the_file_and_the_field(tmp_path, key, value,
                                                                      message):
    path = _written(tmp_path, "scratchnet-npz")
    fx.replace_in_npz(path, {f"preprocess.{key}": value})
    with pytest.raises(WeightsFormatError) as refused:
        load_vgg19_weights(path, widths=TINY)
    assert str(refused.value) == f"{path}: preprocess.{message}"


def test_matconvnet_average_image_that_is_not_finite_names_the_file(tmp_path):
    path = tmp_path / "nan.mat"
    fx.write_matconvnet(path, average_image=(120.0, np.nan, 100.0))
    with pytest.raises(WeightsFormatError, match="nan.mat: averageImage should hold finite"):
        load_vgg19_weights(path, widths=TINY)


def test_save_refuses_incomplete_weights(tmp_path):
    weights = load_vgg19_weights(_written(tmp_path, "matconvnet"), widths=TINY)
    params = dict(weights.params)
    del params["conv2_2.bias"]
    incomplete = scratchnet.io.VGGWeights(params, weights.preprocess, weights.source_path)
    with pytest.raises(WeightsFormatError, match="conv2_2"):
        save_vgg19_weights(incomplete, tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


def _written(tmp_path, fmt):
    path = tmp_path / f"written-{fmt}"
    WRITERS[fmt](path)
    return path


# ------------------------------------------------------------------ search

@pytest.fixture
def clean_home(tmp_path, monkeypatch):
    """A fresh HOME and working folder, with none of the search variables set."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for variable in ("XDG_CACHE_HOME", "TORCH_HOME", "KERAS_HOME", "SCRATCHNET_WEIGHTS"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(work)
    return home, work


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_search_order_and_the_not_found_message(clean_home):
    home, work = clean_home
    places = [
        home / ".cache/torch/hub/checkpoints/vgg19-dcbb9e9d.pth",
        home / ".keras/models/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        home / ".cache/scratchnet/vgg19.npz",
        home / ".cache/scratchnet/imagenet-vgg-verydeep-19.mat",
        work / "imagenet-vgg-verydeep-19.mat",
        work / "pretrained-model/imagenet-vgg-verydeep-19.mat",
    ]
    searched = [pathlib.Path(p) for p, _ in weights_search_paths()]
    assert [searched.index(p) for p in places] == sorted(searched.index(p) for p in places)
    with pytest.raises(WeightsNotFound) as caught:
        find_vgg19_weights()
    for path in searched:
        assert str(path) in str(caught.value)
    assert "nothing is downloaded" in str(caught.value)
    for place in reversed(places):          # each new file found wins over the later ones
        _touch(place)
        assert pathlib.Path(find_vgg19_weights()) == place


def test_search_follows_the_cache_variables(clean_home, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    npz = _touch(tmp_path / "xdg/scratchnet/vgg19.npz")
    assert pathlib.Path(find_vgg19_weights()) == npz
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    h5 = _touch(tmp_path / "keras/models/vgg19_weights_tf_dim_ordering_tf_kernels.h5")
    assert pathlib.Path(find_vgg19_weights()) == h5
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    pth = _touch(tmp_path / "torch/hub/checkpoints/vgg19-dcbb9e9d.pth")
    assert pathlib.Path(find_vgg19_weights()) == pth


def test_scratchnet_weights_variable_comes_first_and_must_exist(clean_home, tmp_path, monkeypatch):
    home, _ = clean_home
    _touch(home / ".cache/torch/hub/checkpoints/vgg19-dcbb9e9d.pth")
    chosen = _touch(tmp_path / "mine.mat")
    monkeypatch.setenv("SCRATCHNET_WEIGHTS", str(chosen))
    assert pathlib.Path(find_vgg19_weights()) == chosen
    monkeypatch.setenv("SCRATCHNET_WEIGHTS", str(tmp_path / "typo.mat"))
    with pytest.raises(WeightsNotFound, match="SCRATCHNET_WEIGHTS is set to .*typo.mat"):
        find_vgg19_weights()


def test_load_without_a_path_reads_the_file_found(clean_home):
    _, work = clean_home
    fx.write_matconvnet(work / "imagenet-vgg-verydeep-19.mat")
    weights = load_vgg19_weights(widths=TINY)
    assert_expected_params(weights.params)
    assert weights.source_path == str(work / "imagenet-vgg-verydeep-19.mat")


# -------------------------------------------------------------------- docs

@pytest.mark.parametrize("module", ["scratchnet.io", "scratchnet.io.layout"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
