"""`scratchnet face`: train a face encoder, verify 1:1, recognise 1:K, measure.

    scratchnet face train --out MODEL.npz [--data DIR] [options]
    scratchnet face verify IMG1 IMG2 [--model MODEL.npz | --model dlib] [--tau T]
    scratchnet face calibrate PAIRS [--model MODEL.npz] [--images-root DIR]
    scratchnet face evaluate MODEL.npz [--seed S | --data DIR] [--json] [--roc ROC.png]
    scratchnet face enroll NAME IMG [IMG ...] [--replace]
    scratchnet face identify IMG [IMG ...] [-o OUT.png]
    scratchnet face list
    scratchnet face remove NAME
    scratchnet face detect IMG [-o OUT.png] [--points 68|5]

enroll / identify / list / remove work on the database file --db
(default face-db.npz) with the encoder --model (default face-model.npz).
Pictures of any size, gray or RGBA, are read as RGB and resized to the
encoder's input (a note says how many were resized).

`--model dlib` uses dlib's pretrained face ResNet instead (scratchnet.face.dlib,
the files of `pip install 'scratchnet[pretrained]'` or --dlib-models DIR), on
whole photographs: each is run through detect -> landmarks -> chip, verify and
enroll use the largest face of a photo, identify answers for every face with
its box. Its tau is 0.36 on the squared distance (dlib's 0.6 is Euclidean), and
its database defaults to face-db-dlib.npz. `detect` shows what the detector and
the landmark model find.

Exit status: 0 on success (verify: whatever the answer), 2 for bad input
(a missing or unreadable file, a database made by another encoder, a name
already enrolled, a bad option value, a photo without a face for verify or
enroll, dlib's model files missing).
"""

import argparse
import contextlib
import json
import os
import sys
import time

import numpy as np

from ..device import DEVICES, to_device
from ..face import (
    DatabaseError,
    FaceDatabase,
    NotEnrolledError,
    TrainingSettings,
    fit_tau,
    load_encoder,
    load_face_image,
    load_image_folder,
    read_lfw_pairs,
    sample_pairs,
    synthetic_faces,
    train,
)
from ..face import evaluation, pictures
from ..face.datasets import LFW_NAME
from ..face.dlib.files import ModelFileNotFound
from ..face.dlib.resnet import load_face_resnet
from ..face.dlib.pipeline import DlibFaceEncoder, draw_faces, faces_in_photo, load_photo
from ..io.dlib_format import DlibFormatError
from ..io.images import image_shape, save_image
from . import (
    FLOAT32_BYTES,
    InputError,
    check_file_output,
    check_memory,
    checked_folder,
    checked_picture_output,
    guarded,
    int_at_least,
    int_between,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)

DEFAULT_MODEL = "face-model.npz"
DEFAULT_DB = "face-db.npz"
DLIB = "dlib"                      # --model dlib: dlib's pretrained face ResNet
DEFAULT_DLIB_DB = "face-db-dlib.npz"
# The synthetic data's seeds: training persons, validation persons (tau is
# fitted on them) and, for `evaluate`, persons seen by neither.
TRAIN_SEED, VALIDATION_SEED, EVALUATION_SEED = 0, 1, 2
VALIDATION_PERSONS = 1000
PICTURES_PER_HELD_OUT_PERSON = 10  # validation and evaluation persons, whatever --per-identity
TRAINING_SIZE = 64                 # pixels on a side of the synthetic training pictures
EVALUATION_PERSONS = 600
CLASSIFIER_PAIRS = 6000
# What a verification pair takes at the peak of `evaluate`: the two encodings and the pair
# classifiers' features and their intermediates, about nine vectors of the embedding's size
# (measured: 4.3 KiB a pair with 128 numbers, from 20,000 to 400,000 pairs).
PAIR_VECTORS = 9

EXAMPLES = """examples:
  scratchnet face train --out face-model.npz             (synthetic faces, 7-13 min)
  scratchnet face train --out face-60.npz --per-identity 60 --steps 3300 --validate-every 1000
                                          (the one-shot recognition targets, 13.7-15.6 min)
  scratchnet face train --out mine.npz --data photos/     (photos/<name>/*.jpg)
  scratchnet face evaluate face-model.npz --json
  scratchnet face verify a.jpg b.jpg
  scratchnet face enroll ada ada.jpg
  scratchnet face identify someone.jpg
  scratchnet face verify a.jpg b.jpg --model dlib           (dlib's pretrained ResNet, photos)
  scratchnet face enroll ada ada.jpg --model dlib
  scratchnet face identify group.jpg --model dlib -o named.png
  scratchnet face detect group.jpg -o boxes.png"""


def add_parser(commands):
    parser = commands.add_parser(
        "face", help="face verification (1:1) and recognition (1:K) with a Siamese encoder",
        description="Train an encoder f with the triplet loss, then verify pairs "
        "(d = ||f(x1) - f(x2)||^2 <= tau) and recognise enrolled persons from one picture.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    _add_train(actions)
    _add_verify(actions)
    _add_calibrate(actions)
    _add_evaluate(actions)
    _add_database_actions(actions)
    _add_detect(actions)
    return parser


def _model_option(parser):
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="MODEL.npz",
                        help=f"the trained encoder (default {DEFAULT_MODEL})")


def _encoder_options(parser):
    """--model (a trained MODEL.npz or dlib) and --dlib-models."""
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="MODEL.npz|dlib",
                        help=f"the trained encoder (default {DEFAULT_MODEL}), or '{DLIB}' for "
                        "dlib's pretrained face ResNet on whole photographs (faces found by "
                        "dlib's detector)")
    _dlib_models_option(parser)


