"""Training the Siamese encoder with the triplet loss, on batches of P persons x K pictures.

One encoder f is applied to every picture of a batch (the Siamese twins
share their weights, so the gradients of A, P and N all accumulate into
the same parameters). For a triplet (A, P, N) the slide's loss is

    L(A, P, N) = max(||f(A) - f(P)||^2 - ||f(A) - f(N)||^2 + alpha, 0),   J = sum of L,

and the triplets come from the batch itself ("online" mining): a batch
holds P persons with K pictures each, every picture is an anchor, and
`strategy` picks its positive and negative among the batch's pictures
(kernels.select_triplets: "batch_hard", "semi_hard" as in FaceNet,
"random", or "all"; `negatives_per_pair` of them for each anchor and
positive, three by default). Randomly chosen triplets are mostly easy,
L = 0, and teach nothing: the fraction of active triplets (L > 0) printed
with the loss shows how much each batch still has to teach.

With `memory_batches` > 0 (four by default) the encodings of the last
batches are kept (face.memory, a cross-batch memory), and from step
`memory_from_step` on each anchor-positive pair also gets up to
`negatives_per_pair` semi-hard negatives drawn from them; those triplets'
losses join J times `memory_weight`.

`train` runs Adam on J for `steps` batches (the learning rate decaying along
half a cosine, from lr to 0), measures verification accuracy on held-out
persons every `validate_every` steps, saves a checkpoint (the model plus the
optimiser's moments, the step, the random state and the memory) every
`checkpoint_every` steps, and at the end fits tau on the validation pairs
(and tau_identify, the stricter threshold of recognition 1:K, on the
validation persons: see evaluation.fit_identification_tau).
Everything random (initial weights, batches, augmentation) is drawn from
`seed`, and on the CPU the result is the same bit for bit on every run of one
machine (the convolutions add up their workers' sums in a fixed order;
another kind of processor rounds differently); a run resumed
from its checkpoint continues exactly as the uninterrupted run would have.

`device` "cuda" trains on the GPU (scratchnet.device): the network lives
there, and each batch, drawn and augmented on the host, is copied there;
the forward pass, the triplet mining, the backward pass and the Adam step
run on the device, and only the loss comes back. Checkpoints and the saved
model hold NumPy arrays whatever the device, so a run may be resumed on the
other device, and the device is not one of the settings a resumed run must
share with its checkpoint.
"""

import dataclasses
import hashlib
import json
import os
import time
import zipfile

import numpy as np
from numba import njit, prange

from .. import functional as F
from ..device import check_device, to_device
from ..models.face_encoder import FaceEncoder
from .._threads import one_blas_thread
from ..optim import Adam
from ..serialize import load_npz
from ..tensor import Tensor
from .datasets import count_single_picture_identities, sample_pairs
from .encoder import Encoder
from .evaluation import encode_pairs, fit_identification_tau, squared_distances
from .memory import CrossBatchMemory
from .metrics import fit_tau, ten_fold_accuracy

STRATEGIES = ("batch_hard", "semi_hard", "random", "all")
# Settings that a resumed run may change: how often to validate and to save, and where to compute.
NOT_COMPARED_ON_RESUME = ("validate_every", "checkpoint_every", "device")
# Settings added after checkpoints were first written, with the value that older ones implied.
BEFORE_IT_EXISTED = {"negatives_per_pair": 1, "neck": False, "memory_batches": 0,
                     "memory_weight": 0.5, "memory_from_step": 200}


