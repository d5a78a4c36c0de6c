"""scratchnet.io.images and the sample pictures of scratchnet.data.

Fixtures are written with Pillow into a temporary folder; expected values are
computed from the integers written (k / 255, k / 65535, alpha compositing by hand),
never read back from the code under test.
"""

import doctest
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

import scratchnet.data
from scratchnet.data import SAMPLES, sample_path
from scratchnet.io import images
from scratchnet.io.images import (
    image_shape,
    image_strip,
    load_image,
    preserve_colours,
    resize_image,
    rgb_to_yiq,
    save_image,
    yiq_to_rgb,
)

EXIF_ORIENTATION = 0x0112


def write(folder, name, picture, **options):
    path = folder / name
    picture.save(path, **options)
    return path


# ------------------------------------------------------------------ modes and depths

def test_gray_L_is_copied_into_three_channels(tmp_path):
    values = np.array([[0, 1, 128], [200, 254, 255]], dtype=np.uint8)
    image = load_image(write(tmp_path, "gray.png", Image.fromarray(values)))
    assert image.dtype == np.float32 and image.shape == (3, 2, 3)
    expected = (values / 255).astype(np.float32)
    for channel in image:
        np.testing.assert_array_equal(channel, expected)


def test_16_bit_png_keeps_its_precision(tmp_path):
    values = np.array([[0, 1, 255, 256], [257, 32768, 40000, 65535]], dtype=np.uint16)
    picture = Image.fromarray(values)
    assert picture.mode == "I;16"
    image = load_image(write(tmp_path, "deep.png", picture))
    expected = (values.astype(np.float64) / 65535).astype(np.float32)
    for channel in image:
        np.testing.assert_array_equal(channel, expected)
    # neither clipped at 255 nor quantised to 8 bits
    assert image[0, 1, 3] == 1.0 and 0 < image[0, 0, 1] < 1 / 255


def test_32_bit_integer_gray_is_read_as_16_bit(tmp_path):
    values = np.array([[0, 1000], [30000, 65535]], dtype=np.int32)
    picture = Image.fromarray(values)
    assert picture.mode == "I"
    image = load_image(write(tmp_path, "deep.tif", picture))
    np.testing.assert_array_equal(image[1], (values / 65535).astype(np.float32))


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparency_is_composited_on_white(tmp_path, mode):
    colour, alphas = np.array([200, 100, 0]), np.array([255, 0, 51])
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, :, :3] = colour
    rgba[0, :, 3] = alphas
    picture = Image.fromarray(rgba).convert(mode)
    image = load_image(write(tmp_path, f"{mode}.png", picture))
    if mode == "LA":
        colour = np.asarray(Image.fromarray(rgba[..., :3]).convert("L"), dtype=int)[0, 0].repeat(3)
    alpha = alphas / 255
    # (3 channels, 3 pixels)
    expected = alpha[None, :] * (colour[:, None] / 255) + (1 - alpha[None, :])
    np.testing.assert_allclose(image[:, 0, :], expected, atol=1e-6)
    np.testing.assert_array_equal(image[:, 0, 1], [1, 1, 1])  # fully transparent -> white


def test_palette_with_a_transparent_index(tmp_path):
    picture = Image.new("P", (2, 1))
    picture.putpalette([255, 0, 0, 0, 0, 255])  # index 0 red, index 1 blue
    picture.putpixel((1, 0), 1)
    image = load_image(write(tmp_path, "palette.png", picture, transparency=0))
    np.testing.assert_array_equal(image[:, 0, 0], [1, 1, 1])  # transparent red -> white
    np.testing.assert_array_equal(image[:, 0, 1], [0, 0, 1])  # opaque blue


def test_palette_without_transparency(tmp_path):
    picture = Image.new("P", (1, 1))
    picture.putpalette([10, 20, 30])
    image = load_image(write(tmp_path, "palette.gif", picture))
    np.testing.assert_allclose(image[:, 0, 0], np.array([10, 20, 30]) / 255, atol=1e-7)


