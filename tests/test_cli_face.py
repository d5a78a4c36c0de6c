"""`scratchnet face`: a tiny model trained end to end, then every action on it, and bad input.

The model is trained once per module (40 synthetic persons, 4 steps, width
4: seconds) and copied wherever an action changes it. Oracles: the same
numbers computed in-process with load_encoder, load_face_image, fit_tau and
FaceDatabase; the bytes of files that must not change.
"""

import contextlib
import io
import json
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from scratchnet import cli, serialize
from scratchnet.face import (
    FaceDatabase,
    fit_tau,
    load_encoder,
    load_face_image,
    pair_distances,
    sample_pairs,
    synthetic_faces,
)
from scratchnet.face.metrics import ten_fold_accuracy
from scratchnet.face.evaluation import classifiers_from_arrays
from scratchnet.face.training import Trainer
from scratchnet.serialize import load_npz

ACTIONS = ["train", "verify", "calibrate", "evaluate", "enroll", "identify", "list", "remove"]
TRAIN = ["--identities", "40", "--validation-identities", "20", "--steps", "4",
         "--batch-identities", "8", "--width", "4", "--convs-per-block", "2"]
EVALUATE = ["--identities", "20", "--pairs", "200", "--enrolled", "5"]
# the same training settings on less data, for speed (a resumed run compares the settings
# first, then the data)
FEW = ["--identities", "8", "--per-identity", "2", "--validation-identities", "4", "--steps", "4",
       "--batch-identities", "8", "--width", "4", "--convs-per-block", "2"]
