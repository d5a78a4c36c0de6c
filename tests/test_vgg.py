"""scratchnet.models.vgg19: layer names and order, activation shapes, where features stops,
preprocessing, the random-weights fallback, and weights that do not fit."""

import doctest
import re

import naive_conv
import naive_pool
import numpy as np
import pytest

import scratchnet.models.vgg
from scratchnet import Tensor, gradcheck
from scratchnet.io import (
    Preprocess,
    VGGWeights,
    WeightsFormatError,
    WeightsNotFound,
    save_vgg19_weights,
)
from scratchnet.models import IMAGENET_MEAN, IMAGENET_STD, vgg19
from scratchnet.models.vgg import activation_count, smallest_input

TINY = (2, 3, 4, 5, 5)
DEPTHS = (2, 2, 4, 4, 4)  # convolutions per block, from the VGG paper (configuration E)
PAPER_ORDER = [f"conv{block}_{i}" for block, depth in enumerate(DEPTHS, start=1)
               for i in range(1, depth + 1)]


def block_of(name):
    return int(name[4])


@pytest.fixture(scope="module")
def tiny():
    return vgg19(weights="random", widths=TINY)


def test_docstring_examples_run():
    assert doctest.testmod(scratchnet.models.vgg).failed == 0


def test_layers_are_named_and_ordered_as_in_the_paper(tiny):
    assert list(tiny.layer_names) == PAPER_ORDER
    conv_names = [name[: -len(".weight")] for name, _ in tiny.named_parameters()
                  if name.endswith(".weight")]
    assert conv_names == PAPER_ORDER


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_activation_shapes_for_a_32_pixel_image(pooling):
    model = vgg19(weights="random", pooling=pooling, widths=TINY)
    x = model.preprocess(np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32))
    activations = model.features(x, PAPER_ORDER)
    for name in PAPER_ORDER:
        side = 32 // 2 ** (block_of(name) - 1)  # one 2x2 pooling before each block after the first
        assert activations[name].shape == (2, TINY[block_of(name) - 1], side, side), name
        assert activations[name].data.min() >= 0  # taken after the ReLU


def _naive_first_two_blocks(model, x, pool):
    """conv2_1's activation from the formulas: naive convolutions and pooling, NumPy only."""
    params = model.state_dict()

    def conv_relu(a, name):
        z = naive_conv.conv(a, params[f"{name}.weight"], params[f"{name}.bias"], padding=1)
        return np.maximum(z, 0)

    a = conv_relu(conv_relu(x, "conv1_1"), "conv1_2")
    return conv_relu(pool(a, (2, 2)), "conv2_1")


@pytest.mark.parametrize("pooling, pool", [("max", naive_pool.max_pool),
                                           ("avg", naive_pool.avg_pool)])
def test_activations_follow_the_formulas(pooling, pool):
    model = vgg19(weights="random", pooling=pooling, widths=TINY).double()
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8))
    got = model.features(x, ["conv2_1"])["conv2_1"].data
    np.testing.assert_allclose(got, _naive_first_two_blocks(model, x, pool), rtol=1e-10, atol=1e-12)


def test_max_and_avg_pooling_give_different_deeper_activations():
    x = np.random.default_rng(2).random((1, 3, 16, 16), dtype=np.float32)
    by_pooling = [vgg19(weights="random", pooling=p, widths=TINY).features(x, "conv2_1")
                  for p in ("max", "avg")]
    assert not np.allclose(by_pooling[0]["conv2_1"].data, by_pooling[1]["conv2_1"].data)


def _spy_on_layers(model, monkeypatch):
    ran = []
    for name in [*PAPER_ORDER, "pool1", "pool2", "pool3", "pool4"]:
        module = getattr(model, name)

        def spy(x, _forward=module.forward, _name=name):
            ran.append(_name)
            return _forward(x)

        monkeypatch.setattr(module, "forward", spy, raising=False)
    return ran


@pytest.mark.parametrize("requested, expected", [
    (["conv1_1"], ["conv1_1"]),
    (["conv1_2"], ["conv1_1", "conv1_2"]),
    (["conv2_1", "conv1_1"], ["conv1_1", "conv1_2", "pool1", "conv2_1"]),
    (["conv4_2"], PAPER_ORDER[:8] + ["pool1", "pool2", "pool3"] + ["conv4_1", "conv4_2"]),
])
def test_features_stops_at_the_deepest_requested_layer(monkeypatch, requested, expected):
    model = vgg19(weights="random", widths=TINY)
    ran = _spy_on_layers(model, monkeypatch)
    activations = model.features(np.zeros((1, 3, 16, 16), dtype=np.float32), requested)
    assert sorted(activations) == sorted(requested)
    assert sorted(ran) == sorted(expected)
    assert len(ran) == len(expected)  # each layer once: one forward pass


