"""Test photos with faces (scratchnet/data/faces) and their transformed copies, with dlib's boxes.

The two photos ship with the project (public domain; see scratchnet/data/LICENSES.md).
The copies are made here, at test time, so that only the originals are stored:

    mirror   flipped left-right
    half     rescaled to 1/2 (Pillow, bilinear)
    double   rescaled to 2x: a large face, so the chip goes through a pyramid level
    triple   rescaled to 3x: two pyramid levels
    cut      cropped through the face: part of the box, landmarks and chip lie outside

Boxes come from dlib's HOG face detector on each image (the `cut` copy reuses the
original's boxes, moved), so these helpers need dlib; tests that use them skip without it.
"""

import functools
import os

import numpy as np
import pytest
from PIL import Image

FACES_DIR = os.path.join(os.path.dirname(__file__), os.pardir, "scratchnet", "data", "faces")
PHOTOS = ("astronaut.jpg", "grace_hopper.jpg")
COPIES = ("original", "mirror", "half", "double", "triple", "cut")


def load_photo(name):
    """(n_H, n_W, 3) uint8 RGB."""
    with Image.open(os.path.join(FACES_DIR, name)) as image:
        return np.asarray(image.convert("RGB"))


def rescale(image, factor):
    picture = Image.fromarray(image)
    size = (round(picture.width * factor), round(picture.height * factor))
    return np.asarray(picture.resize(size, Image.BILINEAR))


@functools.cache
def face_case(photo, copy):
    """(image, boxes) for one photo and one copy; boxes are dlib.rectangle objects."""
    dlib = pytest.importorskip("dlib")
    image = load_photo(photo)
    if copy == "cut":
        box = _detect(image)[0]
        x0, y0 = box.left() + box.width() // 3, box.top() + box.height() // 4
        return image[y0:, x0:].copy(), [dlib.translate_rect(box, dlib.point(-x0, -y0))]
    image = {
        "original": lambda: image,
        "mirror": lambda: image[:, ::-1].copy(),
        "half": lambda: rescale(image, 0.5),
        "double": lambda: rescale(image, 2),
        "triple": lambda: rescale(image, 3),
    }[copy]()
    return image, _detect(image)


def _detect(image):
    dlib = pytest.importorskip("dlib")
    upsample = 1 if max(image.shape) < 1000 else 0
    boxes = list(dlib.get_frontal_face_detector()(image, upsample))
    assert boxes, "dlib finds no face in a test photo"
    return boxes


def model_path(points):
    """The installed dlib landmark model's path, or skip."""
    from scratchnet.face.dlib.files import ModelFileNotFound, find_model_file

    try:
        return str(find_model_file(f"landmarks{points}"))
    except ModelFileNotFound:
        pytest.skip(f"dlib's {points}-point landmark model is not installed")


@functools.cache
def dlib_predictor(points):
    dlib = pytest.importorskip("dlib")
    return dlib.shape_predictor(model_path(points))


def dlib_parts(detection):
    """(P, 2) int64 of a dlib.full_object_detection's points."""
    return np.array([(p.x, p.y) for p in detection.parts()], dtype=np.int64)


def as_tuple(box):
    return (box.left(), box.top(), box.right(), box.bottom())
