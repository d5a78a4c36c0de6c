"""`scratchnet visualize`: what the units of a ConvNet respond to, as a picture.

    scratchnet visualize [--model vgg19|face|dlib|PATH] [--weights W] -o OUT.png
                         [--layers L ...] [--units K | --unit U ...]
                         [--images DIR | --demo] [--count N] [--size S] [--maximize]
    scratchnet visualize --model M --summary

writes the nine-patch figure (one row per layer, K units per row, the nine
patches of the images that excite each unit most), or with --maximize the
activation-maximisation images of the same units. Progress goes to stderr.

Exit status: 0 when the picture is written; 2 for bad input (an unknown
layer or unit, a missing model file or image folder, an option the command
would ignore such as -o with --summary).
"""

import argparse
import math
import os
import sys
import time

import numpy as np

from .. import visualize
from ..visualize.layers import check_layer
from ..face.datasets import IMAGE_EXTENSIONS
from ..face.dlib.files import ModelFileNotFound
from ..face.dlib.resnet import CHIP_SIZE, load_face_resnet
from ..face.encoder import load_encoder
from ..face.synthetic import MIN_SIZE as MIN_FACE_SIZE
from ..face.synthetic import synthetic_faces
from ..io import ReaderNotInstalled
from ..io.images import load_image, resize_image, save_image
from ..models import FaceEncoder, vgg19
from . import (
    FLOAT32_BYTES,
    InputError,
    as_float,
    backward_bytes,
    check_memory,
    checked_picture_output,
    forward_bytes,
    guarded,
    non_negative_int,
    positive_int,
)

DEFAULT_SIZE = {"vgg19": 128, "dlib": CHIP_SIZE}    # the face encoder: its image_size
MAXIMIZE_SIZE = 96
PROBE_SIZE = 128        # the largest picture the layers are measured on, scaled up to --size
SCAN_BATCH = 8          # pictures per forward pass of the scan
FACES_PER_PERSON = 4
DEMO_COUNT = 16         # demo pictures scanned when --count is not given
DEFAULT_UNITS = 4       # --units
DEFAULT_STEPS = 60      # --steps
# What each mode leaves unused: (the mode's option, the options it ignores, what it does).
# Typed together, they are refused naming both, as argparse refuses exclusive options.
UNUSED_WITH = [
    ("--summary", ("-o", "--layers", "--units", "--unit", "--images", "--demo", "--count",
                   "--any-position", "--maximize", "--steps"), "prints the model and stops"),
    ("--maximize", ("--images", "--demo", "--count", "--any-position"),
     "starts from noise, not from pictures"),
    ("--unit", ("--units",), "names the units to show"),
]

EXAMPLES = """examples:
  scratchnet visualize -o vgg19.png                     (VGG19, the shipped photos)
  scratchnet visualize --layers conv3_1 --unit 5 --unit 9 -o conv3_1.png
  scratchnet visualize --images my_photos/ --count 64 -o patches.png
  scratchnet visualize --model face.npz -o face.png     (an encoder from `scratchnet face train`)
  scratchnet visualize --model dlib -o dlib.png         (dlib's face ResNet, scratchnet[pretrained])
  scratchnet visualize --layers conv2_1 conv4_1 --maximize -o maximized.png
  scratchnet visualize --model vgg19 --summary          (layers, shapes, receptive fields)

Models: vgg19 (weights as for `scratchnet style`: --weights, or the usual places,
else random weights), face (a face encoder file given with --weights, else an
untrained one), dlib (dlib's face ResNet file, found as `scratchnet face` finds it,
or given with --weights), or the path of a face encoder file.
Default layers: the first layer at each new resolution (VGG19: conv1_1 ... conv5_1)."""


def add_parser(commands):
    parser = commands.add_parser(
        "visualize",
        help="the nine patches that excite units of a ConvNet most",
        description="Scan a set of images through a ConvNet and show, for a few units "
        "(channels) of each layer, the nine input patches that excite it most: each patch is "
        "the unit's exact receptive field (stripes where it runs off the picture). With "
        "--maximize, draw the image that excites each unit by gradient ascent instead.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default="vgg19", metavar="vgg19|face|dlib|PATH",
                        help="the network (default vgg19)")
    parser.add_argument("--weights", metavar="W", help="its weights file (see below)")
    parser.add_argument("-o", "--output", metavar="OUT.png", help="the picture to write")
    parser.add_argument("--layers", nargs="+", metavar="L",
                        help="layer names (default: one per resolution, up to five)")
    parser.add_argument("--units", type=positive_int, metavar="K",
                        help=f"units per layer, the K most excited (default {DEFAULT_UNITS})")
    parser.add_argument("--unit", type=non_negative_int, action="append", metavar="U",
                        help="show channel U of every layer (repeatable; replaces --units)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--images", metavar="DIR",
                        help="scan the pictures in DIR (centre squares of --size pixels)")
    source.add_argument("--demo", action="store_true",
                        help="scan the shipped photos (synthetic faces for face models); "
                        "the default")
    parser.add_argument("--count", type=positive_int, metavar="N",
                        help=f"how many images: demo images (default {DEMO_COUNT}), or the "
                        f"first N of --images DIR in name order (default: all of them)")
    parser.add_argument("--size", type=positive_int, metavar="S",
                        help=f"image side in pixels (default {DEFAULT_SIZE['vgg19']} for vgg19, "
                        f"{DEFAULT_SIZE['dlib']} for dlib, its input size for a face encoder; "
                        f"{MAXIMIZE_SIZE} with --maximize, whatever the model)")
    parser.add_argument("--any-position", action="store_true",
                        help="allow several patches from one image (default: one per image)")
    parser.add_argument("--maximize", action="store_true",
                        help="activation maximisation instead of nine patches")
    parser.add_argument("--steps", type=positive_int, metavar="N",
                        help=f"gradient-ascent steps with --maximize (default {DEFAULT_STEPS})")
    parser.add_argument("--summary", action="store_true",
                        help="print the model's summary (shapes, parameters, receptive fields)"
                        " and stop")
    parser.set_defaults(run=guarded(_visualize))
    return parser



