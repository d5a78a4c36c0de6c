"""One style-transfer iteration, scratchnet against PyTorch, at 256x256 and 512x512.

    python -m benchmarks.style [--sizes 256 512] [--repeats N]

An iteration is what `scratchnet style` does per step: the VGG19 forward
pass of the generated image G through conv1_1 ... conv5_1 (content layer
conv4_2, style layers conv1_1 ... conv5_1 with equal lambda), the cost
J(G) = alpha J_content + beta J_style, and the backward pass to dJ/dG. Both
peers use the same random weights, images and costs in float32; scratchnet
runs its autograd (scratchnet.models.vgg19 and scratchnet.style), PyTorch
its own. Peak memory is the resident-set high-water mark of one iteration.
PyTorch runs on as many threads as scratchnet's convolutions have workers
(one per core the process may use); the first line of the output gives the
counts.
"""

import argparse
import sys

import numpy as np

from scratchnet import style
from scratchnet.commands import int_at_least, positive_int
from scratchnet.models import vgg19
from scratchnet.models.vgg import smallest_input
from scratchnet.tensor import Tensor, no_grad

from ._harness import (
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
except ImportError:
    torch = None

CONTENT_LAYER = "conv4_2"
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
ALPHA, BETA = 10.0, 40.0
POOL_AFTER = {"conv1_2", "conv2_2", "conv3_4", "conv4_4"}


def scratchnet_iteration(model, content, style_image):
    """A closure: one forward and backward pass of J(G), returning dJ/dG."""
    layers = (CONTENT_LAYER,) + STYLE_LAYERS
    # as `scratchnet style` does (and the PyTorch peer): the style image's
    # Gram matrices once, before the iterations
    with no_grad():
        a_C = model.features(content, [CONTENT_LAYER])[CONTENT_LAYER]
        G_S = {name: style.scaled_gram(a) for name, a in
               model.features(style_image, STYLE_LAYERS).items()}
    weights = [(name, 1 / len(STYLE_LAYERS)) for name in STYLE_LAYERS]

    def iteration(G):
        G = Tensor(G, requires_grad=True)
        a_G = model.features(G, layers)
        J = style.total_cost(style.content_cost(a_C, a_G[CONTENT_LAYER]),
                             style.style_cost_from_grams(G_S, a_G, weights), ALPHA, BETA)
        J.backward()
        return G.grad

    return iteration


def torch_iteration(params, content, style_image):
    """The same iteration written directly in PyTorch."""
    F = torch.nn.functional
    names = list(dict.fromkeys(name.rsplit(".", 1)[0] for name in params))
    weights = {name: (torch.from_numpy(params[f"{name}.weight"]),
                      torch.from_numpy(params[f"{name}.bias"])) for name in names}

    def features(x, wanted):
        out, deepest = {}, max(names.index(name) for name in wanted)
        for i, name in enumerate(names[: deepest + 1]):
            x = F.relu(F.conv2d(x, *weights[name], padding=1))
            if name in wanted:
                out[name] = x
            if name in POOL_AFTER and i != deepest:
                x = F.max_pool2d(x, 2)
        return out

    def scaled_gram(a):
        n, c = a.shape[:2]
        flat = a.reshape(n, c, -1)
        return torch.bmm(flat, flat.transpose(1, 2)) / (2 * flat.shape[2] * c)

    with torch.no_grad():
        a_C = features(torch.from_numpy(content), [CONTENT_LAYER])[CONTENT_LAYER]
        G_S = {k: scaled_gram(v) for k, v in features(torch.from_numpy(style_image), STYLE_LAYERS).items()}

    def iteration(G):
        G = torch.from_numpy(G).requires_grad_(True)
        a_G = features(G, (CONTENT_LAYER,) + STYLE_LAYERS)
        J_content = 0.5 * ((a_C - a_G[CONTENT_LAYER]) ** 2).sum()
        J_style = sum(((G_S[k] - scaled_gram(a_G[k])) ** 2).sum() / len(STYLE_LAYERS)
                      for k in STYLE_LAYERS)
        (ALPHA * J_content + BETA * J_style).backward()
        return G.grad

    return iteration


def run(size, repeats):
    rng = np.random.default_rng(0)
    model = vgg19(weights="random", pooling="max", note=None)
    content, style_image, G = (rng.random((1, 3, size, size), dtype=np.float32) for _ in range(3))
    calls = {"scratchnet": (lambda it=scratchnet_iteration(model, content, style_image): it(G))}
    if torch is not None:
        params = {name: array for name, array in model.state_dict().items()}
        calls["torch"] = (lambda it=torch_iteration(params, content, style_image): it(G))
    results, peaks = {}, {}
    for name, call in calls.items():
        call()                                              # warm-up
        results[name], peaks[name] = call_with_peak_memory(call)
    seconds = time_round_robin(calls, repeats)
    rows = []
    for name in calls:
        stats = summarize(seconds[name])
        ratio = "-"
        if "torch" in calls:
            ratio = f"{stats['median_ms'] / summarize(seconds['torch'])['median_ms']:.2f}"
        memory_ratio = (f"{peaks[name] / peaks['torch']:.2f}" if "torch" in calls and peaks[name]
                        and peaks["torch"] else "-")
        error = ("reference" if name == "torch" or "torch" not in calls
                 else f"{max_relative_error(results[name], results['torch']):.1e}")
        peak = f"{peaks[name] / MIB:.0f}" if peaks[name] is not None else "-"
        rows.append([f"{size}x{size}", name, f"{stats['median_ms']:.0f}", f"{stats['iqr_ms']:.0f}",
                     ratio, peak, memory_ratio, error])
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.style",
                                     description=__doc__.split("\n")[0])
    smallest = smallest_input((CONTENT_LAYER,) + STYLE_LAYERS)
    parser.add_argument("--sizes", nargs="+",
                        type=int_at_least(smallest, " (VGG19 pools four times before conv5_1)"),
                        default=[256, 512], metavar="SIDE",
                        help=f"sides of the square images to time "
                             f"(at least {smallest}; default 256 512)")
    parser.add_argument("--repeats", type=positive_int, default=5,
                        help="timed iterations per peer and size (default 5)")
    args = parser.parse_args(argv)
    threads = scratchnet_threads()
    if torch is not None:                  # as many threads as scratchnet's convolutions
        torch.set_num_threads(threads["conv_workers"])
    print(threads_line(threads, torch.get_num_threads() if torch is not None else None))
    rows = []
    for size in args.sizes:
        print(f"  {size}x{size} ...", file=sys.stderr)
        rows += run(size, args.repeats)
    print(markdown_table(["image", "peer", "median ms", "IQR ms", "x torch", "peak MiB",
                          "memory x torch", "max rel err of dJ/dG"], rows,
                         ["<", "<", ">", ">", ">", ">", ">", "<"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
