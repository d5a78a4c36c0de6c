"""dlib's face pipeline on whole photographs, and its face ResNet as a face-database encoder.

A photograph goes through the stages of scratchnet.face.dlib, one face at a time:

    boxes  = detect(photo)                     the CNN face detector, best score first
    points = landmarks(photo, box, points=5)   5 (or 68) landmarks of each face
    chip   = chip(photo, points)               (150, 150, 3) uint8, eyes and nose in place
    f(x)   = descriptor(chips)                 (N, 128), the face ResNet

`faces_in_photo` does the first three for every face of a photo;
`DlibFaceEncoder` does the last one with the interface that FaceDatabase and
`scratchnet face` expect of an encoder (a callable with tau, fingerprint and
embedding_size), so dlib's network enrols and identifies real people.

The threshold, squared. dlib publishes its model's threshold on the EUCLIDEAN
distance: one person when ||f(x1) - f(x2)||_2 < 0.6. The course, FaceDatabase
and `scratchnet face verify` use the SQUARED distance

    d(x1, x2) = ||f(x1) - f(x2)||^2,     the same person when d <= tau,

so this encoder's tau is 0.6^2 = 0.36: the same decision as dlib's (only a pair
at exactly 0.6 is called "same" here and "different" by dlib).

The fingerprint that a face database stores is taken from the bytes of the
model file, so a database enrolled with dlib's ResNet refuses any other encoder.

Faces are ordered largest first (by box area; `largest_face` is faces[0]).
Drawing: `draw_faces` marks boxes, landmarks and names on a copy of the photo.

>>> boxes = [(10, 10, 19, 19), (0, 0, 29, 29)]
>>> [tuple(box) for box in largest_first(boxes)]
[(0, 0, 29, 29), (10, 10, 19, 19)]
>>> drawn = draw_faces(np.zeros((40, 40, 3), np.uint8), [(5, 5, 30, 30)], labels=["ada"])
>>> drawn.shape, drawn.dtype, int(drawn[5, 5:31].max()) > 0, int(drawn[20, 20].max())
((40, 40, 3), dtype('uint8'), True, 0)
"""

import hashlib
from collections import namedtuple
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from ...io.images import default_font, load_image
from .chips import chip as cut_chip
from .detector import detect
from .files import find_model_file
from .landmarks import landmarks as find_landmarks
from .resnet import CHIP_SIZE, DEFAULT_TAU, load_face_resnet

EMBEDDING_SIZE = 128
HASH_CHUNK = 1 << 20          # bytes read at a time when fingerprinting a model file

Face = namedtuple("Face", "box landmarks chip")
Face.__doc__ = """One face of a photo: box (left, top, right, bottom), landmarks (P, 2) int64 of
(x, y), chip (150, 150, 3) uint8."""


# ------------------------------------------------------------------ photos -> faces

def load_photo(path):
    """The photo at `path` as (n_H, n_W, 3) uint8 RGB, upright by its EXIF tag.

    Gray, palette, RGBA (on white) and 16-bit files are read as RGB, as
    scratchnet.io.images.load_image does; FileNotFoundError or ValueError when
    the file cannot be read.
    """
    rgb = load_image(path, note=None)                      # (3, H, W) floats k / 255
    pixels = np.rint(rgb.transpose(1, 2, 0) * 255)         # (3, H, W) -> (H, W, 3)
    return np.ascontiguousarray(pixels, dtype=np.uint8)


def faces_in_photo(image, points=5, models=None):
    """Every face of an (n_H, n_W, 3) uint8 RGB photo as a Face, largest box first.

    points: 5 (what dlib's face recognition uses) or 68 landmarks per face; the
    chip is cut from either. models: None (dlib's files, found as `files` says),
    or a folder holding them.
    """
    faces = []
    for box in largest_first(detect(image, path=models)):
        marks = find_landmarks(image, box, points=points, model=models)
        faces.append(Face(box, marks, cut_chip(image, marks)))
    return faces


def largest_first(boxes):
    """The boxes (left, top, right, bottom) sorted by falling area; ties keep their order."""
    return sorted(boxes, key=lambda box: -(box[2] - box[0] + 1) * (box[3] - box[1] + 1))


# ------------------------------------------------------------------ chips -> f(x)

