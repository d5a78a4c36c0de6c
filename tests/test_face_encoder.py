"""The face encoder f(x) (FaceEncoder) and the saved model around it (Encoder, load_encoder).

Oracles: the architecture table of the module docstring (parameter shapes,
output shape), ||f(x)|| = 1, gradients of one Module applied three times
against the sum of three separate gradients and against central differences
of the triplet loss in float64, embeddings and fingerprints before and after
a save/load round trip, and the file's refusals.
"""

import json
import os

import numpy as np
import pytest

from scratchnet import Tensor, nn, no_grad
from scratchnet import functional as F
from scratchnet.face import encoder as encoder_module
from scratchnet.face.encoder import Encoder, load_encoder
from scratchnet.models.face_encoder import FaceEncoder
from scratchnet.serialize import load_npz, save_npz

SMALL = {"width": 4, "embedding_size": 16, "image_size": 32, "blocks": 2, "downsample": 1,
         "convs_per_block": 1, "neck": True}


def pictures(n, size=32, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).random((n, 3, size, size)).astype(dtype)


def small_encoder(seed=0, tau=0.37, **changes):
    """An Encoder whose batch-norm running statistics are no longer the initial 0 and 1."""
    network = FaceEncoder(**{**SMALL, **changes}, seed=seed)
    network.train()
    with no_grad():
        network(Tensor(pictures(6, network.image_size, seed=seed + 100)))
    return Encoder(network, tau=tau, info={"training": {"steps": 3}, "tau_eer": 0.4})


@pytest.fixture
def saved(tmp_path):
    """(encoder, path) of a small encoder saved with one extra array."""
    encoder = small_encoder()
    path = tmp_path / "model.npz"
    encoder.save(path, extra={"other.thing": np.arange(5)})
    return encoder, path


# ======================================================= FaceEncoder

def test_default_output_is_128_unit_vectors():
    f = FaceEncoder(width=4, seed=0).eval()
    with no_grad():
        e = f(Tensor(pictures(3, size=64))).data
    assert e.shape == (3, 128) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(e[0], e[1])      # different pictures, different encodings


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_small_configuration_output_is_unit_vectors(mode):
    f = FaceEncoder(**SMALL, seed=1)
    getattr(f, mode)()
    with no_grad():
        e = f(Tensor(pictures(4))).data
    assert e.shape == (4, 16)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("downsample, side", [(2, 4), (1, 8)])
def test_parameter_shapes_follow_the_architecture_table(downsample, side):
    # docstring: blocks of w, 2w, 4w channels, 3x3 convolutions without bias, then
    # linear (4w * side * side -> 128) for 64x64 input
    w = 4
    f = FaceEncoder(width=w, downsample=downsample, seed=0)
    shapes = {name: p.shape for name, p in f.named_parameters()}
    conv_shapes = [shape for shape in shapes.values() if len(shape) == 4]
    assert conv_shapes == [(w, 3, 3, 3), (2 * w, w, 3, 3), (4 * w, 2 * w, 3, 3)]
    assert sum(len(shape) == 1 for shape in shapes.values()) == 3 * 2 + 1   # BN gamma, beta; bias
    linear = [shape for shape in shapes.values() if len(shape) == 2]
    assert linear == [(128, 4 * w * side * side)]


def test_two_convs_per_block_keep_the_blocks_channels():
    # docstring: with convs_per_block = 2 each block has a second conv (c_out -> c_out) + BN
    w = 4
    f = FaceEncoder(width=w, convs_per_block=2, seed=0)
    conv_shapes = [p.shape for _, p in f.named_parameters() if p.ndim == 4]
    assert conv_shapes == [(w, 3, 3, 3), (w, w, 3, 3), (2 * w, w, 3, 3), (2 * w, 2 * w, 3, 3),
                           (4 * w, 2 * w, 3, 3), (4 * w, 4 * w, 3, 3)]
    assert sum(p.ndim == 1 for _, p in f.named_parameters()) == 6 * 2 + 1
    with no_grad():
        e = f.eval()(Tensor(pictures(2, size=64))).data
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)


