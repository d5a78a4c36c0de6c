"""Face data: the synthetic generator, the pixel baseline, the real-data loaders.

The generator is checked for its contract (shapes, range, labels, determinism,
stability of the first persons, errors) and for the two properties the face
issue asks of the data: identity is present (pictures of one person are closer
than pictures of two) and raw pixels verify held-out pairs poorly (accuracy
between chance and 0.75). The helpers that measure this are checked on
hand-made cases first. The loaders read fixture trees written with Pillow.
"""

import doctest

import numpy as np
import pytest
from PIL import Image

from scratchnet.face import (
    contact_sheet,
    count_single_picture_identities,
    datasets,
    fit_threshold,
    load_face_image,
    load_image_folder,
    load_lfw_pairs,
    pair_distances,
    pixel_baseline_accuracy,
    read_lfw_pairs,
    sample_pairs,
    synthetic,
    synthetic_faces,
)
from scratchnet.face.synthetic import identity_attributes

# ------------------------------------------------------------------ the generator's contract

def test_shapes_dtypes_range_and_labels():
    images, labels = synthetic_faces(n_identities=5, per_identity=3, seed=0, size=32)
    assert images.shape == (15, 3, 32, 32) and images.dtype == np.float32
    assert labels.dtype == np.int64
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert images.std() > 0.1  # pictures, not a constant


def test_default_size_is_64():
    images, _ = synthetic_faces(1, 1, seed=0)
    assert images.shape == (1, 3, 64, 64)


def test_same_seed_gives_bit_identical_pictures():
    first = synthetic_faces(4, 3, seed=5, size=32)
    second = synthetic_faces(4, 3, seed=5, size=32)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])


def test_first_persons_do_not_change_when_more_are_drawn():
    few, _ = synthetic_faces(3, 2, seed=7, size=32)
    many, _ = synthetic_faces(8, 2, seed=7, size=32)
    assert np.array_equal(few, many[:6])
    assert np.array_equal(identity_attributes(3, 7), identity_attributes(8, 7)[:3])


def test_different_seeds_give_different_persons():
    a, b = identity_attributes(20, 0), identity_attributes(20, 1)
    assert not np.any(a["face_width"] == b["face_width"])
    assert not np.array_equal(a["hair_style"], b["hair_style"])
    images_a, _ = synthetic_faces(2, 1, seed=0, size=32)
    images_b, _ = synthetic_faces(2, 1, seed=1, size=32)
    assert np.abs(images_a - images_b).mean() > 0.05


def test_attributes_are_varied_across_persons():
    faces = identity_attributes(500, 0)
    for field, kinds in (("hair_style", 6), ("glasses", 4), ("beard", 4)):
        assert set(faces[field].tolist()) == set(range(kinds)), field
    assert faces["skin"].mean(axis=1).std() > 0.1


@pytest.mark.parametrize("name, value", [
    ("n_identities", 0), ("per_identity", 0), ("size", 15), ("seed", -1),
])
def test_bad_arguments_raise_value_error_naming_them(name, value):
    arguments = {"n_identities": 2, "per_identity": 2, "seed": 0, "size": 32}
    arguments[name] = value
    with pytest.raises(ValueError, match=name):
        synthetic_faces(**arguments)


@pytest.mark.parametrize("name, value", [("n_identities", 2.0), ("seed", "0"), ("size", True)])
def test_non_int_arguments_raise_type_error_naming_them(name, value):
    arguments = {"n_identities": 2, "per_identity": 2, "seed": 0, "size": 32}
    arguments[name] = value
    with pytest.raises(TypeError, match=name):
        synthetic_faces(**arguments)


# ------------------------------------------------------------------ the helpers, by hand

