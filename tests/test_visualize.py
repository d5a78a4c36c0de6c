"""scratchnet.visualize: nine patches, the figures, activation maximisation.

Oracles: the full activation maps computed directly (the nine best values
are the nine largest of all (image, position) scores, or of each image's
maximum); patches against crops of a padded copy of the image; a patch is
all the unit sees (noise outside it leaves the activation unchanged);
activation maximisation against the start image, noise and photographs.
"""

import numpy as np
import pytest

from scratchnet import Tensor, gradcheck, no_grad
from scratchnet.face.dlib import resnet
from scratchnet.face.synthetic import synthetic_faces
from scratchnet.io.dlib_dnn import read_dlib_network
from scratchnet.models import FaceEncoder, vgg19
from scratchnet.visualize import (
    cut_window,
    default_layers,
    layer_figure,
    layer_names,
    maximize_activation,
    maximized_figure,
    mean_activation,
    nine_patches,
    photo_crops,
    receptive_field,
    scan,
    unit_grid,
)
from scratchnet.visualize.figures import patch_cell
from scratchnet.visualize.layers import layer_shapes, network_input, run_layers
from scratchnet.visualize.patches import STRIPES, TopActivations

TINY = (4, 4, 6, 6, 6)


@pytest.fixture(scope="module")
def tiny_vgg():
    return vgg19(weights="random", widths=TINY, note=None)


@pytest.fixture(scope="module")
def crops():
    return photo_crops(10, 40, seed=1)


def full_activations(model, images, layer):
    """a^[l] of every image, in one forward pass: (N, n_C, *spatial)."""
    with no_grad():
        return run_layers(model, network_input(model, images), [layer])[layer].data


# ------------------------------------------------------------------ the chains

def test_each_model_is_the_chain_of_its_named_layers(tiny_vgg):
    from test_dlib_resnet import _tiny_resnet_file

    from scratchnet import functional as F

    x = np.random.default_rng(2).random((2, 3, 64, 64), dtype=np.float32)
    with no_grad():
        chain = run_layers(tiny_vgg, tiny_vgg.preprocess(x), ["conv3_1", "conv5_4"])
        direct = tiny_vgg.features(tiny_vgg.preprocess(x), ["conv3_1", "conv5_4"])
        for name in chain:
            np.testing.assert_array_equal(chain[name].data, direct[name].data)
        encoder = FaceEncoder(width=4, seed=1).eval()
        embedding = run_layers(encoder, x, ["embedding"])["embedding"]
        np.testing.assert_array_equal(F.normalize(embedding, dim=1).data, encoder(Tensor(x)).data)
        tiny_dlib = resnet.build_face_resnet(read_dlib_network(_tiny_resnet_file()[0]))
        head = run_layers(tiny_dlib, x[:, :, :29, :29], ["head"])["head"]
        np.testing.assert_array_equal(head.data, tiny_dlib(Tensor(x[:, :, :29, :29])).data)


def test_dlib_input_from_rgb_is_its_preprocessing():
    from test_dlib_resnet import _tiny_resnet_file

    tiny_dlib = resnet.build_face_resnet(read_dlib_network(_tiny_resnet_file()[0]))
    chips = np.random.default_rng(3).integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    rgb = chips.transpose(0, 3, 1, 2).astype(np.float32) / 255      # (N, H, W, 3) -> (N, 3, H, W)
    np.testing.assert_allclose(tiny_dlib.input_from_rgb(rgb), tiny_dlib.preprocess(chips),
                               rtol=0, atol=1e-6)


# ------------------------------------------------------------------ the scan

@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_best_of_all_positions_against_the_full_maps(tiny_vgg, crops, batch_size):
    a = full_activations(tiny_vgg, crops, "conv2_1")
    top = scan(tiny_vgg, crops, ["conv2_1"], count=9, distinct_images=False,
               batch_size=batch_size)["conv2_1"]
    for unit in range(a.shape[1]):
        scores = a[:, unit].reshape(-1)                   # (N P,): every (image, position)
        np.testing.assert_array_equal(top.activations[unit], np.sort(scores)[::-1][:9])
        o = np.unravel_index(top.flat_position[unit], a.shape[2:])
        np.testing.assert_array_equal(a[(top.image_index[unit], unit) + o], top.activations[unit])