def test_the_neck_standardises_the_embedding_before_the_l2_normalisation():
    # docstring: f(x) = normalise(BN(linear(flatten(...)))); in evaluation mode the batch
    # norm uses its running statistics: (z - mean) / sqrt(var + eps) * gamma + beta
    f = small_encoder().network.eval()
    x = Tensor(pictures(3, seed=7))
    with no_grad():
        z = f.embedding(f.flatten(f.features(f.shrink(x)))).data.astype(np.float64)
        e = f(x).data
    neck = f.neck
    standardised = ((z - neck.running_mean) / np.sqrt(neck.running_var + neck.eps)
                    * neck.weight.data + neck.bias.data)
    want = standardised / np.linalg.norm(standardised, axis=1, keepdims=True)
    np.testing.assert_allclose(e, want, rtol=1e-4, atol=1e-6)
    assert not np.allclose(neck.running_mean, 0.0)          # the statistics did move
    assert [name for name, _ in f.named_layers()][-2:] == ["embedding", "neck"]


def test_without_a_neck_the_linear_output_is_normalised_directly():
    f = FaceEncoder(**{**SMALL, "neck": False}, seed=2).eval()
    x = Tensor(pictures(3, seed=8))
    with no_grad():
        z = f.embedding(f.flatten(f.features(f.shrink(x)))).data
        e = f(x).data
    np.testing.assert_allclose(e, z / np.linalg.norm(z, axis=1, keepdims=True), rtol=1e-5)
    assert not any(name.startswith("neck") for name in f.state_dict())
    assert [name for name, _ in f.named_layers()][-1] == "embedding"
    with pytest.raises(TypeError, match="neck: expected True or False, got 'yes'"):
        FaceEncoder(**{**SMALL, "neck": "yes"})


def test_channels_stop_growing_at_four_times_the_width():
    f = FaceEncoder(width=2, image_size=64, blocks=4, downsample=1, seed=0)
    conv_out = [p.shape[0] for _, p in f.named_parameters() if p.ndim == 4]
    assert conv_out == [2, 4, 8, 8]


