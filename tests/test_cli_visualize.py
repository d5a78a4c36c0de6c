"""`scratchnet visualize`: help, small runs on each kind of model, and bad input."""

import sys

import numpy as np
import pytest
import weight_fixtures as fx
from PIL import Image

from scratchnet import Tensor, cli, no_grad
from scratchnet.commands import visualize as visualize_command
from scratchnet.face.dlib.files import ModelFileNotFound, find_model_file
from scratchnet.face.encoder import Encoder
from scratchnet.io import VGGWeights, save_vgg19_weights
from scratchnet.models import FaceEncoder, vgg19
from scratchnet.visualize import figures

FAST = ["--weights", "random", "--size", "32", "--count", "4"]


def run(argv, capsys):
    try:
        status = cli.main(["visualize", *argv])
    except SystemExit as refused:        # argparse refused an option's value
        status = refused.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def picture_size(path):
    with Image.open(path) as picture:
        return picture.size


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["visualize", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: scratchnet visualize" in out
    for option in ("--model", "--weights", "--layers", "--units", "--unit", "--images",
                   "--demo", "--count", "--size", "--any-position", "--maximize", "--summary",
                   "-o"):
        assert option in out
    assert "96 with --maximize, whatever the model" in " ".join(out.split())


def test_vgg19_nine_patches(tmp_path, capsys):
    out = tmp_path / "figure" / "vgg.png"
    status, stdout, stderr = run([*FAST, "--layers", "conv1_1", "conv2_1", "--units", "2",
                                  "-o", str(out)], capsys)
    assert status == 0 and out.is_file()
    assert "4/4 images" in stderr and "conv1_1, conv2_1" in stdout
    width, height = picture_size(out)
    assert width > 2 * 3 * 32 and height > 2 * 3 * 32   # two rows of two 3x3 grids of 32-px cells


def test_images_from_a_folder_and_chosen_units(tmp_path, capsys, monkeypatch):
    """--unit 5 --unit 7 shows channels 5 and 7 of conv1_2; --any-position takes the nine
    best of all (image, position) pairs, so three pictures give nine patches, several from
    one picture. Oracle: the activation map of the same crops computed directly."""
    shown = []

    def recorded(*arguments):                 # each unit's patches, kept for a look
        found = real_unit_patches(*arguments)
        shown.append(found)
        return found

    real_unit_patches = figures.unit_patches
    monkeypatch.setattr(figures, "unit_patches", recorded)
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index, (h, w) in enumerate([(40, 60), (50, 50), (70, 45)]):
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(
            folder / f"p{index}.png")
    (folder / "notes.txt").write_text("not a picture")
    out = tmp_path / "chosen.png"
    status, _, stderr = run(["--weights", "random", "--size", "32", "--images", str(folder),
                             "--layers", "conv1_2", "--unit", "5", "--unit", "7",
                             "--any-position", "-o", str(out)], capsys)
    assert status == 0 and out.is_file()
    assert "scanning 3 images of 32x32" in stderr
    assert [(found.layer, found.unit) for found in shown] == [("conv1_2", 5), ("conv1_2", 7)]
    model = vgg19(weights="random", note=None)
    crops = visualize_command._folder_images(sorted(str(p) for p in folder.glob("*.png")), 32)
    with no_grad():
        a = model.features(model.preprocess(Tensor(crops)), ["conv1_2"])["conv1_2"].data
    for found in shown:
        nine_best = np.sort(a[:, found.unit].ravel())[::-1][:9]     # over images and positions
        np.testing.assert_allclose(found.activations, nine_best, rtol=1e-5)
        assert len(found.image_index) == 9      # 3 pictures, one patch each, without it


def test_count_takes_the_first_pictures_of_a_folder_in_name_order(tmp_path, capsys):
    """p0 and p1 are pictures, p2 ... p4 are not: only a scan of all five reads them."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(2):
        Image.fromarray(np.full((40, 40, 3), 99 * index, dtype=np.uint8)).save(
            folder / f"p{index}.png")
    for index in range(2, 5):
        (folder / f"p{index}.png").write_bytes(b"not a picture")
    arguments = [*FAST[:4], "--images", str(folder), "--layers", "conv1_1",
                 "-o", str(tmp_path / "o.png")]
    status, _, stderr = run([*arguments, "--count", "2"], capsys)
    assert status == 0 and "--count 2: the first 2 of the 5 pictures" in stderr
    assert "scanning 2 images of 32x32" in stderr
    status, _, stderr = run(arguments, capsys)
    assert status == 2 and "p2.png" in stderr


def test_maximize(tmp_path, capsys):
    out = tmp_path / "max.png"
    status, _, stderr = run(["--weights", "random", "--layers", "conv1_1", "--units", "2",
                             "--maximize", "--steps", "2", "--size", "16", "-o", str(out)],
                            capsys)
    assert status == 0 and out.is_file()
    assert "maximising conv1_1 unit 1" in stderr


def test_summary(capsys):
    status, stdout, _ = run(["--weights", "random", "--summary", "--size", "64"], capsys)
    assert status == 0
    assert stdout.splitlines()[-1] == ("Shapes: 64x64x3 -> 64x64x64 -> 32x32x64 -> 32x32x128 -> "
                                       "16x16x128 -> 16x16x256 -> 8x8x256 -> 8x8x512 -> 4x4x512")


def test_face_encoder_file(tmp_path, capsys):
    path = tmp_path / "face.npz"
    Encoder(FaceEncoder(width=4, seed=0)).save(path)
    out = tmp_path / "face.png"
    status, stdout, _ = run(["--model", str(path), "--count", "6", "-o", str(out)], capsys)
    assert status == 0 and out.is_file()
    assert "block1, block2, block3" in stdout
    status, _, stderr = run(["--model", "face", "--count", "4", "--layers", "block1",
                             "-o", str(out)], capsys)
    assert status == 0 and "untrained face encoder" in stderr


def test_dlib(tmp_path, capsys):
    try:
        find_model_file("resnet")
    except ModelFileNotFound:
        pytest.skip("dlib's face ResNet file is not installed (scratchnet[pretrained])")
    out = tmp_path / "dlib.png"
    status, _, _ = run(["--model", "dlib", "--size", "64", "--count", "4", "--layers", "stem",
                        "unit1", "--units", "2", "-o", str(out)], capsys)
    assert status == 0 and out.is_file()


@pytest.mark.parametrize("argv, message", [
    (["--layers", "conv9_9"], "--layers: expected one of conv1_1, conv1_2"),
    (["--layers", "conv1_1", "--unit", "64"], "--unit 64: layer conv1_1 has 64 units (0 ... 63)"),
    (["--layers", "conv1_1", "conv3_1", "--unit", "100", "--maximize"],
     "--unit 100: layer conv1_1 has 64 units"),
    (["--model", "nope"], "--model: expected vgg19, face, dlib or the path of a face encoder "
                          "file, got 'nope' (no file there)"),
    (["--images", "missing-folder"], "--images: missing-folder is not a folder"),
    (["--units", "0"], "argument --units: expected a positive integer, got '0'"),
    (["--size", "0"], "argument --size: expected a positive integer, got '0'"),
    (["--maximize", "--steps", "0"], "argument --steps: expected a positive integer"),
    (["--size", "8"], "--size 8: too small a picture to reach conv5_1"),
    (["--size", "1" + "0" * 400], "GiB of memory needed"),       # no overflow on the way
])
def test_bad_input_exits_2_and_says_why(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, stderr = run([*FAST[:4], *argv, "-o", "out.png"], capsys)   # no --count
    assert status == 2
    assert message in stderr and "maximising" not in stderr and "scanning" not in stderr
    assert not (tmp_path / "out.png").exists()


def test_keras_weights_without_h5py_exit_2_saying_what_to_install(tmp_path, monkeypatch,
                                                                   capsys):
    """Found in Keras's cache or given: one line naming the file and the extra, no traceback."""
    pytest.importorskip("h5py")
    keras_file = tmp_path / ".keras" / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    keras_file.parent.mkdir(parents=True)
    fx.write_keras_h5(keras_file)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("SCRATCHNET_WEIGHTS", "TORCH_HOME", "KERAS_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "h5py", None)     # `import h5py` now fails
    for argv in (["--summary"], ["--weights", str(keras_file), "--summary"]):
        status, _, stderr = run(argv, capsys)
        assert status == 2 and stderr.count("\n") == 1 and str(keras_file) in stderr
        assert "pip install 'scratchnet[keras]'" in stderr


def test_a_damaged_keras_file_exits_2_naming_the_file_and_what_it_lacks(tmp_path, capsys):
    pytest.importorskip("h5py")
    damaged = tmp_path / "damaged.h5"
    fx.write_keras_h5(damaged)
    fx.delete_from_h5(damaged, "block4_conv3")
    status, _, stderr = run(["--weights", str(damaged), "--summary"], capsys)
    assert status == 2 and stderr.count("\n") == 1
    assert f"{damaged}: layer_names lists 'block4_conv3', which is not in the file" in stderr


def test_weights_with_a_non_finite_mean_exit_2_naming_the_file(tmp_path, capsys):
    """A NaN mean was taken, and the scan stopped on "need at least one array to stack"."""
    weights = tmp_path / "nan.npz"
    model = vgg19(weights="random", widths=fx.TINY_WIDTHS)
    save_vgg19_weights(VGGWeights(model.state_dict(), model.preprocessing, "memory"), weights)
    fx.replace_in_npz(weights, {"preprocess.mean": np.array([np.nan, 0.0, 0.0])})
    status, _, stderr = run(["--weights", str(weights), "--summary"], capsys)
    assert status == 2 and f"{weights}: preprocess.mean: expected 3 finite numbers" in stderr


def test_more_units_than_a_layer_has_shows_them_all_with_a_note(tmp_path, capsys):
    """--units 3 on a face encoder of width 2 (block1: 2 units, block2: 4): block1 shows its
    two, block2 three, and a note says so; --maximize draws as many."""
    path = tmp_path / "face.npz"
    Encoder(FaceEncoder(width=2, seed=0)).save(path)
    for extra, wanted in ((["--count", "4"], "scanning"),
                          (["--maximize", "--steps", "1"], "maximising")):
        out = tmp_path / f"units{wanted}.png"
        status, _, stderr = run(["--model", str(path), "--layers", "block1", "block2",
                                 "--units", "3", *extra, "-o", str(out)], capsys)
        assert status == 0 and out.is_file() and wanted in stderr
        assert "--units 3: showing all the units of block1 (2)" in stderr
        assert "block2" not in stderr.split("showing all the units of")[1].splitlines()[0]
    assert "maximising block1 unit 1" in stderr and "maximising block1 unit 2" not in stderr
    assert "maximising block2 unit 2" in stderr


@pytest.mark.parametrize("argv, message", [
    # the 4 pictures in one forward pass, 320 numbers a pixel down to conv5_1, 2/3 of them at
    # the peak, 4 bytes each, and the pictures: 0.85 GiB; with 15% and the process's 0.5 GiB
    (["--count", "4", "--size", "512", "-o", "o.png"],
     "--size 512: 4 pictures of 512x512: up to 1.5 GiB of memory needed"),
    # (2 x 320 + 400) numbers a pixel, 4 bytes each: 1.02 GiB, 1.67 in all
    (["--size", "512", "--maximize", "-o", "o.png"],
     "--size 512: gradient ascent on one picture of 512x512: up to 1.7 GiB of memory needed"),
    (["--size", "1024", "--summary"], "--size 1024: one picture of 1024x1024: up to "),
])
def test_work_too_large_for_the_memory_is_refused_before_it_starts(argv, message, tmp_path,
                                                                   capsys, monkeypatch):
    from scratchnet import commands
    monkeypatch.setattr(commands, "available_memory", lambda: 2 ** 30)
    monkeypatch.chdir(tmp_path)
    status, _, stderr = run(["--weights", "random", *argv], capsys)
    assert status == 2 and message in stderr and "1.0 GiB available; lower --size" in stderr
    assert "scanning" not in stderr and "maximising" not in stderr


def test_synthetic_faces_too_small_to_draw_are_refused(tmp_path, capsys):
    status, _, stderr = run(["--model", "face", "--size", "8", "--layers", "block1", "-o",
                             str(tmp_path / "o.png")], capsys)
    assert status == 2 and "--size 8: a synthetic face needs at least 16 pixels" in stderr


def test_a_face_encoder_summary_takes_its_own_size_only(tmp_path, capsys):
    path = tmp_path / "face.npz"
    Encoder(FaceEncoder(width=2, seed=0)).save(path)
    status, _, stderr = run(["--model", str(path), "--summary", "--size", "128"], capsys)
    assert status == 2
    assert "--size 128: this face encoder takes pictures of 64x64 pixels" in stderr
    status, stdout, _ = run(["--model", str(path), "--summary"], capsys)
    assert status == 0 and "64x64x3" in stdout


def test_a_scan_notes_its_progress_at_each_tenth(tmp_path, capsys):
    """200 pictures, 8 a pass: a line as each tenth (20 pictures) is passed, not 25 lines."""
    status, _, stderr = run([*FAST, "--count", "200", "--layers", "conv1_1", "-o",
                             str(tmp_path / "o.png")], capsys)
    done = [int(line.split("/")[0]) for line in stderr.splitlines() if line.endswith("images")]
    assert status == 0 and len(done) == 10 and done[-1] == 200
    assert [d // 20 for d in done] == list(range(1, 11))      # one line in each tenth


def test_output_is_required(capsys):
    status, _, stderr = run(FAST, capsys)
    assert status == 2 and "-o OUT.png" in stderr


def test_an_empty_image_folder(tmp_path, capsys):
    status, _, stderr = run([*FAST, "--images", str(tmp_path), "-o", str(tmp_path / "o.png")],
                            capsys)
    assert status == 2 and "--images: no pictures (.jpg" in stderr


@pytest.mark.parametrize("output, message", [
    ("out.txt", "-o out.txt: the file name must end in .png, .jpg or .jpeg"),
    ("folder.png", "-o folder.png: is a folder"),
    ("a-file/out.png", "-o: expected a folder, got the file"),
])
def test_an_unusable_output_is_refused_before_the_scan(output, message, tmp_path, capsys,
                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "a-file").write_text("not a folder")
    status, out, stderr = run([*FAST, "-o", output], capsys)
    assert status == 2 and message in stderr and "scanning" not in out + stderr


@pytest.mark.parametrize("argv, message", [
    (["--summary", "-o", "out.png"],
     "-o: not used with --summary, which prints the model and stops; leave one of them out"),
    (["--summary", "--layers", "conv1_1"], "--layers: not used with --summary"),
    (["--summary", "--maximize"], "--maximize: not used with --summary"),
    (["--steps", "5", "-o", "out.png"], "--steps: used only with --maximize (its "
                                        "gradient-ascent steps); add --maximize or leave out "
                                        "--steps"),
    (["--maximize", "--images", "missing", "-o", "out.png"],
     "--images: not used with --maximize, which starts from noise, not from pictures; leave "
     "one of them out"),
    (["--maximize", "--demo", "-o", "out.png"], "--demo: not used with --maximize"),
    (["--maximize", "--count", "4", "-o", "out.png"], "--count: not used with --maximize"),
    (["--maximize", "--any-position", "-o", "out.png"],
     "--any-position: not used with --maximize"),
    (["--unit", "3", "--units", "2", "-o", "out.png"],
     "--units: not used with --unit, which names the units to show; leave one of them out"),
])
def test_an_option_the_command_would_ignore_is_refused_before_any_work(argv, message, tmp_path,
                                                                       capsys, monkeypatch):
    """One line (no note that random weights were taken: no model was read), exit status 2;
    --images names a missing folder, refused only after this check."""
    monkeypatch.chdir(tmp_path)
    status, out, stderr = run(argv, capsys)
    assert status == 2 and out == ""
    assert stderr.startswith("scratchnet visualize: error: ") and stderr.count("\n") == 1
    assert message in stderr
    assert not (tmp_path / "out.png").exists()


def test_defaults_of_the_options_checked_for_use_still_apply(tmp_path, capsys, monkeypatch):
    """--units and --steps are None until the check, then 4 and 60: --maximize without them
    draws the first 4 units with 60 steps."""
    asked = {}

    def fake_figure(model, layers, units, image_size, steps, progress):
        asked.update(units=units, image_size=image_size, steps=steps)
        return np.zeros((3, 8, 8), np.float32)

    monkeypatch.setattr(visualize_command.visualize, "maximized_figure", fake_figure)
    status, _, _ = run(["--weights", "random", "--layers", "conv1_1", "--maximize",
                        "-o", str(tmp_path / "o.png")], capsys)
    assert status == 0
    assert asked == {"units": {"conv1_1": [0, 1, 2, 3]}, "image_size": 96, "steps": 60}