@pytest.mark.parametrize("batch_size", [2, 16])
def test_best_images_against_each_image_maximum(tiny_vgg, crops, batch_size):
    a = full_activations(tiny_vgg, crops, "conv3_1")
    top = scan(tiny_vgg, crops, ["conv3_1"], count=9, batch_size=batch_size)["conv3_1"]
    per_image = a.reshape(a.shape[0], a.shape[1], -1).max(axis=2)          # (N, C)
    for unit in range(a.shape[1]):
        assert len(set(top.image_index[unit])) == 9
        np.testing.assert_array_equal(top.activations[unit], np.sort(per_image[:, unit])[::-1][:9])
        np.testing.assert_array_equal(per_image[top.image_index[unit], unit],
                                      top.activations[unit])


def test_fewer_images_than_patches(tiny_vgg, crops):
    found = nine_patches(tiny_vgg, "conv1_2", [0, 3], crops[:4])
    assert [len(unit.activations) for unit in found.units] == [4, 4]
    assert sorted(found.units[0].image_index) == [0, 1, 2, 3]


def test_strongest_units_have_the_highest_mean_of_their_best():
    # 2 images, 3 channels, 2 positions; best two per channel (distinct images):
    # channel 0: 4, 1 -> mean 2.5;  channel 1: 3, 3 -> 3;  channel 2: 5, 0 -> 2.5
    a = np.array([[[4, 0], [3, 1], [5, 0]],
                  [[0, 1], [2, 3], [0, 0]]], dtype=np.float32)
    top = TopActivations.empty(3, 2, (2,))
    top.add_batch(a[:1], 0, distinct_images=True)
    top.add_batch(a[1:], 1, distinct_images=True)
    np.testing.assert_array_equal(top.activations, [[4, 1], [3, 3], [5, 0]])
    np.testing.assert_array_equal(top.image_index, [[0, 1], [0, 1], [0, 1]])  # tie: image 0
    np.testing.assert_array_equal(top.flat_position, [[0, 1], [0, 1], [0, 0]])
    assert top.strongest_units(2) == [1, 0]           # ties go to the lower channel


@pytest.mark.parametrize("splits", [[4], [1, 3], [2, 1, 1]])
def test_ties_go_to_the_first_image_and_position_whatever_the_batches(splits):
    a = np.zeros((4, 1, 3), dtype=np.float32)       # 4 images, 1 channel, 3 positions
    a[2, 0, 1] = 1.0
    top = TopActivations.empty(1, 3, (3,))
    first = 0
    for size in splits:
        top.add_batch(a[first:first + size], first, distinct_images=False)
        first += size
    # by hand: (image 2, position 1) = 1, then the zeros of image 0 at positions 0 and 1
    assert top.activations.tolist() == [[1, 0, 0]]
    assert top.image_index.tolist() == [[2, 0, 0]] and top.flat_position.tolist() == [[1, 0, 1]]


# ------------------------------------------------------------------ the patches

def padded_crop(image, start, size, margin=300):
    """Oracle: the window from a copy of `image` padded with NaN on every side."""
    padded = np.pad(image, ((0, 0), (margin, margin), (margin, margin)), constant_values=np.nan)
    (y, x), (h, w) = start, size
    return padded[:, margin + y:margin + y + h, margin + x:margin + x + w]


