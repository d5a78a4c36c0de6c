"""scratchnet.visualize.receptive: the window of the input each unit sees.

Oracles:
(1) brute force: a copy of the network with positive weights and zero
    biases, fed one input pixel at a time (a one-hot image): an output unit
    is non-zero exactly when it depends on that pixel (with the 3x3
    convolutions unfolded: Winograd's transforms multiply by 1/6 and 1/24, so
    a unit that does not depend on the pixel may come out as round-off
    instead of an exact 0). The pixels it depends
    on must lie inside its window, the window's ends that are on the picture
    must be among them, and when no layer skips pixels (no dilation, no
    stride larger than its kernel) they must fill the clipped window;
    on random stacks of 1-3D convolutions, poolings and residual units
    drawn by hypothesis, and on VGG19, the face encoder and dlib's face
    ResNet at small sizes;
(2) real weights: noise outside a unit's window leaves it unchanged, a
    change at the window's corner does not;
(3) hand-worked values and VGG19's published receptive fields.
"""

from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from kernels import winograd
from scratchnet import Tensor, nn, no_grad
from scratchnet import functional as F
from scratchnet.face.dlib import resnet
from scratchnet.face.dlib.files import ModelFileNotFound, find_model_file
from scratchnet.io.dlib_dnn import read_dlib_network, read_dlib_network_file
from scratchnet.models import FaceEncoder, vgg19
from scratchnet.visualize import receptive_field, receptive_fields
from scratchnet.visualize.layers import layer_names, network_input, run_layers
from scratchnet.visualize.receptive import split_input_shape

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
ONE_HOTS_PER_PASS = 256


# ------------------------------------------------------------------ the brute force

def make_positive(model):
    """Weights in [0.5, 1.5], biases and betas 0, batch norm's running mean 0 and var 1."""
    rng = np.random.default_rng(0)
    model.double().eval()
    for name, param in model.named_parameters():
        zero = name.endswith("bias") or name.endswith("beta")
        param.data[...] = 0.0 if zero else rng.uniform(0.5, 1.5, param.shape)
    for name, buffer in model.named_buffers():
        if name.endswith("running_mean"):
            buffer[...] = 0.0
        elif name.endswith("running_var"):
            buffer[...] = 1.0
    return model


def dependence(model, channels, spatial, layers):
    """For each layer: depends[p, *o] is True when output position o changes with input pixel p.

    Input pixel p (row-major over `spatial`) is set to 1 in every channel, all else 0.
    The 3x3 convolutions run unfolded, where a sum of zeros is exactly 0.
    """
    n_pixels = int(np.prod(spatial))
    found = {layer: [] for layer in layers}
    for first in range(0, n_pixels, ONE_HOTS_PER_PASS):
        pixels = np.arange(first, min(first + ONE_HOTS_PER_PASS, n_pixels))
        x = np.zeros((len(pixels), channels, n_pixels))
        x[np.arange(len(pixels)), :, pixels] = 1.0
        x = x.reshape((len(pixels), channels) + tuple(spatial))
        with no_grad(), mock.patch.object(winograd, "MIN_ROWS", np.inf):
            outputs = run_layers(model, Tensor(x), layers)
        for layer in layers:
            found[layer].append((outputs[layer].data > 0).any(axis=1))  # any channel
    return {layer: np.concatenate(parts) for layer, parts in found.items()}


def check_against_brute_force(field, depends, spatial, dense, ends_below=None):
    """The properties of the module docstring, for every output position o.

    Every pixel a unit depends on lies in its window. For a unit whose window
    lies wholly on the picture the window's first and last pixel along each
    axis are among them, and (dense) they fill a box. Near the border a unit
    may read padding only, or a position of a layer below that is itself all
    padding, so there only the first property is asked for.
    ends_below: the ends are checked only at positions o < ends_below (a
    residual sum zero-pads the smaller path, whose units then see less).
    """
    assert depends.shape[1:] == field.output_sizes
    pixels = np.array(list(np.ndindex(*spatial)))                   # (P, n_dims)
    interior = 0
    for position in np.ndindex(*field.output_sizes):
        seen = pixels[depends[(slice(None),) + position]]
        window = field.window(position)
        for axis, (first, stop) in enumerate(window):
            assert np.all((first <= seen[:, axis]) & (seen[:, axis] < stop)), (position, window)
        on_picture = all(first >= 0 and stop <= n for (first, stop), n in zip(window, spatial))
        checked = ends_below is None or all(o < e for o, e in zip(position, ends_below))
        if not (on_picture and checked):
            continue
        interior += 1
        assert [(low, high + 1) for low, high in zip(seen.min(axis=0), seen.max(axis=0))] == \
            list(window), (position, window)
        if dense:
            assert len(seen) == np.prod(field.size), (position, window, len(seen))
    return interior