def _dlib_models_option(parser):
    parser.add_argument("--dlib-models", metavar="DIR",
                        help="the folder holding dlib's .dat model files (default: found in the "
                        "installed face_recognition_models package, see "
                        "scratchnet.face.dlib.files)")


def _db_options(parser):
    _encoder_options(parser)
    parser.add_argument("--db", metavar="DB.npz",
                        help=f"the database file (default {DEFAULT_DB}, {DEFAULT_DLIB_DB} with "
                        f"--model {DLIB})")


# ------------------------------------------------------------------ train

def _add_train(actions):
    parser = actions.add_parser(
        "train", help="train an encoder with the triplet loss",
        description="Train the face encoder f with the triplet loss "
        "L = max(d(A,P) - d(A,N) + alpha, 0) on batches of P persons x K pictures, "
        "triplets mined online; Adam. Without --data: the synthetic faces "
        "(--identities x --per-identity pictures, seed 0), validated on "
        "--validation-identities other synthetic persons (seed 1; evaluate uses seed 2). "
        "Writes MODEL.npz with tau fitted on the validation pairs, tau_identify (1:K) on the "
        "validation persons and the two pair classifiers, and a checkpoint every "
        "--checkpoint-every steps to MODEL.checkpoint.npz (--resume continues from it).")
    parser.add_argument("--out", required=True, metavar="MODEL.npz", help="where to write the model")
    parser.add_argument("--data", metavar="DIR",
                        help="train on DIR/<name>/*.jpg instead (10%% of the persons validate)")
    parser.add_argument("--identities", type=int_at_least(2), default=1000,
                        help="synthetic persons (default 1000)")
    parser.add_argument("--per-identity", type=int_at_least(2, " (a triplet needs two pictures)"),
                        default=10,
                        help="synthetic pictures per person (default 10)")
    parser.add_argument("--validation-identities", type=int_at_least(2),
                        default=VALIDATION_PERSONS,
                        metavar="N", help=f"synthetic validation persons, "
                        f"{PICTURES_PER_HELD_OUT_PERSON} pictures each (default "
                        f"{VALIDATION_PERSONS})")
    defaults = TrainingSettings()
    parser.add_argument("--steps", type=positive_int, default=defaults.steps,
                        help=f"batches to train on (default {defaults.steps})")
    parser.add_argument("--strategy", default=defaults.strategy,
                        choices=["batch_hard", "semi_hard", "random", "all"],
                        help=f"triplet selection in a batch (default {defaults.strategy})")
    parser.add_argument("--negatives-per-pair", type=positive_int,
                        default=defaults.negatives_per_pair,
                        metavar="K", help=f"triplets for each anchor and positive: the K "
                        f"hardest negatives (batch_hard), K nearest semi-hard ones (semi_hard) or "
                        f"K drawn ones (random); all takes every negative (default "
                        f"{defaults.negatives_per_pair})")
    parser.add_argument("--alpha", type=non_negative_float, default=defaults.alpha,
                        help=f"the margin (default {defaults.alpha})")
    parser.add_argument("--memory-batches", type=non_negative_int,
                        default=defaults.memory_batches, metavar="M",
                        help=f"keep the encodings of the last M batches and draw up to "
                        f"--negatives-per-pair more semi-hard negatives for each anchor and "
                        f"positive from them (a cross-batch memory; default "
                        f"{defaults.memory_batches}, 0: none)")
    parser.add_argument("--memory-weight", type=non_negative_float,
                        default=defaults.memory_weight, metavar="W",
                        help=f"the weight in J of the triplets with remembered negatives "
                        f"(default {defaults.memory_weight})")
    parser.add_argument("--memory-from-step", type=non_negative_int,
                        default=defaults.memory_from_step, metavar="S",
                        help=f"train S steps before using the memory, while the encoder "
                        f"still changes fast (default {defaults.memory_from_step})")
    parser.add_argument("--lr", type=positive_float, default=defaults.lr,
                        help=f"Adam's initial learning rate (default {defaults.lr})")
    parser.add_argument("--batch-identities", type=int_at_least(2),
                        default=defaults.identities_per_batch,
                        metavar="P", help=f"persons per batch (default {defaults.identities_per_batch})")
    parser.add_argument("--batch-pictures", type=int_at_least(2),
                        default=defaults.pictures_per_identity,
                        metavar="K",
                        help=f"pictures per person in a batch (default {defaults.pictures_per_identity})")
    parser.add_argument("--width", type=positive_int, default=defaults.width,
                        help=f"channels of the encoder's first block (default {defaults.width})")
    parser.add_argument("--convs-per-block", type=positive_int, default=defaults.convs_per_block,
                        help=f"conv + batch norm + ReLU layers in each of the encoder's blocks "
                        f"(default {defaults.convs_per_block})")
    parser.add_argument("--no-neck", action="store_true",
                        help="no batch norm on the embedding before its L2 normalisation")
    parser.add_argument("--no-augment", action="store_true",
                        help="no random flips, shifts and colour changes")
    parser.add_argument("--no-flip-average", action="store_true",
                        help="f(x) is the network's encoding of x alone, not the average of x "
                        "and its mirror image (one forward pass per picture instead of two)")
    parser.add_argument("--seed", type=non_negative_int, default=defaults.seed,
                        help="seed of the weights, batches and augmentation (default 0)")
    parser.add_argument("--validate-every", type=positive_int, default=defaults.validate_every,
                        metavar="N",
                        help=f"validation accuracy every N steps (default "
                        f"{defaults.validate_every})")
    parser.add_argument("--checkpoint-every", type=positive_int, default=defaults.checkpoint_every,
                        metavar="N", help=f"write the checkpoint every N steps (default "
                        f"{defaults.checkpoint_every})")
    parser.add_argument("--print-every", type=positive_int, default=10, metavar="N",
                        help="a progress line every N steps (default 10)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from MODEL.checkpoint.npz")
    parser.add_argument("--device", choices=DEVICES, default=defaults.device,
                        help="where the encoder trains: cpu (default) or cuda (an NVIDIA GPU, "
                        "with pip install 'scratchnet[gpu]')")
    parser.set_defaults(run=guarded(run_train))