def _visualize(args):
    _refuse_unused(args)
    args = _with_defaults(args)
    name, model = _load_model(args.model, args.weights)
    size = args.size or DEFAULT_SIZE.get(name) or model.image_size
    if args.maximize and not args.size:
        size = MAXIMIZE_SIZE
    if args.summary:
        return _summary(model, size)
    if not args.output:
        raise InputError("-o OUT.png is needed (or --summary)")
    checked_picture_output(args.output)                      # before a long scan
    layers = args.layers or visualize.default_layers(model)
    started = time.perf_counter()
    try:
        for layer in layers:   # before a long scan
            try:
                check_layer(model, layer)
            except ValueError as error:
                raise InputError(f"--layers: {str(error).partition(': ')[2]}") from None
        channels, made = _measure(model, layers, size)
        if args.maximize:
            _check_fits(backward_bytes(made, size * size), size, "gradient ascent on one picture")
            picture = _maximized(model, layers, _units(args, channels), args, size)
        else:
            paths = None if args.images is None else _picture_paths(args.images, args.count)
            count = len(paths) if paths is not None else args.count or DEMO_COUNT
            # the pictures, and the 1-byte answers of the scan's check that each is finite
            pictures_bytes = (FLOAT32_BYTES + 1) * 3 * count * as_float(size) ** 2
            _check_fits(min(SCAN_BATCH, count) * forward_bytes(made) + pictures_bytes, size,
                        f"{count} picture{'s' if count > 1 else ''}")
            images = _images(args, name, size, paths)
            picture = _patches(model, layers, images, _units(args, channels), args)
        save_image(picture, args.output)
    except ValueError as error:  # an unknown layer or unit, an unusable picture
        raise InputError(str(error)) from None
    print(f"wrote {args.output} ({', '.join(layers)}; {time.perf_counter() - started:.1f} s)")
    return 0


def _refuse_unused(args):
    """An InputError naming both options when one typed would be ignored (UNUSED_WITH, and
    --steps without --maximize), before any work."""
    for mode, ignored, what in UNUSED_WITH:
        for option in ignored:
            if _typed(args, mode) and _typed(args, option):
                raise InputError(f"{option}: not used with {mode}, which {what}; "
                                 "leave one of them out")
    if _typed(args, "--steps") and not args.maximize:
        raise InputError("--steps: used only with --maximize (its gradient-ascent steps); "
                         "add --maximize or leave out --steps")


def _typed(args, option):
    """Whether `option` was on the command line: each of these defaults to None or False."""
    # -o -> output, --any-position -> any_position
    dest = "output" if option == "-o" else option[2:].replace("-", "_")
    return getattr(args, dest) not in (None, False)


def _with_defaults(args):
    """A copy of args with --units and --steps set when not typed (they are None until
    _refuse_unused has seen what was typed)."""
    filled = argparse.Namespace(**vars(args))
    filled.units = args.units or DEFAULT_UNITS
    filled.steps = args.steps or DEFAULT_STEPS
    return filled


def _summary(model, size):
    fixed = getattr(model, "image_size", None)
    if fixed is not None and size != fixed:   # its flatten feeds a layer of a fixed width
        raise InputError(f"--size {size}: this face encoder takes pictures of {fixed}x{fixed} "
                         f"pixels; give --size {fixed} or leave it out")
    _, made = _measure(model, [layer for layer, _ in visualize.named_layers(model)], size)
    _check_fits(forward_bytes(made), size, "one picture")
    model.summary((3, size, size))
    return 0


def _measure(model, layers, size):
    """(each layer's channels, the numbers the chain makes down to the deepest of `layers`
    on a size x size picture). The layers are measured on a picture of at most PROBE_SIZE
    pixels (a ConvNet's activations grow with the area); a picture too small for them is an
    InputError naming --size."""
    probe = min(size, PROBE_SIZE)
    try:
        shapes = visualize.layer_shapes(model, layers, probe)
    except ValueError as error:  # a layer's input came too small
        chain = [name for name, _ in visualize.named_layers(model)]
        raise InputError(f"--size {size}: too small a picture to reach "
                         f"{max(layers, key=chain.index)} ({error})") from None
    made = sum(math.prod(shape) for shape in shapes.values()) * size * size // (probe * probe)
    return {layer: shapes[layer][1] for layer in layers}, made


