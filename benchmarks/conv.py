"""scratchnet's kernels side by side with PyTorch (CPU) and a plain NumPy baseline.

    python -m benchmarks.conv [--quick] [--only NAME] [--repeats N] [--json PATH]

Cases, all float32, all in this one process:

  vgg19     the VGG19 convolutions conv1_1 .. conv5_1 (3x3, pad 1, ReLU after
            each, 2x2 average pooling between blocks) on one 256x256 image:
            forward, then the gradient of sum(dy * a^[conv5_1]) with respect
            to the image, the weights fixed -- one iteration of neural style
            transfer
  conv2d    forward, backward-input and backward-weight separately, at
            (N=8, 64->64, 56x56) and (N=8, 128->128, 28x28), 3x3, pad 1
  conv1d    the same three passes at (N=32, 16->32, L=1000, k=5)
  conv3d    the same three passes at (N=4, 16->32, 32^3, k=3, pad 1)
  gram      Gram matrix forward + backward of (1, 512, 64, 64)
  triplet   batch-hard triplet loss forward + backward on 512 embeddings of
            128 (128 identities x 4 pictures)
  startup   first-call compile time and warm start of the kernels, each in a
            fresh process (see benchmarks/startup.py), and `scratchnet check`

Peers: "scratchnet" calls `kernels` directly (ReLU as np.maximum and a mask);
"torch" is PyTorch's CPU build, when installed, with as many threads as
scratchnet's convolutions have workers (kernels._workers.N_WORKERS, one per
core the process may use; the header line gives every count, and warns when
they differ); "numpy" is benchmarks/numpy_baseline.py. Each case first checks, outside
the timing, that the peers' outputs agree with PyTorch's (or, without
PyTorch, the NumPy baseline's). benchmarks/README.md explains every column.
"""

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

import kernels

from . import NUMPY_LOADED_FIRST, numpy_baseline
from scratchnet.commands import positive_int

from ._harness import (
    MEMORY_METHOD,
    MIB,
    call_with_peak_memory,
    markdown_table,
    max_relative_error,
    scratchnet_threads,
    summarize,
    threads_line,
    time_round_robin,
)

try:
    import torch
    import torch.nn.functional as torch_F
except ImportError:
    torch = None

REPO_ROOT = Path(__file__).resolve().parent.parent
PEERS = ("scratchnet", "torch", "numpy")
AGREEMENT_TOLERANCE = 1e-3          # max relative error tolerated in float32
# A deep ReLU stack in float32 flips a few ReLU masks where a pre-activation
# lies within round-off of 0; each flip changes the gradient near one pixel.
# In vgg19 four such flips put the max relative error near 1e-2 (1e-3 in
# the 2-norm) while every activation agrees to 1e-6; a wrong kernel gives ~1.
VGG_TOLERANCE = 5e-2
REPEATS = {"full": (15, 5), "quick": (5, 2)}   # (ordinary case, vgg19)
CHECK_TIMEOUT_S = 300


@dataclass
class Case:
    name: str
    calls: dict               # peer -> zero-argument callable
    flops: float = None       # floating-point operations per call, None if not meaningful
    heavy: bool = False       # gets fewer repeats
    tolerance: float = AGREEMENT_TOLERANCE   # largest max relative error that counts as agreeing


def _normal(rng, shape, scale=1.0):
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)


def _to_torch(*arrays):
    return [torch.from_numpy(a) for a in arrays]


def conv_flops(x_shape, w_shape, padding):
    """2 * multiply-adds of one pass: 2 N F C_g k P (each backward pass the same)."""
    y_shape = kernels.conv_output_shape(x_shape, w_shape, padding=padding)
    return 2.0 * x_shape[0] * np.prod(w_shape, dtype=float) * np.prod(y_shape[2:], dtype=float)


# ------------------------------------------------------------------- (a) vgg19

