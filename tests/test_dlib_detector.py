"""dlib's CNN face detector on scratchnet (scratchnet.face.dlib.detector).

Oracles: the pyramid layout against a layout worked out by hand from dlib's
rules, plus properties for many sizes; the bilinear resize against its
formula and against the identity that bilinear interpolation reproduces
linear ramps; the overlap test, NMS and coordinate maps on hand-worked
boxes; a tiny detector in dlib's format against the naive convolution;
and the real detector against dlib.cnn_face_detection_model_v1 on whole
photographs and transformed copies: the same boxes, scores within 1e-3.
"""

import doctest
import math
import pathlib

import naive_conv
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dlib_format import (
    LAYER_RELU,
    enc_float,
    enc_int,
    enc_string,
    layer_bn_con,
    layer_con,
    network_bytes,
)

from scratchnet import Tensor, no_grad
from scratchnet.face.dlib import detector
from scratchnet.face.dlib.detector import (
    FaceBox,
    boxes_overlap,
    canvas_to_image,
    decode,
    nearest_rect,
    pyramid_layout,
    suppress,
    tiled_pyramid,
)
from scratchnet.face.dlib.files import ModelFileNotFound, find_model_file
from scratchnet.io.dlib_dnn import read_dlib_network
from scratchnet.io.dlib_format import DlibFormatError

PHOTOS = pathlib.Path(__file__).parent.parent / "scratchnet" / "data" / "faces"


def test_module_doctests():
    result = doctest.testmod(detector)
    assert result.failed == 0 and result.attempted > 0


# ------------------------------------------------------------ the tiled pyramid

def test_layout_by_hand():
    # 20 x 40, padding 2, outer padding 1. Levels (floor 5/6 each): 20x40 16x33 13x27 10x22
    # 8x18 6x15 5x12 (4 < 5 stops). total = sum(h + 2) - 4 = 88. The left column takes
    # levels until a level fits beside the one above it, 40 - w_prev - 2 >= w, and the
    # column is at least half of what is left: at 6x15, 40 - 18 - 2 = 20 >= 15 and
    # (77 - 20) * 2 >= 88 - 20, so the column ends after 8x18 with height 77 - 2 = 75.
    # Canvas 75 + 2 rows, 40 + 2 columns. Left column from y = 1, steps h + 2; the rest
    # goes up the right edge (x = 40) from y = 76 - 1, bottom-aligned, steps h + 2.
    layout = pyramid_layout(20, 40, padding=2, outer_padding=1)
    assert (layout.n_rows, layout.n_cols) == (77, 42)
    assert layout.rects == [(1, 1, 40, 20), (1, 23, 33, 38), (1, 41, 27, 53), (1, 56, 22, 65),
                            (1, 68, 18, 75), (26, 70, 40, 75), (29, 63, 40, 67)]


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 400), st.integers(5, 400))
def test_layout_properties(n_rows, n_cols):
    layout = pyramid_layout(n_rows, n_cols)
    rects = layout.rects
    assert rects[0] == (11, 11, 11 + n_cols - 1, 11 + n_rows - 1)
    assert layout.n_cols == n_cols + 22
    for (l0, t0, r0, b0), (l1, t1, r1, b1) in zip(rects, rects[1:], strict=False):
        assert (b1 - t1 + 1, r1 - l1 + 1) == (math.floor(5 / 6 * (b0 - t0 + 1)),
                                              math.floor(5 / 6 * (r0 - l0 + 1)))
    for i, a in enumerate(rects):
        assert 0 <= a[0] and 0 <= a[1] and a[2] < layout.n_cols and a[3] < layout.n_rows
        assert a[3] - a[1] + 1 >= 5
        for b in rects[i + 1:]:
            assert not detector._intersects(a, b)