def run_train(args):
    settings = TrainingSettings(
        steps=args.steps, identities_per_batch=args.batch_identities,
        pictures_per_identity=args.batch_pictures, alpha=args.alpha, strategy=args.strategy,
        negatives_per_pair=args.negatives_per_pair, lr=args.lr,
        memory_batches=args.memory_batches, memory_weight=args.memory_weight,
        memory_from_step=args.memory_from_step, width=args.width,
        convs_per_block=args.convs_per_block, neck=not args.no_neck,
        augment=not args.no_augment, flip_average=not args.no_flip_average, seed=args.seed,
        validate_every=args.validate_every, checkpoint_every=args.checkpoint_every,
        device=args.device)
    try:
        settings.check()
        check_file_output(args.out, "--out")
        _check_device_usable(args.device)
        if args.data is None:
            _check_synthetic_persons(args)
        (images, labels), validation, source = _training_data(args)
    except (ValueError, FileNotFoundError) as error:
        raise InputError(str(error)) from None
    print(f"training on {source}: {len(images)} pictures of {len(np.unique(labels))} persons; "
          f"validating on {len(validation[0])} pictures of {len(np.unique(validation[1]))} others",
          flush=True)
    checkpoint = _checkpoint_path(args.out)
    try:
        encoder, history = train(images, labels, validation, settings, checkpoint=checkpoint,
                                 resume=args.resume, report=_progress_printer(args.print_every))
    except (ValueError, FileNotFoundError) as error:     # --resume without a fitting checkpoint
        raise InputError(str(error)) from None
    except KeyboardInterrupt:
        print(f"interrupted: {checkpoint} holds the last checkpoint (every "
              f"{args.checkpoint_every} steps); the same command with --resume continues "
              f"from it" if os.path.exists(checkpoint) else "interrupted before the first "
              "checkpoint", file=sys.stderr)
        return 130
    print("fitting the pair classifiers on pairs of training persons ...", flush=True)
    embeddings, pairs = evaluation.encode_pairs(
        encoder, images, sample_pairs(labels, CLASSIFIER_PAIRS, args.seed))
    classifiers = evaluation.fit_pair_classifiers(embeddings, pairs, seed=args.seed)
    encoder.save(args.out, extra={**evaluation.classifiers_to_arrays(classifiers),
                                  "trainer.history": _history_rows(history)})
    print(f"wrote {args.out}: tau = {encoder.tau:.4f} (best accuracy on validation pairs), "
          f"tau_eer = {encoder.info['tau_eer']:.4f}, validation 10-fold accuracy "
          f"{encoder.info['validation_accuracy']:.4f}")
    return 0


def _check_device_usable(device):
    """Put a number on `device` before the data is read: a missing GPU or numba-cuda
    is an InputError that says what is needed."""
    try:
        to_device(np.zeros(1, np.float32), device)
    except RuntimeError as error:
        raise InputError(f"--device {device}: {error}") from None


def _check_synthetic_persons(args):
    """Enough synthetic persons for a batch, and their pictures (float32 RGB) not more than the
    memory available now holds: else an InputError, rather than a generator the system kills."""
    if args.batch_identities > args.identities:
        raise InputError(f"--batch-identities {args.batch_identities}: more persons than the "
                         f"{args.identities} of --identities")
    if args.batch_pictures > args.per_identity:
        print(f"note: --batch-pictures {args.batch_pictures}: each person has "
              f"{args.per_identity} pictures (--per-identity); a batch takes all "
              f"{args.per_identity}", flush=True)
    count = _synthetic_count(args)
    check_memory(_pictures_bytes(count, TRAINING_SIZE),
                 f"--identities {args.identities} --validation-identities "
                 f"{args.validation_identities}",
                 f"{count:,} synthetic pictures of {TRAINING_SIZE}x{TRAINING_SIZE}",
                 "--identities, --validation-identities or --per-identity")


def _synthetic_count(args):
    """How many synthetic pictures `train` draws: its persons' and the validation persons'."""
    return (args.identities * args.per_identity
            + args.validation_identities * PICTURES_PER_HELD_OUT_PERSON)


def _pictures_bytes(count, side):
    """The bytes of `count` synthetic pictures of side x side, float32 RGB."""
    return count * 3 * side * side * FLOAT32_BYTES


