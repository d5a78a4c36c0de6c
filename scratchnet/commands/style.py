"""`scratchnet style`: neural style transfer on your own pictures, or on the samples (--demo).

    scratchnet style CONTENT STYLE [STYLE ...] -o OUT.png [options]
    scratchnet style --demo [FOLDER]

The content image is resized so that its longest side is --size pixels; each
style image so that its longest side is --style-scale times that. The run
prints a progress line every --print-every iterations, writes OUT_0050.png
and so on every --save-every iterations, and at the end OUT.png and, when
intermediate images were kept, OUT_progression.png (a strip of them, each
shown 128 pixels high with its label under it).

Exit status: 0 when the picture is written; 2 for bad input (a missing or
unreadable image, weights that do not fit, a bad option value, an option the
run would ignore such as --lr with --optimizer lbfgs, --device cuda without a
usable GPU); 1 when J stopped being finite (the last good image is
still written); 130 after Ctrl-C (the current image is written first).
"""

import argparse
import os
import sys
import time
from typing import NamedTuple

import numpy as np

from ..data import sample_path
from ..device import DEVICES, to_device
from ..io import VGG19_CONV_LAYERS, ReaderNotInstalled
from ..io.images import image_shape, load_image, save_image
from ..models import vgg19
from ..models.vgg import activation_count, smallest_input
from ..style_transfer import INITS, OPTIMIZERS, Settings, StyleTransfer, progression_strip
from . import (
    InputError,
    backward_bytes,
    check_file_output,
    check_memory,
    checked_folder,
    checked_picture_output,
    forward_bytes,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)

DEMO_FOLDER = "style-demo"
# The demo: a modest size and iteration count, so it takes a few minutes on 2 cores.
DEMO_CONTENT, DEMO_STYLE = "chelsea", "gravel"
DEMO_OPTIONS = {
    "size": 160, "iterations": 100, "init": "content", "lr": 0.03, "style_weight": 400.0,
    "tv_weight": 0.0005, "preserve_colors": True, "save_every": 25, "print_every": 10,
}
DEFAULT_SIZE = 256
OPTION_OF_FIELD = {"content_normalization": "--content-cost"}   # where the names differ
# A typed option that a setting leaves unused: (its field, the setting's field, the value
# that leaves it unused, why). It is refused, naming both, as argparse refuses two options
# that exclude each other.
UNUSED_WHEN = [
    ("lr", "optimizer", "lbfgs", "L-BFGS chooses its own steps"),
    ("seed", "init", "content", "G starts as the content image, without noise"),
]
STRIP_HEIGHT = 128                 # pixels; smaller results are enlarged in the strip

EXAMPLES = """examples:
  scratchnet style photo.jpg painting.jpg -o out.png
  scratchnet style photo.jpg a.jpg b.jpg --style-blend 0.7,0.3 -o out.png --size 384
  scratchnet style photo.jpg texture.png -o out.png --optimizer lbfgs --iterations 50
  scratchnet style photo.jpg painting.jpg -o out.png --style-layers conv1_1:0.5,conv3_1:0.5
  scratchnet style photo.jpg painting.jpg -o out.png --device cuda   (on an NVIDIA GPU)
  scratchnet style --demo                      (the shipped samples, into style-demo/)

Weights: without --weights, VGG19 weights are looked for in the usual places
(`scratchnet weights info` lists them); with none there, fixed-seed random
weights are used and the picture is weaker. Nothing is downloaded.
Style and content images may differ in size: each Gram matrix is divided by
its own number of positions, so only the texture statistics are compared."""