@dataclasses.dataclass
class TrainingSettings:
    """What `train` does; every field has the default that `scratchnet face train` uses."""

    steps: int = 1700                   # batches (Adam steps): 7.7 minutes on 2 cores (AVX-512)
    identities_per_batch: int = 32      # P persons per batch
    pictures_per_identity: int = 4      # K pictures of each
    alpha: float = 0.5                  # the triplet loss's margin (docs/face.md: why not 0.2)
    strategy: str = "semi_hard"         # how triplets are chosen in a batch
    negatives_per_pair: int = 3         # triplets per anchor-positive pair (select_triplets)
    lr: float = 2e-3                    # Adam's learning rate at step 0
    cosine: bool = True                 # lr decays as lr (1 + cos(pi t / steps)) / 2
    memory_batches: int = 4             # batches whose encodings give more negatives (0: none)
    memory_weight: float = 0.5          # the weight of their triplets' losses in J
    memory_from_step: int = 200         # steps before the memory is used (face.memory)
    width: int = 32                     # the encoder's first-block channels (FaceEncoder)
    blocks: int = 3                     # conv blocks of the encoder
    convs_per_block: int = 2            # conv + BN + ReLU layers in each block
    downsample: int = 2                 # the encoder's input average pooling
    embedding_size: int = 128
    neck: bool = True                   # batch norm before the L2 normalisation (FaceEncoder)
    augment: bool = True                # random flips, shifts and colour changes
    flip_average: bool = True           # f(x) averages x and its mirror image (face.encoder)
    seed: int = 0
    validate_every: int = 250           # steps between validation measurements
    checkpoint_every: int = 250         # steps between checkpoints
    validation_pairs: int = 2000        # same/different pairs of held-out persons
    device: str = "cpu"                 # where the network trains: "cpu" or "cuda"

    def check(self):
        for name in ("steps", "identities_per_batch", "pictures_per_identity",
                     "negatives_per_pair", "width",
                     "blocks", "convs_per_block", "downsample", "embedding_size", "validate_every",
                     "checkpoint_every", "validation_pairs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if self.identities_per_batch < 2 or self.pictures_per_identity < 2:
            raise ValueError(f"identities_per_batch and pictures_per_identity: expected >= 2 "
                             f"(a triplet needs two persons and two pictures of one), got "
                             f"{self.identities_per_batch} and {self.pictures_per_identity}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy: expected one of {', '.join(STRATEGIES)}, "
                             f"got {self.strategy!r}")
        if not 0 <= self.alpha < np.inf:
            raise ValueError(f"alpha: expected a finite number >= 0, got {self.alpha!r}")
        if not 0 < self.lr < np.inf:
            raise ValueError(f"lr: expected a finite number > 0, got {self.lr!r}")
        for name in ("memory_batches", "memory_from_step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {value!r}")
        if not 0 <= self.memory_weight < np.inf:
            raise ValueError(f"memory_weight: expected a finite number >= 0, "
                             f"got {self.memory_weight!r}")
        check_device(self.device)
        return self


@dataclasses.dataclass
class StepReport:
    """What one training step tells the caller (and the progress line shows)."""

    step: int
    steps: int
    loss: float                 # J of this batch (sum over its triplets)
    active: float               # fraction of its triplets with L > 0
    seconds: float              # since training (re)started
    validation_accuracy: float = None   # 10-fold accuracy on held-out pairs, when measured


class Trainer:
    """The training state: encoder, optimiser, random state, step; see `train`."""

    def __init__(self, images, labels, validation, settings, note=print):
        self.settings = settings.check()
        self.images, self.labels = _check_data(images, labels, "images", "labels")
        self.persons = _persons_for_triplets(self.labels, note)
        if len(self.persons) < self.settings.identities_per_batch:
            raise ValueError(f"data: {len(self.persons)} persons with two or more pictures, "
                             f"fewer than identities_per_batch = "
                             f"{self.settings.identities_per_batch}")
        val_images, val_labels = _check_data(*validation, "validation images", "validation labels")
        self.validation_images, self.validation_labels = val_images, val_labels
        self.data_fingerprint = _data_fingerprint(self.images, self.labels, val_images, val_labels)
        self.validation_pairs = sample_pairs(val_labels, self.settings.validation_pairs,
                                             seed=self.settings.seed)
        self.network = FaceEncoder(width=self.settings.width,
                                   embedding_size=self.settings.embedding_size,
                                   image_size=self.images.shape[-1], blocks=self.settings.blocks,
                                   downsample=self.settings.downsample,
                                   convs_per_block=self.settings.convs_per_block,
                                   neck=self.settings.neck, seed=self.settings.seed)
        self.network.to(self.settings.device)  # before the optimiser makes its moments alike
        self.optimizer = Adam(self.network.parameters(), lr=self.settings.lr)
        self.rng = np.random.default_rng(self.settings.seed)
        self.memory = (CrossBatchMemory(self.settings.memory_batches)
                       if self.settings.memory_batches else None)
        self.step = 0
        self.history = []           # StepReports with a validation accuracy

    # -------------------------------------------------------------- one step
    def train_step(self):
        """One Adam step on J for a fresh batch; returns (loss, fraction of active triplets)."""
        indices = self._batch_indices()
        batch = self.images[indices]
        if self.settings.augment:
            batch = augment(batch, self.rng)
        if self.settings.cosine:
            self.optimizer.lr = self.settings.lr * 0.5 * (1 + np.cos(np.pi * self.step
                                                                     / self.settings.steps))
        self.network.train()
        embeddings = self.network(Tensor(batch, device=self.settings.device))
        loss, active = F.batch_triplet_loss(embeddings, self.labels[indices],
                                            alpha=self.settings.alpha,
                                            strategy=self.settings.strategy, rng=self.rng,
                                            negatives_per_pair=self.settings.negatives_per_pair)
        if self.memory is not None:
            loss = self._with_memory(loss, embeddings, self.labels[indices])
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return loss.item(), active

    def _with_memory(self, loss, embeddings, labels):
        """J plus memory_weight times the losses of the triplets with remembered negatives
        (from memory_from_step on); then the batch's encodings join the memory."""
        settings = self.settings
        encodings = to_device(embeddings.data, "cpu")
        if self.step >= settings.memory_from_step and len(self.memory):
            anchors, positives, negatives = self.memory.semi_hard_triplets(
                encodings, labels, settings.alpha, self.rng, settings.negatives_per_pair)
            if len(anchors):
                remembered = F.triplet_loss(embeddings[anchors], embeddings[positives],
                                            Tensor(negatives, device=settings.device),
                                            settings.alpha)
                loss = loss + remembered * settings.memory_weight
        self.memory.add(encodings, labels)
        return loss

    def _batch_indices(self):
        """P persons drawn without replacement, K of their pictures each (all if fewer)."""
        persons = self.rng.choice(len(self.persons), self.settings.identities_per_batch,
                                  replace=False)
        chosen = []
        for person in persons:
            pictures = self.persons[person]
            k = min(self.settings.pictures_per_identity, len(pictures))
            chosen.append(self.rng.choice(pictures, k, replace=False))
        return np.concatenate(chosen)

    # -------------------------------------------------------------- validation
    def validation_distances(self, embeddings=None):
        """d for the validation pairs under the current encoder, and whether each is one person
        (`embeddings`: of every validation picture, when computed already; else only the
        pairs' pictures are encoded)."""
        pairs = self.validation_pairs
        if embeddings is None:
            embeddings, pairs = encode_pairs(self.encoder(), self.validation_images, pairs)
        first, second, same = pairs
        return squared_distances(embeddings, first, second), same

    def validation_accuracy(self, embeddings=None):
        distances, same = self.validation_distances(embeddings)
        return ten_fold_accuracy(distances, same)[0]

    def encoder(self):
        """The current network as an Encoder (in evaluation mode until the next train_step)."""
        return Encoder(self.network, info=self.info(), flip_average=self.settings.flip_average)

    def finished_encoder(self, embeddings=None):
        """The Encoder to save: tau (best accuracy) and tau_eer fitted on the validation pairs,
        and tau_identify, the threshold for recognition 1:K, on the validation persons
        (`embeddings`: of every validation picture under the present weights, when computed
        already)."""
        if embeddings is None:
            embeddings = self.encoder()(self.validation_images)
        distances, same = self.validation_distances(embeddings)
        info = {**self.info(), "tau_eer": fit_tau(distances, same, criterion="eer"),
                "tau_identify": fit_identification_tau(embeddings, self.validation_labels,
                                                       seed=self.settings.seed),
                "validation_accuracy": ten_fold_accuracy(distances, same)[0]}
        return Encoder(self.network, tau=fit_tau(distances, same), info=info,
                       flip_average=self.settings.flip_average)

    def info(self):
        return {"training": {**dataclasses.asdict(self.settings), "trained_steps": self.step}}

    # -------------------------------------------------------------- checkpoints
    def checkpoint_arrays(self):
        """What a checkpoint adds to the model file: optimiser, random state, step, history."""
        arrays = {f"optimizer.{key}": value for key, value in self.optimizer.state_dict().items()}
        arrays["trainer.rng"] = np.array(json.dumps(self.rng.bit_generator.state))
        arrays["trainer.step"] = np.array(self.step)
        arrays["trainer.history"] = _history_array(self.history)
        arrays["trainer.data"] = np.array(self.data_fingerprint)
        if self.memory is not None:
            arrays.update(self.memory.arrays())
        return arrays

    def save_checkpoint(self, path):
        self.encoder().save(path, extra=self.checkpoint_arrays())

    def load_checkpoint(self, path):
        """Continue from a checkpoint written by a run with the same settings and data."""
        arrays, config = _read_checkpoint(path)
        saved = {**BEFORE_IT_EXISTED, **config["training"]}
        saved.pop("trained_steps")
        differing = {key: (value, getattr(self.settings, key)) for key, value in saved.items()
                     if key not in NOT_COMPARED_ON_RESUME
                     and value != getattr(self.settings, key)}
        if differing:
            raise ValueError(f"resume: the checkpoint {path} was made with other settings "
                             f"(name: saved, now): {differing}")
        # checkpoints from before the fingerprint existed cannot be compared
        if "trainer.data" in arrays and str(arrays["trainer.data"]) != self.data_fingerprint:
            raise ValueError(f"resume: the checkpoint {path} was made on other pictures (other "
                             f"persons, pictures or validation persons); give the data of that "
                             f"run, or train from the start without --resume")
        self.network.load_state_dict({key[len("encoder."):]: value for key, value in arrays.items()
                                      if key.startswith("encoder.")})
        self.optimizer.load_state_dict({key[len("optimizer."):]: value
                                        for key, value in arrays.items()
                                        if key.startswith("optimizer.")})
        _move_moments_to_parameters(self.optimizer)
        self.rng.bit_generator.state = json.loads(str(arrays["trainer.rng"]))
        self.step = int(arrays["trainer.step"])
        self.history = _history_from_array(arrays["trainer.history"], self.settings.steps)
        if self.memory is not None:
            self.memory.load_arrays(arrays)


def train(images, labels, validation, settings=None, checkpoint=None, resume=False,
          report=None, note=print):
    """Train a FaceEncoder by the triplet loss; returns the Encoder with its fitted tau.

    images (N, 3, S, S) in [0, 1] and labels (N,) are the training persons;
    validation = (images, labels) of other persons. `checkpoint` is a path
    written every settings.checkpoint_every steps (and read first when
    `resume`). `report(StepReport)` is called after every step. Returns
    (encoder, history), history being the StepReports with a validation accuracy.
    """
    trainer = Trainer(images, labels, validation, settings or TrainingSettings(), note=note)
    if resume:
        if checkpoint is None or not os.path.exists(checkpoint):
            raise FileNotFoundError(f"resume: no checkpoint at {checkpoint}")
        trainer.load_checkpoint(checkpoint)
        if note is not None:
            note(f"resumed from {checkpoint} at step {trainer.step}")
    started = time.perf_counter()
    with one_blas_thread():
        last_embeddings = _run(trainer, started, checkpoint, report)
    return trainer.finished_encoder(last_embeddings), trainer.history


def _run(trainer, started, checkpoint, report):
    """Train to the last step; returns the encodings of every validation picture after it
    (the last validation measures them all, and the thresholds are fitted on them), or None
    when no step was left to run."""
    last_embeddings = None
    while trainer.step < trainer.settings.steps:
        loss, active = trainer.train_step()
        if not np.isfinite(loss):
            raise ValueError(f"training diverged at step {trainer.step}: J = {loss}; lower the "
                             f"learning rate (lr = {trainer.settings.lr}, --lr)")
        step_report = StepReport(trainer.step, trainer.settings.steps, loss, active,
                                 time.perf_counter() - started)
        at_end = trainer.step == trainer.settings.steps
        if at_end:
            last_embeddings = trainer.encoder()(trainer.validation_images)
        if trainer.step % trainer.settings.validate_every == 0 or at_end:
            step_report.validation_accuracy = trainer.validation_accuracy(last_embeddings)
            trainer.history.append(step_report)
        if checkpoint is not None and (trainer.step % trainer.settings.checkpoint_every == 0
                                       or at_end):
            trainer.save_checkpoint(checkpoint)
        if report is not None:
            report(step_report)
    return last_embeddings


def _move_moments_to_parameters(optimizer):
    """Put each parameter's Adam moments (read from the file as NumPy arrays) on its device."""
    for param, state in zip(optimizer.params, optimizer.state):
        for name, value in state.items():
            if np.shape(value) == param.shape:           # v and s, not the step count t
                state[name] = to_device(value, param.device)


# ------------------------------------------------------------------ data helpers

def augment(images, rng):
    """Random horizontal flips, shifts of up to 1/16 of the side and colour changes, per picture.

    A flipped face is the same person; so is one seen a little off-centre or
    under other light. Picture i becomes

        out[i, c, r, k] = clip(gain[i, c] x[i, c, r', k'] + offset[i], 0, 1)

    where (r', k') is (r, k) moved by the picture's shift, mirrored (k' -> S - 1 - k')
    when it is flipped, and held inside the picture (the edge pixels repeat, as
    np.pad's "edge" mode would). (N, 3, S, S) -> (N, 3, S, S) float32, a new array.
    """
    n, _, size, _ = images.shape
    flip = rng.random(n) < 0.5
    shift = size // 16
    dy, dx = rng.integers(0, 2 * shift + 1, size=(2, n))  # each picture's top-left corner
    gain = rng.uniform(0.8, 1.2, size=(n, 3))            # per-channel contrast and tint
    offset = rng.uniform(-0.1, 0.1, size=n)              # brightness
    out = np.empty(images.shape, np.float32)
    _augment_pictures(np.asarray(images, np.float32), flip, dy - shift, dx - shift, gain, offset,
                      out)
    return out


@njit(cache=True, parallel=True)
def _augment_pictures(images, flip, row_shift, col_shift, gain, offset, out):
    """out[i] = images[i] flipped, shifted and recoloured (see augment); a picture per
    parallel iteration, the colour computed in float64 as NumPy computes it."""
    n, channels, size, _ = images.shape
    for i in prange(n):
        for r in range(size):
            source_row = min(max(r + row_shift[i], 0), size - 1)
            for k in range(size):
                source_col = min(max(k + col_shift[i], 0), size - 1)
                if flip[i]:
                    source_col = size - 1 - source_col
                for c in range(channels):
                    value = np.float64(images[i, c, source_row, source_col]) * gain[i, c]
                    out[i, c, r, k] = min(max(value + offset[i], 0.0), 1.0)


def _check_data(images, labels, images_name, labels_name):
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise ValueError(f"{images_name}: expected (N, 3, S, S) RGB pictures, got {images.shape}")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{labels_name}: expected {len(images)} integer labels, got "
                         f"{labels.dtype} array of shape {labels.shape}")
    return images.astype(np.float32, copy=False), labels


