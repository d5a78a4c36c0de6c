"""One training step of the default face encoder, against PyTorch's CPU build on the same network.

    python -m benchmarks.face_step [--repeats N] [--persons P]

The scratchnet peer is `Trainer.train_step` with the settings `scratchnet face
train` uses, and as that command runs it (one BLAS thread, the memory a step
frees kept for the next: scratchnet._memory): draw a batch of 32 persons x 4
pictures, augment it, run the encoder (three blocks of two conv 3x3 + batch
norm + ReLU, max pooling, then the linear layer, the neck and the L2
normalisation), mine semi-hard triplets, backward, Adam. The PyTorch peer is
the same network, from the same initial weights, on a batch drawn and
augmented by the same NumPy code, with batch-hard mining (benchmarks.gpu) in
its own ops: the mining and the loss are under 1% of a step. PyTorch uses as
many threads as scratchnet has workers. The pictures are `--persons` synthetic
persons of 10 pictures (seed 0).
"""

import argparse

import numpy as np

from benchmarks._harness import markdown_table, summarize, time_round_robin
from benchmarks.gpu import torch_batch_hard_loss
from kernels._workers import N_WORKERS
from scratchnet._memory import keep_freed_memory
from scratchnet._threads import one_blas_thread
from scratchnet.face.synthetic import synthetic_faces
from scratchnet.face.training import Trainer, TrainingSettings, augment


def scratchnet_step(images, labels, settings):
    """A closure: one `Trainer.train_step` with one BLAS thread, as `scratchnet face train`
    runs it; also returns the trainer (its network's weights)."""
    validation = synthetic_faces(4, 10, seed=1)
    trainer = Trainer(images, labels, validation, settings, note=None)

    def step():
        with one_blas_thread():
            return trainer.train_step()

    return step, trainer


def torch_network(torch, settings, state):
    """The FaceEncoder of `settings` in torch.nn, with the same parameter names and weights."""
    nn = torch.nn
    blocks, channels = [], 3
    for b in range(settings.blocks):
        width = settings.width * min(2 ** b, 4)
        layers = []
        for k in range(settings.convs_per_block):
            layers += [nn.Conv2d(channels if k == 0 else width, width, 3, padding=1, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU()]
        blocks.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
        channels = width
    network = nn.Module()
    network.shrink = nn.AvgPool2d(settings.downsample)
    network.features = nn.Sequential(*blocks)
    network.flatten = nn.Flatten()
    side = 64 // (2 ** settings.blocks * settings.downsample)
    network.embedding = nn.Linear(channels * side * side, settings.embedding_size, bias=False)
    network.neck = nn.BatchNorm1d(settings.embedding_size)
    network.load_state_dict({name: torch.from_numpy(np.array(value))
                             for name, value in state.items()})

    def forward(x):
        features = network.flatten(network.features(network.shrink(x)))
        return nn.functional.normalize(network.neck(network.embedding(features)), dim=1)

    return network, forward


def torch_step(torch, images, labels, settings, state):
    """A closure: the same step in PyTorch (draw, augment, forward, batch-hard, backward, Adam)."""
    network, forward = torch_network(torch, settings, state)
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.lr)
    rng = np.random.default_rng(settings.seed)
    persons = [np.flatnonzero(labels == person) for person in np.unique(labels)]

    def step():
        chosen = rng.choice(len(persons), settings.identities_per_batch, replace=False)
        indices = np.concatenate([rng.choice(persons[p], settings.pictures_per_identity,
                                             replace=False) for p in chosen])
        x = torch.from_numpy(augment(images[indices], rng))
        y = torch.from_numpy(labels[indices])
        loss = torch_batch_hard_loss(torch, forward(x), y, settings.alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed steps per peer")
    parser.add_argument("--persons", type=int, default=200, help="synthetic persons to draw from")
    args = parser.parse_args(argv)
    keep_freed_memory()                              # as the scratchnet command does
    images, labels = synthetic_faces(args.persons, 10, seed=0)
    settings = TrainingSettings()
    steps = {}
    steps["scratchnet"], trainer = scratchnet_step(images, labels, settings)
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(N_WORKERS)
        state = {name: value for name, value in trainer.network.state_dict().items()}
        steps["torch"] = torch_step(torch, images, labels, settings, state)
    for step in steps.values():
        for _ in range(3):
            step()                                   # compile, start threads, warm the caches
    seconds = time_round_robin(steps, args.repeats)
    medians = {peer: summarize(times)["median_ms"] for peer, times in seconds.items()}
    rows = []
    for peer, times in seconds.items():
        stats = summarize(times)
        ratio = "-" if "torch" not in medians else f"{stats['median_ms'] / medians['torch']:.2f}"
        rows.append([peer, f"{stats['median_ms']:.0f}", f"{stats['iqr_ms']:.0f}",
                     f"{stats['min_ms']:.0f}", ratio])
    print(f"one face training step, 128 pictures of 64x64, {N_WORKERS} threads, "
          f"{args.repeats} timed steps per peer, round-robin")
    print(markdown_table(["peer", "median ms", "IQR ms", "min ms", "x torch"], rows,
                         ["<", ">", ">", ">", ">"]))


if __name__ == "__main__":
    main()