def _training_data(args):
    if args.data is None:
        print(f"drawing {_synthetic_count(args):,} synthetic pictures ...",
              flush=True)   # about 0.6 s per thousand on 2 cores
        train_set = synthetic_faces(args.identities, args.per_identity, seed=TRAIN_SEED,
                                    size=TRAINING_SIZE)
        validation = synthetic_faces(args.validation_identities, PICTURES_PER_HELD_OUT_PERSON,
                                     seed=VALIDATION_SEED, size=TRAINING_SIZE)
        return train_set, validation, f"synthetic faces (seed {TRAIN_SEED})"
    try:
        images, labels, names = load_image_folder(args.data, min_per_identity=2, note=_note)
    except (ValueError, FileNotFoundError) as error:
        raise _for_option(error, "root", "--data") from None
    persons = np.random.default_rng(args.seed).permutation(len(names))
    held_out = np.isin(labels, persons[:max(2, len(names) // 10)])
    if held_out.all() or len(np.unique(labels[~held_out])) < 2:
        raise ValueError(f"--data: {args.data} has too few persons with two pictures "
                         f"({len(names)}) to train and validate")
    _, relabelled = np.unique(labels[~held_out], return_inverse=True)
    return (images[~held_out], relabelled), (images[held_out], labels[held_out]), args.data


def _progress_printer(every):
    def report(step):
        if step.step % every == 0 or step.validation_accuracy is not None or \
                step.step == step.steps:
            line = (f"step {step.step:>5}/{step.steps}  J {step.loss:8.3f}  "
                    f"active {step.active:5.1%}  {step.seconds:6.0f} s")
            if step.validation_accuracy is not None:
                line += f"  validation accuracy {step.validation_accuracy:.4f}"
            print(line, flush=True)
    return report


def _history_rows(history):
    return np.array([(r.step, r.loss, r.active, r.seconds, r.validation_accuracy)
                     for r in history], dtype=np.float64).reshape(len(history), 5)


def _checkpoint_path(out):
    root, extension = os.path.splitext(out)
    return f"{root}.checkpoint{extension or '.npz'}"


# ------------------------------------------------------------------ verify and calibrate

def _add_verify(actions):
    parser = actions.add_parser(
        "verify", help="are two pictures the same person? (1:1)",
        description="d = ||f(x1) - f(x2)||^2; the same person when d <= tau. With --model "
        "dlib, IMG1 and IMG2 are photographs and the largest face of each is compared.")
    parser.add_argument("first", metavar="IMG1")
    parser.add_argument("second", metavar="IMG2")
    _encoder_options(parser)
    parser.add_argument("--tau", type=non_negative_float,
                        help="the threshold on the squared distance (default: the model's; "
                        "0.36 = 0.6^2 for dlib, whose published 0.6 is Euclidean)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=guarded(run_verify))


def run_verify(args):
    encoder = _open_encoder(args)
    tau = encoder.tau if args.tau is None else args.tau
    paths = [args.first, args.second]
    if _uses_dlib(args):
        faces = [_largest_face(path, args.dlib_models) for path in paths]
        images = np.stack([face.chip for face in faces])
    else:
        images = _load_pictures(paths, encoder.image_size)
    distance = float(encoder.distance(images[:1], images[1:])[0])
    same = distance <= tau
    if args.json:
        answer = {"same": bool(same), "distance": distance, "tau": tau}
        if _uses_dlib(args):
            answer["boxes"] = [list(face.box) for face in faces]
        print(json.dumps(answer))
    else:
        verdict = "same person" if same else "different persons"
        print(f"{verdict}: d = {distance:.4f} {'<=' if same else '>'} tau = {tau:.4f}")
    return 0


def _add_calibrate(actions):
    parser = actions.add_parser(
        "calibrate", help="fit tau on your own labelled pairs",
        description="Fit the model's tau on pairs of pictures known to show one person or "
        "two, and store it in the model file (rewritten atomically). That tau is the one "
        "verify uses; identify uses tau_identify, fitted by training for recognition 1:K, "
        "and left as it is (give identify --tau to use another). PAIRS is a text file "
        "of lines 'IMG1 IMG2 1' (same person) or 'IMG1 IMG2 0' (two persons), paths "
        "relative to the file's folder; or LFW's pairs.txt with --images-root.")
    parser.add_argument("pairs", metavar="PAIRS")
    _model_option(parser)
    parser.add_argument("--images-root", metavar="DIR", help="LFW's image folder, for pairs.txt")
    parser.add_argument("--criterion", choices=["accuracy", "eer"], default="accuracy",
                        help="best accuracy (default) or equal error rate")
    parser.add_argument("--dry-run", action="store_true", help="print tau, do not store it")
    parser.set_defaults(run=guarded(run_calibrate))


def run_calibrate(args):
    encoder, arrays = _load_encoder(args.model, with_arrays=True)
    first_paths, second_paths, same = _read_pairs(args.pairs, args.images_root)
    if same.all() or not same.any():
        raise InputError(f"PAIRS: expected both same (1) and different (0) pairs to fit tau, "
                         f"got {int(same.sum())} same and {int((~same).sum())} different")
    first = _load_pictures(first_paths, encoder.image_size)
    second = _load_pictures(second_paths, encoder.image_size, note=None)
    distances = encoder.distance(first, second)
    try:
        tau = fit_tau(distances, same, criterion=args.criterion)
    except ValueError as error:
        raise InputError(f"PAIRS: {error}") from None
    accuracy = float(np.mean((distances <= tau) == same))
    print(f"tau = {tau:.4f} ({args.criterion}; accuracy {accuracy:.4f} on these "
          f"{len(same)} pairs; the model had tau = {encoder.tau:.4f})")
    if not args.dry_run:
        encoder.tau = tau
        extra = {key: value for key, value in arrays.items()
                 if not key.startswith("encoder.") and key != "config"}
        encoder.save(args.model, extra=extra)
        print(f"stored in {args.model}")
    return 0


def _read_pairs(path, images_root):
    if not os.path.isfile(path):
        raise InputError(f"PAIRS: no file at {path}")
    if images_root is not None:
        if not os.path.isdir(images_root):
            raise InputError(f"--images-root: {images_root} is not a folder")
        try:
            folds = read_lfw_pairs(path)
        except ValueError as error:
            raise _for_option(error, "pairs_path", "PAIRS") from None
        pairs = [(os.path.join(images_root, LFW_NAME.format(name=a, index=i)),
                  os.path.join(images_root, LFW_NAME.format(name=b, index=j)), s)
                 for first, second, same in folds
                 for (a, i), (b, j), s in zip(first, second, same)]
    else:
        try:
            pairs = _read_plain_pairs(path)
        except UnicodeDecodeError:
            raise InputError(f"PAIRS: {path} is not a UTF-8 text file; expected lines "
                             f"'IMG1 IMG2 1|0'") from None
    if not pairs:
        raise InputError(f"PAIRS: {path} lists no pairs")
    first, second, same = zip(*pairs)
    return list(first), list(second), np.array(same, dtype=bool)


def _read_plain_pairs(path):
    """[(IMG1, IMG2, same)] from lines 'IMG1 IMG2 1|0', paths relative to the file's folder."""
    folder = os.path.dirname(os.path.abspath(path))
    pairs = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) != 3 or fields[2] not in ("0", "1"):
                raise InputError(f"PAIRS: {path} line {number}: expected 'IMG1 IMG2 1|0', "
                                 f"got {line.strip()!r}")
            pairs.append((os.path.join(folder, fields[0]), os.path.join(folder, fields[1]),
                          fields[2] == "1"))
    return pairs


# ------------------------------------------------------------------ evaluate

def _add_evaluate(actions):
    parser = actions.add_parser(
        "evaluate", help="measure verification and one-shot recognition",
        description="Verification: 10-fold accuracy as in LFW's protocol, AUC, TAR at FAR "
        "1e-2 and 1e-3 over --pairs balanced pairs, and the two pair classifiers. "
        "Recognition: --enrolled persons enrolled from one picture each; top1 = their other "
        "pictures answered with the right name, rejection = pictures of as many other "
        "persons answered 'not "
        "recognized', both at the model's tau; the same averaged over --draws draws of the "
        "enrolled persons, and for each draw the best threshold chosen on these persons (the "
        "tau that maximises the smaller of top1 and rejection: an upper bound for any fitted "
        "tau). Data: synthetic persons never used in training (--seed, default 2), or --data "
        "DIR.")
    parser.add_argument("model", metavar="MODEL.npz")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--seed", type=non_negative_int, default=EVALUATION_SEED,
                        help=f"synthetic persons of this seed (default {EVALUATION_SEED})")
    source.add_argument("--data", metavar="DIR",
                        help="DIR/<name>/*.jpg instead, every person measured: persons the "
                        "model did not train on")
    parser.add_argument("--identities", type=int_at_least(2), default=EVALUATION_PERSONS,
                        help=f"synthetic persons (default {EVALUATION_PERSONS})")
    parser.add_argument("--enrolled", type=positive_int, default=evaluation.ENROLLED,
                        help=f"K, persons enrolled (default {evaluation.ENROLLED})")
    parser.add_argument("--pairs", type=int_at_least(10, ", one per fold at least"),
                        default=evaluation.EVALUATION_PAIRS,
                        help=f"verification pairs, 10 or more (default "
                        f"{evaluation.EVALUATION_PAIRS})")
    parser.add_argument("--draws", type=int_between(0, evaluation.MAX_DRAWS), metavar="N",
                        default=evaluation.DRAWS,
                        help=f"enrolment draws (seeds 0 .. N-1) to average recognition over, "
                        f"up to {evaluation.MAX_DRAWS} (default {evaluation.DRAWS}; 0 leaves "
                        f"them out)")
    parser.add_argument("--baseline", action="store_true",
                        help="also the raw-pixel baseline on the same pairs")
    parser.add_argument("--roc", metavar="ROC.png", help="draw the ROC curve there")
    parser.add_argument("--pictures", metavar="DIR",
                        help="write roc.png, triplets.png and identifications.png into DIR")
    parser.add_argument("--json", action="store_true",
                        help="print the metrics as one JSON object (notes go to stderr)")
    parser.set_defaults(run=guarded(run_evaluate))


def _check_evaluation_memory(args, encoder):
    """The verification pairs and, without --data, the synthetic persons' pictures fit in the
    memory available now, together (a folder's pictures are not known before it is read)."""
    pairs_bytes = args.pairs * PAIR_VECTORS * encoder.network.embedding_size * FLOAT32_BYTES
    if args.data is not None:
        check_memory(pairs_bytes, f"--pairs {args.pairs}", f"{args.pairs:,} pairs", "--pairs")
        return
    pictures, side = args.identities * PICTURES_PER_HELD_OUT_PERSON, encoder.image_size
    check_memory(pairs_bytes + _pictures_bytes(pictures, side),
                 f"--pairs {args.pairs} --identities {args.identities}",
                 f"{args.pairs:,} pairs and {pictures:,} synthetic pictures of {side}x{side}",
                 "--pairs or --identities")


def run_evaluate(args):
    _check_evaluation_outputs(args)
    encoder, arrays = _load_encoder(args.model, with_arrays=True)
    _check_evaluation_memory(args, encoder)
    note = (lambda line: print(line, file=sys.stderr)) if args.json else print
    started = time.perf_counter()
    if args.data is None:
        images, labels = synthetic_faces(args.identities, PICTURES_PER_HELD_OUT_PERSON,
                                         seed=args.seed, size=encoder.image_size)
        source = f"synthetic persons, seed {args.seed}"
    else:
        try:
            images, labels, _ = load_image_folder(args.data, size=encoder.image_size,
                                                  min_per_identity=2, note=note)
        except (ValueError, FileNotFoundError) as error:
            raise _for_option(error, "root", "--data") from None
        source = args.data
    note(f"evaluating on {len(images)} pictures of {len(np.unique(labels))} persons ({source})")
    _note_what_the_persons_allow(args, labels, note)
    classifiers = evaluation.classifiers_from_arrays(arrays)
    embeddings = encoder(images)                # once, for the metrics and the pictures
    seed = args.seed if args.data is None else 0       # of the pairs and the enrolment draw
    try:
        report = evaluation.evaluate(encoder, images, labels, classifiers, n_pairs=args.pairs,
                                     enrolled=args.enrolled, seed=seed, embeddings=embeddings,
                                     draws=args.draws)
    except ValueError as error:                  # too few persons or pictures in --data
        raise InputError(str(error)) from None
    if args.baseline:                            # on the encoder's pairs
        report["pixel_baseline_accuracy"] = evaluation.pixel_baseline(images, labels, args.pairs,
                                                                      seed=seed)
    report["data"] = source
    report["seconds"] = round(time.perf_counter() - started, 2)
    if args.roc:
        pictures.draw_roc(encoder, images, labels, args.pairs, seed, classifiers, args.roc,
                          embeddings)
        note(f"wrote {args.roc}")
    if args.pictures:
        pictures.write_evaluation_pictures(encoder, images, labels, args.pictures, args.pairs,
                                           args.enrolled, seed, classifiers, embeddings)
        note(f"wrote roc.png, triplets.png and identifications.png in {args.pictures}")
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:<28} {value:.4f}" if isinstance(value, float) else f"{key:<28} {value}")
    return 0


def _check_evaluation_outputs(args):
    """--roc and --pictures can be written: said before the evaluation, not after it."""
    if args.roc:
        if os.path.splitext(args.roc)[1].lower() != ".png":
            raise InputError(f"--roc {args.roc}: the file name must end in .png")
        check_file_output(args.roc, "--roc")
    if args.pictures:
        checked_folder(args.pictures, "--pictures")


def _note_what_the_persons_allow(args, labels, note):
    """Notes when --enrolled or --pairs ask for more than these persons' pictures give."""
    counts = np.unique(labels, return_counts=True)[1]
    n_persons = len(counts)
    if args.enrolled > n_persons // 2:
        note(f"note: --enrolled {args.enrolled}: {n_persons} persons hold {n_persons // 2} to "
             f"enrol and as many strangers; enrolling {n_persons // 2}")
    distinct_same = int(np.sum(counts * (counts - 1) // 2))
    if args.pairs // 2 > distinct_same:
        note(f"note: --pairs {args.pairs}: these pictures make {distinct_same} distinct "
             f"same-person pairs, so the {args.pairs // 2} drawn repeat some")


# ------------------------------------------------------------------ the database

def _add_database_actions(actions):
    enroll = actions.add_parser(
        "enroll", help="enrol a person from one picture (one-shot) or several",
        description="Store the encoding of NAME: f(picture), or the mean over several "
        "pictures. A NAME already enrolled is refused unless --replace. With --model dlib, "
        "each IMG is a photograph: its largest face is enrolled (a note says when it has "
        "several), and a photo without a face is refused.")
    enroll.add_argument("name", metavar="NAME")
    enroll.add_argument("images", nargs="+", metavar="IMG")
    enroll.add_argument("--replace", action="store_true", help="replace an enrolled NAME")
    _db_options(enroll)
    enroll.set_defaults(run=guarded(run_enroll))

    identify = actions.add_parser(
        "identify", help="who is this? (1:K, or 'not recognized')",
        description="The nearest enrolled person when d <= tau, else 'not recognized'. "
        "With --model dlib, each IMG is a photograph and every face in it gets an answer, "
        "with its box (left, top, right, bottom).")
    identify.add_argument("images", nargs="+", metavar="IMG")
    identify.add_argument("--tau", type=non_negative_float,
                          help="the threshold on the squared distance (default: the model's "
                          "tau_identify, fitted for 1:K; 0.36 = 0.6^2 for dlib)")
    identify.add_argument("--json", action="store_true",
                          help="print one JSON object per picture (per face with --model dlib, "
                          "with its box; box null for a photo without a face)")
    identify.add_argument("-o", "--out", metavar="OUT.png",
                          help="with --model dlib and one IMG: draw the boxes and names on the "
                          "photo, written to OUT.png (or .jpg)")
    _db_options(identify)
    identify.set_defaults(run=guarded(run_identify))

    listing = actions.add_parser("list", help="the enrolled persons",
                                 description="The enrolled names, with their picture counts.")
    _db_options(listing)
    listing.set_defaults(run=guarded(run_list))

    remove = actions.add_parser("remove", help="forget a person",
                                description="Remove NAME from the database.")
    remove.add_argument("name", metavar="NAME")
    _db_options(remove)
    remove.set_defaults(run=guarded(run_remove))


def _open_database(args, tau=None, writes=False):
    """The database of --db (or the default one) for the encoder of --model; `writes`: the
    action rewrites the file, so its folder must exist and be writable."""
    path = args.db or (DEFAULT_DLIB_DB if _uses_dlib(args) else DEFAULT_DB)
    if writes:
        check_file_output(path, "--db")
    encoder = _open_encoder(args)
    try:
        return FaceDatabase(path, encoder, tau=tau)
    except (DatabaseError, FileNotFoundError, ValueError) as error:
        raise InputError(str(error)) from None


def _note_if_missing(database):
    """A mistyped --db reads as an empty database: say so on stderr."""
    if not os.path.exists(database.path):
        print(f"note: no database file at {database.path} yet: nobody is enrolled there",
              file=sys.stderr)


def run_enroll(args):
    database = _open_database(args, writes=True)
    if _uses_dlib(args):
        faces = [_largest_face(path, args.dlib_models) for path in args.images]
        chips = np.stack([face.chip for face in faces])
        images = chips.transpose(0, 3, 1, 2)  # (n, H, W, 3) -> (n, 3, H, W): the database's
    else:
        images = _load_pictures(args.images, database.encoder.image_size)
    try:
        database.enroll(args.name, images, replace=args.replace)
    except ValueError as error:
        raise InputError(str(error)) from None
    print(f"enrolled {args.name} from {len(images)} picture(s) in {database.path} "
          f"({len(database)} persons)")
    return 0


def run_identify(args):
    if args.out is not None and (not _uses_dlib(args) or len(args.images) != 1):
        raise InputError("-o/--out: drawing the answers needs --model dlib and exactly one IMG")
    if args.out is not None:
        checked_picture_output(args.out, "-o/--out")     # before the detector runs
    database = _open_database(args, tau=args.tau)
    _note_if_missing(database)
    if _uses_dlib(args):
        return _identify_faces(args, database)
    images = _load_pictures(args.images, database.encoder.image_size)
    names, distances = database.identify_many(images)
    for path, name, distance in zip(args.images, names, distances):
        if args.json:
            print(json.dumps({"image": path, "name": name, "distance": _json_distance(distance),
                              "tau": database.tau}))
        else:
            print(f"{path}: {_answer(name, distance, database.tau)}")
    return 0


def _identify_faces(args, database):
    """identify with --model dlib: an answer for every face of every photo."""
    for path in args.images:
        photo, faces = _photo_faces(path, args.dlib_models)
        if not faces:
            print(json.dumps({"image": path, "box": None, "name": None, "distance": None,
                              "tau": database.tau}) if args.json else f"{path}: no face found")
            if args.out is not None:
                print(f"note: {args.out} not written: no face to draw", file=sys.stderr)
            continue
        chips = np.stack([face.chip for face in faces])
        names, distances = database.identify_many(chips.transpose(0, 3, 1, 2))  # -> (n, 3, H, W)
        for number, (face, name, distance) in enumerate(zip(faces, names, distances), 1):
            if args.json:
                print(json.dumps({"image": path, "box": list(face.box), "name": name,
                                  "distance": _json_distance(distance), "tau": database.tau}))
            else:
                print(f"{path}: face {number} at {tuple(face.box)}: "
                      f"{_answer(name, distance, database.tau)}")
        if args.out is not None:
            labels = [name or "not recognized" for name in names]
            _save_drawing(photo, faces, args.out, labels=labels, json_output=args.json)
    return 0


def _answer(name, distance, tau):
    """One identification in words: the name and d, or "not recognized" and why."""
    if name is not None:
        return f"{name} (d = {distance:.4f} <= tau = {tau:.4f})"
    detail = "nobody is enrolled" if np.isinf(distance) else \
        f"nearest d = {distance:.4f} > tau = {tau:.4f}"
    return f"not recognized ({detail})"


def _json_distance(distance):
    return None if np.isinf(distance) else float(distance)


def run_list(args):
    database = _open_database(args)
    _note_if_missing(database)
    if not len(database):
        print(f"{database.path}: nobody enrolled")
    for name in database.names():
        print(f"{name}  ({database.picture_count(name)} picture(s))")
    return 0


def run_remove(args):
    database = _open_database(args, writes=True)
    _note_if_missing(database)
    try:
        database.remove(args.name)
    except NotEnrolledError as error:
        raise InputError(str(error.args[0])) from None
    print(f"removed {args.name} from {database.path} ({len(database)} persons left)")
    return 0


# ------------------------------------------------------------------ detect

def _add_detect(actions):
    parser = actions.add_parser(
        "detect", help="find the faces in a photo and their landmarks (dlib's models)",
        description="Run dlib's CNN face detector and landmark model (scratchnet.face.dlib) "
        "on a photograph: print each face's box (left, top, right, bottom, pixels, right "
        "and bottom included) and detector score, largest face first; with -o, draw the "
        "boxes and landmarks on the photo.")
    parser.add_argument("image", metavar="IMG")
    parser.add_argument("-o", "--out", metavar="OUT.png",
                        help="write the photo with the boxes and landmarks drawn (PNG or JPEG)")
    parser.add_argument("--points", type=int, choices=[5, 68], default=68,
                        help="landmarks per face: 68 (default) or 5")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: the boxes, scores and landmarks")
    _dlib_models_option(parser)
    parser.set_defaults(run=guarded(run_detect))


def run_detect(args):
    if args.out is not None:
        checked_picture_output(args.out, "-o/--out")     # before the detector runs
    photo, faces = _photo_faces(args.image, args.dlib_models, points=args.points)
    if args.json:
        print(json.dumps({"image": args.image, "faces": [
            {"box": list(face.box), "confidence": face.box.confidence,
             "landmarks": face.landmarks.tolist()} for face in faces]}))
    else:
        print(f"{args.image}: {len(faces)} face(s)")
        for number, face in enumerate(faces, 1):
            print(f"face {number}: box {tuple(face.box)}, score {face.box.confidence:.3f}")
    if args.out is not None:
        _save_drawing(photo, faces, args.out, landmarks=True, json_output=args.json)
    return 0


# ------------------------------------------------------------------ helpers


def _load_encoder(path, with_arrays=False):
    if path == DLIB:
        raise InputError(f"--model {DLIB}: this action needs a trained MODEL.npz; dlib's "
                         f"pretrained model works with verify, enroll, identify, list and remove")
    try:
        encoder, arrays = load_encoder(path, with_arrays=True)
    except (FileNotFoundError, ValueError) as error:
        raise InputError(str(error)) from None
    if "trainer.rng" in arrays:
        raise InputError(f"model: {path} is a training checkpoint, not a finished model (its tau "
                         f"is not fitted yet); `scratchnet face train --resume` finishes it")
    return (encoder, arrays) if with_arrays else encoder


def _uses_dlib(args):
    return args.model == DLIB


def _open_encoder(args):
    """The encoder of --model: a trained MODEL.npz, or dlib's pretrained face ResNet."""
    if not _uses_dlib(args):
        if args.dlib_models is not None:
            raise InputError(f"--dlib-models: only used with --model {DLIB}")
        return _load_encoder(args.model)
    with _dlib_errors(args.dlib_models):
        encoder = DlibFaceEncoder(args.dlib_models)
        load_face_resnet(encoder.file)       # read now, so that a damaged file is said now
        return encoder


@contextlib.contextmanager
def _dlib_errors(models):
    """dlib's model files missing or unreadable -> InputError, saying how to get them;
    `models` is --dlib-models, which must be a folder."""
    if models is not None and not os.path.isdir(models):
        what = "the file" if os.path.isfile(models) else "no folder at"
        raise InputError(f"--dlib-models: expected the folder holding dlib's .dat files, got "
                         f"{what} {models}")
    try:
        yield
    except ModelFileNotFound as error:
        how = ("give --dlib-models DIR the folder that holds all four" if models is not None
               else "pip install 'scratchnet[pretrained]', or give the folder that holds them "
                    "with --dlib-models DIR")
        raise InputError(f"{' '.join(str(error).split())}; to get dlib's model files: {how}") \
            from None
    except DlibFormatError as error:
        raise InputError(f"dlib model file {error} (damaged, or another model under its "
                         f"name: reinstall scratchnet[pretrained] or give the right folder "
                         f"with --dlib-models)") from None


def _photo_faces(path, models, points=5):
    """(photo (H, W, 3) uint8, its faces largest first) for an image file, or InputError."""
    try:
        photo = load_photo(path)
    except (OSError, ValueError) as error:
        raise InputError(f"IMG: cannot read {path}: {_reason(error, path)}") from None
    with _dlib_errors(models):
        try:
            return photo, faces_in_photo(photo, points=points, models=models)
        except DlibFormatError:
            raise                                # the model file's fault, not the photo's
        except ValueError as error:
            raise InputError(f"IMG: cannot look for faces in {path} ({photo.shape[1]} x "
                             f"{photo.shape[0]} pixels): {error}") from None


def _largest_face(path, models):
    """The largest face of the photo at `path` (a note on stderr when it has several);
    InputError when it has none."""
    _, faces = _photo_faces(path, models)
    if not faces:
        raise InputError(f"IMG: no face found in {path} (dlib's detector finds faces of "
                         f"about 80 x 80 pixels and larger)")
    if len(faces) > 1:
        print(f"note: {path} shows {len(faces)} faces; using the largest, at "
              f"{tuple(faces[0].box)}", file=sys.stderr)
    return faces[0]


def _save_drawing(photo, faces, path, labels=None, landmarks=False, json_output=False):
    """The photo with the faces' boxes (and landmarks, labels) drawn, written to `path`;
    "wrote" goes to stderr when stdout holds JSON."""
    drawn = draw_faces(photo, [face.box for face in faces],
                       landmarks=[face.landmarks for face in faces] if landmarks else None,
                       labels=labels)
    try:
        save_image(drawn.astype(np.float32) / 255, path)
    except (OSError, ValueError) as error:
        raise InputError(f"-o/--out: cannot write {path}: {error}") from None
    print(f"wrote {path}", file=sys.stderr if json_output else sys.stdout)


def _load_pictures(paths, size, note=print):
    """The pictures as (n, 3, size, size); unreadable ones are an error naming the file."""
    pictures, resized = [], 0
    for path in paths:
        try:
            pictures.append(load_face_image(path, size=size))
            resized += image_shape(path) != (size, size)
        except (OSError, ValueError) as error:
            raise InputError(f"IMG: cannot read {path}: {_reason(error, path)}") from None
    if resized and note is not None:
        note(f"note: resized {resized} of {len(paths)} picture(s) to the encoder's "
             f"{size} x {size}")
    return np.stack(pictures)


def _reason(error, path):
    """What `error` says about the file at `path`, without the path it may begin with."""
    message = str(error)
    return message[len(f"{path}: "):] if message.startswith(f"{path}: ") else message


def _for_option(error, argument, option):
    """An InputError saying what `error` says, naming the command's `option` where the
    library's message names its `argument` ("root: ..." -> "--data: ...")."""
    message = str(error)
    if message.startswith(f"{argument}: "):
        message = message[len(argument) + 2:]
    return InputError(f"{option}: {message}")


def _note(line):
    print(line, flush=True)