def test_the_same_seed_gives_the_same_weights():
    first, second = FaceEncoder(**SMALL, seed=3), FaceEncoder(**SMALL, seed=3)
    other = FaceEncoder(**SMALL, seed=4)
    for (name, a), (_, b), (_, c) in zip(first.state_dict().items(), second.state_dict().items(),
                                         other.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert any(not np.array_equal(a, c) for a, c in zip(first.state_dict().values(),
                                                        other.state_dict().values()))


def gradients(module):
    return {name: p.grad.copy() for name, p in module.named_parameters()}


def test_siamese_twins_share_weights_so_gradients_accumulate():
    """One Module applied to A, P and N: the gradient of the sum is the sum of the gradients."""
    f = FaceEncoder(**SMALL, seed=0).double().train()
    batches = [pictures(3, seed=s, dtype=np.float64) for s in (1, 2, 3)]
    directions = [np.random.default_rng(10 + s).standard_normal((3, 16)) for s in range(3)]

    separate = []
    for x, u in zip(batches, directions):
        f.zero_grad()
        f(Tensor(x)).backward(u)
        separate.append(gradients(f))

    f.zero_grad()
    total = None
    for x, u in zip(batches, directions):      # J = sum of <u_i, f(x_i)>, one graph
        term = (f(Tensor(x)) * Tensor(u)).sum()
        total = term if total is None else total + term
    total.backward()
    together = gradients(f)

    f.zero_grad()
    for x, u in zip(batches, directions):      # three backward passes, no zero_grad between
        f(Tensor(x)).backward(u)
    accumulated = gradients(f)

    for name in together:
        expected = sum(g[name] for g in separate)
        assert np.abs(separate[0][name]).max() > 0, name
        np.testing.assert_allclose(together[name], expected, rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(accumulated[name], expected, rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def test_triplet_loss_gradient_through_the_shared_encoder_matches_finite_differences():
    f = FaceEncoder(**SMALL, seed=2).double().eval()
    anchor, positive, negative = (pictures(2, seed=s, dtype=np.float64) for s in (5, 6, 7))

    def loss():
        return F.triplet_loss(f(Tensor(anchor)), f(Tensor(positive)), f(Tensor(negative)),
                              alpha=1.5)

    f.zero_grad()
    value = loss()
    assert value.item() > 0                      # active triplets, so the gradient is not 0
    value.backward()
    parameters = dict(f.named_parameters())
    rng = np.random.default_rng(0)
    eps = 1e-6
    for name in ("features.0.0.weight", "features.1.0.weight", "embedding.weight",
                 "features.0.1.bias"):
        parameter = parameters[name]
        for _ in range(2):
            index = tuple(rng.integers(0, n) for n in parameter.shape)
            kept = parameter.data[index]
            parameter.data[index] = kept + eps
            with no_grad():
                up = loss().item()
            parameter.data[index] = kept - eps
            with no_grad():
                down = loss().item()
            parameter.data[index] = kept
            numeric = (up - down) / (2 * eps)
            assert parameter.grad[index] == pytest.approx(numeric, rel=1e-4, abs=1e-7), \
                (name, index)


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (2, 1, 32, 32), (3, 32, 32), (2, 4, 32, 32)])
def test_wrong_input_shape_is_named(shape):
    f = FaceEncoder(**SMALL, seed=0)
    with pytest.raises(ValueError, match=r"x: expected \(N, 3, 32, 32\) images, got shape"):
        f(Tensor(np.zeros(shape, np.float32)))


@pytest.mark.parametrize("arguments, message", [
    ({"image_size": 40}, r"image_size: expected a multiple of 16 .* got 40"),
    ({"image_size": 30, "blocks": 2, "downsample": 1},
     r"image_size: expected a multiple of 4 .* got 30"),
    ({"image_size": 0}, "image_size: expected a positive int"),
    ({"width": 0}, "width: expected a positive int, got 0"),
    ({"width": 2.5}, "width: expected a positive int, got 2.5"),
    ({"embedding_size": True}, "embedding_size: expected a positive int, got True"),
    ({"blocks": 0}, "blocks: expected a positive int"),
    ({"downsample": -1}, "downsample: expected a positive int"),
    ({"convs_per_block": 0}, "convs_per_block: expected a positive int, got 0"),
])
def test_bad_arguments_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        FaceEncoder(**arguments)


# ======================================================= Encoder

def test_encoder_maps_pictures_to_the_networks_evaluation_output():
    encoder = small_encoder()
    x = pictures(5)
    network = encoder.network.eval()
    with no_grad():
        expected = network(Tensor(x)).data
    np.testing.assert_allclose(encoder(x), expected, rtol=1e-6, atol=1e-7)
    # one picture (3, S, S): a batch of one rounds its float32 sums differently from a batch
    # of five, by 1e-7 to 3e-7 in these entries of about 0.1 (seeds 0-3, with or without neck)
    np.testing.assert_allclose(encoder(x[0]), expected[:1], rtol=1e-6, atol=1e-6)


def test_encoder_is_in_evaluation_mode_even_after_network_train():
    encoder = small_encoder()
    x = pictures(4)
    before, fingerprint = encoder(x), encoder.fingerprint
    encoder.network.train()            # batch statistics would differ and update running ones
    np.testing.assert_array_equal(encoder(x), before)
    assert encoder.fingerprint == fingerprint


def test_embedding_in_chunks_gives_the_one_batch_answer(monkeypatch):
    encoder = small_encoder()
    x = pictures(7)
    whole = encoder(x)
    monkeypatch.setattr(encoder_module, "EMBED_BATCH", 3)
    np.testing.assert_allclose(encoder(x), whole, rtol=1e-5, atol=1e-6)
    singles = np.concatenate([encoder(picture) for picture in x])
    np.testing.assert_allclose(singles, whole, rtol=1e-5, atol=1e-6)


def test_distance_and_verify():
    encoder = small_encoder(tau=0.5)
    x, y = pictures(3, seed=1), pictures(3, seed=2)
    d = encoder.distance(x, y)
    e_x, e_y = encoder(x), encoder(y)
    np.testing.assert_allclose(d, [np.sum((a - b) ** 2) for a, b in zip(e_x, e_y)], rtol=1e-6)
    assert np.all((d >= 0) & (d <= 4 + 1e-5))      # unit vectors: d in [0, 4]
    np.testing.assert_array_equal(encoder.distance(x, x), 0.0)
    same, d_again = encoder.verify(x, y)
    np.testing.assert_array_equal(same, d_again <= 0.5)
    assert encoder.verify(x[:1], x[:1])[0][0]


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (2, 1, 32, 32), (32, 32, 3), (3, 32)])
def test_encoder_names_a_wrong_picture_shape(shape):
    encoder = small_encoder()
    with pytest.raises(ValueError, match=r"images: expected \(N, 3, 32, 32\) RGB pictures.*"
                                         r"load_face_image.*got shape"):
        encoder(np.zeros(shape, np.float32))