def naive_resize(source, n_rows, n_cols):
    """out[r, c] = bilinear at (c (w - 1) / (n_cols - 1), r (h - 1) / (n_rows - 1)), clamped."""
    h, w = source.shape
    out = np.zeros((n_rows, n_cols))
    for r in range(n_rows):
        y = r * (h - 1) / max(n_rows - 1, 1)
        for c in range(n_cols):
            x = c * (w - 1) / max(n_cols - 1, 1)
            i, j = int(math.floor(y)), int(math.floor(x))
            fy, fx = y - i, x - j
            i1, j1 = min(i + 1, h - 1), min(j + 1, w - 1)
            out[r, c] = ((1 - fy) * ((1 - fx) * source[i, j] + fx * source[i, j1])
                         + fy * ((1 - fx) * source[i1, j] + fx * source[i1, j1]))
    return out


def _resize(source, n_rows, n_cols):
    canvas = np.zeros((source.shape[0] + n_rows + 2, max(source.shape[1], n_cols) + 1), np.float32)
    canvas[:source.shape[0], :source.shape[1]] = source
    s_rect = np.array([0, 0, source.shape[1] - 1, source.shape[0] - 1])
    t_rect = np.array([1, source.shape[0] + 1, n_cols, source.shape[0] + n_rows])
    detector._resize_bilinear(canvas, s_rect, canvas, t_rect)
    return canvas[source.shape[0] + 1:source.shape[0] + 1 + n_rows, 1:1 + n_cols]


def test_naive_resize_by_hand():
    source = np.array([[0.0, 2.0], [4.0, 6.0]])
    np.testing.assert_allclose(naive_resize(source, 3, 3), [[0, 1, 2], [2, 3, 4], [4, 5, 6]])


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 30), st.integers(2, 30), st.integers(2, 30), st.integers(2, 30))
def test_resize_against_the_formula(h, w, n_rows, n_cols):
    source = np.random.default_rng(h * 31 + w).standard_normal((h, w)).astype(np.float32)
    expected = naive_resize(source, n_rows, n_cols)
    np.testing.assert_allclose(_resize(source, n_rows, n_cols), expected, atol=1e-5)


def test_resize_identities():
    rows, cols = np.mgrid[0:12, 0:17]
    ramp = (0.25 * cols - 0.5 * rows + 1.0).astype(np.float32)
    out = _resize(ramp, 10, 14)
    y, x = np.mgrid[0:10, 0:14]
    np.testing.assert_allclose(out, 0.25 * x * 16 / 13 - 0.5 * y * 11 / 9 + 1.0, atol=1e-5)
    np.testing.assert_array_equal(_resize(ramp, 12, 17), ramp)


def test_tiled_pyramid_holds_the_normalised_image():
    image = np.random.default_rng(6).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    layout = pyramid_layout(30, 40)
    canvas = tiled_pyramid(image, (100.0, 110.0, 120.0), layout)
    left, top, right, bottom = layout.rects[0]
    expected = (image.astype(np.float32) - np.float32([100, 110, 120])) / 256
    level_0 = canvas[:, top:bottom + 1, left:right + 1]
    np.testing.assert_array_equal(level_0, expected.transpose(2, 0, 1))  # (H, W, 3) -> (3, H, W)
    inside = np.zeros(canvas.shape[1:], bool)
    for x0, y0, x1, y1 in layout.rects:
        inside[y0:y1 + 1, x0:x1 + 1] = True
    assert not canvas[:, ~inside].any()
    x0, y0, x1, y1 = layout.rects[1]
    expected_1 = naive_resize(level_0[0], y1 - y0 + 1, x1 - x0 + 1)
    np.testing.assert_allclose(canvas[0, y0:y1 + 1, x0:x1 + 1], expected_1, atol=1e-5)


# ------------------------------------------------------------ boxes

