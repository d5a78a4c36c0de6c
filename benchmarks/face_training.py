"""The face issue's table: held-out verification and one-shot recognition, with baselines.

    python -m benchmarks.face_training [--runs default,semi_hard,batch_hard,random,sixty_pictures]
                                       [--steps N] [--out DIR] [--json]

For each run: `scratchnet face train` on the synthetic faces (1,000 persons
x 10 pictures, seed 0; validation: 1,000 persons of seed 1), in a process of
its own as a person would run it (timed from start to exit), then `scratchnet
face evaluate` on persons of seed 2, never seen in training.
The runs: the default (semi-hard mining with the cross-batch memory), each
mining strategy inside the batch without the memory (`--memory-batches 0`),
so that the strategies are compared alone, and `sixty_pictures`, the
default with 60 pictures of each training person, 3,300 steps and a
validation every 1,000 steps (the recognition targets within 15 minutes).
Beside them: raw pixels as the encoding and an untrained encoder (random weights,
tau fitted on the validation persons). Prints a markdown table (and, with
--json, one JSON object); the models are kept in --out. The last columns
are the recognition figures averaged over six enrolment draws, the
best-threshold bound and the best common threshold's bound
(scratchnet.face.evaluation.recognition_over_draws).
"""

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import time

import numpy as np

from scratchnet.cli import main as scratchnet
from scratchnet.commands.face import (
    EVALUATION_PERSONS,
    EVALUATION_SEED,
    PICTURES_PER_HELD_OUT_PERSON,
    VALIDATION_PERSONS,
    VALIDATION_SEED,
)
from scratchnet.face import Encoder, TrainingSettings, fit_tau, sample_pairs, synthetic_faces
from scratchnet.face import evaluation
from scratchnet.models.face_encoder import FaceEncoder

COLUMNS = ("verification_accuracy", "auc", "tar_at_far_1e-3", "top1", "rejection", "top1_nearest",
           "classifier_abs_accuracy", "classifier_chi2_accuracy", "top1_over_draws",
           "rejection_over_draws", "top1_nearest_over_draws", "best_threshold_bound",
           "best_common_bound")


RUNS = {"default": [],
        "semi_hard": ["--memory-batches", "0"],
        "batch_hard": ["--strategy", "batch_hard", "--memory-batches", "0"],
        "random": ["--strategy", "random", "--memory-batches", "0"],
        # the run that meets the recognition targets: 60 pictures of each training person, its
        # own number of steps, and fewer validations to stay within 15 minutes (docs/face.md)
        "sixty_pictures": ["--per-identity", "60", "--validate-every", "1000", "--steps", "3300"]}


def train_and_evaluate(run, steps, folder):
    model = os.path.join(folder, f"face-{run}.npz")
    started = time.perf_counter()
    # a process of its own, as a person runs it (in one process, later trainings ran up to 7%
    # slower than the first; the machine drifts too, so the cause is not certain)
    status = subprocess.run([sys.executable, "-m", "scratchnet", "face", "train", "--out", model,
                             "--steps", str(steps), *RUNS[run], "--print-every", "100"]
                            ).returncode      # a run's own --steps comes last and wins
    if status:
        raise SystemExit(f"training the {run} run failed (exit status {status})")
    minutes = (time.perf_counter() - started) / 60
    report = _evaluate_json(model)
    report["training_minutes"] = round(minutes, 2)
    return report


def _evaluate_json(model):
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = scratchnet(["face", "evaluate", model, "--seed", str(EVALUATION_SEED), "--json"])
    if status:
        raise SystemExit(f"evaluating {model} failed (exit status {status})")
    return json.loads(output.getvalue())


def untrained_encoder_report():
    """An encoder with random weights, tau and tau_identify fitted on the validation persons."""
    defaults = TrainingSettings()
    network = FaceEncoder(width=defaults.width, convs_per_block=defaults.convs_per_block,
                          neck=defaults.neck, seed=0)
    validation_images, validation_labels = synthetic_faces(
        VALIDATION_PERSONS, PICTURES_PER_HELD_OUT_PERSON, seed=VALIDATION_SEED)
    encoder = Encoder(network, flip_average=defaults.flip_average)
    first, second, same = sample_pairs(validation_labels, defaults.validation_pairs, seed=0)
    embeddings = encoder(validation_images)
    encoder.tau = fit_tau(evaluation.squared_distances(embeddings, first, second), same)
    encoder.info["tau_identify"] = evaluation.fit_identification_tau(embeddings,
                                                                     validation_labels)
    images, labels = synthetic_faces(EVALUATION_PERSONS, PICTURES_PER_HELD_OUT_PERSON,
                                     seed=EVALUATION_SEED)
    return evaluation.evaluate(encoder, images, labels, seed=EVALUATION_SEED)


def pixel_report():
    images, labels = synthetic_faces(EVALUATION_PERSONS, PICTURES_PER_HELD_OUT_PERSON,
                                     seed=EVALUATION_SEED)
    return {"verification_accuracy": evaluation.pixel_baseline(images, labels,
                                                               seed=EVALUATION_SEED)}


def table(rows):
    lines = ["| encoder | " + " | ".join(COLUMNS) + " | training (min) |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    for name, report in rows.items():
        cells = [f"{report[key]:.4f}" if key in report else "-" for key in COLUMNS]
        minutes = report.get("training_minutes")
        lines.append(f"| {name} | " + " | ".join(cells) +
                     f" | {minutes if minutes is not None else '-'} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.face_training",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=",".join(RUNS),
                        help=f"which of {', '.join(RUNS)} to train (default: all)")
    parser.add_argument("--steps", type=int, default=TrainingSettings().steps,
                        help="steps of each run but sixty_pictures, which has its own")
    parser.add_argument("--out", default="face-benchmark", help="folder for the models")
    parser.add_argument("--json", action="store_true",
                        help="also print the rows as one JSON list, after the table")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    runs = args.runs.split(",")
    unknown = [run for run in runs if run not in RUNS]
    if unknown:
        parser.error(f"--runs: expected names among {', '.join(RUNS)}, got {unknown[0]!r}")
    rows = {"raw pixels": pixel_report(), "untrained encoder": untrained_encoder_report()}
    for run in runs:
        rows[f"trained, {run}"] = train_and_evaluate(run, args.steps, args.out)
        print(table(rows), flush=True)
    print(table(rows))
    if args.json:
        print(json.dumps(rows, default=lambda value: float(np.asarray(value))))


if __name__ == "__main__":
    main()
