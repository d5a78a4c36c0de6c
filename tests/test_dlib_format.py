"""dlib's serialisation format (scratchnet.io.dlib_format) and dnn files (scratchnet.io.dlib_dnn).

The oracle is an independent writer, below, written from the format as
dlib's serialize.h states it (control byte + little-endian magnitude for
integers, frexp-based int64 mantissa and int16 exponent for floats, ASCII
'0'/'1' bools, ...), itself checked on bytes worked out by hand. Reading
what it writes must give back every value; every truncation and every bad
byte must raise DlibFormatError naming the byte offset; real model files,
when installed, must parse into the layers dlib's examples define.

The writer is imported by test_dlib_resnet.py and test_dlib_detector.py to
build small networks in dlib's format.
"""

import doctest
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchnet.io import dlib_dnn, dlib_format
from scratchnet.io.dlib_dnn import TAG_OR_SKIP, read_dlib_network, read_dlib_network_file
from scratchnet.io.dlib_format import DlibFormatError, DlibReader

# ------------------------------------------------------------ the writer (the oracle)


def enc_int(value):
    """Control byte (0x80 if negative | number of bytes), then |value| little-endian; 0 -> 01 00."""
    magnitude = abs(int(value))
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def enc_float(value, digits=24):
    """dlib's float_details: m = frexp's fraction * 2^digits, e = its exponent - digits, then
    whole zero bytes shifted off m (onto e)."""
    if math.isnan(value):
        return enc_int(0) + enc_int(32002)
    if math.isinf(value):
        return enc_int(0) + enc_int(32000 if value > 0 else 32001)
    fraction, exponent = math.frexp(value)
    mantissa, exponent = int(fraction * 2 ** digits), exponent - digits
    while mantissa != 0 and mantissa & 0xFF == 0:
        mantissa >>= 8
        exponent += 8
    return enc_int(mantissa) + enc_int(exponent)


def enc_bool(value):
    return b"1" if value else b"0"


def enc_string(text):
    return enc_int(len(text)) + text.encode("latin-1")


def enc_tensor(array, version=2):
    """version, the four dims (num_samples, k, nr, nc), then raw <f4 (v2) or dlib floats (v1)."""
    array = np.asarray(array, dtype=np.float32)
    shape = array.shape + (1,) * (4 - array.ndim)
    head = enc_int(version) + b"".join(enc_int(n) for n in shape)
    if version == 2:
        return head + array.astype("<f4").tobytes()
    return head + b"".join(enc_float(float(v)) for v in array.ravel())


def enc_alias(shape):
    shape = tuple(shape) + (1,) * (4 - len(shape))
    return enc_int(1) + b"".join(enc_int(n) for n in shape)


def enc_matrix(array):
    array = np.asarray(array, dtype=np.float64)
    return (enc_int(-array.shape[0]) + enc_int(-array.shape[1])
            + b"".join(enc_float(float(v), digits=53) for v in array.ravel()))


MULTIPLIERS = enc_float(1.0) * 3 + enc_float(0.0)
TRAILER = enc_bool(True) + enc_bool(True) + enc_bool(False) + enc_tensor(np.zeros((0,))) * 3


def layer_con(weight, bias, stride, padding):
    n, c, h, w = weight.shape
    params = np.concatenate([weight.ravel(), bias.ravel()])
    return (enc_string("con_4") + enc_tensor(params) + enc_int(n) + enc_int(h) + enc_int(w)
            + enc_int(stride) + enc_int(stride) + enc_int(padding) + enc_int(padding)
            + enc_alias((n, c, h, w)) + enc_alias((1, n)) + MULTIPLIERS)


def layer_affine(gamma, beta):
    return (enc_string("affine_") + enc_tensor(np.concatenate([gamma, beta]))
            + enc_alias((1, len(gamma))) + enc_alias((1, len(beta))) + enc_int(1))


def layer_bn_con(gamma, beta, mean, var, eps):
    empty = enc_tensor(np.zeros((0,)))
    return (enc_string("bn_con2") + enc_tensor(np.concatenate([gamma, beta]))
            + enc_alias((1, len(gamma))) + enc_alias((1, len(beta))) + empty + empty
            + enc_tensor(mean) + enc_tensor(var) + enc_int(100) + enc_int(100)
            + MULTIPLIERS + enc_float(eps, digits=53))


