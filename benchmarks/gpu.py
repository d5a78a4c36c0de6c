"""The device check of the GPU kernels: the CUDA tests for real, then two timings against PyTorch.

    python -m benchmarks.gpu [--size 512] [--batch 64] [--repeats 5] [--json PATH]
                             [--skip-tests]

On a machine with an NVIDIA GPU, numba-cuda and a CUDA build of PyTorch:

1. runs tests/test_cuda_kernels.py and tests/test_cuda_device.py in a child
   pytest; on a GPU they run every kernel for real against its CPU twin;
2. times one VGG19 style-transfer iteration at size x size (the iteration of
   benchmarks/style.py: the forward pass of G through conv1_1 ... conv5_1, J
   with content layer conv4_2 and style layers conv1_1 ... conv5_1, and the
   backward pass to dJ/dG), scratchnet on "cuda" against PyTorch on the
   same GPU, with the same random weights and images;
3. times one face-encoder training step: a small conv encoder (four 3x3
   convolutions with max pooling, 128-d L2-normalised embeddings) on a batch
   of synthetic faces, the batch-hard triplet loss (mining included) and an
   Adam step, against the same step written in PyTorch;

then prints a Markdown table and writes the figures to JSON. PyTorch runs in
float32 with TF32 off (torch.backends.cuda.matmul.allow_tf32 and
torch.backends.cudnn.allow_tf32 False), so both peers compute fp32 to fp32.
Each peer is called once untimed (that call holds Numba's compilation of the
CUDA kernels, reported as "first call s"), then timed round-robin; every call
ends by copying its result to the host, which waits for the GPU. One run
takes well under 5 minutes on a data-centre GPU.

The functions that build the iterations take a `device` so that tests can
check, on the CPU, that the scratchnet and PyTorch versions compute the same
thing (tests/test_gpu_harness.py).
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

import scratchnet.functional as F
from scratchnet import Tensor, nn, no_grad, optim, style
from scratchnet.device import to_device
from scratchnet.models import vgg19

from ._harness import markdown_table, max_relative_error, summarize, time_round_robin
from .style import ALPHA, BETA, CONTENT_LAYER, POOL_AFTER, STYLE_LAYERS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUDA_TESTS = ("tests/test_cuda_kernels.py", "tests/test_cuda_device.py")
EMBEDDING = 128
MARGIN = 0.2
LEARNING_RATE = 1e-3


# ------------------------------------------------------------------ the tests

def cuda_test_command():
    """The child pytest that runs the CUDA test modules."""
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *CUDA_TESTS]


def run_cuda_tests():
    """Run the CUDA tests; returns {"returncode", "seconds", "summary"}."""
    start = time.perf_counter()
    done = subprocess.run(cuda_test_command(), cwd=ROOT, capture_output=True, text=True)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return {"returncode": done.returncode, "seconds": time.perf_counter() - start,
            "summary": lines[-1] if lines else "", "tail": "\n".join(lines[-40:])}


# ------------------------------------------------- the style-transfer iteration

def scratchnet_style_iteration(model, content, style_image, device):
    """A closure G -> dJ/dG (NumPy) computing on `device`; `model` is already there."""
    layers = (CONTENT_LAYER,) + STYLE_LAYERS
    # the style image's Gram matrices once, before the iterations, as `scratchnet
    # style`, benchmarks/style.py and the PyTorch peer below do
    with no_grad():
        a_C = model.features(Tensor(content, device=device), [CONTENT_LAYER])[CONTENT_LAYER]
        G_S = {name: style.scaled_gram(a) for name, a in
               model.features(Tensor(style_image, device=device), STYLE_LAYERS).items()}
    weights = [(name, 1 / len(STYLE_LAYERS)) for name in STYLE_LAYERS]

    def iteration(G):
        G = Tensor(G, requires_grad=True, device=device)
        a_G = model.features(G, layers)
        J = style.total_cost(style.content_cost(a_C, a_G[CONTENT_LAYER]),
                             style.style_cost_from_grams(G_S, a_G, weights), ALPHA, BETA)
        J.backward()
        return to_device(G.grad, "cpu")

    return iteration


def torch_style_iteration(torch, params, content, style_image, device):
    """The same iteration written directly in PyTorch, on `device` ("cpu" or "cuda")."""
    functional = torch.nn.functional
    names = list(dict.fromkeys(name.rsplit(".", 1)[0] for name in params))
    weights = {name: (torch.from_numpy(params[f"{name}.weight"]).to(device),
                      torch.from_numpy(params[f"{name}.bias"]).to(device)) for name in names}

    def features(x, wanted):
        out, deepest = {}, max(names.index(name) for name in wanted)
        for i, name in enumerate(names[: deepest + 1]):
            x = functional.relu(functional.conv2d(x, *weights[name], padding=1))
            if name in wanted:
                out[name] = x
            if name in POOL_AFTER and i != deepest:
                x = functional.max_pool2d(x, 2)
        return out

    def scaled_gram(a):
        n, c = a.shape[:2]
        flat = a.reshape(n, c, -1)
        return torch.bmm(flat, flat.transpose(1, 2)) / (2 * flat.shape[2] * c)

    with torch.no_grad():
        a_C = features(torch.from_numpy(content).to(device), [CONTENT_LAYER])[CONTENT_LAYER]
        G_S = {name: scaled_gram(a) for name, a in
               features(torch.from_numpy(style_image).to(device), STYLE_LAYERS).items()}

    def iteration(G):
        G = torch.from_numpy(G).to(device).requires_grad_(True)
        a_G = features(G, (CONTENT_LAYER,) + STYLE_LAYERS)
        J_content = 0.5 * ((a_C - a_G[CONTENT_LAYER]) ** 2).sum()
        J_style = sum(((G_S[k] - scaled_gram(a_G[k])) ** 2).sum() / len(STYLE_LAYERS)
                      for k in STYLE_LAYERS)
        (ALPHA * J_content + BETA * J_style).backward()
        return G.grad.cpu().numpy()

    return iteration


def style_peers(torch, size, device, widths=None):
    """{peer: closure} for the style iteration at size x size, and the G they are called on."""
    rng = np.random.default_rng(0)
    options = {} if widths is None else {"widths": widths}
    model = vgg19(weights="random", pooling="max", note=None, **options)
    params = model.state_dict()
    content, style_image, G = (rng.random((1, 3, size, size), dtype=np.float32)
                               for _ in range(3))
    iterations = {"scratchnet": scratchnet_style_iteration(model.to(device), content,
                                                           style_image, device)}
    if torch is not None:
        iterations["torch"] = torch_style_iteration(torch, params, content, style_image, device)
    return {name: (lambda it=it: it(G)) for name, it in iterations.items()}


# ---------------------------------------------------------- the face training step

def face_encoder(widths=(32, 64, 128, 128), size=64):
    """The encoder of the benchmark: 3x3 conv, ReLU, 2x2 max pooling, four times, then Linear.

    An image of size x size becomes widths[-1] (size / 16)^2 features and a
    128-d embedding; the step normalises it to unit length, as FaceNet does.
    """
    nn.manual_seed(0)
    layers, channels = [], 3
    for width in widths:
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels = width
    layers += [nn.Flatten(), nn.Linear(channels * (size // 16) ** 2, EMBEDDING)]
    return nn.Sequential(*layers)


def scratchnet_face_step(encoder, images, labels, device):
    """A closure: one training step on `device` (forward, mining, loss, backward, Adam) -> J."""
    encoder.to(device)
    optimizer = optim.Adam(encoder.parameters(), lr=LEARNING_RATE)
    images = Tensor(images, device=device)

    def step():
        optimizer.zero_grad()
        loss, _ = F.batch_triplet_loss(F.normalize(encoder(images)), labels, alpha=MARGIN)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def torch_face_step(torch, params, widths, images, labels, device):
    """The same step in PyTorch, from the same initial weights `params` (a state_dict)."""
    layers, channels = [], 3
    for width in widths:
        layers += [torch.nn.Conv2d(channels, width, 3, padding=1), torch.nn.ReLU(),
                   torch.nn.MaxPool2d(2)]
        channels = width
    features = channels * (images.shape[-1] // 16) ** 2
    layers += [torch.nn.Flatten(), torch.nn.Linear(features, EMBEDDING)]
    model = torch.nn.Sequential(*layers).to(device)
    model.load_state_dict({name: torch.from_numpy(value) for name, value in params.items()})
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    x = torch.from_numpy(images).to(device)
    y = torch.from_numpy(labels).to(device)

    def step():
        optimizer.zero_grad()
        embeddings = torch.nn.functional.normalize(model(x))
        loss = torch_batch_hard_loss(torch, embeddings, y, MARGIN)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def torch_batch_hard_loss(torch, embeddings, labels, margin):
    """J = sum of max(d(A, P) - d(A, N) + margin, 0) over the batch-hard triplets."""
    anchors, positives, negatives = _batch_hard_triplets(torch, embeddings.detach(), labels)
    to_positive = ((embeddings[anchors] - embeddings[positives]) ** 2).sum(dim=1)
    to_negative = ((embeddings[anchors] - embeddings[negatives]) ** 2).sum(dim=1)
    return torch.relu(to_positive - to_negative + margin).sum()


def _batch_hard_triplets(torch, embeddings, labels):
    """The batch-hard rule of kernels.select_triplets: farthest positive, nearest negative."""
    squared = (embeddings ** 2).sum(dim=1)
    distances = (squared[:, None] + squared[None, :] - 2 * embeddings @ embeddings.T).clamp(min=0)
    distances.fill_diagonal_(0)
    same = labels[:, None] == labels[None, :]
    is_positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positives = distances.masked_fill(~is_positive, -1.0).argmax(dim=1)
    negatives = distances.masked_fill(same, float("inf")).argmin(dim=1)
    anchors = torch.nonzero(is_positive.any(dim=1) & (~same).any(dim=1)).flatten()
    return anchors, positives[anchors], negatives[anchors]


def face_peers(torch, images, labels, device, widths=(32, 64, 128, 128)):
    """{peer: closure} for the face training step on `images`, `labels`."""
    encoder = face_encoder(widths, images.shape[-1])
    params = encoder.state_dict()
    steps = {"scratchnet": scratchnet_face_step(encoder, images, labels, device)}
    if torch is not None:
        steps["torch"] = torch_face_step(torch, params, widths, images, labels, device)
    return steps


def face_batch(batch):
    """`batch` synthetic faces, 64 x 64, four pictures per person."""
    from scratchnet.face import synthetic_faces

    return synthetic_faces(batch // 4, 4, seed=0, size=64)


# ------------------------------------------------------------------ timing

def time_peers(name, calls, repeats):
    """Warm up and time each peer; returns one result dict per peer."""
    first_call, outputs = {}, {}
    for peer, call in calls.items():
        start = time.perf_counter()
        outputs[peer] = call()                              # compiles the kernels
        first_call[peer] = time.perf_counter() - start
    seconds = time_round_robin(calls, repeats)
    results = []
    for peer in calls:
        stats = summarize(seconds[peer])
        results.append({
            "case": name, "peer": peer, "median_ms": stats["median_ms"],
            "iqr_ms": stats["iqr_ms"], "first_call_s": first_call[peer],
            "x_torch": (stats["median_ms"] / summarize(seconds["torch"])["median_ms"]
                        if "torch" in calls else None),
            "max_rel_error": (max_relative_error(outputs[peer], outputs["torch"])
                              if "torch" in calls and peer != "torch" else None),
        })
    return results


def report(results, tests=None):
    """The Markdown table of `results` (and the test run's summary line)."""
    rows = [[r["case"], r["peer"], f"{r['median_ms']:.1f}", f"{r['iqr_ms']:.1f}",
             "-" if r["x_torch"] is None else f"{r['x_torch']:.2f}",
             f"{r['first_call_s']:.1f}",
             "reference" if r["max_rel_error"] is None else f"{r['max_rel_error']:.1e}"]
            for r in results]
    table = markdown_table(
        ["case", "peer", "median ms", "IQR ms", "x torch", "first call s", "max rel err"],
        rows, ["<", "<", ">", ">", ">", ">", "<"])
    if tests is None:
        return table
    verdict = "passed" if tests["returncode"] == 0 else "FAILED"
    return f"CUDA tests {verdict} in {tests['seconds']:.0f} s: {tests['summary']}\n\n{table}"


def gpu_problem(cuda):
    """Why this machine cannot run the check (None when it can)."""
    if not cuda.is_available():
        return "numba.cuda finds no GPU"
    if type(cuda.get_current_device()).__name__ == "FakeCUDADevice":
        return "NUMBA_ENABLE_CUDASIM is set: the CUDA simulator is far too slow for timings"
    return None


def _device_name(cuda):
    name = cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512, help="style image side (default 512)")
    parser.add_argument("--batch", type=int, default=64, help="faces per training step")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--skip-tests", action="store_true", help="time only")
    args = parser.parse_args(argv)
    try:
        from numba import cuda
    except ImportError:
        print("benchmarks.gpu needs numba-cuda: pip install 'scratchnet[gpu]'", file=sys.stderr)
        return 2
    problem = gpu_problem(cuda)
    if problem:
        print(f"benchmarks.gpu needs an NVIDIA GPU: {problem}", file=sys.stderr)
        return 2
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    else:
        print("  no CUDA build of PyTorch: timing scratchnet alone", file=sys.stderr)
        torch = None

    tests = None if args.skip_tests else run_cuda_tests()
    print(f"  style iteration {args.size}x{args.size} ...", file=sys.stderr)
    results = time_peers(f"VGG19 style {args.size}x{args.size}",
                         style_peers(torch, args.size, "cuda"), args.repeats)
    print(f"  face training step, batch {args.batch} ...", file=sys.stderr)
    images, labels = face_batch(args.batch)
    results += time_peers(f"face step, batch {args.batch}",
                          face_peers(torch, images, labels, "cuda"), args.repeats)
    print(report(results, tests))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"device": _device_name(cuda), "size": args.size, "batch": args.batch,
                       "tests": tests, "results": results}, out, indent=2)
    return 0 if tests is None or tests["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
