"""`scratchnet task`: train the 1D or the 3D ConvNet on its generated data and report.

    scratchnet task heartbeats [--quick] [--seed S] [--out DIR]
    scratchnet task volumes    [--quick] [--seed S] [--out DIR]

prints a line per stage and epoch, then the result table (test accuracy,
training accuracy, the baselines, the confusion matrix), and writes to DIR
(default task-NAME): the pictures as task-NAME-PICTURE.png and the numbers
as task-NAME.json.
"""

import dataclasses
import json
import os

from ..io.images import save_image
from ..serialize import atomic_write
from ..tasks import TASKS
from . import checked_folder, guarded, non_negative_int


def add_parser(commands):
    parser = commands.add_parser(
        "task",
        help="train a 1D or 3D ConvNet on generated data and report its accuracy",
        description="heartbeats: ECG-like signals of five heart rhythms, a Conv1d network. "
        "volumes: CT-like volumes, healthy or with a nodule or a cyst, a Conv3d network. "
        "The data is generated from the seed; the accuracies are compared with simple "
        "baselines that need no training.",
    )
    parser.add_argument("name", choices=sorted(TASKS), help="the task to run")
    parser.add_argument("--quick", action="store_true",
                        help="less data and fewer epochs (on 2 cores: heartbeats about 5 s instead "
                        "of 20 s, volumes about 7 s instead of 35 s)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the data, the initial weights and the shuffles (default 0)")
    parser.add_argument("--out", metavar="DIR",
                        help="folder for the pictures and the numbers (default: task-NAME)")
    parser.set_defaults(run=guarded(_run))
    return parser


def _run(args):
    out = checked_folder(args.out or f"task-{args.name}", "--out")     # before the training
    task = TASKS[args.name]
    preset = task.QUICK if args.quick else task.FULL
    result = task.run(dataclasses.replace(preset, seed=args.seed),
                      progress=lambda line: print(f"{args.name}: {line}", flush=True))
    print(result.table())
    for name, picture in result.pictures.items():
        save_image(picture, os.path.join(out, f"task-{args.name}-{name}.png"))
    with atomic_write(os.path.join(out, f"task-{args.name}.json")) as file:
        file.write(json.dumps(result.numbers(), indent=1).encode())
    print(f"pictures and numbers written to {out}")
    return 0