def test_overlap_divides_by_the_bounding_box():
    a, b = (0, 0, 9, 9), (5, 5, 14, 14)      # 100 pixels each, 25 shared
    # union = 175 (IoU 0.143), bounding box (0, 0, 14, 14) = 225 (0.111)
    assert not boxes_overlap(a, b, 0.12, 1.0)
    assert boxes_overlap(a, b, 0.11, 1.0)
    assert not boxes_overlap(a, (10, 10, 12, 12), 0.0, 0.0)                     # disjoint
    assert boxes_overlap((0, 0, 9, 9), (2, 2, 5, 5), 0.5, 0.99)                 # covers all of it
    assert not boxes_overlap((0, 0, 9, 9), (2, 2, 5, 5), 0.5, 1.0)


def test_suppress_keeps_the_best_of_each_cluster():
    candidates = [(3.0, (0, 0, 9, 9)), (2.0, (1, 1, 10, 10)), (1.5, (30, 30, 39, 39)),
                  (1.0, (0, 0, 8, 9))]
    kept = suppress(candidates, 0.5, 1.0)
    assert [tuple(box) for box in kept] == [(0, 0, 9, 9), (30, 30, 39, 39)]
    assert [box.confidence for box in kept] == [3.0, 1.5]


def test_facebox_is_a_four_tuple():
    box = FaceBox(1, 2, 3, 4, 0.5)
    left, top, right, bottom = box
    assert (left, top, right, bottom, box.confidence) == (1, 2, 3, 4, 0.5)


def test_nearest_rect_and_canvas_to_image():
    rects = [(11, 11, 110, 110), (11, 121, 93, 203)]
    assert nearest_rect(rects, (50, 50)) == 0
    assert nearest_rect(rects, (50, 115)) == 0      # 5 below level 0, 6 above level 1
    assert nearest_rect(rects, (50, 116)) == 1      # 6 below level 0, 5 above level 1
    assert nearest_rect(rects, (150, 300)) == 1     # outside both: the nearer one
    layout = detector.PyramidLayout(rects, 215, 122)
    np.testing.assert_allclose(canvas_to_image((20.0, 30.0, 60.0, 70.0), layout), [9, 19, 49, 59])
    # level 1: corners minus (11, 121), then q -> 6/5 q + 0.3
    np.testing.assert_allclose(canvas_to_image((21.0, 131.0, 61.0, 171.0), layout),
                               [12.3, 12.3, 60.3, 60.3])


# ------------------------------------------------------------ a tiny detector in dlib's format

def _tiny_detector_file(keep_bn=True):
    rng = np.random.default_rng(7)
    conv1 = ((rng.standard_normal((2, 3, 5, 5)) * 0.2).astype(np.float32),
             rng.standard_normal(2).astype(np.float32) * 0.1, 2, 0)
    bn = (rng.uniform(0.5, 1.5, 2).astype(np.float32), rng.standard_normal(2).astype(np.float32),
          rng.standard_normal(2).astype(np.float32), rng.uniform(0.5, 2, 2).astype(np.float32),
          1e-4)
    head = ((rng.standard_normal((1, 2, 3, 3)) * 0.3).astype(np.float32),
            np.array([0.05], np.float32), 1, 1)
    loss = (enc_string("loss_mmod_") + enc_int(1) + enc_int(20) + enc_int(20)
            + enc_float(1.0) + enc_float(1.0) + enc_float(0.5)
            + enc_float(0.4) + enc_float(1.0) + enc_float(0.5) + enc_float(1.0))
    pyramid_input = (enc_string("input_rgb_image_pyramid")
                     + b"".join(enc_float(m) for m in (10.0, 20.0, 30.0)))
    middle = [layer_bn_con(*bn)] if keep_bn else []
    layers = [layer_con(*conv1)] + middle + [LAYER_RELU, layer_con(*head)]
    return network_bytes(loss, pyramid_input, layers), conv1, bn, head


