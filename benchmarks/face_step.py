"""One training step of the default face encoder, against PyTorch's CPU build on the same network.

    python -m benchmarks.face_step [--repeats N] [--persons P]

The scratchnet peer is `Trainer.train_step` with the settings `scratchnet face
train` uses, and as that command runs it (one BLAS thread, the memory a step
frees kept for the next: scratchnet._memory): draw a batch of 32 persons x 4
pictures, augment it, run the encoder (three blocks of two conv 3x3 + batch
norm + ReLU, max pooling, then the linear layer, the neck and the L2
normalisation), mine semi-hard triplets, add the triplets with negatives from
the cross-batch memory (scratchnet.face.memory), backward, Adam.

What is timed is a step as steps 201 ... 1,700 of the command's 1,700 run (counting from 1),
with the cross-batch memory full and in use: the one setting that differs
from the command's is memory_from_step, WARM_UP_STEPS instead of 200, and
those first untimed steps (which also compile and warm the caches) fill the
memory's `memory_batches` batches. The timed steps are WARM_UP_STEPS + 1 ...
WARM_UP_STEPS + N.

The PyTorch peer is the same network, from the same initial weights, on a
batch drawn and augmented by the same NumPy code, with the same cross-batch
memory (the same NumPy class mines the remembered negatives from the
detached embeddings; the remembered triplets' loss, times memory_weight, is
PyTorch's) and the same warm-up. What it lacks: its in-batch mining is
batch-hard (benchmarks.gpu) in its own ops, one triplet per anchor, where
scratchnet's is semi-hard with three negatives per anchor-positive pair; the
mining and the loss are under 1% of a step. PyTorch uses as many threads as
scratchnet's convolutions have workers. The pictures are `--persons`
synthetic persons of 10 pictures (seed 0).
"""

import argparse

import numpy as np

from benchmarks._harness import markdown_table, summarize, time_round_robin
from benchmarks.gpu import torch_batch_hard_loss
from kernels._workers import N_WORKERS
from scratchnet._memory import keep_freed_memory
from scratchnet._threads import one_blas_thread
from scratchnet.commands import int_at_least, positive_int
from scratchnet.face.memory import CrossBatchMemory
from scratchnet.face.synthetic import synthetic_faces
from scratchnet.face.training import Trainer, TrainingSettings, augment

# untimed steps before the timing: they compile, warm the caches and fill the
# cross-batch memory, which is in use from the step after them on
WARM_UP_STEPS = max(3, TrainingSettings().memory_batches)


def timed_settings():
    """`scratchnet face train`'s settings with the cross-batch memory in use after the warm-up."""
    return TrainingSettings(memory_from_step=WARM_UP_STEPS)


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
    """A closure: the same step in PyTorch (draw, augment, forward, batch-hard, the cross-batch
    memory's triplets from memory_from_step on, backward, Adam)."""
    network, forward = torch_network(torch, settings, state)
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.lr)
    rng = np.random.default_rng(settings.seed)
    persons = [np.flatnonzero(labels == person) for person in np.unique(labels)]
    memory = CrossBatchMemory(settings.memory_batches) if settings.memory_batches else None
    steps_done = 0

    def step():
        nonlocal steps_done
        chosen = rng.choice(len(persons), settings.identities_per_batch, replace=False)
        indices = np.concatenate([rng.choice(persons[p], settings.pictures_per_identity,
                                             replace=False) for p in chosen])
        x = torch.from_numpy(augment(images[indices], rng))
        y = torch.from_numpy(labels[indices])
        embeddings = forward(x)
        loss = torch_batch_hard_loss(torch, embeddings, y, settings.alpha)
        if memory is not None:
            loss = loss + torch_memory_loss(torch, memory, embeddings, labels[indices], settings,
                                            rng, steps_done >= settings.memory_from_step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps_done += 1
        return loss.item()

    return step


def torch_memory_loss(torch, memory, embeddings, labels, settings, rng, in_use):
    """memory_weight times the loss of the triplets with remembered negatives (0 when not
    `in_use` or none is found), as Trainer._with_memory; then the batch joins the memory."""
    encodings = embeddings.detach().numpy()
    loss = 0.0
    if in_use and len(memory):
        anchors, positives, negatives = memory.semi_hard_triplets(
            encodings, labels, settings.alpha, rng, settings.negatives_per_pair)
        if len(anchors):
            f_a, f_p = embeddings[torch.from_numpy(anchors)], embeddings[torch.from_numpy(positives)]
            m = torch.from_numpy(negatives)                  # (T, d), no gradient
            remembered = torch.relu(((f_a - f_p) ** 2).sum(dim=1) - ((f_a - m) ** 2).sum(dim=1)
                                    + settings.alpha).sum()
            loss = remembered * settings.memory_weight
    memory.add(encodings, labels)
    return loss


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.face_step",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, default=30,
                        help="timed steps per peer (default 30)")
    settings = timed_settings()
    batch = settings.identities_per_batch
    parser.add_argument("--persons", type=int_at_least(batch, " (the persons of one batch)"),
                        default=200,
                        help=f"synthetic persons to draw from, at least {batch} (default 200)")
    args = parser.parse_args(argv)
    keep_freed_memory()                              # as the scratchnet command does
    images, labels = synthetic_faces(args.persons, 10, seed=0)
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
        for _ in range(WARM_UP_STEPS):
            step()                   # compile, start threads, warm the caches, fill the memory
    seconds = time_round_robin(steps, args.repeats)
    medians = {peer: summarize(times)["median_ms"] for peer, times in seconds.items()}
    rows = []
    for peer, times in seconds.items():
        stats = summarize(times)
        ratio = "-" if "torch" not in medians else f"{stats['median_ms'] / medians['torch']:.2f}"
        rows.append([peer, f"{stats['median_ms']:.0f}", f"{stats['iqr_ms']:.0f}",
                     f"{stats['min_ms']:.0f}", ratio])
    print(f"one face training step, 128 pictures of 64x64, cross-batch memory of "
          f"{settings.memory_batches} batches full and in use (steps {WARM_UP_STEPS + 1}-"
          f"{WARM_UP_STEPS + args.repeats} timed); scratchnet {N_WORKERS} convolution workers, "
          f"PyTorch {torch.get_num_threads() if torch is not None else '-'} threads; "
          f"{args.repeats} timed steps per peer, round-robin")
    print(markdown_table(["peer", "median ms", "IQR ms", "min ms", "x torch"], rows,
                         ["<", ">", ">", ">", ">"]))


if __name__ == "__main__":
    main()
