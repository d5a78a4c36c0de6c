"""scratchnet.face.dlib: dlib's pretrained face models, read from its files, run on scratchnet.

The pipeline of the course's face-recognition lecture, with dlib's trained
networks and no dlib at run time:

    boxes = detect(image)                      the CNN face detector (MMOD)
    points = landmarks(image, boxes[0])        5 or 68 landmarks (regression trees)
    face = chip(image, points)                 150 x 150 aligned face chip
    f = descriptor(face)                       128-d descriptor f(x)
    same = distance(f1, f2) < 0.6              the model's threshold tau

`image` is an (H, W, 3) uint8 RGB array, as Pillow gives it. The model files
are found as described in `files` (the `scratchnet[pretrained]` extra);
each is read once and kept.
"""

from .detector import detect
from .files import ModelFileNotFound, find_model_file
from .resnet import DEFAULT_TAU, descriptor, distance

__all__ = ["detect", "landmarks", "chip", "descriptor", "distance", "DEFAULT_TAU",
           "find_model_file", "ModelFileNotFound"]


def landmarks(image, box, points=68):
    """The face's landmarks in `box`: (points, 2) array of (x, y); see .landmarks."""
    from .landmarks import landmarks as find_landmarks  # imported on first use: a large module
    return find_landmarks(image, box, points=points)


def chip(image, landmarks, size=150, padding=0.25):
    """The aligned (size, size, 3) uint8 face chip for `landmarks`; see .chips."""
    from .chips import chip as extract_chip
    return extract_chip(image, landmarks, size=size, padding=padding)