def test_patches_are_the_receptive_fields(tiny_vgg, crops):
    found = nine_patches(tiny_vgg, "conv3_1", [1, 2], crops)
    field = receptive_field(tiny_vgg, "conv3_1", crops.shape[1:])
    assert found.field == field and field.size == (24, 24)
    for unit in found.units:
        assert unit.patches.shape == (9, 3, 24, 24) and unit.inside.shape == (9, 24, 24)
        for n, o, start, patch, inside in zip(unit.image_index, unit.position,
                                              unit.window_start, unit.patches, unit.inside):
            np.testing.assert_array_equal(start, np.add(field.start, np.multiply(o, field.jump)))
            expected = padded_crop(crops[n], start, field.size)
            np.testing.assert_array_equal(inside, ~np.isnan(expected[0]))
            np.testing.assert_array_equal(patch[:, inside], expected[:, inside])
            y, x = np.indices(field.size)
            stripes = np.where((y + x) // 2 % 2, *STRIPES).astype(np.float32)
            np.testing.assert_array_equal(patch[0][~inside], stripes[~inside])


def test_a_patch_is_all_the_unit_sees(tiny_vgg, crops):
    found = nine_patches(tiny_vgg, "conv3_1", [0], crops)
    unit = found.units[0]
    rng = np.random.default_rng(5)
    for n, o, start, value in list(zip(unit.image_index, unit.position, unit.window_start,
                                       unit.activations))[:3]:
        noisy = rng.random((1,) + crops.shape[1:], dtype=np.float32)
        (top, bottom), (left, right) = [(max(s, 0), min(s + r, side)) for s, r, side in
                                        zip(start, found.field.size, crops.shape[2:])]
        noisy[0, :, top:bottom, left:right] = crops[n, :, top:bottom, left:right]
        a = full_activations(tiny_vgg, noisy, "conv3_1")
        assert a[0, 0, o[0], o[1]] == value


def test_cut_window_by_hand():
    image = np.arange(2 * 3, dtype=np.float32).reshape(1, 2, 3).repeat(3, axis=0)  # 0 1 2 / 3 4 5
    patch, inside = cut_window(image, (-1, 1), (3, 3))
    assert inside.tolist() == [[False, False, False], [True, True, False], [True, True, False]]
    assert patch[0, 1:, :2].tolist() == [[1, 2], [4, 5]]


def test_nine_patches_on_the_face_models():
    faces, _ = synthetic_faces(4, 3, seed=0, size=64)
    encoder = FaceEncoder(width=4, seed=0)
    found = nine_patches(encoder, "block2", [0, 5], faces)
    assert found.field.size == (20, 20) and len(found.units[1].activations) == 9
    assert found.image.ndim == 3 and found.image.shape[0] == 3
    from test_dlib_resnet import _tiny_resnet_file
    tiny_dlib = resnet.build_face_resnet(read_dlib_network(_tiny_resnet_file()[0]))
    found = nine_patches(tiny_dlib, "unit2", [0], faces)
    assert found.units[0].patches.shape[2:] == found.field.size


# ------------------------------------------------------------------ the figures

def test_layer_figure_for_five_layers(tiny_vgg):
    images = photo_crops(6, 32)
    layers = default_layers(tiny_vgg)
    assert layers == ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    calls = []
    figure = layer_figure(tiny_vgg, layers, images, units_per_layer=2, cell=8, batch_size=4,
                          progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 6), (6, 6)]
    assert figure.dtype == np.float32 and figure.shape[0] == 3
    assert 0 <= figure.min() and figure.max() <= 1
    chosen = layer_figure(tiny_vgg, ["conv1_1"], images, units={"conv1_1": [3]}, cell=8)
    assert chosen.shape[2] < figure.shape[2]          # one unit, one row


def test_layer_shapes_follow_the_chain_down_to_the_deepest_layer_asked_for():
    """Channels grow w, 2w, 4w over the face encoder's blocks, each block halves the side, and
    the input is halved first (its architecture)."""
    encoder = FaceEncoder(width=3, blocks=3, seed=0)
    shapes = layer_shapes(encoder, ["block2", "block1"], 64)
    assert shapes == {"shrink": (1, 3, 32, 32), "block1": (1, 3, 16, 16),
                      "block2": (1, 6, 8, 8)}
    assert encoder.training                  # looked at, not changed
    with pytest.raises(ValueError, match=r"\['block9'\] are not layers of FaceEncoder"):
        layer_shapes(encoder, ["block9"], 64)


def test_default_layers_of_the_face_models():
    assert default_layers(FaceEncoder(width=4, blocks=3)) == ["block1", "block2", "block3"]
    from test_dlib_resnet import _tiny_resnet_file
    tiny_dlib = resnet.build_face_resnet(read_dlib_network(_tiny_resnet_file()[0]))
    assert layer_names(tiny_dlib) == ["stem", "unit1", "unit2"]
    assert default_layers(tiny_dlib) == ["stem", "unit1", "unit2"]


def test_grid_puts_the_best_patch_first():
    class Found:
        unit = 0
        patches = np.stack([np.full((3, 2, 2), k / 10, np.float32) for k in range(9)])
        inside = np.ones((9, 2, 2), dtype=bool)

    grid = unit_grid(Found, cell=4)
    # cell (row, col) starts at (row * (4 + 2), col * (4 + 2)): patch k = 3 row + col
    for k in range(9):
        row, col = divmod(k, 3)
        assert grid[0, row * 6 + 1, col * 6 + 1] == pytest.approx(k / 10)
    assert grid[0, 4, 0] == 1.0                       # the white gap between rows


def test_patch_cell_keeps_pixels_and_stripes():
    patch = np.zeros((3, 2, 2), dtype=np.float32)
    patch[:, 0, 0] = 1.0
    inside = np.array([[True, True], [True, False]])
    cell = patch_cell(patch, inside, 4)
    np.testing.assert_array_equal(cell[0, :2, :2], 1.0)     # each pixel -> a 2x2 block
    large = np.zeros((3, 40, 40), dtype=np.float32)
    off = np.zeros((40, 40), dtype=bool)
    shrunk = patch_cell(large, off, 10)
    assert set(np.unique(shrunk)) <= set(np.float32(STRIPES))


