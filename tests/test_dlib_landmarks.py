"""Landmarks from dlib's shape predictor: the reader, the fast cascade, equality with dlib.

Oracles: a hand-worked one-split model; `naive_dlib.naive_landmarks` (loops, similarity
from an SVD) on random models; identities (gray = floor of the RGB mean, pixels outside
the image read as 0, translation); dlib's own shape_predictor on the test photos and their
transformed copies (skipped without dlib or the model files).
"""

import numpy as np
import pytest
from dlib_faces import (
    COPIES,
    PHOTOS,
    as_tuple,
    dlib_parts,
    dlib_predictor,
    face_case,
    model_path,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_dlib import naive_landmarks, shape_predictor_bytes, umeyama_scale_rotation

from scratchnet.face.dlib.files import ModelFileNotFound
from scratchnet.face.dlib.landmarks import (
    ShapePredictor,
    landmarks,
    load_shape_predictor,
    similarity_transform,
)
from scratchnet.io.dlib_format import DlibFormatError


def write(tmp_path, predictor, name="model.dat", **kwargs):
    path = tmp_path / name
    path.write_bytes(shape_predictor_bytes(predictor, **kwargs))
    return path


# ---- a model worked by hand --------------------------------------------------------------


def one_split_model():
    """Two points on the box's middle row; one tree with one split on their two pixels.

    Feature 0 reads the pixel under point 0, feature 1 the pixel under point 1. When
    feature 0 - feature 1 > 10 the left leaf moves both points right by 1/4 of the box;
    otherwise the right leaf moves both up by 1/4.
    """
    return ShapePredictor(
        mean_shape=np.array([[0.25, 0.5], [0.75, 0.5]], np.float32),
        split_features=np.array([[[[0, 1]]]]),
        split_thresholds=np.array([[[10.0]]], np.float32),
        leaf_values=np.array([[[[[0.25, 0.0], [0.25, 0.0]],
                                [[0.0, -0.25], [0.0, -0.25]]]]], np.float32),
        anchors=np.array([[0, 1]]),
        deltas=np.zeros((1, 2, 2), np.float32),
    )


@pytest.mark.parametrize("under_0, under_1, expected", [
    # box (0, 0, 20, 20): point 0 sits on pixel (5, 10), point 1 on (15, 10)
    (100, 50, [[10, 10], [20, 10]]),   # 100 - 50 > 10: left leaf, both 5 pixels right
    (50, 100, [[5, 5], [15, 5]]),      # -50 is not > 10: right leaf, both 5 pixels up
    (60, 50, [[5, 5], [15, 5]]),       # 10 is not > 10
])
def test_one_split_model_worked_by_hand(tmp_path, under_0, under_1, expected):
    image = np.zeros((21, 21), np.uint8)
    image[10, 5], image[10, 15] = under_0, under_1
    model = load_shape_predictor(write(tmp_path, one_split_model()))
    assert landmarks(image, (0, 0, 20, 20), points=2, model=model).tolist() == expected
    assert naive_landmarks(image, (0, 0, 20, 20), model).tolist() == expected


def test_box_mapping_rounds_half_up():
    """u = 1/8 of a 4-pixel-wide box is 0.5 pixel: dlib rounds it to 1 (floor(x + 1/2))."""
    model = ShapePredictor.constant([[0.125, 0.375], [0.375, 0.625]])
    points = landmarks(np.zeros((9, 9), np.uint8), (0, 0, 4, 4), points=2, model=model)
    assert points.tolist() == [[1, 2], [2, 3]]  # 0.5 -> 1, 1.5 -> 2, 1.5 -> 2, 2.5 -> 3


# ---- random models against the naive cascade -------------------------------------------


@st.composite
def random_models(draw):
    """A ShapePredictor of random size and contents (depth 1-3, 1-3 cascades).

    1 or 3-6 points: with two points the covariance of the similarity fit has rank 1 and
    the SVD's choice between rotation and reflection is rounding noise (dlib's models have
    5 and 68 points).
    """
    seed = draw(st.integers(0, 2**32 - 1))
    points = draw(st.sampled_from([1, 3, 4, 5, 6]))
    cascades, trees, depth = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    features = draw(st.integers(1, 12))
    rng = np.random.default_rng(seed)
    splits, leaves = 2**depth - 1, 2**depth
    return ShapePredictor(
        mean_shape=rng.uniform(0, 1, (points, 2)).astype(np.float32),
        split_features=rng.integers(0, features, (cascades, trees, splits, 2)),
        split_thresholds=rng.normal(0, 60, (cascades, trees, splits)).astype(np.float32),
        leaf_values=rng.normal(0, 0.1, (cascades, trees, leaves, points, 2)).astype(np.float32),
        anchors=rng.integers(0, points, (cascades, features)),
        deltas=rng.normal(0, 0.3, (cascades, features, 2)).astype(np.float32),
    )


@st.composite
def images_and_boxes(draw):
    """A random RGB or gray image and a box that may reach outside it."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_H, n_W = draw(st.integers(1, 30)), draw(st.integers(1, 30))
    channels = draw(st.sampled_from([(), (3,)]))
    image = rng.integers(0, 256, (n_H, n_W) + channels, dtype=np.uint8)
    left, top = draw(st.integers(-10, 25)), draw(st.integers(-10, 25))
    box = (left, top, left + draw(st.integers(0, 30)), top + draw(st.integers(0, 30)))
    return image, box


@settings(max_examples=40, deadline=None)
@given(random_models(), images_and_boxes())
def test_fast_cascade_matches_naive(model, image_and_box):
    image, box = image_and_box
    fast = landmarks(image, box, points=model.num_parts, model=model)
    assert fast.dtype == np.int64 and fast.shape == (model.num_parts, 2)
    np.testing.assert_array_equal(fast, naive_landmarks(image, box, model))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 3, 5, 8, 68]))
def test_similarity_closed_form_matches_umeyama_svd(seed, points):
    rng = np.random.default_rng(seed)
    source = rng.normal(0, 1, (points, 2))
    target = rng.normal(0, 1, (points, 2)) if seed % 2 else source[:, ::-1] * 3 + 1  # reflected
    scale_rotation, translation = similarity_transform(source, target)
    expected = np.eye(2) if points == 1 else umeyama_scale_rotation(source, target)
    np.testing.assert_allclose(scale_rotation, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(translation, target.mean(0) - expected @ source.mean(0),
                               rtol=1e-9, atol=1e-12)


# ---- identities --------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(random_models(), images_and_boxes())
def test_rgb_reads_as_floor_of_channel_mean(model, image_and_box):
    image, box = image_and_box
    rgb = image if image.ndim == 3 else np.stack([image, image // 2, image // 3], axis=2)
    gray = (rgb.astype(np.int64).sum(axis=2) // 3).astype(np.uint8)
    np.testing.assert_array_equal(landmarks(rgb, box, points=model.num_parts, model=model),
                                  landmarks(gray, box, points=model.num_parts, model=model))


@settings(max_examples=25, deadline=None)
@given(random_models(), images_and_boxes(), st.integers(0, 12), st.integers(0, 12))
def test_outside_reads_zero_and_translation_shifts(model, image_and_box, dx, dy):
    """The image pasted at (dx, dy) on a black canvas, with the box moved along, gives the
    same points moved by (dx, dy): outside pixels read as the canvas's 0."""
    image, (left, top, right, bottom) = image_and_box
    canvas = np.zeros((image.shape[0] + dy + 7, image.shape[1] + dx + 5) + image.shape[2:], np.uint8)
    canvas[dy:dy + image.shape[0], dx:dx + image.shape[1]] = image
    moved = (left + dx, top + dy, right + dx, bottom + dy)
    args = {"points": model.num_parts, "model": model}
    np.testing.assert_array_equal(landmarks(canvas, moved, **args),
                                  landmarks(image, (left, top, right, bottom), **args) + (dx, dy))


# ---- the reader ---------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(random_models())
def test_file_round_trip(tmp_path_factory, model):
    path = write(tmp_path_factory.mktemp("model"), model)
    loaded = load_shape_predictor(path)
    for name in ("mean_shape", "split_features", "split_thresholds", "leaf_values",
                 "anchors", "deltas"):
        expected, got = getattr(model, name), getattr(loaded, name)
        assert got.dtype == expected.dtype, name
        np.testing.assert_array_equal(got, expected, err_msg=name)


@settings(max_examples=25, deadline=None)
@given(random_models(), st.floats(0, 1, exclude_max=True))
def test_truncated_file_names_an_offset_before_the_cut(tmp_path_factory, model, where):
    data = shape_predictor_bytes(model)
    cut = int(where * len(data))
    path = tmp_path_factory.mktemp("model") / "cut.dat"
    path.write_bytes(data[:cut])
    with pytest.raises(DlibFormatError, match="byte offset") as error:
        load_shape_predictor(path)
    assert 0 <= error.value.offset <= cut


def corrupt(model, **changes):
    fields = {name: getattr(model, name) for name in ShapePredictor.__dataclass_fields__}
    fields.update(changes)
    return ShapePredictor(**fields)


@pytest.mark.parametrize("change, message", [
    ({"anchors": np.array([[0, 2]])}, "anchor lies outside the 2 landmarks"),
    ({"split_features": np.array([[[[0, 2]]]])}, "split reads a feature outside"),
    ({"leaf_values": np.zeros((1, 1, 3, 2, 2), np.float32)}, "full binary tree"),
])
def test_inconsistent_model_is_refused(tmp_path, change, message):
    path = write(tmp_path, corrupt(one_split_model(), **change))
    with pytest.raises(DlibFormatError, match=message):
        load_shape_predictor(path)


def test_wrong_version_and_trailing_bytes_are_refused(tmp_path):
    with pytest.raises(DlibFormatError, match="version.*byte offset 0.*expected 1, found 2"):
        load_shape_predictor(write(tmp_path, one_split_model(), version=2))
    path = tmp_path / "long.dat"
    path.write_bytes(shape_predictor_bytes(one_split_model()) + b"\x00")
    with pytest.raises(DlibFormatError, match="1 unexpected bytes"):
        load_shape_predictor(path)


# ---- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("image, box, points, error, message", [
    (np.zeros((9, 9), np.float32), (0, 0, 4, 4), 2, TypeError, "uint8"),
    ([[0]], (0, 0, 4, 4), 2, TypeError, "numpy.ndarray"),
    (np.zeros((9, 9, 4), np.uint8), (0, 0, 4, 4), 2, ValueError, r"\(n_H, n_W, 3\)"),
    (np.zeros((9, 9), np.uint8), (0.0, 0, 4, 4), 2, TypeError, "4 integers"),
    (np.zeros((9, 9), np.uint8), (0, 0, 4), 2, TypeError, "4 integers"),
    (np.zeros((9, 9), np.uint8), (0, 0, 4, 4), 5, ValueError, "points is 5 but the model places 2"),
])
def test_bad_arguments_name_what_was_expected(image, box, points, error, message):
    with pytest.raises(error, match=message):
        landmarks(image, box, points=points, model=one_split_model())