@pytest.mark.parametrize("name, tolerance", [("cmyk.tif", 0), ("cmyk.jpg", 3 / 255)])
def test_cmyk(tmp_path, name, tolerance):
    picture = Image.new("CMYK", (8, 8), (0, 255, 0, 0))  # full magenta ink only
    picture.paste((0, 0, 0, 255), (0, 0, 8, 4))        # top half: full black ink
    image = load_image(write(tmp_path, name, picture))
    np.testing.assert_allclose(image[:, 6, 6], [1, 0, 1], atol=tolerance)
    np.testing.assert_allclose(image[:, 1, 1], [0, 0, 0], atol=tolerance)


@pytest.mark.parametrize("orientation, marked_corner", [(6, "top right"), (8, "bottom left")])
def test_exif_orientation_is_applied(tmp_path, orientation, marked_corner):
    # stored 32 wide, 16 high, a red block in its top-left corner. Tag 6: the stored
    # top row is the displayed right side (rotate 90 degrees clockwise to view);
    # tag 8: it is the displayed left side (rotate 90 degrees anticlockwise).
    stored = np.zeros((16, 32, 3), dtype=np.uint8)
    stored[:8, :8, 0] = 255
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    path = write(tmp_path, "phone.jpg", Image.fromarray(stored), exif=exif, quality=95)
    image = load_image(path)
    assert image.shape == (3, 32, 16)
    corners = {"top left": image[:, 2, 2], "top right": image[:, 2, 13],
               "bottom left": image[:, 29, 2], "bottom right": image[:, 29, 13]}
    for corner, pixel in corners.items():
        expected = [1, 0, 0] if corner == marked_corner else [0, 0, 0]
        np.testing.assert_allclose(pixel, expected, atol=0.1, err_msg=corner)


