"""Sample pictures that ship with scratchnet, so that style transfer runs with no download.

Four photographs to use as the content image C and four textures to use as the style
image S, each at most 256 pixels on its longest side. All are CC0 or public domain;
LICENSES.md in this folder gives each file's source and licence, and `SAMPLES` holds
the same facts for code. Two full-resolution photos with a face (faces/, `FACE_PHOTOS`,
`face_photo_path`) feed dlib's pretrained face pipeline.

>>> from scratchnet.data import SAMPLES, sample_path
>>> sorted(name for name, sample in SAMPLES.items() if sample.role == "style")
['brick', 'grass', 'gravel', 'hubble_deep_field']
>>> sample_path("chelsea").name
'chelsea.jpg'
"""

import pathlib
from typing import NamedTuple

FOLDER = pathlib.Path(__file__).resolve().parent
CONTENT, STYLE = "content", "style"


class Sample(NamedTuple):
    file: str       # file name in this folder
    role: str       # "content" (a photograph) or "style" (a texture)
    credit: str     # where the picture comes from, as its publisher states it
    licence: str


SAMPLES = {
    "astronaut": Sample(
        "astronaut.jpg", CONTENT,
        "Eileen Collins, NASA astronaut; NASA Great Images database, via scikit-image",
        "public domain"),
    "chelsea": Sample(
        "chelsea.jpg", CONTENT,
        "Chelsea the cat, photograph by Stefan van der Walt, via scikit-image",
        "CC0"),
    "coffee": Sample(
        "coffee.jpg", CONTENT,
        "Coffee cup, photograph by Rachel Michetti, courtesy of Pikolo Espresso Bar, "
        "via scikit-image",
        "CC0"),
    "rocket": Sample(
        "rocket.jpg", CONTENT,
        "Launch of DSCOVR on Falcon 9, photograph by SpaceX, via scikit-image",
        "public domain"),
    "brick": Sample(
        "brick.jpg", STYLE,
        "Brick wall, from CC0Textures (Bricks25), via scikit-image",
        "CC0"),
    "grass": Sample(
        "grass.jpg", STYLE,
        "Grass, by linolafett on DeviantArt (Grass 01), via scikit-image",
        "CC0"),
    "gravel": Sample(
        "gravel.jpg", STYLE,
        "Gravel, from CC0Textures (Gravel04), via scikit-image",
        "CC0"),
    "hubble_deep_field": Sample(
        "hubble_deep_field.jpg", STYLE,
        "Hubble eXtreme Deep Field, NASA, from HubbleSite (2012 release 37), via scikit-image",
        "public domain"),
}


FACE_PHOTOS = {             # full-resolution photos with one face each, in faces/
    "astronaut": Sample("faces/astronaut.jpg", "face", "Eileen Collins, NASA astronaut; NASA "
                        "Great Images database, via scikit-image", "public domain"),
    "grace_hopper": Sample("faces/grace_hopper.jpg", "face", "Rear Admiral Grace Hopper, "
                           "official US Navy portrait, via matplotlib", "public domain"),
}


def face_photo_path(name):
    """The path (a pathlib.Path) of the photo with a face called `name`, a key of FACE_PHOTOS."""
    if name not in FACE_PHOTOS:
        raise ValueError(f"name: expected one of {sorted(FACE_PHOTOS)}, got {name!r}")
    return FOLDER / FACE_PHOTOS[name].file


def sample_path(name):
    """The path (a pathlib.Path) of the sample picture called `name`, a key of SAMPLES."""
    if name not in SAMPLES:
        raise ValueError(f"name: expected one of {sorted(SAMPLES)}, got {name!r}")
    return FOLDER / SAMPLES[name].file