def test_unknown_layer_and_too_small_image_are_explained(tiny):
    with pytest.raises(ValueError, match="conv6_1"):
        tiny.features(np.zeros((1, 3, 32, 32), dtype=np.float32), ["conv6_1"])
    with pytest.raises(ValueError, match=r"too small to reach conv5_1.*16x16"):
        tiny.features(np.zeros((1, 3, 8, 8), dtype=np.float32), ["conv5_1"])
    with pytest.raises(ValueError, match=r"\(N, 3, n_H, n_W\)"):
        tiny.features(np.zeros((1, 4, 8, 8), dtype=np.float32), ["conv1_1"])


@pytest.mark.parametrize("layers, side", [
    ("conv1_2", 1), (["conv2_1"], 2), (["conv1_1", "conv4_2"], 8), (["conv5_1", "conv1_1"], 16),
])
def test_smallest_input_halves_once_per_pooling_before_the_deepest_layer(tiny, layers, side):
    assert smallest_input([layers] if isinstance(layers, str) else layers) == side
    tiny.features(np.zeros((1, 3, side, side), dtype=np.float32), layers)  # reaches them
    if side > 1:
        with pytest.raises(ValueError, match="too small"):
            tiny.features(np.zeros((1, 3, side - 1, side), dtype=np.float32), layers)


@pytest.mark.parametrize("layers, n_H, n_W", [
    (["conv1_1"], 7, 9), (["conv2_2", "conv1_1"], 16, 12), (["conv4_2", "conv5_1"], 37, 21),
])
def test_activation_count_is_the_numbers_the_forward_pass_makes(monkeypatch, layers, n_H, n_W):
    """Every array a conv layer or a pooling returns on the way to the deepest layer, counted."""
    model = vgg19(weights="random", widths=TINY)
    made = []
    for name in [*PAPER_ORDER, "pool1", "pool2", "pool3", "pool4"]:
        module = getattr(model, name)

        def spy(x, _forward=module.forward):
            out = _forward(x)
            made.append(out.data.size)
            return out

        monkeypatch.setattr(module, "forward", spy, raising=False)
    model.features(np.zeros((1, 3, n_H, n_W), dtype=np.float32), layers)
    assert activation_count(layers, n_H, n_W, widths=TINY) == sum(made)


RECIPES = [
    Preprocess("RGB", 1.0, IMAGENET_MEAN, IMAGENET_STD, source="torchvision-like"),
    Preprocess("BGR", 255.0, (103.939, 116.779, 123.68), source="caffe-like"),
]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.source)
def test_preprocess_matches_the_recipe_and_deprocess_undoes_it(recipe):
    model = vgg19(weights="random", widths=TINY).double()
    model.preprocessing = recipe
    images = np.random.default_rng(3).random((2, 3, 5, 4))
    order = [0, 1, 2] if recipe.channel_order == "RGB" else [2, 1, 0]
    expected = np.empty_like(images)
    for c in range(3):  # x_pre[:, c] = (scale x[:, order[c]] - mean[c]) / std[c]
        expected[:, c] = (recipe.scale * images[:, order[c]] - recipe.mean[c]) / recipe.std[c]
    from_array = model.preprocess(images)
    from_tensor = model.preprocess(Tensor(images))
    assert isinstance(from_array, np.ndarray) and isinstance(from_tensor, Tensor)
    np.testing.assert_allclose(from_array, expected, rtol=1e-12)
    np.testing.assert_allclose(from_tensor.data, expected, rtol=1e-12)
    np.testing.assert_allclose(model.deprocess(from_array), images, atol=1e-12)
    np.testing.assert_allclose(model.deprocess(from_tensor).data, images, atol=1e-12)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.source)
def test_gradients_flow_through_preprocess(recipe):
    model = vgg19(weights="random", widths=TINY)
    model.preprocessing = recipe
    images = Tensor(np.random.default_rng(4).random((1, 3, 2, 3)), requires_grad=True)
    assert gradcheck(model.preprocess, (images,))
    assert gradcheck(model.deprocess, (images,))