@pytest.mark.parametrize("orientation", [1, 3, 5, 6, 7, 8])
@pytest.mark.parametrize("size", [None, 20, 7, (5, 9)])
@pytest.mark.parametrize("extension", ["jpg", "png", "tiff"])
def test_image_shape_is_the_shape_load_image_returns(tmp_path, orientation, size, extension):
    """From the header alone, EXIF turns included (5 to 8 swap width and height)."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    stored = Image.fromarray(np.zeros((16, 30, 3), dtype=np.uint8))
    path = write(tmp_path, f"o{orientation}.{extension}", stored, exif=exif)
    assert image_shape(path, size) == load_image(path, size, note=None).shape[1:]


def test_image_shape_raises_as_load_image_does(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such image file"):
        image_shape(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("not a picture")
    with pytest.raises(ValueError, match="text.png: not an image Pillow can read"):
        image_shape(tmp_path / "text.png")


# ------------------------------------------------------------------------ sizes

def test_longest_side_becomes_size_and_a_big_shrink_is_noted(tmp_path):
    path = write(tmp_path, "big.png", Image.new("RGB", (600, 400), (10, 200, 30)))
    notes = []
    image = load_image(path, size=100, note=notes.append)
    assert image.shape == (3, 67, 100)
    assert notes == ["big.png: 600x400 resized to 100x67"]
    # a constant picture stays constant under any resampling filter that sums to one
    colour = np.array([10, 200, 30])[:, None, None] / 255  # (3, 1, 1)
    np.testing.assert_allclose(image, np.broadcast_to(colour, image.shape), atol=1e-6)


def test_small_resizes_are_silent_and_upscaling_works(tmp_path):
    path = write(tmp_path, "small.png", Image.new("RGB", (150, 100)))
    notes = []
    assert load_image(path, size=100, note=notes.append).shape == (3, 67, 100)
    assert load_image(path, size=300, note=notes.append).shape == (3, 200, 300)
    assert notes == []
    assert load_image(path, size=40, note=None).shape == (3, 27, 40)  # None: silent


def test_size_pair_forces_an_exact_shape(tmp_path):
    path = write(tmp_path, "any.png", Image.new("RGB", (150, 100)))
    assert load_image(path, size=(31, 77)).shape == (3, 31, 77)
    assert load_image(path, size=[12, 5], note=None).shape == (3, 12, 5)


def test_resize_agrees_with_pillow_lanczos_on_8_bit(tmp_path):
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    smooth = Image.fromarray(coarse).resize((64, 48), Image.Resampling.BICUBIC)
    image = load_image(write(tmp_path, "smooth.png", smooth), size=(20, 30))
    reference = np.asarray(smooth.resize((30, 20), Image.Resampling.LANCZOS)) / 255  # (H, W, 3)
    np.testing.assert_allclose(image, reference.transpose(2, 0, 1), atol=1 / 255)


@pytest.mark.parametrize("size, error", [
    (0, ValueError), (-3, ValueError), ((10, 0), ValueError),
    ("big", TypeError), (True, TypeError), (2.5, TypeError), ((1, 2, 3), TypeError),
])
def test_bad_sizes_are_refused(tmp_path, size, error):
    path = write(tmp_path, "any.png", Image.new("RGB", (4, 4)))
    with pytest.raises(error, match="size"):
        load_image(path, size=size)


# ------------------------------------------------------------------------ bad files

def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "content.jpg"
    with pytest.raises(FileNotFoundError, match="content.jpg"):
        load_image(path)


def test_random_bytes_are_not_an_image(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="photo.jpg: not an image Pillow can read"):
        load_image(path)


def test_a_decompression_bomb_is_refused_not_unpacked(tmp_path, monkeypatch):
    # Pillow refuses more than twice MAX_IMAGE_PIXELS; lowered here, a small picture is a bomb
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = write(tmp_path, "bomb.png", Image.new("RGB", (64, 64)))
    with pytest.raises(ValueError, match="bomb.png: too many pixels to read safely"):
        load_image(path)


def test_a_large_picture_below_the_refusal_reads_without_a_warning(tmp_path, monkeypatch):
    # between MAX_IMAGE_PIXELS and twice that, Pillow only warns: the picture is read, quietly
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)
    path = write(tmp_path, "large.png", Image.new("RGB", (64, 64), (255, 0, 0)))   # 4096 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert image_shape(path) == (64, 64)
        image = load_image(path)
    np.testing.assert_array_equal(image[:, 0, 0], [1, 0, 0])


def test_a_picture_too_large_to_read_in_the_memory_available_is_refused(tmp_path, monkeypatch):
    path = write(tmp_path, "huge.png", Image.new("RGBA", (200, 100)))
    needed = images.READ_BYTES_PER_PIXEL * 200 * 100
    monkeypatch.setattr(images, "available_memory", lambda: needed - 1)
    with pytest.raises(ValueError, match=r"huge.png: 200x100 pixels: reading it takes up to "
                                         r"0\.0 GiB of memory, 0\.0 GiB available"):
        load_image(path, size=10)
    monkeypatch.setattr(images, "available_memory", lambda: needed)
    assert load_image(path, size=10).shape == (3, 5, 10)


READ_PEAK = """
import resource, sys
from scratchnet.io.images import load_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
load_image(sys.argv[1], size=64, note=None)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB on Linux")
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_reading_a_picture_takes_at_most_the_bytes_per_pixel_counted(tmp_path, mode):
    """The peak memory of load_image, in a fresh process, against READ_BYTES_PER_PIXEL (the
    conversion used to take 52 bytes a pixel for RGBA, 32 for RGB)."""
    height, width = 2000, 3000
    ramp = np.linspace(0, 255, width, dtype=np.float32).astype(np.uint8)
    pixels = np.broadcast_to(ramp[None, :, None], (height, width, len(mode)))
    path = write(tmp_path, "large.png", Image.fromarray(np.ascontiguousarray(pixels), mode))
    peak = int(subprocess.run([sys.executable, "-c", READ_PEAK, str(path)], check=True,
                              capture_output=True, text=True).stdout)
    assert peak <= images.READ_BYTES_PER_PIXEL * height * width + (8 << 20), peak / (height * width)


def test_truncated_jpeg_is_not_an_image(tmp_path):
    noise = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    whole = write(tmp_path, "whole.jpg", Image.fromarray(noise))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[:2000])
    with pytest.raises(ValueError, match="cut.jpg: not an image Pillow can read"):
        load_image(cut)


# ------------------------------------------------------------------------ saving

@settings(max_examples=25, deadline=None)
@given(arrays(np.float32, st.tuples(st.just(3), st.integers(1, 9), st.integers(1, 9)),
              elements=st.floats(0, 1, width=32)))
