"""The `scratchnet` command.

    scratchnet check [--seed S] [--per-op K] [--op NAME ...]
        gradcheck every differentiable op on random configurations
    scratchnet face train | verify | calibrate | evaluate | enroll | identify | list | remove
                    | detect
        face verification and recognition (scratchnet/commands/face.py)
    scratchnet style CONTENT STYLE [STYLE ...] -o OUT.png [options] | --demo [FOLDER]
        neural style transfer (scratchnet/commands/style.py)
    scratchnet visualize [--model vgg19|face|dlib|PATH] [--layers L ...] -o OUT.png | --summary
        the nine patches that excite units most, activation maximisation, model summaries
        (scratchnet/commands/visualize.py)
    scratchnet weights info [PATH] | convert IN OUT.npz
        find, inspect and convert VGG19 weight files (scratchnet/commands/weights.py)
    scratchnet task heartbeats | volumes [--quick] [--seed S] [--out DIR]
        a 1D and a 3D ConvNet trained on generated data (scratchnet/commands/tasks.py)
    scratchnet tour [--out DIR] [--quick] [--only PART ...]
        the course end to end, written up as DIR/index.html (scratchnet/commands/tour.py)

Each subcommand has --help. The command first asks glibc's malloc to keep the
memory a training step frees for the next step (scratchnet/_memory.py).
"""

import argparse
import sys
import time

from ._memory import keep_freed_memory
from .commands import InputError, guarded, non_negative_int, positive_int
from .commands import face as face_command
from .commands import style as style_command
from .commands import tasks as tasks_command
from .commands import visualize as visualize_command
from .commands import tour as tour_command
from .commands import weights as weights_command


def _check(args):
    from . import check

    unknown = set(args.op or ()) - set(check.CASES)
    if unknown:
        raise InputError(f"--op: unknown op(s) {sorted(unknown)}; known: {', '.join(check.CASES)}")
    started = time.perf_counter()
    passed = check.run(seed=args.seed, per_op=args.per_op, only=args.op)
    seconds = time.perf_counter() - started
    print(f"\n{'all ops pass' if passed else 'SOME OPS FAIL'} "
          f"(seed {args.seed}, {args.per_op} configurations per op, {seconds:.1f} s)")
    return 0 if passed else 1


def build_parser():
    parser = argparse.ArgumentParser(
        prog="scratchnet",
        description="A from-scratch deep-learning engine in NumPy and Numba.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    check = commands.add_parser(
        "check",
        help="gradient-check every differentiable op",
        description="Run gradcheck (central differences in float64) over every "
        "differentiable op on random configurations drawn from a seed, and print "
        "a table: op, configuration, max error, verdict. Exit status 1 if any fails.",
    )
    check.add_argument("--seed", type=non_negative_int, default=0,
                       help="seed of the configurations (default 0)")
    check.add_argument("--per-op", type=positive_int, default=3, metavar="K",
                       help="configurations per op (default 3)")
    check.add_argument("--op", action="append", metavar="NAME",
                       help="check only this op (repeatable)")
    check.set_defaults(run=guarded(_check))
    face_command.add_parser(commands)
    style_command.add_parser(commands)
    visualize_command.add_parser(commands)
    weights_command.add_parser(commands)
    tasks_command.add_parser(commands)
    tour_command.add_parser(commands)
    return parser


def main(argv=None):
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:      # said by the subcommand, as argparse says it for the top-level command
        words = ["scratchnet", args.command] + ([args.action] if getattr(args, "action", None)
                                                else [])
        parser.exit(2, f"{' '.join(words)}: error: unrecognized arguments: "
                       f"{' '.join(unknown)}\n")
    keep_freed_memory()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