def test_encoder_refuses_integer_pictures():
    with pytest.raises(TypeError, match="images: expected floats in"):
        small_encoder()(np.zeros((1, 3, 32, 32), np.uint8))


def test_encoder_checks_its_arguments():
    with pytest.raises(TypeError, match="network: expected a FaceEncoder, got Linear"):
        Encoder(nn.Linear(3, 2))
    network = FaceEncoder(**SMALL, seed=0)
    for tau in (-0.1, float("nan"), "1", True):
        with pytest.raises(ValueError, match="tau: expected a number >= 0"):
            Encoder(network, tau=tau)


def test_flip_average_is_the_normalised_sum_of_the_picture_and_its_mirror():
    plain = small_encoder()
    flipping = Encoder(plain.network, tau=plain.tau, flip_average=True)
    x = pictures(5, seed=4)
    total = plain(x) + plain(np.ascontiguousarray(x[..., ::-1]))
    expected = total / np.linalg.norm(total, axis=1, keepdims=True)
    np.testing.assert_allclose(flipping(x), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(flipping(x), axis=1), 1.0, rtol=1e-6)
    assert not np.allclose(flipping(x), plain(x), atol=1e-3)


def test_flip_averaged_encoding_of_a_mirror_image_is_the_pictures_own():
    flipping = Encoder(small_encoder().network, flip_average=True)
    x = pictures(4, seed=5)
    np.testing.assert_array_equal(flipping(np.ascontiguousarray(x[..., ::-1])), flipping(x))
    assert flipping.distance(x, np.ascontiguousarray(x[..., ::-1])).max() == 0.0


def test_flip_average_is_part_of_the_fingerprint_and_of_the_file(tmp_path):
    plain = small_encoder()
    flipping = Encoder(plain.network, tau=plain.tau, flip_average=True)
    assert flipping.fingerprint != plain.fingerprint
    flipping.save(tmp_path / "flip.npz")
    loaded = load_encoder(tmp_path / "flip.npz")
    assert loaded.flip_average is True and loaded.fingerprint == flipping.fingerprint
    x = pictures(3, seed=6)
    np.testing.assert_array_equal(loaded(x), flipping(x))
    with pytest.raises(TypeError, match="flip_average: expected True or False, got 'yes'"):
        Encoder(plain.network, flip_average="yes")


def test_a_file_from_before_flip_averaging_loads_without_it(saved, tmp_path):
    encoder, path = saved
    arrays = load_npz(path)
    config = json.loads(str(arrays["config"]))
    del config["flip_average"]                              # as files written before it existed
    arrays["config"] = np.array(json.dumps(config))
    old = tmp_path / "old.npz"
    save_npz(old, arrays)
    loaded = load_encoder(old)
    assert loaded.flip_average is False and loaded.fingerprint == encoder.fingerprint


