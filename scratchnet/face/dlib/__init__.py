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

from .chips import chip
from .detector import detect
from .files import ModelFileNotFound, find_model_file
from .landmarks import landmarks
from .pipeline import DlibFaceEncoder, faces_in_photo
from .resnet import DEFAULT_TAU, descriptor, distance

__all__ = ["detect", "landmarks", "chip", "descriptor", "distance", "DEFAULT_TAU",
           "find_model_file", "ModelFileNotFound", "DlibFaceEncoder", "faces_in_photo"]