def add_parser(commands):
    parser = commands.add_parser(
        "style",
        help="neural style transfer: the content of one picture in the style of others",
        description="Generate an image G with the content of CONTENT and the style of "
        "STYLE by gradient descent on J(G) = alpha J_content(C, G) + beta J_style(S, G), "
        "with VGG19's activations (the course's neural style transfer).",
        epilog=EXAMPLES,
        usage="scratchnet style CONTENT STYLE [STYLE ...] -o OUT.png [options]\n"
              "       scratchnet style --demo [FOLDER] [options]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("images", nargs="*", metavar="IMAGE",
                        help="the content image, then one or more style images")
    parser.add_argument("-o", "--output", metavar="OUT.png",
                        help="where to write the result (.png or .jpg; folders are created)")
    parser.add_argument("--demo", nargs="?", const=DEMO_FOLDER, metavar="FOLDER",
                        help=f"run on the shipped samples ({DEMO_CONTENT} in the style of "
                        f"{DEMO_STYLE}) and write the pictures into FOLDER "
                        f"(default {DEMO_FOLDER}/); other options still apply")
    _add_image_options(parser)
    _add_cost_options(parser)
    _add_optimisation_options(parser)
    parser.set_defaults(run=run)
    return parser


def _add_image_options(parser):
    group = parser.add_argument_group("images and network")
    group.add_argument("--size", type=positive_int, metavar="N",
                       help=f"longest side of the content image in pixels (default {DEFAULT_SIZE}; "
                       "the result has this size)")
    group.add_argument("--style-scale", type=positive_float, metavar="X",
                       help="longest side of each style image, as a multiple of the content's "
                       "(default 1)")
    group.add_argument("--weights", metavar="PATH",
                       help="VGG19 weights: a .mat, .pth, .h5 or .npz file, or 'random' "
                       "(default: search the usual places, else random weights)")
    group.add_argument("--pooling", choices=("max", "avg"),
                       help="pooling between VGG blocks: max (as trained, default) or avg "
                       "(as Gatys et al. recommend)")
    group.add_argument("--preserve-colors", action="store_true", default=None,
                       help="keep the content's colours: only the luminance comes from the "
                       "transfer (YIQ)")
    group.add_argument("--device", choices=DEVICES,
                       help="where the network and the image live: cpu (default) or cuda "
                       "(an NVIDIA GPU, with pip install 'scratchnet[gpu]')")


def _add_cost_options(parser):
    group = parser.add_argument_group("the cost J(G)")
    group.add_argument("--content-weight", type=non_negative_float, metavar="ALPHA",
                       help=f"alpha (default {Settings.content_weight:g})")
    group.add_argument("--style-weight", type=non_negative_float, metavar="BETA",
                       help=f"beta (default {Settings.style_weight:g})")
    group.add_argument("--tv-weight", type=non_negative_float, metavar="W",
                       help="weight of the total-variation term, which smooths G (default 0)")
    group.add_argument("--content-layer", metavar="LAYER",
                       help=f"layer of J_content (default {Settings.content_layer})")
    group.add_argument("--style-layers", type=_style_layers, metavar="L:W,...",
                       help="layers of J_style with their lambda, e.g. "
                       "conv1_1:0.2,conv2_1:0.2; a layer without :W gets 1/(number of layers) "
                       "(default conv1_1 ... conv5_1, 0.2 each)")
    group.add_argument("--style-blend", type=_weights_list, metavar="W,W,...",
                       help="one weight per style image, for blending several styles "
                       "(normalised to sum 1; default equal)")
    group.add_argument("--content-cost", choices=("assignment", "slide"),
                       dest="content_normalization",
                       help="J_content normalisation: the assignment's 1/(4 n_H n_W n_C) "
                       "(default) or the slide's 1/2")


def _add_optimisation_options(parser):
    group = parser.add_argument_group("optimisation")
    group.add_argument("--iterations", type=positive_int, metavar="N",
                       help=f"number of iterations (default {Settings.iterations})")
    group.add_argument("--init", choices=INITS,
                       help="initial G: noise (the slide), noisy content (the assignment, "
                       "default) or content")
    group.add_argument("--optimizer", choices=OPTIMIZERS,
                       help="adam (default) or lbfgs (scipy's L-BFGS-B)")
    group.add_argument("--lr", type=positive_float,
                       help=f"Adam's step size, in the units of pixels that span 0 to 1 (default "
                       f"{Settings.lr:g}; lbfgs takes no step size)")
    group.add_argument("--seed", type=non_negative_int,
                       help="seed of the initial noise (default 0; --init content has none)")
    group.add_argument("--save-every", type=non_negative_int, metavar="K",
                       help="write the image every K iterations, and a progression strip "
                       "at the end (default 0: only the result)")
    group.add_argument("--print-every", type=non_negative_int, metavar="K",
                       help=f"a progress line every K iterations (default "
                       f"{Settings.print_every}; 0: none)")


