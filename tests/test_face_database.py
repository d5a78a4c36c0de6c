"""Recognition 1:K: the face database, its file, and what it refuses.

The encoder is a stand-in: a fixed random projection of the centred pixels, L2-normalised,
with a fingerprint made from its seed. Oracles: nearest persons and distances
against a loop over every enrolled encoding in float64; the stored encoding of
a person enrolled from several pictures against the mean of the encoder's
outputs; the file's bytes before and after every refused or failed operation.
"""

import doctest

import numpy as np
import pytest

from scratchnet import serialize
from scratchnet.face import database
from scratchnet.face.database import DatabaseError, FaceDatabase, NotEnrolledError
from scratchnet.serialize import load_npz, save_npz

PICTURE = 8   # pictures are (3, 8, 8)


class ProjectionEncoder:
    """f(x) = P (x - 0.5) / |P (x - 0.5)| for a fixed random P: random pictures land far apart."""

    def __init__(self, seed=0, embedding_size=16, tau=0.5):
        rng = np.random.default_rng(seed)
        self.projection = rng.normal(size=(3 * PICTURE * PICTURE, embedding_size))
        self.fingerprint = f"projection-{seed}-{embedding_size}"
        self.embedding_size = embedding_size
        self.tau = tau
        self.pictures_encoded = 0

    def __call__(self, images):
        self.pictures_encoded += len(images)
        flat = (images.reshape(len(images), -1) - 0.5) @ self.projection  # (N, 3, S, S) -> (N, d)
        return (flat / np.linalg.norm(flat, axis=1, keepdims=True)).astype(np.float32)


def pictures(n, seed):
    return np.random.default_rng(seed).random((n, 3, PICTURE, PICTURE), dtype=np.float32)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "faces.npz"


@pytest.fixture
def encoder():
    return ProjectionEncoder()


def enrolled(path, encoder, n_persons=3):
    """A database with persons p0, p1, ... enrolled from one picture each; and the pictures."""
    faces = FaceDatabase(path, encoder)
    images = pictures(n_persons, seed=10)
    for k, image in enumerate(images):
        faces.enroll(f"p{k}", image)
    return faces, images


# ------------------------------------------------------------------ empty databases

def test_a_new_path_is_an_empty_database_and_nothing_is_written(path, encoder):
    faces = FaceDatabase(path, encoder)
    assert len(faces) == 0 and faces.names() == []
    assert faces.identify(pictures(1, 0)[0]) == (None, np.inf)
    names, distances = faces.identify_many(pictures(4, 0))
    assert names == [None] * 4 and np.all(distances == np.inf)
    assert not path.exists()


def test_the_file_is_created_at_the_first_enrolment(path, encoder):
    faces = FaceDatabase(path, encoder)
    faces.enroll("Ann", pictures(1, 0))
    assert path.exists() and faces.names() == ["Ann"]


# ------------------------------------------------------------------ recognition

def test_one_shot_enrolment_recognises_the_same_picture(path, encoder):
    faces, images = enrolled(path, encoder)
    for k, image in enumerate(images):
        name, distance = faces.identify(image)
        assert name == f"p{k}" and distance == pytest.approx(0, abs=1e-6)


def test_nearest_and_distances_match_a_loop_over_every_person(path, encoder):
    rng = np.random.default_rng(1)
    faces = FaceDatabase(path, encoder)
    stored = rng.normal(size=(50, 16)).astype(np.float32)
    faces.enroll_embeddings([f"id{k}" for k in range(50)], stored)
    queries = rng.normal(size=(20, 16)).astype(np.float32)
    names, distances = faces.nearest(queries)
    for query, name, distance in zip(queries, names, distances):
        all_distances = [sum((float(q) - float(e)) ** 2 for q, e in zip(query, row))
                         for row in stored]
        assert name == f"id{int(np.argmin(all_distances))}"
        assert distance == pytest.approx(min(all_distances), rel=1e-12)


def test_many_queries_are_cut_into_chunks_with_the_same_answers(path, encoder, monkeypatch):
    rng = np.random.default_rng(2)
    faces = FaceDatabase(path, encoder)
    faces.enroll_embeddings([f"id{k}" for k in range(30)], rng.normal(size=(30, 16)))
    queries = rng.normal(size=(25, 16))
    whole = faces.nearest(queries)
    monkeypatch.setattr(database, "SCORES_PER_CHUNK", 70)   # 2 queries per chunk
    chunked = faces.nearest(queries)
    assert whole[0] == chunked[0] and np.array_equal(whole[1], chunked[1])