def test_fit_threshold_on_hand_worked_cases():
    # separable: tau halfway between the largest same and the smallest different
    assert fit_threshold([0.1, 0.2, 0.9, 1.0], [True, True, False, False]) == (0.55, 1.0)
    # one same pair far away: best is still to cut at 0.55 and miss it (4 of 5 right)
    assert fit_threshold([0.1, 0.2, 0.9, 1.0, 3.0], [True, True, False, False, True]) == (0.55, 0.8)
    # equal distances cannot be split: cut below or above both
    tau, accuracy = fit_threshold([0.5, 0.5], [True, False])
    assert accuracy == 0.5 and tau != 0.5
    # best to accept no pair (the same person is the farthest): tau halfway to the closest,
    # never below 0 (a tau < 0 is no threshold on squared distances)
    assert fit_threshold([0.4, 0.6, 0.8], [False, False, True]) == (0.2, 2 / 3)
    # a different pair at distance 0 cannot be refused by any tau >= 0: the best cut left
    # accepts it alone (1 of 3 right, as accepting all three would be; the first cut wins)
    assert fit_threshold([0.0, 0.6, 0.8], [False, False, True]) == (0.3, 1 / 3)
    tau, accuracy = fit_threshold([0.0, 0.0], [False, False])
    assert tau >= 0 and accuracy == 0.0


def test_pair_distances_match_a_loop():
    rng = np.random.default_rng(0)
    images = rng.random((6, 3, 4, 4)).astype(np.float32)
    first, second = np.array([0, 1, 5, 2]), np.array([3, 1, 0, 4])
    expected = [sum((float(images[i].flat[k]) - float(images[j].flat[k])) ** 2
                    for k in range(images[i].size)) for i, j in zip(first, second)]
    np.testing.assert_allclose(pair_distances(images, first, second, chunk=3), expected, rtol=1e-6)


def test_sample_pairs_are_balanced_and_labelled_right():
    labels = np.array([0, 0, 0, 1, 2, 2, 3, 4, 4, 4])
    first, second, same = sample_pairs(labels, n_pairs=400, seed=1)
    assert same.sum() == 200
    assert np.array_equal(labels[first] == labels[second], same)
    assert not np.any(first == second)
    assert set(labels[first[same]].tolist()) == {0, 2, 4}  # persons with two pictures or more
    again = sample_pairs(labels, n_pairs=400, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip((first, second, same), again))


def test_sample_pairs_refuses_labels_without_a_pair():
    with pytest.raises(ValueError, match="labels"):
        sample_pairs(np.array([0, 1, 2]), n_pairs=10, seed=0)


def test_pixel_baseline_is_perfect_when_pixels_carry_the_person():
    # each person one flat colour, pictures of one person identical up to tiny noise
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 4)
    colours = rng.random((10, 3))
    images = colours[labels][:, :, None, None] + 0.001 * rng.random((40, 3, 8, 8))
    assert pixel_baseline_accuracy(images, labels, n_pairs=200, seed=0) == 1.0


def test_count_single_picture_identities():
    assert count_single_picture_identities(np.array([3, 3, 1, 0, 0, 0, 5])) == 2
    assert count_single_picture_identities(np.array([0, 0])) == 0


def test_contact_sheet_places_each_person_on_its_row():
    labels = np.array([2, 2, 0, 2, 0])
    images = np.zeros((5, 3, 4, 4))
    images[:, 0] = np.arange(5)[:, None, None] / 10  # red channel = picture index / 10
    sheet = contact_sheet(images, labels, n_identities=2, per_identity=3)
    gap = datasets.SHEET_GAP
    assert sheet.shape == (2 * 4 + gap, 3 * 4 + 2 * gap, 3) and sheet.dtype == np.uint8

    def cell(row, column):
        return sheet[row * (4 + gap), column * (4 + gap)]

    # row 0: person 2 (seen first) with pictures 0, 1, 3; row 1: person 0 with 2, 4, blank
    assert [cell(0, c)[0] for c in range(3)] == [0, 26, 76]
    assert [cell(1, c)[0] for c in range(2)] == [51, 102]
    assert cell(1, 2).tolist() == [255, 255, 255]
    assert sheet[4, 0].tolist() == [255, 255, 255]  # the gap between the rows


# ------------------------------------------------------------------ what the data must offer

@pytest.fixture(scope="module")
def held_out_faces():
    """200 persons x 5 pictures from a seed no test trains on."""
    return synthetic_faces(200, 5, seed=12345)


def test_raw_pixels_verify_held_out_pairs_poorly(held_out_faces):
    images, labels = held_out_faces
    accuracy = pixel_baseline_accuracy(images, labels, n_pairs=4000, seed=0)
    assert 0.5 <= accuracy <= 0.75