# ----------------------------------------------------------------------- running

def run(args):
    try:
        job = _prepare(args)
    except InputError as error:
        print(f"scratchnet style: error: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    result = job.problem.run(callback=job.save_intermediate)
    seconds = time.perf_counter() - started
    save_image(result.image, job.output)
    if job.progression is not None:
        save_image(progression_strip(job.extras["content"], job.extras["styles"], result,
                                     height=STRIP_HEIGHT), job.progression)
    return _report(job, result, seconds)


class _Job:
    """Everything a run needs, read and checked before the first iteration."""

    def __init__(self, problem, output, progression, extras, demo_folder):
        self.problem, self.output = problem, output
        self.progression, self.extras, self.demo_folder = progression, extras, demo_folder

    def save_intermediate(self, progress):
        every = self.problem.settings.save_every
        if every and progress.iteration % every == 0 \
                and progress.iteration != progress.iterations:
            save_image(progress.image, _intermediate_path(self.output, progress.iteration))


def _intermediate_path(output, iteration):
    """out.png, 25 -> out_0025.png: where --save-every writes iteration `iteration`."""
    stem, extension = os.path.splitext(output)
    return f"{stem}_{iteration:04d}{extension}"


def _prepare(args):
    """Read the images and the weights, check every option: a _Job, or an InputError."""
    demo = args.demo is not None
    content_path, style_paths = _image_paths(args, demo)
    options = _options(args, demo)
    _refuse_unused(args, options)
    if demo:
        if not args.demo:
            raise InputError("--demo: expected a folder name, got ''")
        output = os.path.join(checked_folder(args.demo, "--demo"), "result.png")
        check_file_output(output, "--demo")
    else:
        output = checked_picture_output(args.output)
    settings = _settings(options)
    _check_device_usable(settings.device)
    pictures = _planned_pictures(settings, options, content_path, style_paths)
    _check_sizes(pictures)
    if settings.device == "cpu":   # a GPU's memory is another matter
        _check_memory(pictures)
    content, *styles = [_load(picture.path, picture.size) for picture in pictures]
    model = _model(args.weights, options["pooling"])
    try:
        problem = StyleTransfer(model, content, styles, settings)
    except ValueError as error:
        raise InputError(_named_as_option(str(error))) from error
    if demo:
        progression = os.path.join(args.demo, "progression.png")
        demo_pictures = [(os.path.join(args.demo, "content.png"), content),
                         (os.path.join(args.demo, "style.png"), styles[0])]
    else:
        progression = (os.path.splitext(output)[0] + "_progression.png"
                       if settings.save_every else None)
        demo_pictures = []
    _check_side_outputs(output, settings, [progression] + [path for path, _ in demo_pictures],
                        "--demo" if demo else "--save-every")
    for path, image in demo_pictures:
        save_image(image, path)
    extras = {"content": content, "styles": styles}
    return _Job(problem, output, progression, extras, args.demo)


def _check_side_outputs(output, settings, others, option):
    """No folder stands where the run will write a picture besides `output` (checked by
    checked_picture_output): the --save-every iterations, and `others` (given by `option`;
    None entries skipped)."""
    every = settings.save_every
    for iteration in range(every, settings.iterations, every) if every else []:
        check_file_output(_intermediate_path(output, iteration), "--save-every")
    for path in others:
        if path is not None:
            check_file_output(path, option)


class _Picture(NamedTuple):
    """A picture the run will make, known before it is: G (trained, the content's size) or a
    style image (one forward pass); `option` (given as `setting`) sets its size."""
    path: str
    size: int           # the longest side asked for
    shape: tuple        # (n_H, n_W) it will have
    layers: list        # the VGG19 layers it goes through
    trained: bool
    option: str
    setting: str


def _planned_pictures(settings, options, content_path, style_paths):
    """G's picture, then one per style image, with the shapes read from the files' headers."""
    style_layers = [name for name, _ in settings.style_layers]
    content_shape = _shape(content_path, options["size"])
    try:
        style_size = max(1, round(options["style_scale"] * max(content_shape)))
    except OverflowError:          # an infinite side
        raise InputError(f"--style-scale {options['style_scale']:g}: too large") from None
    pictures = [_Picture(content_path, options["size"], content_shape,
                         [settings.content_layer] + style_layers, True,
                         "--size", str(options["size"]))]
    pictures += [_Picture(path, style_size, _shape(path, style_size), style_layers, False,
                          "--style-scale", f"{options['style_scale']:g}")
                 for path in style_paths]
    return pictures


def _check_sizes(pictures):
    """Each picture is large enough to reach the layers it goes through: else an InputError
    that names the option to raise."""
    for picture in pictures:
        smallest = smallest_input(picture.layers)
        if min(picture.shape) < smallest:
            deepest = max(picture.layers, key=VGG19_CONV_LAYERS.index)
            raise InputError(f"{picture.option} {picture.setting}: {_described(picture)}, "
                             f"but reaching {deepest} takes at least {smallest} on each side; "
                             f"raise {picture.option}")


def _check_memory(pictures):
    """Each picture's work fits in the memory available now: else an InputError that names
    the option to lower."""
    for picture in pictures:
        check_memory(_bytes_needed(picture), f"{picture.option} {picture.setting}",
                     _described(picture), picture.option)


def _bytes_needed(picture):
    """About how many bytes working on `picture` takes at its peak: G a forward and a
    backward pass, a style image a forward pass."""
    kept = activation_count(picture.layers, *picture.shape)
    if not picture.trained:
        return forward_bytes(kept)
    return backward_bytes(kept, picture.shape[0] * picture.shape[1])


def _described(picture):
    return (f"{os.path.basename(picture.path)} becomes {picture.shape[1]}x{picture.shape[0]} "
            "pixels")


def _image_paths(args, demo):
    if demo:
        if args.images or args.output:
            raise InputError("--demo uses the shipped samples: give no images and no -o "
                             "(name the folder with --demo FOLDER)")
        return sample_path(DEMO_CONTENT), [sample_path(DEMO_STYLE)]
    if len(args.images) < 2:
        raise InputError("expected a CONTENT image and at least one STYLE image "
                         "(or --demo); see scratchnet style --help")
    if not args.output:
        raise InputError("-o OUT.png is required: where to write the result")
    return args.images[0], args.images[1:]


def _options(args, demo):
    """Each tunable option: as given, else the demo's value (with --demo), else the default."""
    defaults = {"size": DEFAULT_SIZE, "style_scale": 1.0, "pooling": "max"}
    names = ["size", "style_scale", "pooling", "preserve_colors", "content_weight",
             "style_weight", "tv_weight", "content_layer", "style_layers", "style_blend",
             "content_normalization", "iterations", "init", "optimizer", "lr", "seed",
             "save_every", "print_every", "device"]
    options = {}
    for name in names:
        given = getattr(args, name)
        if given is not None:
            options[name] = given
        elif demo and name in DEMO_OPTIONS:
            options[name] = DEMO_OPTIONS[name]
        elif name in defaults:
            options[name] = defaults[name]
    return options


def _refuse_unused(args, options):
    """An InputError when an option the user typed would be ignored (UNUSED_WHEN): each of
    these options defaults to None, so --demo's own values are never refused."""
    for field, setting, value, why in UNUSED_WHEN:
        if getattr(args, field) is not None and options.get(setting) == value:
            source = "" if getattr(args, setting) is not None else " (--demo's choice)"
            raise InputError(f"{_option(field)}: not used with {_option(setting)} {value}"
                             f"{source}: {why}; leave out {_option(field)}")


def _settings(options):
    fields = {name: value for name, value in options.items()
              if name in Settings.__dataclass_fields__}
    try:
        settings = Settings(**fields)
    except ValueError as error:
        raise InputError(_named_as_option(str(error))) from error
    for name in [settings.content_layer] + [name for name, _ in settings.style_layers]:
        if name not in VGG19_CONV_LAYERS:  # checked now, before the weights are read
            raise InputError(f"layer {name!r} is not a VGG19 layer; known: "
                             f"{', '.join(VGG19_CONV_LAYERS)}")
    return settings


def _named_as_option(message):
    """Settings' "style_blend: expected ..." as the command line's "--style-blend: expected ..."."""
    field, colon, rest = message.partition(":")
    if not colon or field not in Settings.__dataclass_fields__:
        return message
    return f"{_option(field)}:{rest}"


def _option(field):
    """The command-line option that sets the Settings field `field`: lr -> --lr."""
    return OPTION_OF_FIELD.get(field, "--" + field.replace("_", "-"))


def _check_device_usable(device):
    """Put a number on `device` now, before the images and weights are read: a missing
    GPU or numba-cuda is an InputError that says what is needed."""
    try:
        to_device(np.zeros(1, np.float32), device)
    except RuntimeError as error:
        raise InputError(f"--device {device}: {error}") from None


def _shape(path, size):
    """(n_H, n_W) that _load(path, size) will return, from the file's header."""
    return _reading(path, lambda: image_shape(path, size))


def _load(path, size):
    return _reading(path, lambda: load_image(path, size=size, note=_note))


def _reading(path, read):
    """read(), with a missing or unreadable file at `path` as an InputError naming it."""
    try:
        return read()
    except OverflowError:   # a size beyond floating point: --size or --style-scale
        raise InputError(f"{path}: cannot be made that large (--size or --style-scale)") from None
    except (FileNotFoundError, ValueError) as error:
        raise InputError(str(error)) from error
    except OSError as error:  # e.g. a file that cannot be read
        raise InputError(f"{path}: cannot be read ({error.strerror or error})") from error


def _model(weights, pooling):
    try:
        return vgg19(weights=weights, pooling=pooling, note=_note)
    except (OSError, ValueError, ReaderNotInstalled) as error:
        raise InputError(f"weights: {error}") from error


def _report(job, result, seconds):
    """Say what was written and how the run ended; return the exit status."""
    written = [job.output] + ([job.progression] if job.progression else [])
    if job.demo_folder is not None:
        written = [os.path.join(job.demo_folder, name) for name in
                   ("content.png", "style.png", "result.png", "progression.png")]
    if result.interrupted:
        print(f"interrupted after iteration {result.iterations_done}: saved the current "
              f"image to {job.output}", file=sys.stderr)
        return 130
    if result.stopped is not None:
        print(f"stopped early: {result.stopped}", file=sys.stderr)
    print(f"{_timing(result.iterations_done, seconds)}; wrote {', '.join(written)}")
    if result.stopped is not None and "non-finite" in result.stopped:
        return 1
    return 0


def _timing(iterations, seconds):
    """'3 iterations in 1.2 s (0.40 s per iteration)'; with none done, the result is G0."""
    if iterations == 0:
        return f"no iteration completed in {seconds:.1f} s (the result is the initial image)"
    plural = "s" if iterations > 1 else ""
    return (f"{iterations} iteration{plural} in {seconds:.1f} s "
            f"({seconds / iterations:.2f} s per iteration)")


def _note(line):
    print(line, file=sys.stderr)


# ------------------------------------------------------------- option parsing

def _weights_list(text):
    """'0.7,0.3' -> (0.7, 0.3)."""
    return tuple(non_negative_float(part) for part in text.split(","))


def _style_layers(text):
    """'conv1_1:0.2,conv2_1' -> (('conv1_1', 0.2), ('conv2_1', 1/2))."""
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        raise argparse.ArgumentTypeError(f"expected LAYER[:WEIGHT],..., got {text!r}")
    pairs = []
    for entry in entries:
        name, _, weight = entry.partition(":")
        pairs.append((name, non_negative_float(weight) if weight else 1.0 / len(entries)))
    return tuple(pairs)