REQUIRED_KEYS = {"verification_accuracy", "auc", "tau", "top1", "rejection"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model path, what `face train` printed)."""
    path = tmp_path_factory.mktemp("trained") / "model.npz"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = cli.main(["face", "train", "--out", str(path), *TRAIN])
    assert status == 0
    return path, printed.getvalue()


@pytest.fixture
def model(trained, tmp_path):
    """A fresh copy of the trained model, free to change."""
    return str(shutil.copy(trained[0], tmp_path / "model.npz"))


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """{name: path}: 64x64 PNGs a0, a1, a2 of person a, and likewise b0 ... b2, c0 ... c2."""
    folder = tmp_path_factory.mktemp("faces")
    images, labels = synthetic_faces(3, 3, seed=7)
    paths = {}
    for image, label, index in zip(images, labels, np.arange(len(labels)) % 3):
        name = f"{'abc'[label]}{index}"
        pixels = np.rint(image.transpose(1, 2, 0) * 255).astype(np.uint8)   # (3, H, W) -> (H, W, 3)
        Image.fromarray(pixels).save(folder / f"{name}.png")
        paths[name] = str(folder / f"{name}.png")
    return paths


def run(capsys, *arguments):
    """(exit status, stdout, stderr) of `scratchnet face ARGUMENTS`."""
    try:
        status = cli.main(["face", *map(str, arguments)])
    except SystemExit as refused:        # argparse refused an option's value before any work
        status = refused.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# ======================================================= help and train

@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_has_help(action, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["face", action, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: scratchnet face {action}" in capsys.readouterr().out


def test_train_writes_a_model_with_tau_classifiers_and_a_checkpoint(trained):
    path, printed = trained
    encoder, arrays = load_encoder(path, with_arrays=True)
    assert (encoder.image_size, encoder.embedding_size) == (64, 128)
    assert encoder.network.architecture()["width"] == 4
    assert encoder.network.architecture()["convs_per_block"] == 2
    training = encoder.info["training"]
    assert training["trained_steps"] == 4 and training["identities_per_batch"] == 8
    assert encoder.tau > 0 and "tau_eer" in encoder.info
    assert encoder.flip_average is True and training["flip_average"] is True
    assert set(classifiers_from_arrays(arrays)) == {"abs", "chi2"}
    assert "step     4/4" in printed and "validation accuracy" in printed
    assert f"wrote {path}: tau = {encoder.tau:.4f}" in printed
    checkpoint = load_encoder(path.with_name("model.checkpoint.npz"))
    assert checkpoint.fingerprint == encoder.fingerprint


def test_a_batch_asking_more_pictures_than_a_person_has_is_noted(capsys, tmp_path):
    status, out, _ = run(capsys, "train", "--out", tmp_path / "m.npz", *FEW)
    assert status == 0
    assert ("note: --batch-pictures 4: each person has 2 pictures (--per-identity); a batch "
            "takes all 2") in out


def test_train_without_flip_averaging(capsys, tmp_path):
    out = tmp_path / "plain.npz"
    status, _, _ = run(capsys, "train", "--out", out, *FEW, "--no-flip-average")
    assert status == 0
    encoder = load_encoder(out)
    assert encoder.flip_average is False and encoder.info["training"]["flip_average"] is False


def test_train_without_the_neck_and_with_two_negatives_per_pair(capsys, tmp_path):
    out = tmp_path / "plain.npz"
    status, _, _ = run(capsys, "train", "--out", out, *FEW, "--no-neck",
                       "--negatives-per-pair", "2")
    assert status == 0
    encoder = load_encoder(out)
    training = encoder.info["training"]
    assert encoder.network.architecture()["neck"] is False and training["neck"] is False
    assert training["negatives_per_pair"] == 2


def test_train_with_the_memory_set_and_without_it(capsys, tmp_path):
    for options, expected in ((["--memory-batches", "3", "--memory-weight", "0.2",
                                "--memory-from-step", "1"], (3, 0.2, 1)),
                              (["--memory-batches", "0"], (0, 0.5, 200))):
        out = tmp_path / "m.npz"
        status, _, _ = run(capsys, "train", "--out", out, *FEW, *options)
        assert status == 0
        training = load_encoder(out).info["training"]
        assert (training["memory_batches"], training["memory_weight"],
                training["memory_from_step"]) == expected


@pytest.mark.parametrize("options, message", [
    (["--steps", "0"], "argument --steps: expected a positive integer, got '0'"),
    (["--negatives-per-pair", "0"], "argument --negatives-per-pair: expected a positive integer"),
    (["--batch-identities", "1"], "argument --batch-identities: expected an integer >= 2, got '1'"),
    (["--per-identity", "1"], "argument --per-identity: expected an integer >= 2 \\(a triplet"),
    (["--print-every", "0"], "argument --print-every: expected a positive integer, got '0'"),
    (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
    (["--alpha", "inf"], "argument --alpha: expected a finite number >= 0, got 'inf'"),
    (["--lr", "inf"], "argument --lr: expected a positive number, got 'inf'"),
    (["--memory-batches", "-1"], "argument --memory-batches: expected an integer >= 0"),
    (["--memory-weight", "-1"], "argument --memory-weight: expected a finite number >= 0"),
    (["--out", "missing-folder/model.npz"], "--out: the folder .* does not exist"),
    (["--out", "."], "--out: . is a folder; expected a file name"),
    (["--batch-identities", "50"], "--batch-identities 50: more persons than the 40 of "
                                   "--identities"),
])
def test_train_refuses_bad_options(options, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "train", "--out", "m.npz", *TRAIN, *options)
    assert status == 2 and "training on" not in out         # refused before any work
    assert "scratchnet face train: error:" in err and "Traceback" not in err
    assert re.search(message, err)


def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(
        trained, faces, capsys, tmp_path, monkeypatch):
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access",            # as a read-only disk answers (also for root)
                        lambda path, mode: real_access(path, mode) and
                        (os.path.abspath(path) != str(read_only) or not mode & os.W_OK))
    status, out, err = run(capsys, "train", "--out", read_only / "m.npz", *TRAIN)
    assert status == 2 and "training on" not in out
    assert f"--out: cannot write in the folder {read_only}" in err
    status, _, err = run(capsys, "enroll", "ada", faces["a0"], "--model", trained[0],
                         "--db", read_only / "db.npz")
    assert status == 2 and f"--db: cannot write in the folder {read_only}" in err
    assert list(read_only.iterdir()) == []


def test_a_disk_that_fills_during_a_write_is_one_line_and_exit_1(trained, faces, capsys,
                                                                   tmp_path, monkeypatch):
    db = tmp_path / "db.npz"
    assert run(capsys, "enroll", "ada", faces["a0"], "--model", trained[0], "--db", db)[0] == 0
    before = db.read_bytes()

    def disk_full(file, arrays):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(serialize, "_write_archive", disk_full)
    status, _, err = run(capsys, "enroll", "bob", faces["b0"], "--model", trained[0], "--db", db)
    assert status == 1 and err == (f"scratchnet face enroll: error: cannot write "
                                   f"{os.path.realpath(db)}: No space left on device\n")
    assert db.read_bytes() == before and sorted(tmp_path.iterdir()) == [db]


def test_more_synthetic_pictures_than_the_memory_holds_are_refused(trained, capsys, tmp_path,
                                                                   monkeypatch):
    """With 1 GiB available: 100,000 persons (and 20 for validation) of 10 pictures of 64 x 64,
    48 KiB each in float32, are refused before a picture is drawn, by train and evaluate, and
    so are a million verification pairs."""
    from scratchnet import commands
    monkeypatch.setattr(commands, "available_memory", lambda: 2 ** 30)
    status, out, err = run(capsys, "train", "--out", tmp_path / "m.npz", *TRAIN,
                           "--identities", "100000", "--per-identity", "10")
    assert status == 2 and "training on" not in out
    assert ("--identities 100000 --validation-identities 20: 1,000,200 synthetic pictures of "
            "64x64: up to 53.2 GiB of memory needed, 1.0 GiB available; lower --identities, "
            "--validation-identities or --per-identity") in err
    status, _, err = run(capsys, "evaluate", trained[0], *EVALUATE, "--identities", "100000")
    assert status == 2 and "evaluating on" not in err
    assert ("--pairs 200 --identities 100000: 200 pairs and 1,000,000 synthetic pictures of "
            "64x64") in err
    # nine vectors of 128 float32 numbers a pair: 4.29 GiB for a million pairs; with the 6,000
    # pictures of 600 persons (0.27 GiB) 4.57, and 5.8 with the estimate's 15% and the
    # process's 0.5 GiB: the two are checked together
    status, _, err = run(capsys, "evaluate", trained[0], *EVALUATE, "--pairs", "1000000",
                         "--identities", "600")
    assert status == 2 and "evaluating on" not in err
    assert ("--pairs 1000000 --identities 600: 1,000,000 pairs and 6,000 synthetic pictures of "
            "64x64: up to 5.8 GiB of memory needed, 1.0 GiB available; lower --pairs or "
            "--identities") in err


def test_train_resume_without_a_checkpoint_is_exit_2(capsys, tmp_path):
    out = tmp_path / "m.npz"
    status, _, err = run(capsys, "train", "--out", out, *FEW, "--resume")
    assert status == 2 and "no checkpoint" in err


def test_train_resume_with_other_settings_is_exit_2(capsys, trained, tmp_path):
    shutil.copy(trained[0].with_name("model.checkpoint.npz"), tmp_path / "m.checkpoint.npz")
    status, _, err = run(capsys, "train", "--out", tmp_path / "m.npz", *FEW, "--lr", "0.01",
                         "--resume")
    assert status == 2 and "other settings" in err
    status, _, err = run(capsys, "train", "--out", tmp_path / "m.npz", *TRAIN,
                         "--identities", "30", "--resume")        # the settings, other persons
    assert status == 2 and "was made on other pictures" in err


def test_ctrl_c_during_training_says_how_to_continue(capsys, tmp_path, monkeypatch):
    real_step = Trainer.train_step

    def interrupted_at_step_3(trainer):
        if trainer.step == 2:
            raise KeyboardInterrupt
        return real_step(trainer)

    monkeypatch.setattr(Trainer, "train_step", interrupted_at_step_3)
    out = tmp_path / "m.npz"
    status, _, err = run(capsys, "train", "--out", out, *FEW, "--checkpoint-every", "1")
    checkpoint = tmp_path / "m.checkpoint.npz"
    assert status == 130 and err == (f"interrupted: {checkpoint} holds the last checkpoint "
                                     f"(every 1 steps); the same command with --resume "
                                     f"continues from it\n")
    assert load_npz(checkpoint)["trainer.step"] == 2 and not out.exists()
    monkeypatch.undo()
    status, out_text, _ = run(capsys, "train", "--out", out, *FEW, "--checkpoint-every", "1",
                              "--resume")
    assert status == 0 and f"resumed from {checkpoint} at step 2" in out_text


def test_data_and_pairs_folders_are_named_by_their_options(trained, capsys, tmp_path):
    status, _, err = run(capsys, "train", "--out", tmp_path / "m.npz", *TRAIN,
                         "--data", tmp_path / "missing")
    assert status == 2 and f"error: --data: {tmp_path / 'missing'} is not a folder" in err
    status, _, err = run(capsys, "evaluate", trained[0], "--data", tmp_path)
    assert status == 2 and f"error: --data: no person in {tmp_path} has 2 readable" in err
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("3 0\n")
    status, _, err = run(capsys, "calibrate", pairs, "--model", trained[0],
                         "--images-root", tmp_path / "missing")
    assert status == 2 and f"error: --images-root: {tmp_path / 'missing'} is not a folder" in err
    status, _, err = run(capsys, "calibrate", pairs, "--model", trained[0],
                         "--images-root", tmp_path)
    assert status == 2 and f"error: PAIRS: {pairs} line 1: expected a header" in err


# ======================================================= evaluate

def test_evaluate_json_is_one_object_with_the_required_keys(trained, capsys, tmp_path):
    roc = tmp_path / "roc.png"
    status, out, err = run(capsys, "evaluate", trained[0], *EVALUATE, "--json", "--roc", roc)
    assert status == 0
    report = json.loads(out)                         # the whole of stdout: one JSON object
    assert REQUIRED_KEYS <= set(report)
    for key in ("verification_accuracy", "auc", "top1", "rejection"):
        assert 0.0 <= report[key] <= 1.0
    assert report["tau"] == load_encoder(trained[0]).tau
    assert report["enrolled"] == 5 and report["pairs"] == 200
    assert "classifier_abs_accuracy" in report and "classifier_chi2_auc" in report
    assert report["draws"] == 6 and len(report["best_threshold_bound_per_draw"]) == 6
    assert min(report["top1_over_draws_range"]) <= report["top1_over_draws"]
    protocol_draw = report["best_threshold_bound_per_draw"][2]     # --seed 2 enrols as seed 2
    assert protocol_draw >= min(report["top1"], report["rejection"])
    assert "evaluating on 200 pictures of 20 persons" in err   # notes go to stderr
    with Image.open(roc) as picture:
        assert picture.size[0] > 100


def test_evaluate_writes_the_three_pictures(trained, capsys, tmp_path):
    folder = tmp_path / "pictures"
    status, out, err = run(capsys, "evaluate", trained[0], *EVALUATE, "--pictures", folder)
    assert status == 0 and "identifications.png" in out + err
    for name in ("roc.png", "triplets.png", "identifications.png"):
        with Image.open(folder / name) as picture:
            assert min(picture.size) > 50, (name, picture.size)


def test_evaluate_draws_zero_leaves_them_out_and_a_count_out_of_range_is_refused(trained, capsys):
    status, out, _ = run(capsys, "evaluate", trained[0], *EVALUATE, "--json", "--draws", "0")
    assert status == 0 and "best_threshold_bound" not in json.loads(out)
    for draws in ("-1", "1001"):
        status, _, err = run(capsys, "evaluate", trained[0], *EVALUATE, "--draws", draws)
        assert status == 2
        assert f"argument --draws: expected an integer from 0 to 1000, got '{draws}'" in err


@pytest.mark.parametrize("options, message", [
    (["--pairs", "9"], "argument --pairs: expected an integer >= 10, one per fold at least"),
    (["--identities", "1"], "argument --identities: expected an integer >= 2, got '1'"),
    (["--enrolled", "0"], "argument --enrolled: expected a positive integer, got '0'"),
    (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
    (["--roc", "missing-folder/roc.png"], "--roc: the folder .* does not exist"),
    (["--pictures", "a-file"], "--pictures: expected a folder, got the file 'a-file'"),
    (["--pictures", "a-file/sub"], "--pictures: cannot create the folder a-file/sub"),
    (["--roc", "roc.jpg"], "--roc roc.jpg: the file name must end in .png"),
])
def test_evaluate_refuses_bad_options_before_any_work(options, message, trained, capsys,
                                                      tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    status, _, err = run(capsys, "evaluate", trained[0], *EVALUATE, *options)
    assert status == 2 and "evaluating on" not in err and "Traceback" not in err
    assert re.search(message, err)


def test_evaluate_notes_fewer_enrolled_persons_and_repeated_pairs(trained, capsys):
    status, out, err = run(capsys, "evaluate", trained[0], "--identities", "8", "--pairs", "40",
                           "--enrolled", "10", "--draws", "1", "--json")
    assert status == 0 and json.loads(out)["enrolled"] == 4
    assert "note: --enrolled 10: 8 persons hold 4 to enrol and as many strangers" in err
    assert "repeat" not in err                         # 20 same pairs of 8 x 45 possible
    status, _, err = run(capsys, "evaluate", trained[0], "--identities", "8", "--pairs", "1000",
                         "--draws", "1", "--json")
    assert status == 0 and "make 360 distinct same-person pairs, so the 500 drawn repeat" in err


def test_evaluate_on_a_folder_of_one_person_is_an_input_error(trained, faces, capsys, tmp_path):
    (tmp_path / "ada").mkdir()
    for name in ("a0", "a1", "a2"):
        shutil.copy(faces[name], tmp_path / "ada")
    status, _, err = run(capsys, "evaluate", trained[0], "--data", tmp_path, "--pairs", "20")
    assert status == 2 and "Traceback" not in err
    assert "scratchnet face evaluate: error:" in err and "two persons" in err


def test_evaluate_prints_a_table_without_json(trained, capsys):
    status, out, _ = run(capsys, "evaluate", trained[0], *EVALUATE, "--baseline")
    assert status == 0
    rows = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
    assert REQUIRED_KEYS | {"pixel_baseline_accuracy"} <= set(rows)
    # the baseline is measured on the encoder's pairs: those of --seed (2 by default)
    images, labels = synthetic_faces(20, 10, seed=2)
    first, second, same = sample_pairs(labels, 200, seed=2)
    pixels = ten_fold_accuracy(pair_distances(images, first, second), same)[0]
    assert float(rows["pixel_baseline_accuracy"]) == pytest.approx(pixels, abs=5e-5)


# ======================================================= verify

def in_process_distance(model, first, second):
    encoder = load_encoder(model)
    x = np.stack([load_face_image(first, 64), load_face_image(second, 64)])
    return float(encoder.distance(x[:1], x[1:])[0]), encoder.tau


def test_verify_one_picture_with_itself_is_the_same_person(trained, faces, capsys):
    status, out, _ = run(capsys, "verify", faces["a0"], faces["a0"], "--model", trained[0])
    assert status == 0 and out.startswith("same person: d = 0.0000 <= tau = ")


def test_verify_json_gives_the_encoders_distance(trained, faces, capsys):
    status, out, _ = run(capsys, "verify", faces["a0"], faces["b1"], "--model", trained[0],
                         "--json")
    assert status == 0
    answer = json.loads(out)
    distance, tau = in_process_distance(trained[0], faces["a0"], faces["b1"])
    assert answer["distance"] == pytest.approx(distance, rel=1e-5, abs=1e-7)
    assert answer["tau"] == tau and answer["same"] == (answer["distance"] <= tau)
    status, out, _ = run(capsys, "verify", faces["a0"], faces["b1"], "--model", trained[0],
                         "--tau", "0")
    assert status == 0 and out.startswith("different persons: d = ") and "> tau = 0.0000" in out


def test_verify_refuses_a_negative_tau(trained, faces, capsys):
    status, _, err = run(capsys, "verify", faces["a0"], faces["a1"], "--model", trained[0],
                         "--tau", "-1")
    assert status == 2 and "argument --tau: expected a finite number >= 0, got '-1'" in err
    status, _, err = run(capsys, "verify", faces["a0"], faces["a1"], "--model", trained[0],
                         "--tau", "inf")
    assert status == 2 and "got 'inf'" in err


def test_a_missing_model_is_exit_2_with_a_hint(faces, capsys, tmp_path):
    status, _, err = run(capsys, "verify", faces["a0"], faces["a1"], "--model",
                         tmp_path / "none.npz")
    assert status == 2 and "no file at" in err and "scratchnet face train" in err


def test_a_model_file_of_garbage_is_exit_2(faces, capsys, tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"not a model" * 30)
    status, _, err = run(capsys, "verify", faces["a0"], faces["a1"], "--model", path)
    assert status == 2 and str(path) in err


def test_a_truncated_model_file_is_exit_2(model, faces, capsys):
    with open(model, "rb") as file:
        data = file.read()
    with open(model, "wb") as file:
        file.write(data[:len(data) // 2])
    status, _, err = run(capsys, "verify", faces["a0"], faces["a1"], "--model", model)
    assert status == 2 and model in err


# ======================================================= bad pictures

def test_an_unreadable_picture_is_exit_2_naming_the_file(trained, faces, capsys, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    status, _, err = run(capsys, "verify", faces["a0"], bad, "--model", trained[0])
    assert status == 2 and "IMG: cannot read" in err and str(bad) in err
    missing = tmp_path / "missing.jpg"
    status, _, err = run(capsys, "identify", missing, "--model", trained[0], "--db",
                         tmp_path / "db.npz")
    assert status == 2 and str(missing) in err
    db = tmp_path / "db.npz"
    status, _, err = run(capsys, "enroll", "ann", faces["a0"], bad, "--model", trained[0],
                         "--db", db)
    assert status == 2 and str(bad) in err and not db.exists()


def test_gray_and_rgba_pictures_of_other_sizes_are_read_and_resized(trained, faces, capsys,
                                                                    tmp_path):
    with Image.open(faces["a0"]) as picture:
        picture.convert("L").resize((48, 40)).save(tmp_path / "gray.png")
        rgba = picture.convert("RGBA").resize((80, 80))
        rgba.putalpha(200)
        rgba.save(tmp_path / "rgba.png")
        picture.convert("L").save(tmp_path / "gray64.png")
    db = tmp_path / "db.npz"
    status, out, _ = run(capsys, "enroll", "ann", tmp_path / "gray.png", tmp_path / "rgba.png",
                         tmp_path / "gray64.png", "--model", trained[0], "--db", db)
    assert status == 0
    assert "note: resized 2 of 3 picture(s) to the encoder's 64 x 64" in out
    assert "enrolled ann from 3 picture(s)" in out
    status, out, _ = run(capsys, "verify", tmp_path / "gray.png", tmp_path / "rgba.png",
                         "--model", trained[0])
    assert status == 0 and "resized 2 of 2" in out
    status, out, _ = run(capsys, "verify", tmp_path / "gray64.png", faces["a0"],
                         "--model", trained[0])
    assert status == 0 and "resized" not in out


# ======================================================= the database

def test_enroll_replace_identify_list_remove(trained, faces, capsys, tmp_path):
    model, db = trained[0], tmp_path / "db.npz"
    options = ["--model", model, "--db", db]
    status, out, _ = run(capsys, "enroll", "ada", faces["a0"], *options)
    assert status == 0 and "enrolled ada from 1 picture(s)" in out and "(1 persons)" in out

    before = db.read_bytes()
    status, _, err = run(capsys, "enroll", "ada", faces["a1"], *options)
    assert status == 2 and "'ada' is already enrolled" in err and "--replace" in err
    assert db.read_bytes() == before

    status, out, _ = run(capsys, "enroll", "ada", faces["a1"], faces["a2"], "--replace", *options)
    assert status == 0 and "enrolled ada from 2 picture(s)" in out
    assert run(capsys, "enroll", "bob", faces["b0"], *options)[0] == 0

    status, out, _ = run(capsys, "list", *options)
    assert status == 0 and out.splitlines() == ["ada  (2 picture(s))", "bob  (1 picture(s))"]

    # bob was enrolled from b0 alone: b0 is at distance 0 from him
    status, out, _ = run(capsys, "identify", faces["b0"], *options)
    assert status == 0 and out.startswith(f"{faces['b0']}: bob (d = 0.0000 <= tau = ")

    # in a batch of two, b0's encoding may differ from the enrolled one in the last bits
    status, out, _ = run(capsys, "identify", faces["c0"], faces["b0"], *options, "--tau", "1e-9",
                         "--json")
    answers = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and [a["image"] for a in answers] == [faces["c0"], faces["b0"]]
    assert answers[0]["name"] is None and answers[0]["distance"] > 1e-9
    assert answers[1]["name"] == "bob" and answers[1]["distance"] <= 1e-9
    assert answers[0]["tau"] == 1e-9
    expected = FaceDatabase(db, load_encoder(model)).identify(load_face_image(faces["c0"], 64))
    assert answers[0]["distance"] == pytest.approx(expected[1], rel=1e-5)

    status, out, _ = run(capsys, "remove", "ada", *options)
    assert status == 0 and "removed ada" in out and "(1 persons left)" in out
    assert run(capsys, "list", *options)[1].splitlines() == ["bob  (1 picture(s))"]
    before = db.read_bytes()
    status, _, err = run(capsys, "remove", "ada", *options)
    assert status == 2 and "'ada' is not enrolled" in err and db.read_bytes() == before


def test_an_empty_database_answers_not_recognized(trained, faces, capsys, tmp_path):
    db = tmp_path / "db.npz"
    options = ["--model", trained[0], "--db", db]
    status, out, _ = run(capsys, "identify", faces["a0"], *options)
    assert status == 0 and out == f"{faces['a0']}: not recognized (nobody is enrolled)\n"
    status, out, _ = run(capsys, "identify", faces["a0"], *options, "--json")
    assert json.loads(out)["name"] is None and json.loads(out)["distance"] is None
    assert run(capsys, "list", *options)[1] == f"{db}: nobody enrolled\n"
    run(capsys, "enroll", "ada", faces["a0"], *options)
    run(capsys, "remove", "ada", *options)
    assert db.exists()
    status, out, _ = run(capsys, "identify", faces["a0"], *options)
    assert status == 0 and "not recognized (nobody is enrolled)" in out


@pytest.mark.parametrize("action", ["identify", "enroll", "list", "remove"])
def test_a_corrupt_database_is_exit_2_and_left_alone(action, trained, faces, capsys, tmp_path):
    db = tmp_path / "db.npz"
    db.write_bytes(b"PK\x03\x04 half of a zip archive")
    before = db.read_bytes()
    arguments = {"identify": [faces["a0"]], "enroll": ["ada", faces["a0"]], "list": [],
                 "remove": ["ada"]}[action]
    status, _, err = run(capsys, action, *arguments, "--model", trained[0], "--db", db)
    assert status == 2 and str(db) in err
    assert db.read_bytes() == before


def test_a_database_of_another_encoder_is_refused(model, trained, faces, capsys, tmp_path):
    db = tmp_path / "db.npz"
    assert run(capsys, "enroll", "ada", faces["a0"], "--model", trained[0], "--db", db)[0] == 0
    before = db.read_bytes()
    other = load_encoder(model)
    other.network.embedding.weight.data[0, 0] += 0.01
    other.save(model)
    for arguments in (["enroll", "bob", faces["b0"]], ["identify", faces["a0"]], ["list"]):
        status, _, err = run(capsys, *arguments, "--model", model, "--db", db)
        assert status == 2 and "made with another encoder" in err
        assert db.read_bytes() == before


# ======================================================= calibrate

@pytest.fixture
def pairs_file(faces, tmp_path):
    """PAIRS with paths relative to its folder; and the pairs as (first, second, same)."""
    folder = tmp_path / "pairs"
    folder.mkdir()
    for name, path in faces.items():
        shutil.copy(path, folder / f"{name}.png")
    pairs = [("a0", "a1", 1), ("a1", "a2", 1), ("b0", "b1", 1), ("c0", "c1", 1),
             ("a0", "b0", 0), ("a2", "c1", 0), ("b1", "c0", 0), ("a1", "c0", 0)]
    lines = ["# first second same"] + [f"{a}.png {b}.png {s}" for a, b, s in pairs]
    (folder / "pairs.txt").write_text("\n".join(lines) + "\n")
    return folder / "pairs.txt", pairs


def fitted_tau(model, folder, pairs, criterion):
    encoder = load_encoder(model)
    first = np.stack([load_face_image(folder / f"{a}.png", 64) for a, _, _ in pairs])
    second = np.stack([load_face_image(folder / f"{b}.png", 64) for _, b, _ in pairs])
    same = np.array([s == 1 for _, _, s in pairs])
    return fit_tau(encoder.distance(first, second), same, criterion=criterion)


@pytest.mark.parametrize("criterion", ["accuracy", "eer"])
def test_calibrate_stores_the_fitted_tau_and_keeps_the_rest(criterion, model, pairs_file,
                                                            capsys):
    path, pairs = pairs_file
    before, arrays_before = load_encoder(model, with_arrays=True)
    expected = fitted_tau(model, path.parent, pairs, criterion)
    status, out, _ = run(capsys, "calibrate", path, "--model", model, "--criterion", criterion)
    assert status == 0 and f"tau = {expected:.4f} ({criterion}" in out and "stored in" in out
    after, arrays_after = load_encoder(model, with_arrays=True)
    assert after.tau == pytest.approx(expected, rel=1e-6)
    assert after.fingerprint == before.fingerprint          # a database stays usable
    assert set(arrays_after) == set(arrays_before)
    for key in arrays_before:
        if key != "config":
            np.testing.assert_array_equal(arrays_after[key], arrays_before[key], err_msg=key)
    assert after.info == before.info


def test_calibrate_dry_run_leaves_the_model_alone(model, pairs_file, capsys):
    with open(model, "rb") as file:
        before = file.read()
    status, out, _ = run(capsys, "calibrate", pairs_file[0], "--model", model, "--dry-run")
    assert status == 0 and out.startswith("tau = ") and "stored" not in out
    with open(model, "rb") as file:
        assert file.read() == before


def test_calibrate_names_a_bad_pairs_line(model, pairs_file, capsys, tmp_path):
    bad = pairs_file[0].parent / "bad.txt"
    bad.write_text("a0.png a1.png 1\na0.png b0.png maybe\n")
    status, _, err = run(capsys, "calibrate", bad, "--model", model)
    assert status == 2 and "line 2: expected 'IMG1 IMG2 1|0'" in err
    status, _, err = run(capsys, "calibrate", tmp_path / "none.txt", "--model", model)
    assert status == 2 and "PAIRS: no file at" in err


def test_calibrate_refuses_a_binary_file_and_pairs_of_one_kind(model, pairs_file, faces, capsys):
    with open(model, "rb") as file:
        before = file.read()
    status, _, err = run(capsys, "calibrate", faces["a0"], "--model", model)
    assert status == 2 and "is not a UTF-8 text file" in err and "Traceback" not in err
    one_kind = pairs_file[0].parent / "same-only.txt"
    one_kind.write_text("a0.png a1.png 1\nb0.png b1.png 1\n")
    status, _, err = run(capsys, "calibrate", one_kind, "--model", model)
    assert status == 2 and "expected both same (1) and different (0) pairs" in err
    assert "got 2 same and 0 different" in err
    with open(model, "rb") as file:
        assert file.read() == before                       # nothing stored


def test_a_checkpoint_or_a_text_file_is_refused_as_a_model(trained, faces, capsys, tmp_path):
    checkpoint = str(trained[0]).replace(".npz", ".checkpoint.npz")
    status, _, err = run(capsys, "verify", faces["a0"], faces["a1"], "--model", checkpoint)
    assert status == 2 and "is a training checkpoint, not a finished model" in err
    text = tmp_path / "model.npz"
    text.write_text("not a model")
    status, _, err = run(capsys, "verify", faces["a0"], faces["a1"], "--model", text)
    assert status == 2 and "not an .npz archive of arrays" in err
    assert "allow_pickle" not in err                # no advice to unpickle a file


def test_identify_and_list_say_when_the_database_file_does_not_exist(trained, faces, capsys,
                                                                     tmp_path):
    missing = tmp_path / "typo.npz"
    status, out, err = run(capsys, "identify", faces["a0"], "--model", trained[0], "--db", missing)
    assert status == 0 and "not recognized" in out
    assert f"note: no database file at {missing} yet" in err
    status, _, err = run(capsys, "list", "--model", trained[0], "--db", missing)
    assert status == 0 and "no database file at" in err and not missing.exists()
