"""dlib's pretrained face models on scratchnet, timed next to dlib itself in the same process.

    python -m benchmarks.dlib_faces [--repeats N] [--batch 16]

Cases (float32, wall-clock medians of round-robin repeats, see _harness.py):

    load resnet       read dlib_face_recognition_resnet_model_v1.dat and build the model
    load detector     the same for mmod_human_face_detector.dat
    descriptor x1     one 150 x 150 chip -> 128-d descriptor
    descriptor xB     B chips in one batch (scratchnet) / one list call (dlib); per chip
    detect 640x480    the CNN face detector on a 640 x 480 photograph

The peer is dlib's Python module (the `dlib-bin` wheel, say) on the same
chips and photograph; "x dlib" is scratchnet's median over dlib's. The
agreement column gives the largest |difference| of the descriptors, or
whether the detected boxes are the same. Chips are cut by dlib from the
photographs in scratchnet/data/faces (random chips when dlib is absent: the
time does not depend on the content). Needs the model files
(`pip install 'scratchnet[pretrained]'`).
"""

import argparse
import pathlib
import sys
import time

import numpy as np
from PIL import Image

from scratchnet.face.dlib import detector, resnet
from scratchnet.commands import positive_int
from scratchnet.face.dlib.files import find_model_file
from scratchnet.io.dlib_dnn import read_dlib_network_file

from ._harness import (
    markdown_table,
    scratchnet_threads,
    summarize,
    threads_line,
    time_round_robin,
)

try:
    import dlib
except ImportError:
    dlib = None

PHOTOS = pathlib.Path(__file__).resolve().parent.parent / "scratchnet" / "data" / "faces"


def photographs():
    pictures = [np.asarray(Image.open(path).convert("RGB"))
                for path in sorted(PHOTOS.glob("*.jpg"))]
    if not pictures:
        raise SystemExit(f"no photographs in {PHOTOS}")
    return pictures


def make_chips(count):
    """`count` chips: dlib's chips of the faces in the photographs (and mirror images), repeated."""
    if dlib is None:
        return np.random.default_rng(0).integers(0, 256, (count, 150, 150, 3), dtype=np.uint8)
    face_finder = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(find_model_file("landmarks5")))
    chips = []
    for image in photographs():
        for picture in (image, np.ascontiguousarray(image[:, ::-1])):
            chips += [dlib.get_face_chip(picture, predictor(picture, box), size=150, padding=0.25)
                      for box in face_finder(picture, 1)]
    return np.stack([chips[i % len(chips)] for i in range(count)])


def first_call_seconds(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def row(case, seconds, per=1, agreement="-"):
    """A table row: scratchnet's and dlib's medians (ms, divided by `per`) and their ratio."""
    ours = summarize(seconds["scratchnet"])["median_ms"] / per
    theirs = summarize(seconds["dlib"])["median_ms"] / per if "dlib" in seconds else None
    ratio = f"{ours / theirs:.2f}" if theirs else "-"
    return [case, f"{ours:.1f}", f"{theirs:.1f}" if theirs else "-", ratio, agreement]


def loading_rows(repeats):
    rows = []
    builders = {"resnet": (resnet.build_face_resnet, "face_recognition_model_v1"),
                "detector": (detector.build_detector, "cnn_face_detection_model_v1")}
    for model, (build, dlib_name) in builders.items():
        path = find_model_file(model)
        calls = {"scratchnet": lambda p=path, b=build: b(read_dlib_network_file(p))}
        if dlib is not None:
            make = getattr(dlib, dlib_name)
            calls["dlib"] = lambda p=str(path), m=make: m(p)
        rows.append(row(f"load {model}", time_round_robin(calls, repeats)))
    return rows


def descriptor_rows(repeats, batch):
    model = resnet.load_face_resnet()
    chips = make_chips(batch)
    one = chips[:1]
    calls_one = {"scratchnet": lambda: model.descriptor(one)}
    calls_batch = {"scratchnet": lambda: model.descriptor(chips, batch_size=batch)}
    agreement = "-"
    if dlib is not None:
        reference = dlib.face_recognition_model_v1(str(find_model_file("resnet")))
        calls_one["dlib"] = lambda: reference.compute_face_descriptor(one[0])
        calls_batch["dlib"] = lambda: reference.compute_face_descriptor(list(chips))
        expected = np.array([np.array(d) for d in reference.compute_face_descriptor(list(chips))])
        agreement = f"max |diff| {np.abs(model.descriptor(chips) - expected).max():.1e}"
    for calls in (calls_one, calls_batch):
        for call in calls.values():
            call()                                               # warm-up
    return [row("descriptor x1", time_round_robin(calls_one, repeats), agreement=agreement),
            row(f"descriptor x{batch} (per chip)", time_round_robin(calls_batch, repeats),
                per=batch, agreement=agreement)]


def detector_rows(repeats):
    image = np.asarray(Image.fromarray(photographs()[0]).resize((640, 480), Image.BILINEAR))
    calls = {"scratchnet": lambda: detector.detect(image)}
    agreement = "-"
    if dlib is not None:
        reference = dlib.cnn_face_detection_model_v1(str(find_model_file("detector")))
        calls["dlib"] = lambda: reference(image)
        theirs = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom())
                  for d in reference(image)]
        ours = [tuple(box) for box in detector.detect(image)]
        agreement = f"{len(ours)} boxes, {'same as' if ours == theirs else 'DIFFERENT from'} dlib's"
    for call in calls.values():
        call()
    return [row("detect 640x480", time_round_robin(calls, repeats), agreement=agreement)]


def threads_note():
    """scratchnet's thread counts and dlib's: the peers do not run on the same number of cores."""
    line = threads_line(scratchnet_threads(), None)
    if dlib is None:
        return line
    if getattr(dlib, "DLIB_USE_BLAS", True) or getattr(dlib, "DLIB_USE_CUDA", False):
        return f"{line}; dlib built with BLAS or CUDA: its threads are its BLAS's"
    return f"{line}; dlib 1 (built without BLAS or CUDA: its networks run on one core)"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dlib_faces",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=positive_int, default=7,
                        help="timed calls per peer and case (default 7)")
    parser.add_argument("--batch", type=positive_int, default=16,
                        help="chips in the batched descriptor case (default 16)")
    args = parser.parse_args(argv)
    print(threads_note())
    if dlib is None:
        print("dlib is not installed: scratchnet alone, no ratios", file=sys.stderr)
    compile_s = first_call_seconds(lambda: detector.detect(np.zeros((64, 64, 3), np.uint8)))
    print(f"first call (Numba compile or cache load, model load): {compile_s:.2f} s",
          file=sys.stderr)
    rows = loading_rows(args.repeats) + descriptor_rows(args.repeats, args.batch)
    rows += detector_rows(args.repeats)
    print(markdown_table(["case", "scratchnet ms", "dlib ms", "x dlib", "agreement"], rows,
                         ["<", ">", ">", ">", "<"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