def test_not_recognized_exactly_when_the_distance_exceeds_tau(path, encoder):
    e = np.eye(16, dtype=np.float32)
    for tau, expected in ((2.0, "Ann"), (1.99, None)):
        faces = FaceDatabase(path, encoder, tau=tau)
        if "Ann" not in faces:
            faces.enroll_embeddings(["Ann"], e[:1])
        names, distances = faces.identify_embeddings(e[1:2])   # ||e_0 - e_1||^2 = 2
        assert names == [expected] and distances.tolist() == [2.0]


def test_tau_follows_the_encoder_unless_given(path, encoder):
    faces = FaceDatabase(path, encoder)
    encoder.tau = 0.25
    assert faces.tau == 0.25
    assert FaceDatabase(path, encoder, tau=1.5).tau == 1.5


def test_recognition_uses_the_encoders_tau_identify_when_it_has_one(path, encoder):
    faces, images = enrolled(path, encoder, n_persons=1)
    far = 1 - images[0]                    # f(1 - x) = -f(x): at squared distance 4
    encoder.tau = 4.5
    assert faces.identify(far) == ("p0", pytest.approx(4.0))
    encoder.tau_identify = 3.5             # the 1:K threshold, fitted apart from tau
    assert faces.tau == 3.5 and faces.identify(far) == (None, pytest.approx(4.0))
    assert FaceDatabase(path, encoder, tau=4.5).identify(far)[0] == "p0"


def test_a_stranger_is_not_recognized(path, encoder):
    faces, _ = enrolled(path, encoder)
    name, distance = faces.identify(1 - pictures(1, seed=99)[0])
    assert distance > encoder.tau and name is None


def test_identify_many_answers_like_identify_one_by_one(path, encoder):
    faces, images = enrolled(path, encoder, n_persons=4)
    queries = np.concatenate([images, pictures(3, seed=5)])
    names, distances = faces.identify_many(queries)
    one_by_one = [faces.identify(query) for query in queries]
    assert names == [name for name, _ in one_by_one]
    np.testing.assert_array_equal(distances, [d for _, d in one_by_one])


def test_enrolling_several_pictures_stores_their_mean_encoding_and_count(path, encoder):
    faces = FaceDatabase(path, encoder)
    images = pictures(3, seed=4)
    faces.enroll("Bob", images)
    stored = load_npz(path)
    np.testing.assert_allclose(stored["embeddings"][0], encoder(images).mean(axis=0), rtol=1e-6)
    assert stored["counts"].tolist() == [3] and faces.picture_count("Bob") == 3


# ------------------------------------------------------------------ changes and the file

def test_the_file_holds_the_documented_arrays(path, encoder):
    enrolled(path, encoder, n_persons=2)
    stored = load_npz(path)
    assert list(stored) == list(database.KEYS)
    assert str(stored["format"]) == "scratchnet-face-database" and int(stored["version"]) == 1
    assert str(stored["fingerprint"]) == encoder.fingerprint
    assert int(stored["embedding_size"]) == 16
    assert stored["names"].tolist() == ["p0", "p1"]
    assert stored["embeddings"].shape == (2, 16) and stored["embeddings"].dtype == np.float32
    assert stored["counts"].tolist() == [1, 1]


def test_reopening_gives_the_same_database(path, encoder):
    faces, images = enrolled(path, encoder)
    faces.enroll("Ünal Ö", pictures(2, seed=3))
    reopened = FaceDatabase(path, encoder)
    assert reopened.names() == ["p0", "p1", "p2", "Ünal Ö"]
    assert reopened.picture_count("Ünal Ö") == 2
    assert reopened.identify_many(images)[0] == faces.identify_many(images)[0]


def test_an_existing_name_is_refused_unless_replace(path, encoder):
    faces, images = enrolled(path, encoder)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="'p1' is already enrolled.*replace=True"):
        faces.enroll("p1", images[0])
    assert path.read_bytes() == before
    faces.enroll("p1", images[0], replace=True)
    assert faces.names() == ["p0", "p1", "p2"]              # replaced in place
    assert faces.identify(images[0])[0] in ("p0", "p1")     # both now hold picture 0
    assert faces.identify(images[1])[0] != "p1"
    assert FaceDatabase(path, encoder).identify(images[0])[1] == pytest.approx(0, abs=1e-6)


def test_a_name_in_either_unicode_form_is_one_person(path, encoder):
    composed, decomposed = "Ren\u00e9e", "Rene\u0301e"        # the same name, typed two ways
    assert composed != decomposed
    faces = FaceDatabase(path, encoder)
    faces.enroll(decomposed, pictures(1, seed=1))
    assert faces.names() == [composed]
    with pytest.raises(ValueError, match="already enrolled"):
        faces.enroll(composed, pictures(1, seed=2))
    assert faces.picture_count(decomposed) == 1
    faces.remove(decomposed)
    assert faces.names() == []


