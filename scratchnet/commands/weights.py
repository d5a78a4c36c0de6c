"""`scratchnet weights`: see where VGG19 weights are looked for, inspect and convert them.

    scratchnet weights info [PATH]      the places searched, or one file's contents
    scratchnet weights convert IN OUT   any supported file -> scratchnet's .npz

Exit status 2 when a file is missing or cannot be read as VGG19 weights.
"""

import os

from .. import io
from . import InputError, check_file_output, guarded


def add_parser(commands):
    parser = commands.add_parser(
        "weights",
        help="find, inspect and convert VGG19 weight files",
        description="VGG19 weights are read from the files people already have: "
        "MatConvNet's imagenet-vgg-verydeep-19.mat, torchvision's vgg19-dcbb9e9d.pth, "
        "Keras's vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, or scratchnet's .npz. "
        "The format is read from the file's content. Nothing is downloaded.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    info = actions.add_parser(
        "info", help="list the places searched, or describe one weights file",
        description="Without PATH: every place searched for weights when none is given, "
        "in order, and which file would be used, read and checked as style transfer reads "
        "it (exit status 2, saying why, when style transfer would stop on it). With PATH: "
        "its format, the input preprocessing it carries and the shape of each layer.")
    info.add_argument("path", nargs="?", metavar="PATH", help="a weights file")
    info.set_defaults(run=guarded(_info))
    convert = actions.add_parser(
        "convert", help="convert a weights file to scratchnet's .npz",
        description="Read IN (any supported format, checked against VGG19's shapes) and "
        "write its 16 conv layers and preprocessing to OUT as an .npz file, which "
        "loads quickly and without pickle.")
    convert.add_argument("input", metavar="IN", help="a .mat, .pth, .h5 or .npz weights file")
    convert.add_argument("output", metavar="OUT.npz", help="the .npz file to write")
    convert.set_defaults(run=guarded(_convert))
    return parser



def _info(args):
    if args.path is None:
        return _list_places()
    weights = _read(args.path, widths=None)  # any widths, so that a misfit can be shown
    print(f"{weights.source_path}: {io.detect_format(args.path)}")
    print(f"  preprocessing: {_describe(weights.preprocess)}")
    for name in io.VGG19_CONV_LAYERS:
        shape = weights.params[f"{name}.weight"].shape
        print(f"  {name:8s} weight {shape}  bias {weights.params[f'{name}.bias'].shape}")
    expected = io.expected_shapes()
    misfits = [name for name, shape in expected.items() if weights.params[name].shape != shape]
    if misfits:
        name = misfits[0]
        print(f"  not VGG19's real widths ({name} is {weights.params[name].shape}, VGG19's is "
              f"{expected[name]}): style transfer cannot use this file")
    return 0


def _list_places():
    """Print the places searched and the one style transfer would use; the same search and
    the same reading as style transfer's (io.load_vgg19_weights), so the two always agree."""
    print("VGG19 weights are looked for in these places, in order:")
    for path, where in io.weights_search_paths():
        print(f"  {_state(path)}  {path}  ({where})")
    try:
        chosen = io.find_vgg19_weights()
    except io.WeightsNotFound as error:
        if os.environ.get("SCRATCHNET_WEIGHTS"):  # named by the user: no fallback
            raise InputError(f"{error}: style transfer stops with this error until it "
                             "names a weights file or is unset") from None
        print("none found: style transfer falls back to random weights (a weaker result); "
              "put a file in one of these places, set $SCRATCHNET_WEIGHTS, or pass --weights PATH")
        return 0
    try:   # read and checked against VGG19's shapes, as style transfer reads it
        io.load_vgg19_weights(chosen)
    except (OSError, ValueError, io.ReaderNotInstalled) as error:
        raise InputError(f"{error}: style transfer would use this file, and stops with "
                         "this error") from None
    print(f"would use: {chosen} ({io.detect_format(chosen)})")
    return 0


def _state(path):
    """'found', 'missing' or 'folder' (a folder where a weights file is looked for)."""
    return ("found  " if os.path.isfile(path) else "folder " if os.path.isdir(path)
            else "missing")


def _convert(args):
    if not args.output.lower().endswith(".npz"):
        raise InputError(f"OUT must end in .npz, got {args.output!r}")
    check_file_output(args.output, "OUT")
    try:
        weights = io.convert_weights(args.input, args.output)
    except (OSError, ValueError, io.ReaderNotInstalled) as error:
        raise InputError(str(error)) from error
    print(f"{args.input} ({io.detect_format(args.input)}) -> {args.output}: "
          f"{len(io.VGG19_CONV_LAYERS)} conv layers; preprocessing {_describe(weights.preprocess)}")
    return 0


def _read(path, widths):
    try:
        return io.load_vgg19_weights(path, widths)
    except (OSError, ValueError, io.ReaderNotInstalled) as error:
        raise InputError(str(error)) from error


def _describe(preprocess):
    mean = ", ".join(f"{v:g}" for v in preprocess.mean)
    std = ", ".join(f"{v:g}" for v in preprocess.std)
    return (f"{preprocess.channel_order}, scale {preprocess.scale:g}, mean ({mean}), "
            f"std ({std})")