def layer_pool(kind, size, stride, padding=0):
    return (enc_string(f"{kind}_pool_2") + enc_int(size) + enc_int(size) + enc_int(stride)
            + enc_int(stride) + enc_int(padding) + enc_int(padding))


def layer_fc_no_bias(weight_in_out):
    n_in, n_out = weight_in_out.shape
    return (enc_string("fc_2") + enc_int(n_out) + enc_int(n_in) + enc_tensor(weight_in_out.ravel())
            + enc_alias((n_in, n_out)) + enc_alias((0, 0, 0, 0)) + enc_int(1) + MULTIPLIERS)


LAYER_RELU = enc_string("relu_")
LAYER_ADD_PREV = enc_string("add_prev_")


def network_bytes(loss, input_layer, layers):
    """A whole network: loss first, wrapper versions outermost first, input, then layers inside out.

    `layers` lists, from the input outwards, layer byte strings or TAG_OR_SKIP.
    """
    versions = [1 if layer is TAG_OR_SKIP else 2 for layer in reversed(layers[1:])] + [3]
    body = b"".join(enc_int(v) for v in versions) + input_layer + layers[0] + TRAILER + enc_int(1)
    for layer in layers[1:]:
        body += b"" if layer is TAG_OR_SKIP else layer + TRAILER
    return enc_int(1) + loss + body


def loss_metric(threshold=0.6):
    return enc_string("loss_metric_2") + enc_float(0.04) + enc_float(threshold)


def input_sized(mean=(122.782, 117.001, 104.298), size=150):
    return (enc_string("input_rgb_image_sized") + b"".join(enc_float(m) for m in mean)
            + enc_int(size) + enc_int(size))


# ------------------------------------------------------------ the writer, by hand

def test_writer_by_hand():
    assert enc_int(300) == bytes([0x02, 0x2C, 0x01])
    assert enc_int(-2) == bytes([0x81, 0x02])
    assert enc_int(0) == bytes([0x01, 0x00])
    # a float: frexp(1.5) = 0.75 * 2^1, m = 0.75 * 2^24 = 0xC00000, two zero bytes shifted off
    assert enc_float(1.5) == bytes([0x01, 0xC0, 0x81, 0x07])            # 192 * 2^-7
    assert enc_float(-0.75) == bytes([0x81, 0xC0, 0x81, 0x08])          # -192 * 2^-8
    # a double: frexp(1.0) = 0.5 * 2^1, m = 2^52, six zero bytes shifted off (as in dlib's files)
    assert enc_float(1.0, digits=53) == bytes([0x01, 0x10, 0x81, 0x04])  # 16 * 2^-4
    assert enc_string("ab") == b"\x01\x02ab"
    assert enc_tensor(np.array([1.0], np.float32)) == (
        b"\x01\x02" + b"\x01\x01" * 4 + struct.pack("<f", 1.0))


# ------------------------------------------------------------ primitives

def test_module_doctests():
    assert doctest.testmod(dlib_format).failed == 0
    assert doctest.testmod(dlib_format).attempted > 0


def test_reads_hand_worked_bytes():
    r = DlibReader(bytes([0x02, 0x2C, 0x01, 0x81, 0x02, 0x01, 0x00, 0x00]) + b"1" + b"0"
                   + enc_string("con_4"))
    assert [r.read_int(), r.read_int(), r.read_int(), r.read_int()] == [300, -2, 0, 0]
    assert (r.read_bool(), r.read_bool(), r.read_string()) == (True, False, "con_4")
    assert r.at_end() and r.offset == len(r.data)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-(2 ** 63) + 1, max_value=2 ** 63 - 1))
def test_integers_round_trip(value):
    r = DlibReader(enc_int(value) + enc_int(value))
    assert r.read_int() == value
    assert r.read_ints(1)[0] == value


@settings(max_examples=40, deadline=None)
@given(st.floats(allow_nan=False, width=32))
def test_floats_round_trip(value):
    data = enc_float(value, digits=24)
    assert DlibReader(data).read_float() == value
    assert DlibReader(data).read_floats(1)[0] == value