def test_remove_forgets_a_person_and_saves(path, encoder):
    faces, images = enrolled(path, encoder)
    faces.remove("p1")
    assert faces.names() == ["p0", "p2"] and "p1" not in faces
    assert FaceDatabase(path, encoder).names() == ["p0", "p2"]
    assert faces.identify(images[2])[0] == "p2"             # rows after the removed one moved up
    assert faces.identify(images[1])[0] != "p1"


def test_removing_an_unknown_name_is_a_key_error_naming_it(path, encoder):
    faces, _ = enrolled(path, encoder)
    before = path.read_bytes()
    with pytest.raises(KeyError) as caught:
        faces.remove("Zoe")
    assert isinstance(caught.value, NotEnrolledError)
    message = str(caught.value)
    assert message.startswith("name: 'Zoe' is not enrolled") and "'p0'" in message
    assert path.read_bytes() == before


def test_removing_everyone_leaves_an_empty_database_file(path, encoder):
    faces, images = enrolled(path, encoder, n_persons=1)
    faces.remove("p0")
    reopened = FaceDatabase(path, encoder)
    assert len(reopened) == 0 and reopened.identify(images[0]) == (None, np.inf)


def test_a_crash_mid_write_keeps_the_old_file_and_the_old_contents(path, encoder, monkeypatch):
    faces, _ = enrolled(path, encoder)
    before = path.read_bytes()

    def crash_after_half(file, arrays):
        file.write(before[: len(before) // 2])
        raise OSError("power cut")

    monkeypatch.setattr(serialize, "_write_archive", crash_after_half)
    with pytest.raises(OSError, match="power cut"):
        faces.enroll("Eve", pictures(1, seed=8))
    with pytest.raises(OSError, match="power cut"):
        faces.remove("p0")
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]   # no temporary left
    assert faces.names() == ["p0", "p1", "p2"]          # the failed changes were not applied
    monkeypatch.undo()
    assert FaceDatabase(path, encoder).names() == ["p0", "p1", "p2"]


def test_bulk_enrolment_writes_once_and_checks_its_rows(path, encoder):
    faces = FaceDatabase(path, encoder)
    faces.enroll_embeddings(["a", "b"], np.eye(16)[:2], counts=[4, 1])
    assert faces.names() == ["a", "b"] and faces.picture_count("a") == 4
    for names, embeddings, match in ((["c", "c"], np.eye(16)[:2], "distinct"),
                                     (["c", "d"], np.eye(16)[:3], "one row per name"),
                                     (["c"], np.ones((1, 15)), r"\(n, 16\)"),
                                     (["a"], np.eye(16)[:1], "already enrolled")):
        with pytest.raises(ValueError, match=match):
            faces.enroll_embeddings(names, embeddings)
    assert faces.names() == ["a", "b"]


def test_bulk_replacement_puts_each_new_row_on_its_own_name(path, encoder):
    faces = FaceDatabase(path, encoder)
    faces.enroll_embeddings(["a", "b", "c"], np.eye(16)[:3], counts=[1, 2, 3])
    faces.enroll_embeddings(["d", "c", "e", "a"], np.eye(16)[[10, 12, 14, 15]],
                            counts=[4, 5, 6, 7], replace=True)
    reopened = FaceDatabase(path, encoder)
    assert reopened.names() == ["a", "b", "c", "d", "e"]
    for name, row, count in (("a", 15, 7), ("b", 1, 2), ("c", 12, 5), ("d", 10, 4),
                             ("e", 14, 6)):
        assert reopened.picture_count(name) == count
        names, distances = reopened.identify_embeddings(np.eye(16)[[row]])
        assert names == [name] and distances.tolist() == [0.0]


# ------------------------------------------------------------------ files it refuses

def _refused(path, encoder, match):
    before = path.read_bytes()
    with pytest.raises(DatabaseError, match=match) as caught:
        FaceDatabase(path, encoder)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before
    return caught.value


def test_a_database_of_another_encoder_is_refused_untouched(path, encoder):
    enrolled(path, encoder)
    error = _refused(path, ProjectionEncoder(seed=1), "another encoder")
    assert "projection-0-16" in str(error) and "projection-1-16" in str(error)
    _refused(path, ProjectionEncoder(seed=0, embedding_size=8), "embedding size 8")
    same_fingerprint_other_size = ProjectionEncoder(seed=0, embedding_size=8)
    same_fingerprint_other_size.fingerprint = encoder.fingerprint
    error = _refused(path, same_fingerprint_other_size, "made with another encoder")
    assert "embedding size 16), not this one" in str(error)


DAMAGED_CONTENTS = {                    # what a damaged file holds, and what the refusal says
    "a name twice": ({"names": np.array(["p0", "p1", "p0"])}, "a name appears twice"),
    "an infinite encoding": ({"embeddings": np.full((3, 16), np.inf, np.float32)},
                             "non-finite encodings"),
    "a count of 0": ({"counts": np.array([1, 0, 1])}, "counts below 1"),
    "float64 encodings": ({"embeddings": np.zeros((3, 16))}, "embeddings of dtype float64"),
    "counts of floats": ({"counts": np.ones(3)}, "counts of dtype float64"),
}


@pytest.mark.parametrize("damage", DAMAGED_CONTENTS)
def test_a_file_with_damaged_contents_is_refused_untouched(path, encoder, damage):
    enrolled(path, encoder)
    changes, match = DAMAGED_CONTENTS[damage]
    save_npz(path, {**load_npz(path), **changes})
    assert ": damaged: " in str(_refused(path, encoder, match))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other arrays",
                                    "newer version", "names lost"])