def test_tiny_detector_against_the_formulas():
    data, conv1, bn, head = _tiny_detector_file()
    network = detector.build_detector(read_dlib_network(data))
    x = np.random.default_rng(8).standard_normal((1, 3, 21, 19)).astype(np.float32)
    gamma, beta, mean, var, eps = (np.asarray(v, np.float64) for v in bn)
    z = naive_conv.conv(x.astype(np.float64), conv1[0], conv1[1], stride=2)
    per_channel = lambda v: v[:, None, None]  # noqa: E731
    a = np.maximum((z - per_channel(mean)) / per_channel(np.sqrt(var + eps)) * per_channel(gamma)
                   + per_channel(beta), 0)
    expected = naive_conv.conv(a, head[0], head[1], padding=1)
    with no_grad():
        np.testing.assert_allclose(network(Tensor(x)).data, expected, rtol=1e-4, atol=1e-5)
    # output (c, r) -> canvas: the head is centred (3 // 2 - 1 = 0), the 5x5/2 conv gives 2 o + 2
    assert network.output_to_canvas(3, 4) == (8.0, 10.0)
    assert network.options["overlaps_nms"] == (pytest.approx(0.4), 1.0)
    assert (network.options["padding"], network.options["outer_padding"]) == (10, 11)


def test_decode_on_a_planted_score_map():
    network = detector.build_detector(read_dlib_network(_tiny_detector_file()[0]))
    layout = pyramid_layout(60, 60)
    scores = np.full((40, 40), -1.0, np.float32)
    scores[10, 12] = 2.0       # canvas (26, 22): level 0, image (15, 11) +- 9.5
    scores[10, 13] = 1.0       # 2 pixels to the right: overlaps the first, suppressed
    boxes = decode(scores, network, layout)
    assert [tuple(b) for b in boxes] == [(6, 2, 25, 21)]   # 15 +- 9.5, 11 +- 9.5, rounded half up
    assert boxes[0].confidence == 2.0
    assert decode(scores, network, layout, threshold=5.0) == []


def test_wrong_networks_are_refused():
    without_bn = read_dlib_network(_tiny_detector_file(keep_bn=False)[0])
    with pytest.raises(DlibFormatError, match="expected con, bn_con, relu"):
        detector.build_detector(without_bn)
    with pytest.raises(TypeError, match="uint8"):
        detector.check_image(np.zeros((10, 10, 3)))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        detector.check_image(np.zeros((10, 10), np.uint8))


# ------------------------------------------------------------ against dlib

def _photos():
    from PIL import Image
    pictures = {path.stem: np.asarray(Image.open(path).convert("RGB"))
                for path in sorted(PHOTOS.glob("*.jpg"))}
    if not pictures:
        pictures["astronaut"] = pytest.importorskip("skimage.data").astronaut()
    first = next(iter(pictures.values()))
    pictures["mirrored"] = np.ascontiguousarray(first[:, ::-1])
    pictures["640x480"] = np.asarray(Image.fromarray(first).resize((640, 480), Image.BILINEAR))
    pictures["cropped"] = np.ascontiguousarray(first[37:401, 23:470])
    faces = [p[:300, :300] for p in list(pictures.values())[:2]]
    pictures["two faces"] = np.ascontiguousarray(np.concatenate(faces, axis=1))
    return pictures


def test_detections_equal_dlib():
    dlib = pytest.importorskip("dlib")
    try:
        path = find_model_file("detector")
    except ModelFileNotFound:
        pytest.skip("dlib's detector file is not installed (scratchnet[pretrained])")
    reference = dlib.cnn_face_detection_model_v1(str(path))
    found = 0
    for name, image in _photos().items():
        expected = [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), d.confidence)
                    for d in reference(image)]
        ours = detector.detect(image)
        assert [tuple(box) for box in ours] == [box for box, _ in expected], name
        np.testing.assert_allclose([box.confidence for box in ours], [c for _, c in expected],
                                   atol=1e-3, err_msg=name)
        found += len(ours)
    assert found >= 5