def test_png_round_trip_within_half_a_level(image):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "x.png")
        save_image(image, path)
        loaded = load_image(path)
    assert loaded.shape == image.shape
    np.testing.assert_allclose(loaded, image, atol=0.5 / 255 + 1e-6)


def test_layouts_and_clipping(tmp_path):
    levels = np.array([-0.5, 0.2, 1.5])[:, None, None]  # (3, 1, 1)
    channels_first = levels * np.ones((3, 2, 4))
    expected = np.array([0, 51, 255])[:, None, None] / 255 * np.ones((3, 2, 4))
    for name, layout in [("chw.png", channels_first),
                         ("hwc.png", channels_first.transpose(1, 2, 0)),  # (3, H, W) -> (H, W, 3)
                         ("nchw.png", channels_first[None])]:  # (3, H, W) -> (1, 3, H, W)
        save_image(layout, tmp_path / name)
        np.testing.assert_allclose(load_image(tmp_path / name), expected, atol=1e-7, err_msg=name)


def test_jpeg_by_extension(tmp_path):
    image = np.full((3, 16, 16), 0.5, dtype=np.float32)
    for name in ["a.jpg", "b.JPEG"]:
        save_image(image, tmp_path / name)
        with Image.open(tmp_path / name) as written:
            assert written.format == "JPEG"
        np.testing.assert_allclose(load_image(tmp_path / name), image, atol=2 / 255)


def test_save_creates_missing_folders(tmp_path):
    path = tmp_path / "out" / "dir" / "result.png"
    save_image(np.zeros((3, 2, 2)), path)
    assert load_image(path).shape == (3, 2, 2)


@pytest.mark.parametrize("bad, error, message", [
    (np.zeros((3, 4, 4), dtype=np.uint8), TypeError, "float"),
    (np.zeros((4, 4, 4)), ValueError, "shape"),
    (np.zeros((2, 3, 4, 4)), ValueError, "shape"),
    (np.full((3, 2, 2), np.nan), ValueError, "finite"),
])
def test_save_refuses_bad_arrays(tmp_path, bad, error, message):
    with pytest.raises(error, match=message):
        save_image(bad, tmp_path / "x.png")
    assert os.listdir(tmp_path) == []


def test_save_refuses_unknown_extensions(tmp_path):
    with pytest.raises(ValueError, match="result.gif"):
        save_image(np.zeros((3, 2, 2)), tmp_path / "result.gif")


def fail_mid_write(self, file, *args, **kwargs):
    file.write(b"\x89PNG half an image")
    raise OSError("disk full")


def fail_rename(source, target):
    raise OSError("rename refused")