@settings(max_examples=40, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_doubles_round_trip(value):
    data = enc_float(value, digits=53)
    assert DlibReader(data).read_float() == value
    assert DlibReader(data).read_floats(1)[0] == value


def test_special_floats():
    data = enc_float(math.inf) + enc_float(-math.inf) + enc_float(math.nan)
    values = [DlibReader(data).read_floats(3)[i] for i in range(3)]
    r = DlibReader(data)
    assert [r.read_float(), r.read_float()] == [math.inf, -math.inf] == values[:2]
    assert math.isnan(r.read_float()) and math.isnan(values[2])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2 ** 40), st.integers(-5, 5),
                          st.floats(-1e6, 1e6, width=32)), max_size=20))
def test_records_equal_one_value_at_a_time(records):
    data = b"".join(enc_int(a) + enc_int(b) + enc_float(c) for a, b, c in records)
    first, second, third = DlibReader(data).read_records("iif", len(records))
    one_by_one = DlibReader(data)
    for i, _ in enumerate(records):
        assert (first[i], second[i], third[i]) == (
            one_by_one.read_int(), one_by_one.read_int(), one_by_one.read_float())
    assert first.dtype == np.int64 and third.dtype == np.float64


@pytest.mark.parametrize("version", [1, 2])
def test_tensor_both_versions(version):
    values = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) / 7
    tensor = DlibReader(enc_tensor(values, version)).read_tensor()
    assert tensor.dtype == np.float32
    np.testing.assert_array_equal(tensor, values)


def test_matrix_new_and_old_sign_of_the_sizes():
    values = np.array([[1.0, -2.5, 3.0], [0.125, 5.0, 6.0]])
    np.testing.assert_array_equal(DlibReader(enc_matrix(values)).read_matrix(), values)
    old = enc_int(2) + enc_int(3) + b"".join(enc_float(v) for v in values.ravel())
    np.testing.assert_array_equal(DlibReader(old).read_matrix(), values)


# ------------------------------------------------------------ errors name the offset

SAMPLE = (enc_int(7) + enc_string("relu_") + enc_float(0.25) + enc_bool(True)
          + enc_tensor(np.ones(3)))


def _read_sample(data):
    r = DlibReader(data, "sample.dat")
    return r.read_int(), r.read_string(), r.read_float(), r.read_bool(), r.read_tensor()


def test_every_truncation_is_refused_with_an_offset():
    starts = [0, 2, 2 + 7, 2 + 7 + 4, 2 + 7 + 4 + 1, len(SAMPLE)]   # where each item begins
    for cut in range(len(SAMPLE)):
        with pytest.raises(DlibFormatError) as caught:
            _read_sample(SAMPLE[:cut])
        item_start = max(s for s in starts if s <= cut and s < len(SAMPLE))
        assert item_start <= caught.value.offset <= cut
        assert f"byte offset {caught.value.offset}" in str(caught.value)
        assert "sample.dat" in str(caught.value)


def test_bad_bytes_are_refused():
    with pytest.raises(DlibFormatError, match="reserved bits"):
        DlibReader(b"\x31\x00").read_int()
    with pytest.raises(DlibFormatError, match="at most 8"):
        DlibReader(b"\x09" + b"\x00" * 9).read_int()
    with pytest.raises(DlibFormatError, match="'0' or '1'"):
        DlibReader(b"\x01").read_bool()
    with pytest.raises(DlibFormatError, match="old text format"):
        DlibReader(b"1.5 ").read_float()
    with pytest.raises(DlibFormatError, match="more than"):
        DlibReader(enc_int(1000) + b"abc").read_string()
    with pytest.raises(DlibFormatError, match="needs 400 bytes"):
        DlibReader(enc_int(2) + enc_int(100) + enc_int(1) * 3 + b"\x00" * 8).read_tensor()
    with pytest.raises(DlibFormatError, match="expected 1 or 2"):
        DlibReader(enc_int(5)).read_tensor()
    reader = DlibReader(enc_int(3) + enc_string("bn_fc"))
    reader.read_int()
    with pytest.raises(DlibFormatError, match="expected 'affine_', found 'bn_fc'") as caught:
        reader.expect_string("affine_", "layer tag")
    assert caught.value.offset == 2
    with pytest.raises(DlibFormatError) as caught:
        DlibReader(enc_float(1.0) + b"\x01\x7f").read_floats(2)
    assert caught.value.offset == 0 and "byte 6" in str(caught.value)


