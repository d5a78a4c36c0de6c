"""The face issue's table: held-out verification and one-shot recognition, with baselines.

    python -m benchmarks.face_training [--strategies semi_hard,batch_hard,random]
                                       [--steps N] [--out DIR] [--json]

For each mining strategy: `scratchnet face train` on the synthetic faces
(1,000 persons x 10 pictures, seed 0; validation seed 1), then `scratchnet
face evaluate` on persons of seed 2, never seen in training. Beside them:
raw pixels as the encoding and an untrained encoder (random weights, tau
fitted on the validation persons). Prints a markdown table (and, with
--json, one JSON object); the models are kept in --out. The last four
columns are the recognition figures averaged over six enrolment draws and
the best-threshold bound (scratchnet.face.evaluation.recognition_over_draws).
"""

import argparse
import contextlib
import io
import json
import os
import time

import numpy as np

from scratchnet.cli import main as scratchnet
from scratchnet.face import Encoder, TrainingSettings, fit_tau, sample_pairs, synthetic_faces
from scratchnet.face import evaluation
from scratchnet.models.face_encoder import FaceEncoder

EVALUATION_SEED = 2
COLUMNS = ("verification_accuracy", "auc", "tar_at_far_1e-3", "top1", "rejection", "top1_nearest",
           "classifier_abs_accuracy", "classifier_chi2_accuracy", "top1_over_draws",
           "rejection_over_draws", "top1_nearest_over_draws", "best_threshold_bound")


def train_and_evaluate(strategy, steps, folder):
    model = os.path.join(folder, f"face-{strategy}.npz")
    started = time.perf_counter()
    status = scratchnet(["face", "train", "--out", model, "--strategy", strategy,
                         "--steps", str(steps), "--print-every", "100"])
    if status:
        raise SystemExit(f"training with {strategy} failed (exit status {status})")
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
    validation_images, validation_labels = synthetic_faces(300, 10, seed=1)
    encoder = Encoder(network, flip_average=defaults.flip_average)
    first, second, same = sample_pairs(validation_labels, 2000, seed=0)
    embeddings = encoder(validation_images)
    encoder.tau = fit_tau(evaluation.squared_distances(embeddings, first, second), same)
    encoder.info["tau_identify"] = evaluation.fit_identification_tau(embeddings,
                                                                     validation_labels)
    images, labels = synthetic_faces(600, 10, seed=EVALUATION_SEED)
    return evaluation.evaluate(encoder, images, labels, seed=EVALUATION_SEED)


def pixel_report():
    images, labels = synthetic_faces(600, 10, seed=EVALUATION_SEED)
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default="semi_hard,batch_hard,random")
    parser.add_argument("--steps", type=int, default=TrainingSettings().steps)
    parser.add_argument("--out", default="face-benchmark", help="folder for the models")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rows = {"raw pixels": pixel_report(), "untrained encoder": untrained_encoder_report()}
    for strategy in args.strategies.split(","):
        rows[f"trained, {strategy}"] = train_and_evaluate(strategy, args.steps, args.out)
        print(table(rows), flush=True)
    print(table(rows))
    if args.json:
        print(json.dumps(rows, default=lambda value: float(np.asarray(value))))


if __name__ == "__main__":
    main()