def test_a_corrupt_file_is_refused_untouched(path, encoder, damage):
    enrolled(path, encoder)
    good = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(500))
    elif damage == "truncated":
        path.write_bytes(good[: len(good) * 2 // 3])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "other arrays":
        save_npz(path, {"conv.weight": np.ones((2, 2))})
    else:
        arrays = load_npz(path)
        if damage == "newer version":
            arrays["version"] = np.array(2)
        else:
            arrays["names"] = arrays["names"][:2]
        save_npz(path, arrays)
    match = {"newer version": "version 2", "names lost": "damaged"}.get(damage, "database")
    _refused(path, encoder, match)


def test_a_folder_in_place_of_the_file_is_refused(tmp_path, encoder):
    (tmp_path / "faces.npz").mkdir()
    with pytest.raises(DatabaseError, match="faces.npz"):
        FaceDatabase(tmp_path / "faces.npz", encoder)


# ------------------------------------------------------------------ bad arguments

def test_identifying_against_an_empty_database_encodes_nothing(path, encoder):
    FaceDatabase(path, encoder).identify_many(pictures(5, 0))
    assert encoder.pictures_encoded == 0


@pytest.mark.parametrize("images", [np.zeros((3, 8)), np.zeros((2, 1, 8, 8)),
                                    np.zeros((0, 3, 8, 8))])
def test_pictures_of_the_wrong_shape_are_refused(path, encoder, images):
    faces, _ = enrolled(path, encoder)
    with pytest.raises(ValueError, match="images"):
        faces.identify_many(images)
    with pytest.raises(ValueError, match="images"):
        faces.enroll("x", images)


def test_identify_takes_one_picture(path, encoder):
    faces, images = enrolled(path, encoder)
    with pytest.raises(ValueError, match="identify_many"):
        faces.identify(images)


@pytest.mark.parametrize("name, error", [("", ValueError), (" Ann", ValueError),
                                         ("A\0", ValueError), ("Ann\nBob", ValueError),
                                         ("Ann\tB", ValueError), (7, TypeError)])
def test_bad_names_are_refused(path, encoder, name, error):
    with pytest.raises(error, match="name"):
        FaceDatabase(path, encoder).enroll(name, pictures(1, 0))


def test_an_encoder_missing_attributes_is_a_type_error(path):
    class Bare:
        def __call__(self, images):
            return images

    with pytest.raises(TypeError, match="tau, fingerprint, embedding_size"):
        FaceDatabase(path, Bare())


def test_a_bad_tau_is_refused_naming_where_it_came_from(path, encoder):
    with pytest.raises(ValueError, match="^tau"):
        FaceDatabase(path, encoder, tau=float("nan"))
    encoder.tau = None
    with pytest.raises(ValueError, match="encoder.tau"):
        FaceDatabase(path, encoder)


def test_an_encoder_returning_the_wrong_shape_is_reported(path, encoder):
    encoder.embedding_size = 12          # claims 12, returns 16
    encoder.fingerprint = "liar"
    with pytest.raises(ValueError, match=r"encoder: expected \(1, 12\)"):
        FaceDatabase(path, encoder).enroll("Ann", pictures(1, 0))


def test_a_missing_folder_is_reported_at_once(tmp_path, encoder):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FaceDatabase(tmp_path / "no" / "faces.npz", encoder)


def test_docstring_examples_run():
    result = doctest.testmod(database)
    assert result.attempted > 0 and result.failed == 0