@pytest.fixture
def no_weight_files(tmp_path, monkeypatch):
    """Every place that is searched for weights points into an empty folder."""
    for variable in ("HOME", "XDG_CACHE_HOME", "TORCH_HOME", "KERAS_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    monkeypatch.delenv("SCRATCHNET_WEIGHTS", raising=False)
    monkeypatch.chdir(tmp_path)


def test_without_weight_files_random_weights_are_used_and_said_once(no_weight_files):
    notes = []
    model = vgg19(widths=TINY, note=notes.append)
    assert len(notes) == 1 and "\n" not in notes[0]
    for words in ("random weights", "weaker", "--weights PATH", "$SCRATCHNET_WEIGHTS",
                  "vgg19-dcbb9e9d.pth", "imagenet-vgg-verydeep-19.mat"):
        assert words in notes[0]
    assert model.weights_source.startswith("random")
    assert model.preprocessing.mean == IMAGENET_MEAN and model.preprocessing.std == IMAGENET_STD
    again = vgg19(weights="random", widths=TINY)
    for name, array in model.state_dict().items():  # fixed seed: the same weights every time
        np.testing.assert_array_equal(array, again.state_dict()[name])


def test_random_weights_have_he_scale():
    model = vgg19(weights="random")
    for name in ("conv1_1", "conv3_1", "conv5_4"):
        w = getattr(model, name).weight.data
        fan_in = w.shape[1] * 9
        assert abs(w.std() / np.sqrt(2.0 / fan_in) - 1) < 0.05, name
        assert abs(w.mean()) < 0.05 * np.sqrt(2.0 / fan_in)
        assert not getattr(model, name).bias.data.any()


def test_random_features_keep_their_scale_through_the_network():
    model = vgg19(weights="random")
    x = model.preprocess(np.random.default_rng(5).random((1, 3, 64, 64), dtype=np.float32))
    activations = model.features(x, PAPER_ORDER)
    second_moments = [float(np.mean(a.data**2)) for a in activations.values()]
    assert 0.1 < min(second_moments) and max(second_moments) < 30


def test_a_named_but_missing_weights_file_is_an_error(no_weight_files, monkeypatch, tmp_path):
    monkeypatch.setenv("SCRATCHNET_WEIGHTS", str(tmp_path / "nowhere.npz"))
    with pytest.raises(WeightsNotFound, match="nowhere.npz"):
        vgg19(widths=TINY, note=None)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        vgg19(weights=tmp_path / "missing.pth", widths=TINY)


def _tiny_weights(widths=TINY):
    rng = np.random.default_rng(6)
    params = {name: rng.standard_normal(array.shape).astype(np.float32)
              for name, array in vgg19(weights="random", widths=widths).state_dict().items()}
    recipe = Preprocess("BGR", 255.0, (1.0, 2.0, 3.0), source="test")
    return VGGWeights(params, recipe, "memory")


def test_weights_from_a_file_land_in_their_layers(tmp_path):
    weights = _tiny_weights()
    path = tmp_path / "tiny.npz"
    save_vgg19_weights(weights, path)
    model = vgg19(weights=path, widths=TINY)
    for name, array in weights.params.items():
        np.testing.assert_array_equal(model.state_dict()[name], array)
    assert model.preprocessing.channel_order == "BGR" and model.preprocessing.scale == 255
    assert model.weights_source == str(path)
    assert not any(p.requires_grad for p in model.parameters())


def test_weights_that_do_not_fit_name_the_layer_and_both_shapes(tmp_path):
    path = tmp_path / "tiny.npz"
    save_vgg19_weights(_tiny_weights(), path)
    both_shapes = r"conv1_1\.weight.*\(2, 3, 3, 3\).*\(4, 3, 3, 3\)"
    with pytest.raises(WeightsFormatError, match=both_shapes):
        vgg19(weights=path, widths=(4, 3, 4, 5, 5))
    wrong = _tiny_weights()
    wrong.params["conv3_2.weight"] = np.zeros((4, 5, 3, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"conv3_2\.weight") as error:
        vgg19(weights=wrong, widths=TINY)
    assert "(4, 5, 3, 3)" in str(error.value) and "(4, 4, 3, 3)" in str(error.value)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="pooling"):
        vgg19(weights="random", pooling="min", widths=TINY)
    with pytest.raises(TypeError, match="weights"):
        vgg19(weights=3, widths=TINY)


def test_summary_lists_every_layer_with_its_shape(tiny):
    text = tiny.summary((3, 32, 32), print_fn=None)
    for name in PAPER_ORDER:
        assert name in text
    assert re.search(r"conv5_4 \(Conv2d\+ReLU\) +\(N, 5, 2, 2\) +230 ", text)  # 5*5*9 + 5
    assert text.endswith("Shapes: 32x32x3 -> 32x32x2 -> 16x16x2 -> 16x16x3 -> 8x8x3 -> 8x8x4 "
                         "-> 4x4x4 -> 4x4x5 -> 2x2x5")  # pool4 and conv5_x: one shape, written once