# ======================================================= the file

def test_save_load_round_trip_gives_identical_embeddings(saved):
    encoder, path = saved
    loaded, arrays = load_encoder(path, with_arrays=True)
    x = pictures(4, seed=3)
    np.testing.assert_array_equal(loaded(x), encoder(x))
    assert loaded.fingerprint == encoder.fingerprint
    assert loaded.tau == 0.37
    assert loaded.info == encoder.info
    assert loaded.network.architecture() == SMALL
    assert (loaded.image_size, loaded.embedding_size) == (32, 16)
    for name, value in encoder.network.state_dict().items():
        np.testing.assert_array_equal(loaded.network.state_dict()[name], value, err_msg=name)
    np.testing.assert_array_equal(arrays["other.thing"], np.arange(5))


def test_two_convs_per_block_survive_saving(tmp_path):
    encoder = Encoder(FaceEncoder(**{**SMALL, "convs_per_block": 2}, seed=0).eval(), tau=0.5)
    encoder.save(tmp_path / "deep.npz")
    loaded = load_encoder(tmp_path / "deep.npz")
    assert loaded.network.architecture()["convs_per_block"] == 2
    x = pictures(3, seed=1)
    np.testing.assert_array_equal(loaded(x), encoder(x))


def test_a_file_from_before_convs_per_block_loads_with_one_per_block(saved, tmp_path):
    _, path = saved
    arrays = load_npz(path)
    config = json.loads(str(arrays["config"]))
    del config["architecture"]["convs_per_block"]          # as files written before it existed
    arrays["config"] = np.array(json.dumps(config))
    old = tmp_path / "old.npz"
    save_npz(old, arrays)
    assert load_encoder(old).network.architecture()["convs_per_block"] == 1


def test_a_file_from_before_the_neck_loads_without_it(tmp_path):
    encoder = small_encoder(neck=False)
    encoder.save(tmp_path / "plain.npz")
    arrays = load_npz(tmp_path / "plain.npz")
    config = json.loads(str(arrays["config"]))
    del config["architecture"]["neck"]                      # as files written before it existed
    arrays["config"] = np.array(json.dumps(config))
    save_npz(tmp_path / "old.npz", arrays)
    loaded = load_encoder(tmp_path / "old.npz")
    assert loaded.network.architecture()["neck"] is False
    x = pictures(3, seed=9)
    np.testing.assert_array_equal(loaded(x), encoder(x))


def test_load_encoder_gives_the_encoder_alone_by_default(saved):
    assert isinstance(load_encoder(saved[1]), Encoder)


def test_fingerprint_names_the_weights():
    encoder = small_encoder(seed=0)
    assert len(encoder.fingerprint) == 16 and int(encoder.fingerprint, 16) >= 0
    assert small_encoder(seed=0).fingerprint == encoder.fingerprint
    assert small_encoder(seed=1).fingerprint != encoder.fingerprint


def test_fingerprint_changes_with_one_weight_or_buffer_and_not_with_tau():
    encoder = small_encoder()
    original = encoder.fingerprint
    weight = encoder.network.embedding.weight.data
    kept = weight[3, 5]
    weight[3, 5] = np.nextafter(kept, np.float32(np.inf))        # one unit in the last place
    assert encoder.fingerprint != original
    weight[3, 5] = kept
    assert encoder.fingerprint == original
    running_mean = dict(encoder.network.named_buffers())["features.0.1.running_mean"]
    running_mean[0] += 1e-3
    assert encoder.fingerprint != original
    running_mean[0] -= 1e-3
    encoder.tau = 1.9
    assert encoder.fingerprint == original


def test_a_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="scratchnet face train"):
        load_encoder(tmp_path / "none.npz")