POOL = "pool"
VGG19_TO_CONV5_1 = [            # (input channels, output channels) per conv
    (3, 64), (64, 64), POOL,
    (64, 128), (128, 128), POOL,
    (128, 256), (256, 256), (256, 256), (256, 256), POOL,
    (256, 512), (512, 512), (512, 512), (512, 512), POOL,
    (512, 512),
]


def vgg_input_gradient(ops, image, layers, dy_top):
    """d sum(dy_top * a^[conv5_1]) / d image; `ops` is kernels or numpy_baseline."""
    tape = []                                         # (layer, its input's shape, its output)
    a = image
    for layer in layers:
        x_shape = a.shape
        if layer is POOL:
            a = ops.avg_pool_forward(a, 2)
        else:
            a = np.maximum(ops.conv_forward(a, *layer, padding=1), 0)
        tape.append((layer, x_shape, a))
    da = dy_top
    for layer, x_shape, a in reversed(tape):
        if layer is POOL:
            da = ops.avg_pool_backward(da, x_shape, 2)
        else:
            da = ops.conv_backward_input(da * (a > 0), layer[0], x_shape, 1, 1, 1, 1)
    return da


def torch_vgg_input_gradient(image, layers, dy_top):
    """The same gradient by PyTorch's autograd, on the image only."""
    x = image.detach().requires_grad_()
    a = x
    for layer in layers:
        a = torch_F.avg_pool2d(a, 2) if layer is POOL else torch_F.relu(torch_F.conv2d(a, *layer, padding=1))
    (dx,) = torch.autograd.grad(a, x, grad_outputs=dy_top)
    return dx


def vgg19_layers(rng):
    """POOL or (w, b) per layer, He-initialised: trained weights would time the same."""
    layers = []
    for item in VGG19_TO_CONV5_1:
        if item is POOL:
            layers.append(POOL)
            continue
        c_in, c_out = item
        w = _normal(rng, (c_out, c_in, 3, 3), np.sqrt(2 / (9 * c_in)))
        layers.append((w, _normal(rng, (c_out,), 0.01)))
    return layers


def vgg19_cases(rng):
    image = rng.random((1, 3, 256, 256), dtype=np.float32)
    layers = vgg19_layers(rng)
    dy_top = _normal(rng, (1, 512, 16, 16))
    flops, size = 0.0, 256
    for layer in layers:
        if layer is POOL:
            size //= 2
        else:                                          # forward + backward-input
            flops += 2 * conv_flops((1, layer[0].shape[1], size, size), layer[0].shape, 1)
    calls = {
        "scratchnet": lambda: vgg_input_gradient(kernels, image, layers, dy_top),
        "numpy": lambda: vgg_input_gradient(numpy_baseline, image, layers, dy_top),
    }
    if torch is not None:
        torch_layers = [layer if layer is POOL else _to_torch(*layer) for layer in layers]
        image_t, dy_top_t = _to_torch(image, dy_top)
        calls["torch"] = lambda: torch_vgg_input_gradient(image_t, torch_layers, dy_top_t)
    yield Case("vgg19 conv1_1..conv5_1 1x3x256x256 fwd+bwd-input", calls, flops, heavy=True,
               tolerance=VGG_TOLERANCE)


# ------------------------------------------------------ (b), (c) conv passes