@pytest.mark.parametrize("target, failure", [
    ("PIL.Image.Image.save", fail_mid_write),
    ("os.replace", fail_rename),
])
def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, target, failure):
    path = tmp_path / "result.png"
    save_image(np.zeros((3, 2, 2)), path)
    before = path.read_bytes()
    monkeypatch.setattr(target, failure)
    with pytest.raises(OSError):
        save_image(np.ones((3, 5, 5)), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["result.png"]


# ------------------------------------------------------------------------ strips

def test_strip_resizes_to_one_height_with_white_gaps():
    red = np.zeros((3, 10, 20), dtype=np.float32)
    red[0] = 1
    blue = np.zeros((3, 40, 20), dtype=np.float32)
    blue[2] = 1
    strip = image_strip([red, blue.transpose(1, 2, 0)], height=8, gap=3)  # second one (H, W, 3)
    assert strip.shape == (3, 8, 16 + 3 + 4)
    np.testing.assert_allclose(strip[:, :, :16], red[:, :8, :16], atol=1e-6)
    np.testing.assert_array_equal(strip[:, :, 16:19], 1)
    np.testing.assert_allclose(strip[:, :, 19:], blue[:, :8, :4], atol=1e-6)


def test_strip_pieces_are_the_resized_images():
    rng = np.random.default_rng(3)
    first, second = rng.random((3, 12, 18)), rng.random((3, 30, 15))
    strip = image_strip([first, second], height=12, gap=0)
    np.testing.assert_array_equal(strip[:, :, :18], resize_image(first, (12, 18)))
    np.testing.assert_array_equal(strip[:, :, 18:], resize_image(second, (12, 6)))


def test_strip_labels_go_in_a_band_below():
    gray = np.full((3, 32, 64), 0.5, dtype=np.float32)
    plain = image_strip([gray, gray], height=32)
    labelled = image_strip([gray, gray], labels=["iteration 0", "iteration 100"], height=32)
    assert labelled.shape[2] == plain.shape[2] and labelled.shape[1] > 32
    np.testing.assert_array_equal(labelled[:, :32], plain)
    band = labelled[:, 32:]
    assert band.min() < 0.5 and np.median(band) == 1  # dark text on white
    for left, right in [(0, 64), (68, 132)]:          # each label under its own picture
        assert band[:, :, left:right].min() < 0.5


def test_strip_refuses_mismatched_labels_and_no_images():
    with pytest.raises(ValueError, match="labels"):
        image_strip([np.zeros((3, 4, 4))], labels=["a", "b"])
    with pytest.raises(ValueError, match="images"):
        image_strip([])


# ------------------------------------------------------------------------ colours

def test_yiq_of_hand_worked_pixels():
    pixels = np.array([[1, 0, 0], [0.3, 0.3, 0.3], [1, 1, 1]], dtype=np.float64)
    yiq = rgb_to_yiq(pixels.T[:, :, None])[:, :, 0].T  # (3 pixels, 3) as (3, 3, 1) and back
    np.testing.assert_allclose(yiq[0], [0.299, 0.596, 0.211], atol=1e-12)  # red: first column
    np.testing.assert_allclose(yiq[1], [0.3, 0, 0], atol=1e-12)             # gray: no chrominance
    np.testing.assert_allclose(yiq[2], [1, 0, 0], atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([np.float32, np.float64]).flatmap(lambda dtype: arrays(
    dtype, st.tuples(st.integers(1, 2), st.just(3), st.integers(1, 6), st.integers(1, 6)),
    elements=st.floats(0, 1, width=32))))
def test_yiq_round_trip_is_identity(image):
    yiq = rgb_to_yiq(image)
    assert yiq.dtype == image.dtype and yiq.shape == image.shape
    np.testing.assert_allclose(yiq_to_rgb(yiq), image, atol=1e-6)


def test_preserve_colours_takes_luminance_from_generated_and_colour_from_content():
    rng = np.random.default_rng(4)
    content = 0.4 + 0.2 * rng.random((3, 5, 6))
    generated = np.repeat(0.4 + 0.2 * rng.random((1, 5, 6)), 3, axis=0)  # a gray picture
    result = preserve_colours(generated, content)
    # hand-computed: a gray g has Y = g, so the result is content + (g - Y_C) in each channel
    # (adding a gray changes Y only, as I and Q ignore gray); all within [0.2, 0.8], no clipping
    luminance = 0.299 * content[0] + 0.587 * content[1] + 0.114 * content[2]
    np.testing.assert_allclose(result, content + (generated[0] - luminance), atol=1e-9)
    np.testing.assert_allclose(preserve_colours(content, content), content, atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        preserve_colours(generated[:, :4], content)


# ------------------------------------------------------------------------ samples

@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_sample_loads(name):
    image = load_image(sample_path(name))
    assert image.dtype == np.float32 and image.ndim == 3 and image.shape[0] == 3
    assert max(image.shape[1:]) == 256
    assert 0 <= image.min() < image.max() <= 1
    assert SAMPLES[name].role in ("content", "style")
    assert SAMPLES[name].licence in ("CC0", "public domain")


def test_licence_file_lists_every_sample_and_nothing_else_ships():
    folder = sample_path("chelsea").parent
    licences = (folder / "LICENSES.md").read_text(encoding="utf-8")
    for sample in SAMPLES.values():
        assert f"`{sample.file}`" in licences
        assert sample.licence in licences
    pictures = {f for f in os.listdir(folder) if f.endswith((".jpg", ".png"))}
    assert pictures == {sample.file for sample in SAMPLES.values()}
    assert {sample.role for sample in SAMPLES.values()} == {"content", "style"}
    assert sum(os.path.getsize(folder / f) for f in pictures) < 600_000


def test_unknown_sample_name():
    with pytest.raises(ValueError, match="name"):
        sample_path("mona_lisa")


@pytest.mark.parametrize("module", [images, scratchnet.data], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