def _check_fits(needed, size, what):
    """An InputError naming --size when `needed` bytes exceed the memory available."""
    check_memory(needed, f"--size {size}", f"{what} of {size}x{size}", "--size")


def _units(args, channels):
    """Dict from layer to the channels to show: --unit's for every layer (each must exist),
    or None per layer for the --units strongest (the first --units with --maximize), cut to
    the layer's channels with a note."""
    if args.unit:
        for layer, count in channels.items():
            missing = [u for u in args.unit if u >= count]
            if missing:
                raise InputError(f"--unit {missing[0]}: layer {layer} has {count} units "
                                 f"(0 ... {count - 1})")
        return {layer: list(args.unit) for layer in channels}
    fewer = {layer: count for layer, count in channels.items() if count < args.units}
    if fewer:
        _note(f"--units {args.units}: showing all the units of "
              + ", ".join(f"{layer} ({count})" for layer, count in fewer.items()))
    return {layer: None if not args.maximize else list(range(min(args.units, count)))
            for layer, count in channels.items()}


def _patches(model, layers, images, units, args):
    _note(f"scanning {len(images)} images of {images.shape[2]}x{images.shape[3]} through "
          f"{', '.join(layers)}")
    chosen = {layer: channels for layer, channels in units.items() if channels is not None}
    return visualize.layer_figure(
        model, layers, images, units_per_layer=args.units, units=chosen,
        distinct_images=not args.any_position, batch_size=SCAN_BATCH,
        progress=_every_tenth)


def _every_tenth(done, total):
    """A progress line when the scan passes each tenth of the pictures, and at the end."""
    if done == total or done * 10 // total != (done - SCAN_BATCH) * 10 // total:
        _note(f"  {done}/{total} images")


def _maximized(model, layers, units, args, size):
    return visualize.maximized_figure(
        model, layers, units, image_size=size, steps=args.steps,
        progress=lambda layer, unit: _note(f"  maximising {layer} unit {unit}"))


# ---------------------------------------------------------------- models and images

def _load_model(model, weights):
    """(kind, network): kind is "vgg19", "face" or "dlib"."""
    try:
        if model == "vgg19":
            return "vgg19", vgg19(weights=weights, note=_note)
        if model == "dlib":
            return "dlib", load_face_resnet(weights)
        if model == "face":
            if weights is None:
                _note("no --weights: an untrained face encoder (random weights, seed 0)")
                return "face", FaceEncoder(seed=0).eval()
            return "face", load_encoder(weights).network
        if os.path.exists(model):
            return "face", load_encoder(model).network
    except (ModelFileNotFound, OSError, ValueError, ReaderNotInstalled) as error:
        raise InputError(str(error)) from None
    raise InputError(f"--model: expected vgg19, face, dlib or the path of a face encoder file, "
                     f"got {model!r} (no file there)")


def _images(args, kind, size, paths):
    if paths is not None:
        return _folder_images(paths, size)
    count = args.count or DEMO_COUNT
    if kind == "vgg19":
        return visualize.photo_crops(count, size)
    persons = -(-count // FACES_PER_PERSON)
    if size < MIN_FACE_SIZE:
        raise InputError(f"--size {size}: a synthetic face needs at least {MIN_FACE_SIZE} "
                         "pixels on a side")
    faces, _ = synthetic_faces(persons, FACES_PER_PERSON, seed=0, size=size)
    return faces[:count]


def _picture_paths(folder, count=None):
    """The pictures in `folder` (by their extension), sorted, the first `count` of them if
    given; an InputError if none."""
    if not os.path.isdir(folder):
        raise InputError(f"--images: {folder} is not a folder")
    paths = sorted(entry.path for entry in os.scandir(folder)
                   if entry.is_file() and os.path.splitext(entry.name)[1].lower()
                   in IMAGE_EXTENSIONS)
    if not paths:
        raise InputError(f"--images: no pictures ({' '.join(IMAGE_EXTENSIONS)}) in {folder}")
    if count is not None and count < len(paths):
        _note(f"--count {count}: the first {count} of the {len(paths)} pictures in {folder}")
    return paths[:count]


def _folder_images(paths, size):
    """The centre square of each picture, resized to size x size."""
    squares = []
    for path in paths:
        try:
            picture = load_image(path, note=None)
        except ValueError as error:
            raise InputError(str(error)) from None
        side = min(picture.shape[1:])
        top, left = (picture.shape[1] - side) // 2, (picture.shape[2] - side) // 2
        squares.append(resize_image(picture[:, top:top + side, left:left + side], (size, size)))
    return np.stack(squares)


def _note(line):
    print(line, file=sys.stderr, flush=True)
