"""`scratchnet style` and `scratchnet weights`: help, tiny end-to-end runs, bad input."""

import re
import sys

import numpy as np
import pytest
import weight_fixtures as fx
from PIL import Image

from scratchnet import cli, commands
from scratchnet.commands import style as style_command
from scratchnet.io import VGGWeights, images, load_vgg19_weights, save_vgg19_weights
from scratchnet.io.layout import Preprocess
from scratchnet.models import vgg19

FAST = ["--size", "32", "--iterations", "3", "--weights", "random", "--print-every", "1"]


def write_picture(path, height, width, seed=0):
    pixels = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


@pytest.fixture
def pictures(tmp_path):
    content = write_picture(tmp_path / "content.png", 40, 48)
    return content, write_picture(tmp_path / "style.jpg", 36, 36, 1)


@pytest.mark.parametrize("command", [["style"], ["weights"], ["weights", "info"],
                                     ["weights", "convert"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: scratchnet {' '.join(command)}" in out
    if command == ["style"]:
        for option in ("--size", "--iterations", "--content-weight", "--style-weight",
                       "--tv-weight", "--init", "--optimizer", "--lr", "--seed", "--weights",
                       "--preserve-colors", "--content-layer", "--style-layers", "--style-blend",
                       "--style-scale", "--pooling", "--save-every", "--print-every", "--demo"):
            assert option in out


def test_a_tiny_run_writes_the_picture_into_a_new_folder(pictures, tmp_path, capsys):
    out = tmp_path / "new" / "folder" / "out.png"
    assert cli.main(["style", *pictures, "-o", str(out), *FAST, "--save-every", "1"]) == 0
    with Image.open(out) as written:
        assert written.size == (32, 27)  # longest side 32, proportions of 48 x 40
    for name in ("out_0001.png", "out_0002.png", "out_progression.png"):
        assert (out.parent / name).is_file(), name
    with Image.open(out.parent / "out_progression.png") as strip:  # enlarged so labels fit
        height = style_command.STRIP_HEIGHT
        assert strip.size[1] > height and strip.size[0] > 5 * height
    captured = capsys.readouterr()
    assert "iteration 3/3" in captured.err and str(out) in captured.out


def test_several_styles_lbfgs_and_the_other_options(pictures, tmp_path, monkeypatch):
    made = []

    class Recorded(style_command.StyleTransfer):      # the real problem, kept for a look
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(style_command, "StyleTransfer", Recorded)
    out = tmp_path / "out.jpg"
    extra_style = write_picture(tmp_path / "second.png", 20, 30, 2)
    status = cli.main(["style", *pictures, extra_style, "-o", str(out), *FAST,
                       "--style-blend", "0.7,0.3", "--optimizer", "lbfgs", "--pooling", "avg",
                       "--style-layers", "conv1_1:0.5,conv2_1", "--content-layer", "conv3_1",
                       "--style-scale", "0.5", "--preserve-colors", "--tv-weight", "0.01",
                       "--init", "noise", "--content-cost", "slide"])
    assert status == 0 and out.is_file()
    problem, = made
    settings = problem.settings
    assert settings.style_blend == (0.7, 0.3) and list(problem.blend) == pytest.approx([0.7, 0.3])
    assert settings.optimizer == "lbfgs" and settings.init == "noise"
    assert settings.style_layers == (("conv1_1", 0.5), ("conv2_1", 0.5))   # 1/2: two layers
    assert settings.content_layer == "conv3_1" and settings.tv_weight == 0.01
    assert settings.preserve_colors and settings.content_normalization == "slide"
    pools = {type(module).__name__ for module in problem.model.modules()
             if "Pool" in type(module).__name__}
    assert pools == {"AvgPool2d"}
    # the content's longest side is --size 32, the styles' half of it (--style-scale 0.5)
    assert max(problem.content.shape[-2:]) == 32
    assert [max(style.shape[-2:]) for style in problem.styles] == [16, 16]


def test_missing_image_exits_2_naming_it(pictures, tmp_path, capsys):
    missing = str(tmp_path / "no-such-photo.jpg")
    assert cli.main(["style", missing, pictures[1], "-o", str(tmp_path / "o.png"), *FAST]) == 2
    assert "no-such-photo.jpg" in capsys.readouterr().err


def test_unreadable_image_exits_2_naming_it(pictures, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_text("not a picture")
    assert cli.main(["style", pictures[0], str(broken), "-o", str(tmp_path / "o.png"), *FAST]) == 2
    assert "broken.png" in capsys.readouterr().err


def test_a_large_image_is_downscaled_with_a_note(pictures, tmp_path, capsys):
    large = write_picture(tmp_path / "large.png", 300, 400, 3)
    assert cli.main(["style", large, pictures[1], "-o", str(tmp_path / "o.png"), *FAST]) == 0
    assert "large.png: 400x300 resized to 32x24" in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["--style-layers", "conv1_1:0.5,conv9_1"], "conv9_1"),
    (["--style-blend", "1,1,1"], "--style-blend: expected one weight per style image (1), got 3"),
    (["--style-layers", "conv1_1,conv1_1"], "--style-layers: a layer is named twice"),
    (["--size", "12"], "--size 12: content.png becomes 12x10 pixels, but reaching conv5_1 "
                       "takes at least 16 on each side; raise --size"),
    (["--style-scale", "0.25"], "--style-scale 0.25: style.jpg becomes 8x8 pixels"),
    (["--style-scale", "1e300"], "--style-scale 1e+300: style.jpg becomes "),   # no overflow
    (["--size", "1" + "0" * 400], "content.png: cannot be made that large (--size or "),
])
def test_bad_option_values_exit_2(pictures, tmp_path, capsys, arguments, message):
    assert cli.main(["style", *pictures, "-o", str(tmp_path / "o.png"), *FAST, *arguments]) == 2
    assert message in capsys.readouterr().err


def test_a_small_picture_runs_when_the_cost_stops_at_shallow_layers(pictures, tmp_path):
    """The size check follows the layers asked for: 12x10 pixels reach conv3_1 (two poolings)."""
    status = cli.main(["style", *pictures, "-o", str(tmp_path / "o.png"), *FAST, "--size", "12",
                       "--content-layer", "conv3_1", "--style-layers", "conv1_1,conv2_1"])
    assert status == 0


def test_a_picture_too_large_to_read_is_refused_naming_it(pictures, tmp_path, capsys,
                                                          monkeypatch):
    """The picture is read at its own size before it is resized: 48 x 40 pixels do not fit
    in 1,000 bytes."""
    monkeypatch.setattr(images, "available_memory", lambda: 1000)
    assert cli.main(["style", *pictures, "-o", str(tmp_path / "o.png"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "content.png: 48x40 pixels: reading it takes up to" in err
    assert "Traceback" not in err and not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("folder, option", [("o_0002.png", "--save-every"),
                                            ("o_progression.png", "--save-every")])
def test_a_folder_where_a_side_picture_goes_is_refused_before_the_run(pictures, tmp_path, capsys,
                                                                      folder, option):
    """--save-every writes o_0001.png, o_0002.png and o_progression.png beside o.png; a folder
    of one of those names used to end the finished run in a traceback."""
    (tmp_path / folder).mkdir()
    assert cli.main(["style", *pictures, "-o", str(tmp_path / "o.png"), *FAST,
                     "--save-every", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{option}: {tmp_path / folder} is a folder" in err and "iteration" not in err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("arguments, message", [
    (["--size", "512"], "--size 512: content.png becomes 512x427 pixels: up to 1.5 GiB of "
                        "memory needed, 1.0 GiB available; lower --size"),
    (["--size", "32", "--style-scale", "30"],
     "--style-scale 30: style.jpg becomes 960x960 pixels: up to 1.3 GiB of memory needed, "
     "1.0 GiB available; lower --style-scale"),
])
def test_a_picture_too_large_for_the_memory_is_refused_before_it_is_made(
        pictures, tmp_path, capsys, monkeypatch, arguments, message):
    """With 1 GiB available, 512 x 427 pixels of G (0.85 GiB by the estimate, 1.47 GiB with
    its 15% and the process's 0.5 GiB) and a 960 x 960 style picture (0.73 GiB, 1.34) are
    refused; 32 pixels run."""
    monkeypatch.setattr(commands, "available_memory", lambda: 2 ** 30)
    out = str(tmp_path / "o.png")
    assert cli.main(["style", *pictures, "-o", out, *FAST, *arguments]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "resized" not in err                 # refused before the picture was made
    assert cli.main(["style", *pictures, "-o", out, *FAST]) == 0


def test_the_memory_estimate_grows_with_the_pixels_and_the_layers():
    """G's estimate: twice the numbers the forward pass keeps plus 400 a pixel, 4 bytes each."""
    def needed(shape, layers, trained=True):
        return style_command._bytes_needed(style_command._Picture(
            "c.png", max(shape), shape, layers, trained, "--size", str(max(shape))))
    default = ["conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    # VGG19 keeps 320 numbers a pixel up to conv5_1: conv1 2 x 64, pool1 16, conv2 2 x 32,
    # pool2 8, conv3 4 x 16, pool3 4, conv4 4 x 8, pool4 2, conv5_1 2
    assert needed((512, 512), default) == 4 * (2 * 320 + 400) * 512 * 512
    assert needed((512, 512), ["conv1_1"]) == 4 * (2 * 64 + 400) * 512 * 512
    assert needed((512, 512), default, trained=False) == pytest.approx(4 * 320 * 512 ** 2 * 2 / 3)


def test_usage_errors_exit_2(pictures, tmp_path, capsys):
    assert cli.main(["style", pictures[0], "-o", str(tmp_path / "o.png")]) == 2
    assert cli.main(["style", *pictures]) == 2
    assert cli.main(["style", *pictures, "-o", str(tmp_path / "o.gif")]) == 2
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["style", *pictures, "-o", str(tmp_path / "o.png"), "--size", "-3"])
    assert exit_info.value.code == 2


def _tiny_weights_file(path):
    model = vgg19(weights="random", widths=(2, 3, 4, 5, 5))
    save_vgg19_weights(VGGWeights(model.state_dict(), model.preprocessing, "memory"), path)
    return str(path)


def test_weights_that_do_not_fit_exit_2_naming_layer_and_shapes(pictures, tmp_path, capsys):
    weights = _tiny_weights_file(tmp_path / "tiny.npz")
    status = cli.main(["style", *pictures, "-o", str(tmp_path / "o.png"), "--size", "32",
                       "--iterations", "1", "--weights", weights])
    assert status == 2
    err = capsys.readouterr().err
    assert "conv1_1.weight" in err and "(2, 3, 3, 3)" in err and "(64, 3, 3, 3)" in err


def test_ctrl_c_saves_the_current_image_and_exits_130(pictures, tmp_path, monkeypatch, capsys):
    def interrupt_at_second(self, progress):
        if progress.iteration == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(style_command._Job, "save_intermediate", interrupt_at_second)
    out = tmp_path / "out.png"
    assert cli.main(["style", *pictures, "-o", str(out), *FAST]) == 130
    assert out.is_file()
    assert "interrupted after iteration 2" in capsys.readouterr().err


def test_demo_writes_its_pictures_into_the_folder(tmp_path, capsys):
    folder = tmp_path / "demo"
    status = cli.main(["style", "--demo", str(folder), "--size", "32", "--iterations", "2",
                       "--save-every", "1", "--weights", "random"])
    assert status == 0
    for name in ("content.png", "style.png", "result.png", "progression.png"):
        assert (folder / name).is_file(), name
    assert str(folder / "result.png") in capsys.readouterr().out


@pytest.fixture
def no_weights_around(tmp_path, monkeypatch):
    """Every place weights are searched for is an empty folder under tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("SCRATCHNET_WEIGHTS", "TORCH_HOME", "KERAS_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_weights_info_lists_the_places_searched(no_weights_around, capsys):
    assert cli.main(["weights", "info"]) == 0
    out = capsys.readouterr().out
    assert "vgg19-dcbb9e9d.pth" in out and "none found" in out


def test_weights_info_agrees_with_style_on_a_missing_environment_file(
        no_weights_around, tmp_path, monkeypatch, capsys):
    """$SCRATCHNET_WEIGHTS naming no file stops style transfer; weights info says so too
    (it used to report the random-weights fallback that style transfer does not take)."""
    missing = str(tmp_path / "nosuch.mat")
    monkeypatch.setenv("SCRATCHNET_WEIGHTS", missing)
    assert cli.main(["weights", "info"]) == 2
    captured = capsys.readouterr()
    assert f"missing  {missing}" in captured.out and "none found" not in captured.out
    assert "which is not a file: style transfer stops" in captured.err


def test_weights_info_names_the_file_style_transfer_would_use(no_weights_around, tmp_path,
                                                              monkeypatch, capsys):
    model = vgg19(weights="random")
    weights = str(tmp_path / "vgg19.npz")
    save_vgg19_weights(VGGWeights(model.state_dict(), model.preprocessing, "memory"), weights)
    monkeypatch.setenv("SCRATCHNET_WEIGHTS", weights)
    assert cli.main(["weights", "info"]) == 0
    assert f"would use: {weights} (scratchnet-npz)" in capsys.readouterr().out


def test_weights_info_refuses_a_file_style_transfer_would_read_and_refuse(
        no_weights_around, tmp_path, monkeypatch, capsys):
    """Weights of other shapes, a file of another kind: found, read, and refused, as
    style transfer refuses them (info used to look only at the format and say "would use")."""
    tiny = _tiny_weights_file(tmp_path / "tiny.npz")
    other = tmp_path / "other.pth"
    fx.write_torch_zip(other, {"conv1.weight": np.ones((2, 3, 3, 3), np.float32)})
    for path, message in ((tiny, "conv1_1.weight has shape (2, 3, 3, 3), expected (64, 3, 3, 3)"),
                          (other, "no torchvision VGG keys")):
        monkeypatch.setenv("SCRATCHNET_WEIGHTS", str(path))
        assert cli.main(["weights", "info"]) == 2
        captured = capsys.readouterr()
        assert message in captured.err and "style transfer would use this file" in captured.err
        assert "would use:" not in captured.out


def test_weights_info_refuses_the_file_it_would_use_when_style_transfer_would(
        no_weights_around, tmp_path, monkeypatch, capsys):
    """An empty file, a folder: style transfer stops on them, and weights info says so."""
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "folder.mat").mkdir()
    for name, message in (("empty.npz", "the file is empty: style transfer would use this "
                                        "file, and stops"),
                          ("folder.mat", "which is not a file: style transfer stops")):
        monkeypatch.setenv("SCRATCHNET_WEIGHTS", str(tmp_path / name))
        assert cli.main(["weights", "info"]) == 2
        captured = capsys.readouterr()
        assert message in captured.err
    assert f"folder   {tmp_path / 'folder.mat'}" in captured.out


def keras_file_in_the_keras_cache(home):
    """Keras's VGG19 file (tiny widths) where Keras keeps it under `home`."""
    pytest.importorskip("h5py")
    path = home / ".keras" / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    path.parent.mkdir(parents=True)
    fx.write_keras_h5(path)
    return str(path)


def test_keras_weights_without_h5py_exit_2_saying_what_to_install(
        no_weights_around, pictures, tmp_path, monkeypatch, capsys):
    """Found in Keras's cache or given: one line naming the file and the extra, no traceback."""
    keras_file = keras_file_in_the_keras_cache(tmp_path)
    monkeypatch.setitem(sys.modules, "h5py", None)     # `import h5py` now fails
    style = ["style", *pictures, "-o", str(tmp_path / "o.png"), "--size", "32"]
    for argv in (style, [*style, "--weights", keras_file], ["weights", "info"],
                 ["weights", "info", keras_file],
                 ["weights", "convert", keras_file, str(tmp_path / "out.npz")]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and keras_file in err, argv
        assert "pip install 'scratchnet[keras]'" in err, argv


def test_a_damaged_keras_file_exits_2_naming_the_file_and_what_it_lacks(pictures, tmp_path,
                                                                        capsys):
    pytest.importorskip("h5py")
    damaged = str(tmp_path / "damaged.h5")
    fx.write_keras_h5(damaged)
    fx.delete_from_h5(damaged, "block2_conv1/block2_conv1/kernel:0")
    for argv in (["weights", "info", damaged],
                 ["weights", "convert", damaged, str(tmp_path / "out.npz")],
                 ["style", *pictures, "-o", str(tmp_path / "o.png"), "--size", "32",
                  "--weights", damaged]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{damaged}: the weight_names of block2_conv1 " \
            "lists 'block2_conv1/kernel:0', which is not in the file" in err, argv


@pytest.mark.parametrize("key, value", [("mean", np.array([np.nan, 0.0, 0.0])),
                                        ("scale", np.ones(3))])
def test_weights_with_a_bad_preprocess_field_exit_2_naming_the_file(pictures, tmp_path, capsys,
                                                                    key, value):
    """A NaN mean was taken, and the run stopped on "J became non-finite"; an array as the
    scale was a TypeError traceback."""
    weights = _tiny_weights_file(tmp_path / "bad.npz")
    fx.replace_in_npz(weights, {f"preprocess.{key}": value})
    for argv in (["weights", "info", weights],
                 ["style", *pictures, "-o", str(tmp_path / "o.png"), "--size", "32",
                  "--weights", weights]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{weights}: preprocess.{key}: expected" in err, argv


def test_weights_info_describes_a_file(tmp_path, capsys):
    weights = _tiny_weights_file(tmp_path / "tiny.npz")
    assert cli.main(["weights", "info", weights]) == 0
    out = capsys.readouterr().out
    assert "scratchnet-npz" in out and "conv5_4" in out and "(5, 5, 3, 3)" in out
    assert "not VGG19's real widths (conv1_1.weight is (2, 3, 3, 3)" in out


def test_weights_convert_writes_an_npz_that_loads_the_same(tmp_path, capsys):
    model = vgg19(weights="random")
    recipe = Preprocess("BGR", 255.0, (103.939, 116.779, 123.68), source="test")
    source = tmp_path / "full.npz"
    save_vgg19_weights(VGGWeights(model.state_dict(), recipe, "memory"), source)
    target = tmp_path / "converted.npz"
    assert cli.main(["weights", "convert", str(source), str(target)]) == 0
    converted = load_vgg19_weights(target)
    np.testing.assert_array_equal(converted.params["conv4_2.weight"], model.conv4_2.weight.data)
    assert converted.preprocess.channel_order == "BGR"
    assert str(target) in capsys.readouterr().out


def test_weights_convert_of_a_bad_file_exits_2(tmp_path, capsys):
    weights = _tiny_weights_file(tmp_path / "tiny.npz")
    assert cli.main(["weights", "convert", weights, str(tmp_path / "out.npz")]) == 2
    assert "conv1_1.weight" in capsys.readouterr().err
    assert cli.main(["weights", "convert", str(tmp_path / "missing.pth"),
                     str(tmp_path / "out.npz")]) == 2


def test_weights_convert_refuses_an_out_it_cannot_write_before_reading(tmp_path, capsys):
    missing = str(tmp_path / "missing.pth")        # never read: OUT is refused first
    assert cli.main(["weights", "convert", missing, str(tmp_path / "no" / "out.npz")]) == 2
    assert "OUT: the folder" in capsys.readouterr().err
    (tmp_path / "taken.npz").mkdir()
    assert cli.main(["weights", "convert", missing, str(tmp_path / "taken.npz")]) == 2
    assert "is a folder; expected a file name" in capsys.readouterr().err


def test_demo_refuses_a_file_or_an_empty_name_as_its_folder(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    for folder, message in ((str(taken), "--demo: expected a folder, got the file"),
                            ("", "--demo: expected a folder name, got ''")):
        assert cli.main(["style", "--demo", folder, "--weights", "random", "--size", "32"]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("taken", ["style.png", "result.png"])
def test_demo_refuses_a_folder_where_one_of_its_pictures_goes(tmp_path, capsys, taken):
    (tmp_path / "demo" / taken).mkdir(parents=True)
    assert cli.main(["style", "--demo", str(tmp_path / "demo"), "--weights", "random",
                     "--size", "32"]) == 2
    assert "--demo: " in capsys.readouterr().err
    assert not (tmp_path / "demo" / "content.png").exists()  # nothing written before the check


@pytest.mark.parametrize("arguments, message", [
    (["--optimizer", "lbfgs", "--lr", "0.1"],
     "--lr: not used with --optimizer lbfgs: L-BFGS chooses its own steps; leave out --lr"),
    (["--init", "content", "--seed", "3"],
     "--seed: not used with --init content: G starts as the content image, without noise; "
     "leave out --seed"),
])
def test_an_option_the_run_would_ignore_is_refused_before_any_work(pictures, tmp_path, capsys,
                                                                    arguments, message):
    out = tmp_path / "new" / "o.png"
    assert cli.main(["style", *pictures, "-o", str(out), *FAST, *arguments]) == 2
    assert capsys.readouterr().err == f"scratchnet style: error: {message}\n"
    assert not (tmp_path / "new").exists()      # not even the output's folder was made


def test_the_demo_s_own_settings_are_not_refused_only_what_was_typed(tmp_path, capsys):
    """--demo sets --lr and --init content itself: --optimizer lbfgs runs with it, a typed
    --seed (no noise to seed with --init content) is refused, naming where the init came from."""
    tiny = ["--size", "32", "--iterations", "1", "--weights", "random"]
    assert cli.main(["style", "--demo", str(tmp_path / "lbfgs"), "--optimizer", "lbfgs",
                     *tiny]) == 0
    capsys.readouterr()
    assert cli.main(["style", "--demo", str(tmp_path / "seed"), "--seed", "3", *tiny]) == 2
    assert capsys.readouterr().err == ("scratchnet style: error: --seed: not used with --init "
                                       "content (--demo's choice): G starts as the content "
                                       "image, without noise; leave out --seed\n")
    assert not (tmp_path / "seed").exists()


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # J = inf
def test_a_run_stopped_at_its_first_iteration_says_none_completed(pictures, tmp_path, capsys):
    """beta = 1e308 makes J infinite at iteration 1: no iteration is done, the picture written
    is the initial G (with --init content, the content picture), and the exit status is 1."""
    out = tmp_path / "o.png"
    status = cli.main(["style", *pictures, "-o", str(out), *FAST, "--init", "content",
                       "--style-weight", "1e308"])
    assert status == 1
    captured = capsys.readouterr()
    assert "J became non-finite (inf) at iteration 1" in captured.err
    assert re.fullmatch(r"no iteration completed in \d+\.\d s \(the result is the initial "
                        rf"image\); wrote {re.escape(str(out))}\n", captured.out)
    written = images.load_image(str(out), note=None)
    content = images.load_image(pictures[0], size=32, note=None)
    np.testing.assert_allclose(written, content, atol=0.5 / 255)


def test_the_timing_line_counts_iterations_in_words():
    assert style_command._timing(1, 0.5) == "1 iteration in 0.5 s (0.50 s per iteration)"
    assert style_command._timing(4, 3.0) == "4 iterations in 3.0 s (0.75 s per iteration)"