class DlibFaceEncoder:
    """dlib's face ResNet as an encoder: `encoder(chips) -> (N, 128)` descriptors f(x).

    chips: (N, 150, 150, 3) as `chip` cuts them, or the face database's
    channels-first layout (N, 3, 150, 150); uint8 in 0..255, or floats in [0, 1]
    (rounded to the nearest of the 256 levels, as the network was trained on
    8-bit pictures). One chip without N is taken as N = 1.

    tau: the threshold on the SQUARED distance d = ||f(x1) - f(x2)||^2; by
    default the square of the file's Euclidean threshold (0.6), 0.36.
    models: None (dlib's file, found as `files` says), the .dat file, or a
    folder holding it. The file is hashed at once (the fingerprint) and the
    network is read on the first call.
    """

    embedding_size = EMBEDDING_SIZE
    image_size = CHIP_SIZE

    def __init__(self, models=None, tau=None):
        self.file = find_model_file("resnet", models)
        self.fingerprint = _file_fingerprint(self.file)
        self.tau = DEFAULT_TAU ** 2 if tau is None else _check_tau(tau)

    def __repr__(self):
        return f"DlibFaceEncoder({str(self.file)!r}, tau={self.tau:g})"

    def __call__(self, chips):
        return load_face_resnet(self.file).descriptor(as_chips(chips))

    def distance(self, first, second):
        """d(x1, x2) = ||f(x1) - f(x2)||^2 for matching rows of two chip batches."""
        return np.sum((self(first).astype(np.float64) - self(second)) ** 2, axis=1)


def as_chips(images):
    """(N, 150, 150, 3) uint8 chips from any layout and dtype DlibFaceEncoder accepts."""
    images = np.asarray(images)
    given, square = images.shape, (CHIP_SIZE, CHIP_SIZE)
    if images.ndim == 3:
        images = images[None]                                # one chip -> a batch of one
    if images.ndim == 4 and images.shape[1] == 3 and images.shape[2:] == square:
        images = images.transpose(0, 2, 3, 1)                # (N, 3, H, W) -> (N, H, W, 3)
    if images.ndim != 4 or images.shape[1:] != (*square, 3):
        raise ValueError(f"chips: expected (N, {CHIP_SIZE}, {CHIP_SIZE}, 3) or "
                         f"(N, 3, {CHIP_SIZE}, {CHIP_SIZE}) face chips, got shape {given}")
    if images.dtype == np.uint8:
        return np.ascontiguousarray(images)
    if not np.issubdtype(images.dtype, np.floating):
        raise TypeError(f"chips: expected uint8 or floats in [0, 1], got dtype {images.dtype}")
    if not np.all((images >= 0) & (images <= 1)):
        raise ValueError("chips: expected floats in [0, 1] (uint8 for 0..255), got values "
                         f"in [{images.min()}, {images.max()}]")
    return np.ascontiguousarray(np.rint(images * 255).astype(np.uint8))


@lru_cache(maxsize=4)
def _file_fingerprint(path):
    """"dlib-" and the first 16 hex digits of the SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(HASH_CHUNK), b""):
            digest.update(block)
    return f"dlib-{digest.hexdigest()[:16]}"


def _check_tau(tau):
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating)) or not tau >= 0:
        raise ValueError(f"tau: expected a number >= 0 (on squared distances), got {tau!r}")
    return float(tau)


# ------------------------------------------------------------------ pictures

BOX_COLOUR = (255, 208, 0)
POINT_COLOUR = (0, 230, 255)
TEXT_COLOUR = (0, 0, 0)


def draw_faces(image, boxes, landmarks=None, labels=None):
    """A copy of the (n_H, n_W, 3) uint8 photo with each box, its landmarks and its label.

    boxes: (left, top, right, bottom), right and bottom included; landmarks: one
    (P, 2) array of (x, y) per box, or None; labels: one string per box (drawn
    on a band above the box), or None. Lines grow with the photo's size.
    """
    picture = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    pen = max(1, round(min(picture.size) / 200))
    dot = pen // 2 + 1                                       # landmark radius
    font = default_font(max(10, 5 * pen + 6))
    draw = ImageDraw.Draw(picture)
    for index, box in enumerate(boxes):
        left, top, right, bottom = (int(v) for v in box)
        draw.rectangle((left, top, right, bottom), outline=BOX_COLOUR, width=pen)
        for x, y in ([] if landmarks is None else landmarks[index]):
            draw.ellipse((x - dot, y - dot, x + dot, y + dot), fill=POINT_COLOUR)
        if labels is not None:
            _label(draw, font, labels[index], left, top)
    return np.asarray(picture)


def _label(draw, font, text, left, top):
    """`text` in black on the box's colour, just above (left, top), or inside at the edge."""
    _, _, width, bottom = draw.textbbox((0, 0), text, font=font)
    height = bottom + 2
    y = top - height if top >= height else top
    draw.rectangle((left, y, left + width + 3, y + height), fill=BOX_COLOUR)
    draw.text((left + 2, y + 1), text, fill=TEXT_COLOUR, font=font)


