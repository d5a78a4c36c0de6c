"""Images in and out: the pictures neural style transfer reads, and the ones it writes.

An image in scratchnet is a float32 NumPy array of shape (3, n_H, n_W): RGB values
in [0, 1], channels first like every activation a^[l] in the project. `image[None]`
gives the (1, 3, n_H, n_W) batch a model takes, and `model.preprocess` maps it to
what the network's weights expect.

- `load_image(path, size)` reads any picture Pillow can open (8- or 16-bit, gray,
  palette, CMYK, with or without transparency, rotated by its EXIF tag) and can
  resize it, so the content image C and the style image S come in at the size wanted;
  `image_shape(path, size)` says what shape that will be from the file's header alone.
- `save_image(image, path)` writes an 8-bit PNG or JPEG, atomically, creating the
  missing folders.
- `image_strip(images, labels)` lays pictures side by side: the generated image G
  at successive iterations, say.
- `preserve_colours(generated, content)` keeps the content's colours and takes
  only the luminance from the generated image, using YIQ (the NTSC colour space):

      Y = 0.299 R + 0.587 G + 0.114 B     luminance: what a black-and-white set shows
      I = 0.596 R - 0.274 G - 0.322 B     chrominance, orange to blue
      Q = 0.211 R - 0.523 G + 0.312 B     chrominance, purple to green

  A gray pixel (R = G = B) has I = Q = 0. The result is RGB of (Y of G, I of C,
  Q of C): the brush strokes of the style, in the colours of the photograph.

>>> from scratchnet.data import sample_path
>>> content = load_image(sample_path("chelsea"), size=128)
>>> content.shape, content.dtype, bool(0 <= content.min() <= content.max() <= 1)
((3, 85, 128), dtype('float32'), True)
>>> style = load_image(sample_path("brick"), size=content.shape[1:])
brick.jpg: 256x256 resized to 128x85
>>> style.shape
(3, 85, 128)
>>> image_strip([content, style], labels=["C", "S"], height=64).shape[1] > 64
True
"""

import contextlib
import os
import warnings

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from scratchnet import serialize
from scratchnet._memory import available_memory, in_gib

# 16-bit and 32-bit gray modes: the value that maps to white (1.0)
HIGH_DEPTH_GRAY_WHITE = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535,
                         "I": 65535, "F": 1.0}
TRANSPARENT_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
JPEG_QUALITY = 95
NOTE_WHEN_SHRUNK_BY = 2     # load_image notes a resize that divides a side by more than this
LABEL_MARGIN = 3            # pixels around a label in image_strip
EXIF_ORIENTATION = 0x0112   # the EXIF tag that says how a camera held the picture
EXIF_SIDEWAYS = (5, 6, 7, 8)  # its values for a picture turned by 90 degrees (width <-> height)
# Peak memory of load_image per pixel of the file, resizing included: 32 bytes measured for
# RGBA and gray with alpha, 23 for RGB, 17-26 for gray and palette pictures.
READ_BYTES_PER_PIXEL = 32

RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.596, -0.274, -0.322],
                       [0.211, -0.523, 0.312]])
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


# ------------------------------------------------------------------------ reading

def load_image(path, size=None, note=print):
    """The picture at `path` as a float32 array of shape (3, n_H, n_W), RGB in [0, 1].

    Whatever the file holds comes out as RGB:
    - gray ("L", "1") is copied into R, G and B; 16-bit gray ("I;16", and "I" as
      Pillow reads 16-bit PNGs and TIFFs) is divided by 65535, keeping its precision;
      32-bit float gray ("F") is taken as already in [0, 1]; both are clipped to [0, 1];
    - palette ("P") and CMYK images are converted by Pillow;
    - transparency (RGBA, LA, a palette or PNG transparent colour) is composited
      on WHITE: out = alpha * colour + (1 - alpha) * 1;
    - the EXIF orientation tag is applied, so a phone photo comes out upright;
    - of an animated picture, the first frame is read.

    `size`: None keeps the picture's size; an int resizes it so that its longest
    side is `size` pixels, keeping its proportions; an (n_H, n_W) pair resizes it to
    exactly that (to bring a style image to the content image's size). Resizing uses
    the Lanczos filter. When a side shrinks more than NOTE_WHEN_SHRUNK_BY times,
    `note` (print by default; None for silence) is called with one line naming the
    file, such as "content.jpg: 4032x3024 resized to 512x384" (width x height).

    Raises FileNotFoundError if there is no file at `path`, and ValueError naming
    `path` if the file is not an image Pillow can read.
    """
    path = os.fspath(path)
    size = _checked_size(size)
    image = _read_rgb(path)
    if size is None:
        return image
    old, new = image.shape[1:], _resized_shape(image.shape[1:], size)
    if note is not None and any(o > NOTE_WHEN_SHRUNK_BY * n for o, n in zip(old, new)):
        note(f"{os.path.basename(path)}: {old[1]}x{old[0]} resized to {new[1]}x{new[0]}")
    return resize_image(image, new)