def conv_pass_cases(rng, x_shape, w_shape, padding):
    """Forward, backward-input and backward-weight of one convolution, as three cases."""
    n_spatial = len(x_shape) - 2
    x = _normal(rng, x_shape)
    w = _normal(rng, w_shape, 1 / np.sqrt(np.prod(w_shape[1:])))
    dy = _normal(rng, kernels.conv_output_shape(x_shape, w_shape, padding=padding))
    geometry = (1, padding, 1, 1)                      # stride, padding, dilation, groups
    flops = conv_flops(x_shape, w_shape, padding)
    spatial = "x".join(map(str, x_shape[2:]))
    label = (f"conv{n_spatial}d N={x_shape[0]} {w_shape[1]}->{w_shape[0]} {spatial} "
             f"k{w_shape[2]} p{padding}")
    passes = {
        "fwd": {
            "scratchnet": lambda: kernels.conv_forward(x, w, None, *geometry),
            "numpy": lambda: numpy_baseline.conv_forward(x, w, None, *geometry),
        },
        "bwd-input": {
            "scratchnet": lambda: kernels.conv_backward_input(dy, w, x.shape, *geometry),
            "numpy": lambda: numpy_baseline.conv_backward_input(dy, w, x.shape, *geometry),
        },
        "bwd-weight": {
            "scratchnet": lambda: kernels.conv_backward_weight(dy, x, w.shape, *geometry),
            "numpy": lambda: numpy_baseline.conv_backward_weight(dy, x, w.shape, *geometry),
        },
    }
    if torch is not None:
        for name, call in _torch_conv_passes(x, w, dy, padding).items():
            passes[name]["torch"] = call
    for name, calls in passes.items():
        yield Case(f"{label} {name}", calls, flops)


def _torch_conv_passes(x, w, dy, padding):
    """PyTorch's conv{1,2,3}d forward and its two backward passes, by name."""
    n_spatial = x.ndim - 2
    x_t, w_t, dy_t = _to_torch(x, w, dy)
    forward = getattr(torch_F, f"conv{n_spatial}d")
    ones, zeros = [1] * n_spatial, [0] * n_spatial

    def backward(output_mask):
        # convolution_backward(dy, x, w, bias_sizes, stride, padding, dilation,
        #                      transposed, output_padding, groups, output_mask)
        # -> (dx, dw, db), None where the mask is False
        return torch.ops.aten.convolution_backward(
            dy_t, x_t, w_t, None, ones, [padding] * n_spatial, ones, False, zeros, 1, output_mask)

    return {
        "fwd": lambda: forward(x_t, w_t, None, 1, padding),
        "bwd-input": lambda: backward([True, False, False])[0],
        "bwd-weight": lambda: backward([False, True, False])[1],
    }


def conv2d_cases(rng):
    yield from conv_pass_cases(rng, (8, 64, 56, 56), (64, 64, 3, 3), 1)
    yield from conv_pass_cases(rng, (8, 128, 28, 28), (128, 128, 3, 3), 1)


def conv1d_cases(rng):
    yield from conv_pass_cases(rng, (32, 16, 1000), (32, 16, 5), 0)


def conv3d_cases(rng):
    yield from conv_pass_cases(rng, (4, 16, 32, 32, 32), (32, 16, 3, 3, 3), 1)


# ---------------------------------------------------------------- (d) gram

def torch_gram_and_gradient(a, dG):
    a = a.detach().requires_grad_()
    a_flat = a.flatten(2)                              # (N, C, H, W) -> (N, C, P)
    G = a_flat @ a_flat.transpose(1, 2)                # (N, C, P) @ (N, P, C) -> (N, C, C)
    (da,) = torch.autograd.grad(G, a, grad_outputs=dG)
    return G.detach(), da


def gram_cases(rng):
    a = _normal(rng, (1, 512, 64, 64))
    dG = _normal(rng, (1, 512, 512))
    n_batch, channels = a.shape[:2]
    flops = 4.0 * n_batch * channels * channels * np.prod(a.shape[2:])   # one product each way
    calls = {
        "scratchnet": lambda: (kernels.gram(a), kernels.gram_backward(dG, a)),
        "numpy": lambda: (numpy_baseline.gram(a), numpy_baseline.gram_backward(dG, a)),
    }
    if torch is not None:
        a_t, dG_t = _to_torch(a, dG)
        calls["torch"] = lambda: torch_gram_and_gradient(a_t, dG_t)
    yield Case("gram 1x512x64x64 fwd+bwd", calls, flops)


# ------------------------------------------------------------- (d) triplet