def test_pictures_of_one_person_are_closer_than_pictures_of_two(held_out_faces):
    images, labels = held_out_faces
    first, second, same = sample_pairs(labels, n_pairs=4000, seed=1)
    distances = pair_distances(images, first, second)
    assert distances[same].mean() < 0.9 * distances[~same].mean()


# ------------------------------------------------------------------ one folder per person

def _save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(path)


@pytest.fixture
def face_folder(tmp_path):
    """alice: 2 RGB pictures; bob: gray, RGBA and a corrupt file; carol: 1; dave: only corrupt."""
    root = tmp_path / "people"
    red = np.zeros((30, 50, 3)); red[..., 0] = 255
    _save(root / "alice" / "a1.jpg", red)
    _save(root / "alice" / "a2.PNG", np.full((20, 20, 3), 128))
    _save(root / "bob" / "gray.png", np.full((16, 16), 200), "L")
    transparent = np.zeros((16, 16, 4)); transparent[..., 2] = 255  # blue, alpha 0
    _save(root / "bob" / "clear.png", transparent, "RGBA")
    (root / "bob" / "broken.jpg").write_bytes(b"not a picture")
    _save(root / "carol" / "only.png", np.full((10, 10, 3), 30))
    (root / "dave").mkdir()
    (root / "dave" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (root / "alice" / "notes.txt").write_text("not an image")
    (root / "alice" / ".hidden.jpg").write_bytes(b"")
    _save(root / "loose.png", np.zeros((8, 8, 3)))  # not in a person's folder
    return root


def test_image_folder_reads_every_readable_picture(face_folder):
    notes = []
    images, labels, names = load_image_folder(face_folder, size=16, note=notes.append)
    assert names == ["alice", "bob", "carol"]
    assert labels.tolist() == [0, 0, 1, 1, 2]  # bob: clear.png, gray.png (sorted)
    assert images.shape == (5, 3, 16, 16) and images.dtype == np.float32
    assert notes == [
        f"skipped 2 unreadable pictures: {face_folder / 'bob' / 'broken.jpg'}, "
        + f"{face_folder / 'dave' / 'broken.png'}",
        "resized 3 of 5 pictures to 16 x 16",  # all but the two 16 x 16 ones of bob
        "skipped 1 persons without a readable picture: dave",
    ]
    np.testing.assert_allclose(images[2], 1.0)  # transparent: on white
    np.testing.assert_allclose(images[3], 200 / 255, atol=1e-6)  # gray into R, G and B


def test_image_folder_centre_crops_to_a_square(tmp_path):
    stripes = np.zeros((20, 40, 3)); stripes[:, :10, 2] = stripes[:, 30:, 2] = 255
    stripes[:, 10:30, 0] = 255  # blue | red (the centre 20 x 20) | blue
    _save(tmp_path / "p" / "wide.png", stripes)
    images, _, _ = load_image_folder(tmp_path, size=20, note=None)
    assert np.allclose(images[0, 0], 1) and np.allclose(images[0, 2], 0)
    half, _, _ = load_image_folder(tmp_path, size=10, crop=0.5, note=None)
    assert half.shape == (1, 3, 10, 10) and np.allclose(half[0, 0], 1, atol=1e-3)


def test_image_folder_leaves_out_persons_with_too_few_pictures(face_folder):
    notes = []
    images, labels, names = load_image_folder(
        face_folder, size=8, min_per_identity=2, note=notes.append)
    assert names == ["alice", "bob"] and labels.tolist() == [0, 0, 1, 1]
    assert len(images) == 4
    assert notes[-1] == "skipped 2 persons with fewer than 2 pictures: carol, dave"


def test_image_folder_errors(tmp_path, face_folder):
    with pytest.raises(FileNotFoundError, match="root"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="root"):
        load_image_folder(tmp_path / "empty", note=None)
    with pytest.raises(ValueError, match="min_per_identity"):
        load_image_folder(face_folder, min_per_identity=0)
    with pytest.raises(ValueError, match="crop"):
        load_image_folder(face_folder, crop=1.5)


# ------------------------------------------------------------------ LFW pairs

@pytest.fixture
def lfw(tmp_path):
    """Two folds of two matched and two mismatched pairs; one picture (Cy_Dee_0002) missing."""
    root = tmp_path / "lfw"
    pictures = [("Ann_A", 1), ("Ann_A", 2), ("Ann_A", 3), ("Bo_Bb", 1), ("Bo_Bb", 2), ("Cy_Dee", 1)]
    for shade, (name, index) in enumerate(pictures):  # each picture its own gray
        _save(root / name / f"{name}_{index:04d}.jpg", np.full((25, 25, 3), 30 + 40 * shade))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("2\t2\n"
                     "Ann_A\t1\t2\nBo_Bb\t1\t2\nAnn_A\t1\tBo_Bb\t2\nAnn_A\t3\tCy_Dee\t1\n"
                     "Ann_A\t2\t3\nCy_Dee\t1\t2\nBo_Bb\t1\tCy_Dee\t1\nBo_Bb\t2\tAnn_A\t3\n")
    return pairs, root


def test_read_lfw_pairs_parses_folds(lfw):
    pairs, _ = lfw
    folds = read_lfw_pairs(pairs)
    assert len(folds) == 2
    first, second, same = folds[0]
    assert first == [("Ann_A", 1), ("Bo_Bb", 1), ("Ann_A", 1), ("Ann_A", 3)]
    assert second == [("Ann_A", 2), ("Bo_Bb", 2), ("Bo_Bb", 2), ("Cy_Dee", 1)]
    assert same.tolist() == [True, True, False, False]


def test_load_lfw_pairs_reads_the_pictures_and_drops_broken_pairs(lfw):
    pairs, root = lfw
    notes = []
    folds = load_lfw_pairs(pairs, root, size=8, note=notes.append)
    (a1, a2, same_a), (b1, b2, same_b) = folds
    assert a1.shape == a2.shape == (4, 3, 8, 8) and same_a.tolist() == [True, True, False, False]

    def picture(name, i):
        return load_face_image(root / name / f"{name}_{i:04d}.jpg", 8)

    np.testing.assert_array_equal(a1[3], picture("Ann_A", 3))
    np.testing.assert_array_equal(a2[3], picture("Cy_Dee", 1))
    # fold 2 loses "Cy_Dee 1 2": Cy_Dee_0002.jpg does not exist
    assert len(b1) == len(b2) == 3 and same_b.tolist() == [True, False, False]
    np.testing.assert_array_equal(b1[1], picture("Bo_Bb", 1))
    assert notes[-1] == "dropped 1 pairs whose pictures could not be read"


def test_lfw_single_number_header_means_one_fold(tmp_path):
    pairs = tmp_path / "pairsDevTrain.txt"
    pairs.write_text("1\nA 1 2\nA 1 B 1\n")
    (first, second, same), = read_lfw_pairs(pairs)
    assert first == [("A", 1), ("A", 1)] and second == [("A", 2), ("B", 1)]
    assert same.tolist() == [True, False]


@pytest.mark.parametrize("text, match", [
    ("2 1\nA 1 2\nA 1 B 1\n", "header announces 2 folds"),
    ("1 1\nA 1 2\nA one B 1\n", "line 3"),
    ("1 1\nA 1 2\nA 1 B 1 C\n", "line 3"),
    ("3 0\n", "line 1: expected a header 'folds pairs' or 'pairs' of positive numbers"),
    ("0\n", "line 1: expected a header"),
    ("1 1 1\nA 1 2\nA 1 B 1\n", "line 1: expected a header"),
    (b"PK\x03\x04\xff\xfe binary", "is not a UTF-8 text file"),
])
def test_malformed_lfw_pairs_raise_naming_the_problem(tmp_path, text, match):
    pairs = tmp_path / "pairs.txt"
    pairs.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError, match=match):
        read_lfw_pairs(pairs)


def test_lfw_with_a_wrong_root_says_so(lfw, tmp_path):
    pairs, _ = lfw
    with pytest.raises(FileNotFoundError, match="images_root"):
        load_lfw_pairs(pairs, tmp_path / "nowhere", note=None)


# ------------------------------------------------------------------ docstring examples

@pytest.mark.parametrize("module", [synthetic, datasets], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