def image_shape(path, size=None):
    """(n_H, n_W) of what load_image(path, size) returns, from the file's header alone (no
    pixel is decoded): to check that a picture of that size can be worked on before making it.
    Raises as load_image does."""
    size = _checked_size(size)
    with _opened(os.fspath(path)) as opened:
        width, height = opened.size
        turned_by_pillow = opened.format == "TIFF"   # its reader turns TIFFs, size included
        if opened.getexif().get(EXIF_ORIENTATION) in EXIF_SIDEWAYS and not turned_by_pillow:
            width, height = height, width
    return (height, width) if size is None else _resized_shape((height, width), size)


def _read_rgb(path):
    with _opened(path) as opened:
        _check_reading_fits(path, *opened.size)
        opened.load()
        upright = ImageOps.exif_transpose(opened)
    return _as_float_rgb(upright)


def _check_reading_fits(path, width, height):
    """A ValueError naming `path` when reading its pixels would take more memory than the
    system has available now (a picture is read at its own size before it is resized)."""
    needed, available = READ_BYTES_PER_PIXEL * width * height, available_memory()
    if available is not None and needed > available:
        raise ValueError(f"{path}: {width}x{height} pixels: reading it takes up to "
                         f"{in_gib(needed)} of memory, {in_gib(available)} available")


@contextlib.contextmanager
def _opened(path):
    """The Pillow image at `path`, open; FileNotFoundError or a ValueError naming `path`."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 million pixels and refuses from twice that; a picture
            # between the two is a large photograph more often than an attack, and is read
            # like any other, without the warning's raw line.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                yield opened
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: not an image Pillow can read ({error})") from error
    except Image.DecompressionBombError as error:   # a small file that unpacks to gigabytes
        raise ValueError(f"{path}: too many pixels to read safely ({error})") from error


def _as_float_rgb(image):
    """A Pillow image of any mode as (3, n_H, n_W) float32 RGB in [0, 1].

    The picture is copied at full size as few times as possible (the arithmetic is done in
    place), as a large photograph is read before it is resized: READ_BYTES_PER_PIXEL.
    """
    if image.mode in HIGH_DEPTH_GRAY_WHITE:
        gray = np.asarray(image, dtype=np.float64)           # (H, W), a copy
        gray /= HIGH_DEPTH_GRAY_WHITE[image.mode]
        rgb = np.empty((3, *gray.shape), dtype=np.float32)
        rgb[:] = np.clip(gray, 0, 1, out=gray)               # (H, W) -> (3, H, W)
        return rgb
    if image.mode in TRANSPARENT_MODES or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"))             # (H, W, 4) uint8
        alpha = rgba[..., 3].astype(np.float32)
        alpha /= 255
        transparency = 1 - alpha
        rgb = _channels_as_floats(rgba[..., :3])
        rgb *= alpha
        rgb += transparency                                  # on white: alpha colour + 1 - alpha
        return rgb
    return _channels_as_floats(np.asarray(image if image.mode == "RGB" else image.convert("RGB")))


def _channels_as_floats(pixels):
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1], one full-size copy."""
    rgb = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)
    rgb /= 255
    return rgb