def scratchnet_batch_hard(E, labels, alpha):
    """(J, dJ/dE): distances, batch-hard selection, the loss, gradients gathered back."""
    D = kernels.pairwise_sq_distances(E)
    a, p, n = kernels.select_triplets(labels, D, "batch_hard", alpha)
    fa, fp, fn = E[a], E[p], E[n]                      # (T, d) each
    L = kernels.triplet_loss(fa, fp, fn, alpha)
    grads = kernels.triplet_loss_backward(np.ones_like(L), fa, fp, fn, alpha)
    dE = np.zeros_like(E)
    for rows, grad in zip((a, p, n), grads):
        np.add.at(dE, rows, grad)                     # a row can serve in many triplets
    return L.sum(), dE


def torch_batch_hard(E, labels, alpha):
    """The same loss by PyTorch's autograd through the distance matrix."""
    E = E.detach().requires_grad_()
    sq_norms = (E * E).sum(dim=1)                      # (N,)
    D = (sq_norms[:, None] + sq_norms[None, :] - 2 * E @ E.T).clamp_min(0)   # (N, N)
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool)
    d_ap = D.masked_fill(~positive, -torch.inf).amax(dim=1)    # farthest positive
    d_an = D.masked_fill(same, torch.inf).amin(dim=1)          # nearest negative
    J = torch.relu(d_ap - d_an + alpha).sum()
    (dE,) = torch.autograd.grad(J, E)
    return J.detach(), dE


def triplet_cases(rng, alpha=0.2):
    E = _normal(rng, (512, 128))
    E /= np.linalg.norm(E, axis=1, keepdims=True)      # unit embeddings, as FaceNet's
    labels = np.repeat(np.arange(128), 4)
    calls = {
        "scratchnet": lambda: scratchnet_batch_hard(E, labels, alpha),
        "numpy": lambda: numpy_baseline.batch_hard_triplet_loss(E, labels, alpha),
    }
    if torch is not None:
        E_t, labels_t = _to_torch(E, labels)
        calls["torch"] = lambda: torch_batch_hard(E_t, labels_t, alpha)
    yield Case("triplet batch-hard 512x128 (128 ids x 4) fwd+bwd", calls)


CASE_GROUPS = [vgg19_cases, conv2d_cases, conv1d_cases, conv3d_cases, gram_cases, triplet_cases]


# ---------------------------------------------------------------- running

def run_case(case, repeats):
    """One record per peer: times, GFLOP/s, ratio to torch, peak memory, agreement."""
    for call in case.calls.values():
        call()                                         # warm-up
    outputs, peaks = {}, {}
    for peer, call in case.calls.items():
        outputs[peer], peaks[peer] = call_with_peak_memory(call)
    reference = "torch" if "torch" in outputs else "numpy"
    errors = {peer: max_relative_error(out, outputs[reference]) for peer, out in outputs.items()}
    del outputs
    seconds = time_round_robin(case.calls, repeats)
    stats = {peer: summarize(s) for peer, s in seconds.items()}
    torch_ms = stats["torch"]["median_ms"] if "torch" in stats else None
    return [
        dict(
            case=case.name, peer=peer, **stats[peer],
            gflops=case.flops / stats[peer]["median_ms"] / 1e6 if case.flops else None,
            ratio_to_torch=stats[peer]["median_ms"] / torch_ms if torch_ms else None,
            peak_mib=peaks[peer] / MIB if peaks[peer] is not None else None,
            max_rel_err=errors[peer], reference=reference, tolerance=case.tolerance,
        )
        for peer in PEERS if peer in case.calls
    ]


def selected_cases(only):
    """Every case whose name contains one of the `only` strings (all when None)."""
    rng = np.random.default_rng(0)
    for group in CASE_GROUPS:
        for case in group(rng):
            if only is None or any(name.lower() in case.name.lower() for name in only):
                yield case


def run_cases(only, repeats, heavy_repeats):
    records = []
    for case in selected_cases(only):
        print(f"  {case.name} ...", file=sys.stderr, flush=True)
        records.extend(run_case(case, heavy_repeats if case.heavy else repeats))
    return records


# ----------------------------------------------------------------- startup