def _persons_for_triplets(labels, note):
    """The picture indices of each person with two or more pictures; the rest noted as skipped."""
    single = count_single_picture_identities(labels)
    if single and note is not None:
        note(f"skipped {single} persons with a single picture (a triplet needs two pictures "
             f"of its anchor's person)")
    order = np.argsort(labels, kind="stable")
    persons, starts = np.unique(labels[order], return_index=True)
    groups = np.split(order, starts[1:])
    return [group for group in groups if len(group) >= 2]


def _read_checkpoint(path):
    """(arrays, config) of the training checkpoint at `path`, or a ValueError that says why
    it cannot be one."""
    try:
        arrays = load_npz(path)
        config = json.loads(str(arrays["config"]))
        config["training"]["trained_steps"]
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as error:
        reason = f"no entry {error}" if isinstance(error, KeyError) else str(error)
        raise ValueError(f"resume: {path} is not a readable training checkpoint ({reason}); "
                         f"train from the start without --resume") from None
    if "trainer.rng" not in arrays:
        raise ValueError(f"resume: {path} is a finished model, not a training checkpoint")
    return arrays, config


def _data_fingerprint(*arrays):
    """A short hash of what a run trains and validates on: each array's shape and dtype, and
    64 of its rows spread evenly (all the labels; 64 pictures of each set), so that a
    checkpoint is not continued on other data."""
    digest = hashlib.sha256()
    for array in arrays:
        rows = np.linspace(0, len(array) - 1, min(len(array), 64)).astype(np.int64)
        sample = array if array.ndim == 1 else array[rows]
        digest.update(repr((array.shape, str(array.dtype))).encode())
        digest.update(np.ascontiguousarray(sample).tobytes())
    return digest.hexdigest()[:16]


def _history_array(history):
    """(n, 5) float64: step, loss, active, seconds, validation accuracy."""
    rows = [(r.step, r.loss, r.active, r.seconds, r.validation_accuracy) for r in history]
    return np.array(rows, dtype=np.float64).reshape(len(rows), 5)


def _history_from_array(array, steps):
    return [StepReport(int(step), steps, loss, active, seconds, accuracy)
            for step, loss, active, seconds, accuracy in array]
