"""`scratchnet tour`: run the course end to end and write the report.

    scratchnet tour [--out DIR] [--quick] [--only PART ...]

writes DIR/index.html (default tour/index.html) with the pictures in DIR/images.
Progress lines go to standard error; the last line of standard output says
where the page is. Exit status 0 when every part ran, 1 when one failed (the
page says which and why), 2 for bad options.
"""

import os
import sys
import time

from ..tour import PARTS, run_tour
from . import checked_folder, guarded

DEFAULT_FOLDER = "tour"


def add_parser(commands):
    parser = commands.add_parser(
        "tour",
        help="run the course end to end and write an HTML report with pictures",
        description="Run every part of the course on the data that ships with scratchnet: "
        "the gradient check, the 1D/2D/3D shape chains, face verification and one-shot "
        "recognition trained on synthetic persons, dlib's pretrained face networks (when "
        "installed), style transfer, the nine patches that excite units of layers 1-5, and "
        "1D and 3D ConvNets. Writes DIR/index.html, a single offline page. The full tour "
        "takes about 5 minutes on 2 cores, --quick 1 to 2 (measured: docs/tour.md).",
    )
    parser.add_argument("--out", default=DEFAULT_FOLDER, metavar="DIR",
                        help=f"folder for index.html and its pictures (default {DEFAULT_FOLDER}/)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes everywhere: 1 to 2 minutes instead of about 5")
    parser.add_argument("--only", action="append", metavar="PART", choices=list(PARTS),
                        help=f"run only this part (repeatable): {', '.join(PARTS)}")
    parser.set_defaults(run=guarded(run))
    return parser


def run(args):
    checked_folder(args.out, "--out")
    started = time.perf_counter()
    sections = run_tour(args.out, quick=args.quick, only=args.only, note=_progress)
    failed = [section.key for section in sections if section.error]
    minutes = (time.perf_counter() - started) / 60
    print(f"tour {'finished' if not failed else 'finished with failures: ' + ', '.join(failed)} "
          f"in {minutes:.1f} min; open {os.path.join(args.out, 'index.html')}")
    return 1 if failed else 0


def _progress(line):
    print(f"tour: {line}", file=sys.stderr, flush=True)