def _checked_size(size):
    """None, an int, or an (n_H, n_W) tuple; errors name `size`."""
    if size is None:
        return None
    pair = isinstance(size, (tuple, list)) and len(size) == 2
    if not (_is_int(size) or pair and all(_is_int(side) for side in size)):
        raise TypeError(f"size: expected None, an int or an (n_H, n_W) pair of ints, got {size!r}")
    if np.min(size) < 1:
        raise ValueError(f"size: expected positive numbers of pixels, got {size!r}")
    return tuple(int(side) for side in size) if pair else int(size)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _resized_shape(shape, size):
    """(n_H, n_W) after resizing to `size`: an exact pair, or the longest side."""
    if isinstance(size, tuple):
        return size
    scale = size / max(shape)
    return tuple(max(1, round(side * scale)) for side in shape)


def resize_image(image, shape):
    """`image` (3, n_H, n_W) resized to `shape` = (new n_H, new n_W) with the Lanczos filter.

    Each channel is resized in floating point (Pillow mode "F"), so 16-bit precision
    survives; the result is clipped to [0, 1], since Lanczos overshoots at sharp edges.
    """
    image = _channels_first(image, "image")
    shape = _checked_size(shape)
    if not isinstance(shape, tuple):
        raise TypeError(f"shape: expected an (n_H, n_W) pair of ints, got {shape!r}")
    height, width = shape
    channels = [
        np.asarray(Image.fromarray(channel).resize((width, height), Image.Resampling.LANCZOS))
        for channel in image
    ]
    return np.clip(np.stack(channels), 0, 1)  # 3 x (h, w) -> (3, h, w)


# ------------------------------------------------------------------------ writing

def save_image(image, path):
    """Write `image` to `path` as an 8-bit PNG or JPEG, chosen by the extension.

    `image` is a float array in [0, 1] (values outside are clipped) of shape
    (3, n_H, n_W), (n_H, n_W, 3) or (1, 3, n_H, n_W). Missing folders in `path` are
    created. The write is atomic: the picture goes to a temporary file in the same
    folder, which is renamed over `path` only once it is complete, so an interrupted
    write never leaves a truncated file, and an existing file stays as it was.
    """
    pixels = np.round(np.clip(_channels_first(image, "image"), 0, 1) * 255).astype(np.uint8)
    pixels = np.ascontiguousarray(pixels.transpose(1, 2, 0))  # (3, H, W) -> (H, W, 3)
    picture = Image.fromarray(pixels)
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    if extension not in FORMATS:
        raise ValueError(
            f"path: expected a file name ending in one of {sorted(FORMATS)}, got {path!r}"
        )
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    options = {"quality": JPEG_QUALITY} if FORMATS[extension] == "JPEG" else {}
    with serialize.atomic_write(path) as file:
        picture.save(file, format=FORMATS[extension], **options)


def _channels_first(image, name):
    """`image` as a float32 (3, n_H, n_W) array; accepts (n_H, n_W, 3) and (1, 3, n_H, n_W) too.

    A (3, n_H, 3) array is read as channels first, the project's convention.
    """
    array = np.asarray(image)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(
            f"{name}: expected a float array with values in [0, 1], got dtype {array.dtype}"
        )
    if array.ndim == 4 and array.shape[:2] == (1, 3):
        array = array[0]  # (1, 3, H, W) -> (3, H, W)
    elif array.ndim == 3 and array.shape[0] != 3 and array.shape[2] == 3:
        array = array.transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
    if array.ndim != 3 or array.shape[0] != 3:
        raise ValueError(
            f"{name}: expected shape (3, n_H, n_W), (n_H, n_W, 3) or (1, 3, n_H, n_W), "
            f"got {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: expected finite values, got NaN or infinity")
    return np.ascontiguousarray(array, dtype=np.float32)


# ------------------------------------------------------------------------ strips

def image_strip(images, labels=None, height=128, gap=4):
    """The `images` side by side, each resized to `height` pixels high, as one (3, H, W) image.

    Images keep their proportions and are separated by `gap` white columns. With
    `labels` (one string per image), a white band under the pictures holds each
    label in Pillow's default font, so the strip is then taller than `height`.
    """
    pictures = [_channels_first(image, f"images[{i}]") for i, image in enumerate(images)]
    if not pictures:
        raise ValueError("images: expected at least one image, got none")
    if labels is not None and len(labels) != len(pictures):
        raise ValueError(f"labels: expected one per image ({len(pictures)}), got {len(labels)}")
    if not _is_int(height) or height < 1:
        raise ValueError(f"height: expected a positive int, got {height!r}")
    if not _is_int(gap) or gap < 0:
        raise ValueError(f"gap: expected an int >= 0, got {gap!r}")
    resized = [resize_image(p, (height, max(1, round(p.shape[2] * height / p.shape[1]))))
               for p in pictures]
    blank = np.ones((3, height, gap), dtype=np.float32)
    pieces = [resized[0]]
    for picture in resized[1:]:
        pieces += [blank, picture]
    strip = np.concatenate(pieces, axis=2)  # (3, height, w_1) ... -> (3, height, W)
    if labels is None:
        return strip
    band = _label_band([picture.shape[2] for picture in resized], labels, gap)
    return np.concatenate([strip, band], axis=1)  # (3, height, W) + (3, h_band, W) -> (3, H, W)