def test_missing_model_file_says_where_it_looked(tmp_path):
    with pytest.raises(ModelFileNotFound, match="shape_predictor_5_face_landmarks.dat"):
        landmarks(np.zeros((9, 9), np.uint8), (0, 0, 4, 4), points=5, model=tmp_path)
    with pytest.raises(ValueError, match="5 or 68"):
        landmarks(np.zeros((9, 9), np.uint8), (0, 0, 4, 4), points=7)


# ---- equality with dlib ------------------------------------------------------------------


@pytest.mark.parametrize("points", [5, 68])
@pytest.mark.parametrize("copy", COPIES)
@pytest.mark.parametrize("photo", PHOTOS)
def test_equal_to_dlib_shape_predictor(photo, copy, points):
    image, boxes = face_case(photo, copy)
    path = model_path(points)
    for box in boxes:
        expected = dlib_parts(dlib_predictor(points)(image, box))
        np.testing.assert_array_equal(landmarks(image, as_tuple(box), points=points, model=path),
                                      expected, err_msg=f"box {box}")


def test_dlib_models_load_with_their_sizes():
    for points, features in ((5, 800), (68, 500)):
        model = load_shape_predictor(model_path(points))
        assert model.num_parts == points
        assert model.split_features.shape == (15, 500, 15, 2)  # 15 cascades of 500 depth-4 trees
        assert model.leaf_values.shape == (15, 500, 16, points, 2)
        assert model.deltas.shape == (15, features, 2)
