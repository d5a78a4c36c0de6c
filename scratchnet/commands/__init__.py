"""The larger subcommands of the `scratchnet` command, one module each.

Each module has `add_parser(commands)`, which registers its subcommand on the
argparse sub-parsers of scratchnet.cli, and the function that runs it.
"""

import argparse
import os
import sys

from .._memory import as_float, available_memory, in_gib


class InputError(Exception):
    """Bad input from the command line (a missing file, an unusable value).

    The subcommand prints it in one line and exits with status 2, as argparse
    does for a bad option.
    """


def guarded(action):
    """action(args), with what goes wrong said in one line that names the command as typed:
    "scratchnet face enroll: error: ...".

    An InputError (bad input) exits with status 2, as argparse does for a bad option. A
    failure of the machine during the work (a full disk, too little memory) exits with
    status 1: the input was fine, the run could not finish.
    """
    def run(args):
        try:
            return action(args)
        except InputError as error:
            return _failed(args, error, status=2)
        except OSError as error:
            return _failed(args, error.strerror or error, status=1)
        except MemoryError:
            return _failed(args, "not enough memory for this work; try smaller sizes",
                           status=1)
    return run


def _failed(args, message, status):
    words = ["scratchnet", args.command] + ([args.action] if getattr(args, "action", None)
                                            else [])
    print(f"{' '.join(words)}: error: {message}", file=sys.stderr)
    return status


# Argument types: argparse calls them on the text of an option, and a value
# they refuse becomes "argument --NAME: expected ..., got '...'", exit status 2,
# before any work starts.

def positive_int(text):
    return _number(int, text, lambda v: v > 0, "a positive integer")


def non_negative_int(text):
    return _number(int, text, lambda v: v >= 0, "an integer >= 0")


def int_at_least(minimum, why=""):
    """An argument type for integers >= minimum; `why` is said after the expectation."""
    def parse(text):
        return _number(int, text, lambda v: v >= minimum, f"an integer >= {minimum}{why}")
    return parse


def int_between(minimum, maximum, why=""):
    """An argument type for integers from minimum to maximum; `why` is said after the range."""
    def parse(text):
        return _number(int, text, lambda v: minimum <= v <= maximum,
                       f"an integer from {minimum} to {maximum}{why}")
    return parse


def positive_float(text):
    return _number(float, text, lambda v: 0 < v < float("inf"), "a positive number")


def non_negative_float(text):
    return _number(float, text, lambda v: 0 <= v < float("inf"), "a finite number >= 0")


def _number(kind, text, check, expected):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not check(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


# Output paths, checked before the work that would fill them.

PICTURE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def checked_picture_output(output, option="-o"):
    """`output` if a picture can be written there: a .png or .jpg name, not a folder, in a
    folder that exists or is made now; else an InputError naming `option`."""
    if os.path.splitext(output)[1].lower() not in PICTURE_EXTENSIONS:
        raise InputError(f"{option} {output}: the file name must end in .png, .jpg or .jpeg")
    if os.path.isdir(output):
        raise InputError(f"{option} {output}: is a folder; give a file name such as "
                         f"{output}/out.png")
    checked_folder(os.path.dirname(os.path.abspath(output)), option)
    return output


def check_file_output(path, option):
    """A file can be written at `path`: its folder exists, can be written in, and `path` is not
    a folder itself; else an InputError naming `option`."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{option}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise InputError(f"{option}: {path} is a folder; expected a file name")
    _check_writable(folder, option)


def checked_folder(folder, option):
    """`folder`, made now if missing; an InputError naming `option` if it cannot be, or
    cannot be written in."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise InputError(f"{option}: expected a folder, got the file {folder!r}")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise InputError(f"{option}: cannot create the folder {folder} ({error.strerror})") \
            from None
    _check_writable(folder, option)
    return folder


def _check_writable(folder, option):
    """Refuse, before any work, a folder whose files this user cannot write (a read-only
    disk, another user's folder); a write could still fail later, on a full disk."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{option}: cannot write in the folder {folder} (read-only, or "
                         f"not yours)")


# Work too large for the memory, refused before it starts (rather than a run the
# system kills, or one that swaps).

FLOAT32_BYTES = 4

# The memory of a pass through a ConvNet on one picture, from the numbers its layers make
# (`kept`, every layer's output down to the deepest one needed). With a backward pass the
# forward pass keeps them all for it, the gradients come back through the same layers (about
# twice the numbers in all), and about 400 numbers a pixel more hold the convolutions' tiles
# and the optimiser's state. Without one, each activation is freed once the next layer has
# it and no one needs it: the peak measured two-thirds of `kept`. Measured on VGG19 in
# style transfer and in `scratchnet visualize`: within 14% (docs/style-transfer.md), but
# nearly twice the peak for a maximisation that stops at conv1_1 (docs/visualize.md).
TAPE_COPIES = 2
EXTRA_NUMBERS_PER_PIXEL = 400
FORWARD_SHARE = 2 / 3
ESTIMATE_ERROR = 0.15          # so an estimate 14% short of the peak still refuses in time
PROCESS_BYTES = 512 << 20      # Python, NumPy, Numba, the weights: 330-370 MiB measured


def forward_bytes(kept):
    """About the peak bytes of a forward pass without a tape that makes `kept` numbers."""
    return FLOAT32_BYTES * FORWARD_SHARE * as_float(kept)


def backward_bytes(kept, pixels):
    """About the peak bytes of a forward and backward pass on a picture of `pixels` pixels
    whose forward pass makes `kept` numbers."""
    return FLOAT32_BYTES * (TAPE_COPIES * as_float(kept)
                            + EXTRA_NUMBERS_PER_PIXEL * as_float(pixels))


def check_memory(needed, option, what, lower):
    """An InputError naming `option` when `needed` bytes (for `what`, an estimate), with the
    estimate's error and the process's own memory added, exceed the memory the system has
    available now; nothing when that is unknown. `lower` names what to reduce."""
    available = available_memory()
    at_most = as_float(needed) * (1 + ESTIMATE_ERROR) + PROCESS_BYTES
    if available is not None and at_most > available:
        raise InputError(f"{option}: {what}: up to {in_gib(at_most)} of memory needed, "
                         f"{in_gib(available)} available; lower {lower}")