# ------------------------------------------------------------ networks

def _tiny_network():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(2).astype(np.float32)
    fc = rng.standard_normal((2, 4)).astype(np.float32)
    layers = [layer_con(weight, bias, 2, 0), layer_affine(np.ones(2), np.zeros(2)), LAYER_RELU,
              TAG_OR_SKIP, LAYER_ADD_PREV, layer_pool("avg", 0, 1), layer_fc_no_bias(fc)]
    return network_bytes(loss_metric(), input_sized(), layers), weight, bias, fc


def test_tiny_network_parses():
    data, weight, bias, fc = _tiny_network()
    net = read_dlib_network(data)
    assert net.kinds() == ["con", "affine", "relu", TAG_OR_SKIP, "add_prev", "avg_pool", "fc"]
    assert net.loss.values["distance_threshold"] == pytest.approx(0.6)
    assert net.input.values["size"] == (150, 150)
    assert net.input.values["mean_rgb"] == pytest.approx((122.782, 117.001, 104.298))
    con = net.layers[0].values
    np.testing.assert_array_equal(con["weight"], weight)
    np.testing.assert_array_equal(con["bias"], bias)
    assert (con["stride"], con["padding"]) == ((2, 2), (0, 0))
    np.testing.assert_array_equal(net.layers[-1].values["weight"], fc)
    assert net.layers[-1].values["bias"] is None
    assert net.layers[5].values["size"] == (0, 0)


def test_tiny_network_damage():
    data, *_ = _tiny_network()
    with pytest.raises(DlibFormatError, match="follow the last layer"):
        read_dlib_network(data + b"\x00")
    position = data.index(b"relu_")
    broken = data[:position] + b"relx_" + data[position + 5:]
    with pytest.raises(DlibFormatError, match="unsupported layer type 'relx_'") as caught:
        read_dlib_network(broken)
    assert caught.value.offset == position - 2   # the string starts at its length's control byte
    for cut in range(0, len(data), 97):
        with pytest.raises(DlibFormatError):
            read_dlib_network(data[:cut])


# ------------------------------------------------------------ the real files

def _model_file(name):
    from scratchnet.face.dlib.files import ModelFileNotFound, find_model_file
    try:
        return find_model_file(name)
    except ModelFileNotFound:
        pytest.skip(f"dlib's {name} model file is not installed (scratchnet[pretrained])")


def test_real_resnet_file_layers():
    net = read_dlib_network_file(_model_file("resnet"))
    kinds = net.kinds()
    convs = [layer for layer in net.layers if layer.kind == "con"]
    assert len(convs) == 29 and kinds.count("affine") == 29 and kinds.count("add_prev") == 14
    assert convs[0].values["weight"].shape == (32, 3, 7, 7)
    assert {c.values["padding"] for c in convs if c.values["stride"] == (2, 2)} == {(0, 0)}
    assert {c.values["padding"] for c in convs[1:] if c.values["stride"] == (1, 1)} == {(1, 1)}
    assert net.layers[-1].values["weight"].shape == (256, 128)
    assert net.loss.values["distance_threshold"] == pytest.approx(0.6)


def test_real_detector_file_layers():
    net = read_dlib_network_file(_model_file("detector"))
    assert net.kinds() == ["con", "bn_con", "relu"] * 6 + ["con"]
    assert net.loss.values["detector_windows"] == [(80, 80)]
    assert net.loss.values["overlaps_nms"][1] == 1.0


def test_real_file_truncated_or_corrupted():
    path = _model_file("detector")
    data = path.read_bytes()
    for cut in np.linspace(1, len(data) - 1, 12).astype(int):
        with pytest.raises(DlibFormatError) as caught:
            read_dlib_network(data[:cut], "cut.dat")
        assert 0 <= caught.value.offset <= cut and "cut.dat" in str(caught.value)
    position = data.index(b"bn_con2")
    corrupted = data[:position] + b"bn_con9" + data[position + 7:]
    with pytest.raises(DlibFormatError, match="bn_con9") as caught:
        read_dlib_network(corrupted)
    assert caught.value.offset == position - 2
    assert dlib_dnn.read_dlib_network(data).kinds()[0] == "con"