def rewrite_config(path, **changes):
    """The saved model at path with its config entries changed (None removes one)."""
    arrays = load_npz(path)
    config = json.loads(str(arrays["config"]))
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    arrays["config"] = np.array(json.dumps(config))
    save_npz(path, arrays)


@pytest.mark.parametrize("changes, message", [
    ({"format": "scratchnet-face-database"},
     r"holds 'scratchnet-face-database', expected 'scratchnet-face-encoder'"),
    ({"version": 2}, "format version 2; this scratchnet reads version 1"),
    ({"architecture": {**SMALL, "width": 8}}, "weights do not fit its config"),
    ({"flip_average": "yes"}, "a config whose flip_average is 'yes', expected true or false"),
    ({"architecture": "vgg"}, "a config whose architecture is str, expected a JSON object"),
    ({"architecture": {**SMALL, "depth": 3}}, "architecture cannot be built: .*depth"),
    ({"architecture": {**SMALL, "width": -1}}, "architecture cannot be built: width"),
    ({"tau": -0.5}, "a config whose tau: expected a number >= 0, got -0.5"),
])
def test_a_file_with_another_format_version_or_shape_is_refused(saved, changes, message):
    _, path = saved
    rewrite_config(path, **changes)
    with pytest.raises(ValueError, match=message) as error:
        load_encoder(path)
    assert str(path) in str(error.value)


def test_a_file_without_config_is_refused(saved):
    _, path = saved
    arrays = load_npz(path)
    arrays.pop("config")
    save_npz(path, arrays)
    with pytest.raises(ValueError, match="no readable 'config' entry"):
        load_encoder(path)
    save_npz(path, {**arrays, "config": np.array("{not json")})
    with pytest.raises(ValueError, match="no readable 'config' entry"):
        load_encoder(path)


def test_a_config_without_architecture_is_refused_with_a_value_error(saved):
    _, path = saved
    rewrite_config(path, architecture=None)
    with pytest.raises(ValueError, match=str(path)):
        load_encoder(path)


def corrupt(path, how):
    data = path.read_bytes()
    if how == "garbage":
        return b"this is not a model file\n" * 20
    if how == "empty":
        return b""
    if how == "truncated":
        return data[:len(data) // 2]
    if how == "one byte flipped":
        # inside the linear layer's weights: the zip entry's CRC no longer matches
        weight = load_encoder(path).network.embedding.weight.data
        at = data.find(weight.tobytes()[:64]) + 10
        assert at > 10
        return data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1:]
    raise AssertionError(how)


@pytest.mark.parametrize("how", [
    "garbage", "empty",
    "truncated",
    "one byte flipped",
])
def test_corrupt_bytes_give_a_clear_value_error(saved, how):
    _, path = saved
    path.write_bytes(corrupt(path, how))
    with pytest.raises(ValueError, match=r"model: .* is not a readable \.npz file"):
        load_encoder(path)


def test_a_single_array_file_gives_a_clear_value_error(tmp_path):
    path = tmp_path / "model.npz"
    with open(path, "wb") as file:
        np.save(file, np.zeros(3))
    with pytest.raises(ValueError, match="not a readable"):
        load_encoder(path)


@pytest.mark.parametrize("key", ["encoder.embedding.weight", "encoder.new", "config"])
def test_extra_arrays_cannot_overwrite_the_models_own(tmp_path, key):
    encoder = small_encoder()
    fresh = tmp_path / "fresh.npz"
    with pytest.raises(ValueError, match=f"extra: key '{key}' would overwrite"):
        encoder.save(fresh, extra={key: np.zeros(3)})
    assert not fresh.exists()
    existing = tmp_path / "existing.npz"
    encoder.save(existing)
    before = existing.read_bytes()
    with pytest.raises(ValueError, match="would overwrite"):
        small_encoder(seed=5).save(existing, extra={"fine": np.ones(2), key: np.zeros(3)})
    assert existing.read_bytes() == before
    assert os.listdir(tmp_path) == ["existing.npz"]          # no temporary file left behind