def _label_band(widths, labels, gap):
    """A white (3, h_band, W) band with each label in black under its picture."""
    font = ImageFont.load_default()
    band = Image.new("RGB", (sum(widths) + gap * (len(widths) - 1),
                             font.getbbox("Ag")[3] + 2 * LABEL_MARGIN), "white")
    draw = ImageDraw.Draw(band)
    left = 0
    for width, label in zip(widths, labels):
        text = _fitted(str(label), font, width - 2 * LABEL_MARGIN)
        draw.text((left + LABEL_MARGIN, LABEL_MARGIN), text, fill="black", font=font)
        left += width + gap
    return np.asarray(band, dtype=np.float32).transpose(2, 0, 1) / 255  # (h, W, 3) -> (3, h, W)


def stack_rows(rows, gap=0):
    """(3, h_i, w_i) pictures one under the other, left-aligned on white, `gap` white rows
    between them: (3, sum of h_i + gaps, largest w_i), float32."""
    width = max(row.shape[2] for row in rows)
    padded = []
    for row in rows:
        canvas = np.ones((3, row.shape[1] + gap, width), dtype=np.float32)
        canvas[:, :row.shape[1], :row.shape[2]] = row
        padded.append(canvas)
    stacked = np.concatenate(padded, axis=1)              # rows stacked along H
    return stacked[:, :stacked.shape[1] - gap]


def default_font(size=None):
    """Pillow's default font at `size` pixels (Pillow >= 10.1 with FreeType); its small
    fixed bitmap font when size is None or FreeType is missing."""
    if size is None:
        return ImageFont.load_default()
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def _fitted(text, font, width):
    """`text` cut at the end until it is at most `width` pixels wide."""
    while text and font.getlength(text) > width:
        text = text[:-1]
    return text


# ------------------------------------------------------------------------ colours

def rgb_to_yiq(image):
    """(..., 3, n_H, n_W) RGB -> the same shape in YIQ (see the module docstring)."""
    return _mix_channels(RGB_TO_YIQ, image, "image")


def yiq_to_rgb(yiq):
    """(..., 3, n_H, n_W) YIQ -> RGB, with the exact inverse of the RGB -> YIQ matrix."""
    return _mix_channels(YIQ_TO_RGB, yiq, "yiq")


def _mix_channels(matrix, image, name):
    """out[..., k, h, w] = sum over c of matrix[k, c] * image[..., c, h, w]; dtype kept."""
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.floating) or image.ndim < 3 or image.shape[-3] != 3:
        raise ValueError(
            f"{name}: expected a float array of shape (..., 3, n_H, n_W), "
            f"got {image.dtype} {image.shape}"
        )
    # (3, 3) x (..., 3, H, W) -> (..., 3, H, W)
    return np.einsum("kc,...chw->...khw", matrix.astype(image.dtype), image)


def preserve_colours(generated, content):
    """RGB of (Y of `generated`, I and Q of `content`), clipped to [0, 1].

    Both are (..., 3, n_H, n_W) RGB images of the same shape: the generated image G
    after style transfer and the content image C it started from. The result has the
    style's strokes (carried by luminance) in the photograph's colours.
    """
    generated, content = np.asarray(generated), np.asarray(content)
    if generated.shape != content.shape:
        raise ValueError(
            f"content: expected the shape of generated, {generated.shape}, got {content.shape}"
        )
    yiq = rgb_to_yiq(content)
    yiq[..., 0, :, :] = rgb_to_yiq(generated)[..., 0, :, :]  # Y from G; I, Q stay C's
    return np.clip(yiq_to_rgb(yiq), 0, 1)