def run_startup_probe(cache_dir):
    """benchmarks.startup in a fresh process on `cache_dir`: (its JSON, wall seconds)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "benchmarks.startup"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1]), time.perf_counter() - start


def time_scratchnet_check():
    """Wall seconds of `scratchnet check` on an empty, then on the filled Numba cache."""
    script = shutil.which("scratchnet", path=os.path.dirname(sys.executable)) or shutil.which("scratchnet")
    if importlib.util.find_spec("scratchnet.cli") is None or script is None:
        return {"skipped": "the scratchnet command (scratchnet.cli) does not exist yet"}
    runs = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        for label in ("cold", "warm"):
            start = time.perf_counter()
            try:
                done = subprocess.run([script, "check"], env=dict(os.environ, NUMBA_CACHE_DIR=cache_dir),
                                      capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                return {"skipped": f"scratchnet check ran past {CHECK_TIMEOUT_S} s"}
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                return {"skipped": f"scratchnet check failed (exit {done.returncode}): {last}"}
            runs[f"{label}_s"] = time.perf_counter() - start
    return runs


def measure_startup():
    with tempfile.TemporaryDirectory() as cache_dir:
        cold, cold_wall = run_startup_probe(cache_dir)
        warm, warm_wall = run_startup_probe(cache_dir)
    kernels_rows = [
        dict(kernel=name, cold_first_ms=first * 1e3, cold_second_ms=second * 1e3,
             compile_ms=max(first - second, 0.0) * 1e3,   # noise can make it dip below 0
             warm_first_ms=warm_first * 1e3)
        for (name, first, second), (_, warm_first, _) in zip(cold["calls"], warm["calls"])
    ]
    return {
        "kernels": kernels_rows,
        "import_cold_s": cold["import_s"], "import_warm_s": warm["import_s"],
        "process_cold_s": cold_wall, "process_warm_s": warm_wall,
        "scratchnet_check": time_scratchnet_check(),
    }


# ---------------------------------------------------------------- printing

def _agrees(record):
    return record["max_rel_err"] <= record["tolerance"]         # False for NaN


def _fmt(value, spec, missing="-"):
    return missing if value is None else format(value, spec)


def results_table(records):
    headers = ["case", "peer", "median ms", "IQR ms", "min ms", "GFLOP/s", "x torch",
               "peak MiB", "max rel err"]
    rows = []
    for r in records:
        if r["peer"] == r["reference"]:
            error = "reference"
        else:
            flag = "" if _agrees(r) else " (!)"
            error = f"{r['max_rel_err']:.1e}{flag}"
        rows.append([r["case"], r["peer"], f"{r['median_ms']:.2f}", f"{r['iqr_ms']:.2f}",
                     f"{r['min_ms']:.2f}", _fmt(r["gflops"], ".1f"), _fmt(r["ratio_to_torch"], ".2f"),
                     _fmt(r["peak_mib"], ".1f"), error])
    return markdown_table(headers, rows, align="<<>>>>>><")


def startup_table(startup):
    headers = ["kernel", "cold 1st call ms", "cold 2nd call ms", "compile ms", "warm 1st call ms"]
    rows = [[k["kernel"], f"{k['cold_first_ms']:.1f}", f"{k['cold_second_ms']:.2f}",
             f"{k['compile_ms']:.1f}", f"{k['warm_first_ms']:.1f}"] for k in startup["kernels"]]
    total_compile = sum(k["compile_ms"] for k in startup["kernels"]) / 1e3
    total_warm = sum(k["warm_first_ms"] for k in startup["kernels"]) / 1e3
    check = startup["scratchnet_check"]
    check_line = (check["skipped"] if "skipped" in check
                  else f"{check['cold_s']:.1f} s with an empty cache, {check['warm_s']:.1f} s warm")
    return "\n".join([
        markdown_table(headers, rows, align="<>>>>"),
        "",
        f"- compile, all kernels (sum of 1st - 2nd call, empty cache): {total_compile:.1f} s",
        f"- warm start, `import kernels` + first call of each kernel: "
        f"{startup['import_warm_s'] + total_warm:.2f} s "
        f"(import {startup['import_warm_s']:.2f} s; cold import {startup['import_cold_s']:.2f} s)",
        f"- whole fresh process, interpreter start to last first call: "
        f"{startup['process_cold_s']:.1f} s cold, {startup['process_warm_s']:.1f} s warm",
        f"- `scratchnet check`: {check_line}",
    ])


def environment():
    info = {
        "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(), "cpus": os.cpu_count(),
        "scratchnet_threads": scratchnet_threads(),
        "machine": platform.machine(), "memory_method": MEMORY_METHOD,
        "torch": torch.__version__ if torch is not None else None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "openblas_thread_timeout": (None if NUMPY_LOADED_FIRST
                                    else os.environ["OPENBLAS_THREAD_TIMEOUT"]),
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
    }
    try:
        info["numba_threading_layer"] = numba.threading_layer()
    except ValueError:                                 # no parallel kernel has run yet
        info["numba_threading_layer"] = None
    return info


def environment_line(info, repeats, heavy_repeats, timed_cases=True):
    """The header: versions, thread counts, and (when cases were timed) how they were timed."""
    torch_part = f"PyTorch {info['torch']}" if info["torch"] else "PyTorch not installed"
    spin = (f"OPENBLAS_THREAD_TIMEOUT={info['openblas_thread_timeout']}"
            if info["openblas_thread_timeout"] else "OpenBLAS spin left as loaded (NumPy came first)")
    timing = (f"median of {repeats} ({heavy_repeats} for vgg19) round-robin calls after one "
              f"warm-up; peak memory by {info['memory_method'] or 'nothing (unavailable)'}; "
              if timed_cases else "")
    return (f"float32; {info['cpus']} CPUs ({info['machine']}); Python {info['python']}, "
            f"NumPy {info['numpy']}, Numba {info['numba']} ({info['numba_threading_layer']} "
            f"layer), {torch_part}; "
            f"{threads_line(info['scratchnet_threads'], info['torch_threads'])}; {timing}"
            f"{spin}; OMP_WAIT_POLICY={info['omp_wait_policy']}.")


# -------------------------------------------------------------------- main

def parse_arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conv", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats: noisier, about twice as fast")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only cases whose name contains NAME (repeatable); "
                             "'startup' selects the compile and start-up timings")
    parser.add_argument("--repeats", type=positive_int,
                        help="timed calls per peer, >= 1 (vgg19 gets a third, at least 1)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_arguments(argv)
    repeats, heavy_repeats = REPEATS["quick" if args.quick else "full"]
    if args.repeats is not None:
        repeats, heavy_repeats = args.repeats, max(1, args.repeats // 3)
    if torch is not None:                  # as many threads as scratchnet's convolutions
        torch.set_num_threads(scratchnet_threads()["conv_workers"])
    wants_startup = args.only is None or any(name.lower() in "startup" for name in args.only)

    print("running cases:", file=sys.stderr)
    records = run_cases(args.only, repeats, heavy_repeats)
    startup = None
    if wants_startup:
        print("  startup (two fresh processes) ...", file=sys.stderr, flush=True)
        startup = measure_startup()

    if not records and startup is None:
        print(f"no case name contains any of {args.only}", file=sys.stderr)
        return 2
    info = environment()
    print(environment_line(info, repeats, heavy_repeats, timed_cases=bool(records)) + "\n")
    if records:
        print(results_table(records) + "\n")
    if startup:
        print(startup_table(startup) + "\n")
    disagreeing = {r["case"]: r["tolerance"] for r in records if not _agrees(r)}
    for name, tolerance in disagreeing.items():
        print(f"WARNING: the peers disagree on {name} (max relative error above "
              f"{tolerance:g}, marked (!))")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"environment": info, "repeats": repeats, "heavy_repeats": heavy_repeats,
             "results": records, "startup": startup}, indent=2, default=float))
    return 1 if disagreeing else 0


if __name__ == "__main__":
    sys.exit(main())