# ------------------------------------------------------------------ maximisation

def test_maximisation_excites_the_unit_many_fold():
    model = vgg19(weights="random", widths=(8, 8, 8, 8, 8), note=None)
    rng = np.random.default_rng(0)
    noise = rng.random((4, 3, 48, 48), dtype=np.float32)
    photos = photo_crops(8, 48)
    for unit in (0, 3):
        picture = maximize_activation(model, "conv2_1", unit, image_size=48, steps=40, seed=unit)
        start = maximize_activation(model, "conv2_1", unit, image_size=48, steps=0, seed=unit)
        J = mean_activation(model, "conv2_1", unit, picture[None])[0]
        assert J > 5 * mean_activation(model, "conv2_1", unit, start[None])[0]
        assert J > 2 * mean_activation(model, "conv2_1", unit, noise).max()
        assert J > 2 * mean_activation(model, "conv2_1", unit, photos).max()


def test_maximisation_is_repeatable_and_leaves_the_model_alone():
    model = FaceEncoder(width=4, seed=0)          # in training mode, parameters learnable
    before = {name: array.copy() for name, array in model.state_dict().items()}
    first = maximize_activation(model, "block1", 2, image_size=32, steps=5, seed=7, decay=0.01)
    second = maximize_activation(model, "block1", 2, image_size=32, steps=5, seed=7, decay=0.01)
    np.testing.assert_array_equal(first, second)
    assert first.shape == (3, 32, 32) and 0 <= first.min() and first.max() <= 1
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert all(m.training for m in model.modules())
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_maximized_figure_runs(tiny_vgg):
    seen = []
    figure = maximized_figure(tiny_vgg, ["conv1_1", "conv2_1"], [0, 1], image_size=16, steps=2,
                              progress=lambda layer, unit: seen.append((layer, unit)))
    assert seen == [("conv1_1", 0), ("conv1_1", 1), ("conv2_1", 0), ("conv2_1", 1)]
    assert figure.shape[0] == 3 and 0 <= figure.min() and figure.max() <= 1


# ------------------------------------------------------------------ errors

def test_errors_name_the_argument(tiny_vgg, crops):
    with pytest.raises(ValueError, match="conv1_1, conv1_2.*got 'conv9_9'"):
        nine_patches(tiny_vgg, "conv9_9", 0, crops)
    with pytest.raises(ValueError, match=r"layer conv1_1 has 4 units \(0 ... 3\), got \[4\]"):
        nine_patches(tiny_vgg, "conv1_1", [0, 4], crops)
    with pytest.raises(ValueError, match="units"):
        maximize_activation(tiny_vgg, "conv1_1", 9, image_size=8, steps=1)
    with pytest.raises(ValueError, match="images"):
        nine_patches(tiny_vgg, "conv1_1", 0, crops[:, :2])
    with pytest.raises(ValueError, match="images"):
        nine_patches(tiny_vgg, "conv1_1", 0, crops * 2)
    with pytest.raises(TypeError, match="images"):
        nine_patches(tiny_vgg, "conv1_1", 0, (crops * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="layers"):
        layer_figure(tiny_vgg, ["pool1"], crops)
    encoder = FaceEncoder(width=4)
    with pytest.raises(ValueError, match="layer"):
        nine_patches(encoder, "embedding", 0, crops)
    with pytest.raises(ValueError, match="image_size"):
        maximize_activation(tiny_vgg, "conv1_1", 0, image_size=(8,), steps=1)


def test_a_tensor_image_keeps_its_gradient_path():
    """The gradient reaches the image through the preprocessing, convolutions, ReLUs and a
    pooling, and agrees with central finite differences (a float64 copy of the model)."""
    model = vgg19(weights="random", widths=TINY, note=None).double()
    image = Tensor(np.random.default_rng(0).random((1, 3, 8, 8)), requires_grad=True)
    assert gradcheck(lambda x: run_layers(model, network_input(model, x), ["conv2_1"])["conv2_1"],
                     (image,))


# the modules with examples (figures has none)
@pytest.mark.parametrize("name", ["layers", "receptive", "model_summary", "patches", "maximize",
                                  "samples"])
def test_docstring_examples_run(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"scratchnet.visualize.{name}"))
    assert result.attempted > 0       # the examples were found, not skipped
    assert result.failed == 0