# ------------------------------------------------------------------ random stacks

class Residual(nn.Module):
    """relu(branch(a) + shortcut(a)): a residual unit with a projection shortcut when s > 1."""

    def __init__(self, branch, shortcut):
        super().__init__()
        self.branch, self.shortcut = branch, shortcut

    def paths(self):
        return [self.branch, self.shortcut]

    def forward(self, a):
        return F.relu(F.add(self.branch(a), self.shortcut(a)))


@st.composite
def stacks(draw):
    """(model, channels, input sizes, dense): 1 to 4 layers of one dimensionality."""
    n = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(3, {1: 24, 2: 11, 3: 6}[n])) for _ in range(n))
    channels = draw(st.integers(1, 2))
    layers, dense = [], True
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "max", "avg", "relu", "bn", "residual"]))
        if kind == "conv":
            k = tuple(draw(st.integers(1, 4)) for _ in range(n))
            s = tuple(draw(st.integers(1, 3)) for _ in range(n))
            d = tuple(draw(st.integers(1, 2)) for _ in range(n))
            p = draw(st.one_of(st.just("same"), st.tuples(*[st.integers(0, 2)] * n)))
            layers.append(CONV[n](channels, channels, k, stride=s, padding=p, dilation=d))
            dense &= all(kk >= ss for kk, ss in zip(k, s)) and all(v == 1 for v in d)
        elif kind in ("max", "avg"):
            k = draw(st.integers(1, 3))
            s = draw(st.integers(1, 3))
            p = draw(st.integers(0, k // 2))
            ceil_mode = draw(st.booleans())
            if kind == "max":
                d = draw(st.integers(1, 2))
                layers.append(MAX_POOL[n](k, stride=s, padding=p, dilation=d,
                                          ceil_mode=ceil_mode))
            else:
                d = 1
                layers.append(AVG_POOL[n](k, stride=s, padding=p, ceil_mode=ceil_mode))
            dense &= k >= s and d == 1
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "bn":
            layers.append(BATCH_NORM[n](channels))
        else:
            k, s = draw(st.sampled_from([1, 3])), draw(st.integers(1, 2))  # both paths: ceil(n/s)
            branch = nn.Sequential(CONV[n](channels, channels, k, stride=s, padding=k // 2),
                                   nn.ReLU(), CONV[n](channels, channels, 3, padding=1))
            shortcut = nn.Identity() if s == 1 else CONV[n](channels, channels, 1, stride=s)
            layers.append(Residual(branch, shortcut))
            dense = False   # the union of two windows need not be filled
    return nn.Sequential(*layers), channels, spatial, dense


@settings(max_examples=60, deadline=None)
@given(stacks())
def test_random_stacks_against_brute_force(drawn):
    model, channels, spatial, dense = drawn
    try:
        fields = receptive_fields(model, (channels,) + spatial)
    except ValueError:
        assume(False)           # an input too small for the stack: nothing to check
    make_positive(model)
    layers = [name for name, _ in fields]
    depends = dependence(model, channels, spatial, layers)
    interior = [check_against_brute_force(field, depends[name], spatial, dense)
                for name, field in fields]
    event(f"last layer has interior units: {interior[-1] > 0}")


def test_brute_force_catches_a_wrong_window():
    # the check itself must fail on a window that is off by one
    import dataclasses

    model = make_positive(nn.Sequential(nn.Conv1d(1, 1, 3, padding=1), nn.MaxPool1d(2)))
    field = receptive_field(model, "1", (1, 9))
    depends = dependence(model, 1, (9,), ["1"])["1"]
    check_against_brute_force(field, depends, (9,), dense=True)
    for wrong in (dataclasses.replace(field, start=(field.start[0] + 1,)),
                  dataclasses.replace(field, size=(field.size[0] - 1,)),
                  dataclasses.replace(field, jump=(field.jump[0] + 1,))):
        with pytest.raises(AssertionError):
            check_against_brute_force(wrong, depends, (9,), dense=True)


# ------------------------------------------------------------------ the real models

def test_vgg19_against_brute_force():
    model = make_positive(vgg19(weights="random", widths=(2, 2, 2, 2, 2), note=None))
    layers = ["conv1_1", "conv1_2", "pool1", "conv2_1", "conv3_1", "conv4_1"]
    spatial = (24, 24)
    fields = dict(receptive_fields(model, (3,) + spatial))
    depends = dependence(model, 3, spatial, layers)
    for layer in layers:
        check_against_brute_force(fields[layer], depends[layer], spatial, dense=True)


def test_face_encoder_against_brute_force():
    model = make_positive(FaceEncoder(width=2, blocks=3, seed=0))
    spatial = (32, 32)           # the chain takes any size; forward() wants image_size
    fields = dict(receptive_fields(model, (3,) + spatial))
    layers = layer_names(model)
    assert layers == ["block1", "block2", "block3"]
    depends = dependence(model, 3, spatial, layers)
    for layer in layers:
        check_against_brute_force(fields[layer], depends[layer], spatial, dense=True)


def _tiny_dlib():
    from test_dlib_resnet import _tiny_resnet_file

    return resnet.build_face_resnet(read_dlib_network(_tiny_resnet_file()[0]))


@pytest.mark.parametrize("side, ends_below", [(23, None), (29, (2, 2))])
def test_tiny_dlib_resnet_against_brute_force(side, ends_below):
    # 23: the down unit's conv and pool both give 2x2. 29: the conv gives 2x2, the pool 3x3
    # and the sum is zero-padded, so the last row and column see the shortcut only.
    model = make_positive(_tiny_dlib())
    spatial = (side, side)
    fields = dict(receptive_fields(model, (3,) + spatial))
    layers = ["stem", "pool", "unit1", "unit2"]
    depends = dependence(model, 3, spatial, layers)
    for layer in layers:
        below = ends_below if layer == "unit2" else None
        check_against_brute_force(fields[layer], depends[layer], spatial, dense=True,
                                  ends_below=below)


def test_real_dlib_resnet_against_brute_force():
    try:
        path = find_model_file("resnet")
    except ModelFileNotFound:
        pytest.skip("dlib's face ResNet file is not installed (scratchnet[pretrained])")
    model = make_positive(resnet.build_face_resnet(read_dlib_network_file(path)))
    chain = nn.Sequential(dict(model.named_layers()[:6]))      # stem, pool, unit1 ... unit4
    spatial = (43, 43)           # stem 19, pool 9 (odd), so unit4's two paths give 4x4 each
    fields = dict(receptive_fields(model, (3,) + spatial, last="unit4"))
    depends = dependence(chain, 3, spatial, ["stem", "unit1", "unit4"])
    for layer in ("stem", "unit1", "unit4"):
        check_against_brute_force(fields[layer], depends[layer], spatial, dense=True)


def test_noise_outside_the_window_changes_nothing():
    model = vgg19(weights="random", widths=(8, 8, 8, 8, 8), note=None)
    rng = np.random.default_rng(3)
    images = rng.random((1, 3, 40, 40), dtype=np.float32)
    field = receptive_field(model, "conv3_1", (3, 40, 40))
    position = (4, 6)
    (top, bottom), (left, right) = field.clipped(position)[0]
    noisy = rng.random(images.shape, dtype=np.float32)
    noisy[:, :, top:bottom, left:right] = images[:, :, top:bottom, left:right]
    frame = rng.random(images.shape, dtype=np.float32)     # new values on the window's edge
    frame[:, :, top + 1:bottom - 1, left + 1:right - 1] = images[:, :, top + 1:bottom - 1,
                                                                 left + 1:right - 1]
    frame[:, :, :top], frame[:, :, bottom:] = images[:, :, :top], images[:, :, bottom:]
    frame[..., :left], frame[..., right:] = images[..., :left], images[..., right:]

    def unit(x):
        with no_grad():
            a = run_layers(model, network_input(model, x), ["conv3_1"])["conv3_1"].data
        return a[0, :, position[0], position[1]]

    np.testing.assert_array_equal(unit(noisy), unit(images))
    assert np.abs(unit(frame) - unit(images)).max() > 0


# ------------------------------------------------------------------ hand-worked values

def test_hand_worked_chain():
    # conv 3 pad 1:  r = 1 + 2 = 3,     j = 1, start = -1
    # max pool 2:    r = 3 + 1 = 4,     j = 2, start = -1
    # conv 3 pad 1:  r = 4 + 2 * 2 = 8, j = 2, start = -1 - 1 * 2 = -3
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 8, 3, padding=1))
    sizes = [(f.size, f.jump, f.start, f.output_sizes)
             for _, f in receptive_fields(net, (3, 10, 10))]
    assert sizes == [((3, 3), (1, 1), (-1, -1), (10, 10)), ((3, 3), (1, 1), (-1, -1), (10, 10)),
                     ((4, 4), (2, 2), (-1, -1), (5, 5)), ((8, 8), (2, 2), (-3, -3), (5, 5))]
    field = receptive_field(net, "3", (3, 10, 10))
    assert field.window((4, 0)) == ((5, 13), (-3, 5))
    assert field.clipped((4, 0)) == (((5, 10), (0, 5)), ((0, 3), (3, 0)))


def test_pooling_with_dilation_and_ceil_mode_counts_units_as_the_layer_does():
    # windows of 2 with stride 2 on 7 positions: 3, and a fourth from position 6 with ceil_mode;
    # then windows of 2 entries 2 apart (span 3) with stride 1: 4 - 3 + 1 = 2 units
    net = nn.Sequential(nn.MaxPool1d(2, 2, ceil_mode=True), nn.MaxPool1d(2, 1, dilation=2))
    fields = receptive_fields(net, (1, 7))
    assert [field.output_sizes for _, field in fields] == [(4,), (2,)]
    assert fields[1][1].size == (2 + 2 * 2 * 1,)       # r = 2 + (k - 1) d j = 2 + 1 * 2 * 2
    make_positive(net)
    depends = dependence(net, 1, (7,), ["0", "1"])
    for name, field in fields:
        check_against_brute_force(field, depends[name], (7,), dense=False)


def test_dilation_same_padding_and_tuples():
    # dilation 2, k 3: r = 1 + 2 * 2 = 5. 'same' with k = 4 on n = 7: total 3, 1 before.
    net = nn.Sequential(nn.Conv1d(1, 1, 3, dilation=2), nn.Conv1d(1, 1, 4, padding="same"))
    (_, first), (_, second) = receptive_fields(net, (1, 7))
    assert (first.size, first.start, first.output_sizes) == ((5,), (0,), (3,))
    assert (second.size, second.start, second.output_sizes) == ((8,), (-1,), (3,))
    conv = nn.Conv2d(1, 1, (3, 1), stride=(1, 2), padding=(1, 0))
    field = receptive_field(nn.Sequential(conv), "0", (1, 6, 6))
    assert (field.size, field.jump, field.start, field.output_sizes) == \
        ((3, 1), (1, 2), (-1, 0), (6, 3))


def test_vgg19_published_values():
    # Receptive fields of VGG19 at 224x224 as usually tabulated: conv5_4 sees 252 pixels,
    # pool5's input moves by 16; conv1_1 sees 3, conv2_1 10, conv3_1 24, conv4_1 68, conv5_1 156.
    model = vgg19(weights="random", widths=(2, 2, 2, 2, 2), note=None)
    fields = dict(receptive_fields(model, (3, 224, 224)))
    got = {name: (fields[name].size[0], fields[name].jump[0])
           for name in ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1", "conv5_4")}
    assert got == {"conv1_1": (3, 1), "conv2_1": (10, 2), "conv3_1": (24, 4),
                   "conv4_1": (68, 8), "conv5_1": (156, 16), "conv5_4": (252, 16)}


# ------------------------------------------------------------------ errors and shapes

def test_input_shape_with_or_without_batch():
    net = nn.Sequential(nn.Conv1d(1, 16, 5))
    assert split_input_shape(net, (1, 14)) == (None, 1, (14,))
    assert split_input_shape(net, (2, 1, 14)) == (2, 1, (14,))
    with pytest.raises(ValueError, match="input_shape"):
        split_input_shape(net, (1, 1, 1, 14))
    with pytest.raises(ValueError, match="input_shape"):
        split_input_shape(net, "14")


def test_errors_name_the_problem():
    net = nn.Sequential(nn.Conv2d(3, 4, 5), nn.Flatten(), nn.Linear(4, 2))
    assert [name for name, _ in receptive_fields(net, (3, 5, 5))] == ["0"]
    with pytest.raises(ValueError, match="layer: expected one of 0; got '2'"):
        receptive_field(net, "2", (3, 5, 5))
    with pytest.raises(ValueError, match="too small"):
        receptive_fields(net, (3, 4, 4))
    field = receptive_field(net, "0", (3, 9, 9))
    with pytest.raises(ValueError, match="position"):
        field.window((5, 0))
    mismatched = nn.Sequential(Residual(nn.Conv1d(1, 1, 3, stride=2), nn.Identity()))
    with pytest.raises(ValueError, match="jumps"):
        receptive_fields(mismatched, (1, 9))
    from scratchnet.visualize.receptive import field_after, input_field
    with pytest.raises(TypeError, match="no receptive field for a Linear"):
        field_after(nn.Linear(2, 2), input_field((4,)))
