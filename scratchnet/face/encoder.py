"""A trained face encoder and its threshold: f(x), d(x1, x2) and tau, in one .npz file.

Verification (1:1) answers "same person" when

    d(x1, x2) = ||f(x1) - f(x2)||^2 <= tau,

so a usable encoder is the network f together with the tau fitted on
validation pairs. `Encoder` holds both; calling it maps pictures to
embeddings, computed on the device the network is on (moved with
`encoder.network.to("cuda")`, see scratchnet.device) and returned as NumPy
arrays. `load_encoder(path)` reads what `Encoder.save` wrote, onto the CPU.

The file is an ordinary .npz (scratchnet.serialize: written atomically, read
without pickle) holding

    encoder.<name>    the FaceEncoder's parameters and buffers (state_dict)
    config            a JSON string: format, version, the architecture
                      (FaceEncoder's arguments), tau, flip_average,
                      tau_eer and how the model was trained
    <other>.<name>    optional extra arrays stored with the model (training
                      checkpoints keep the optimiser and the random state;
                      the pair classifiers keep their weights)

With flip_average=True (what `scratchnet face train` makes) the encoding
of a picture is the network's encodings of it and of its mirror image,
added and divided by their norm,

    f(x) = (g(x) + g(mirrored x)) / ||g(x) + g(mirrored x)||,

g being the network. A face seen in a mirror is the same person, and
training shows the network mirrored faces (training.augment), so g gives
the two views nearly the same encoding; averaging them cancels part of
what is left, whatever in g depends on the side a feature is on rather
than on the person (docs/face.md measures what it gains). It costs a
second forward pass.

The fingerprint names the weights: the first 16 hex digits of the SHA-256
of every `encoder.*` array (names, dtypes, shapes and bytes), and of the
flip averaging when it is on, so a face database can refuse embeddings
made by another encoder.
"""

import hashlib
import json
import os
import zipfile

import numpy as np

from .._threads import one_blas_thread
from ..device import to_device
from ..models.face_encoder import FaceEncoder
from ..serialize import load_npz, save_npz
from ..tensor import Tensor, no_grad

FORMAT = "scratchnet-face-encoder"
VERSION = 1
ENCODER_PREFIX = "encoder."
EMBED_BATCH = 256          # pictures per forward pass when embedding many
DEFAULT_TAU = 1.0          # before calibration: the middle of d's range [0, 4] on the unit sphere


class Encoder:
    """f(x) with its threshold: `encoder(images) -> (N, d)` embeddings, `encoder.tau`.

    `network` is a FaceEncoder; `tau` the verification threshold on squared
    distances; `info` a dict of JSON-serialisable facts saved with the model
    (how it was trained, tau_eer, ...); `flip_average` whether f averages
    the picture and its mirror image (module docstring).
    """

    def __init__(self, network, tau=DEFAULT_TAU, info=None, flip_average=False):
        if not isinstance(network, FaceEncoder):
            raise TypeError(f"network: expected a FaceEncoder, got {type(network).__name__}")
        if not isinstance(flip_average, bool):
            raise TypeError(f"flip_average: expected True or False, got {flip_average!r}")
        self.network = network.eval()
        self.tau = _check_tau(tau)
        self.info = dict(info or {})
        self.flip_average = flip_average

    @property
    def tau_identify(self):
        """The threshold of recognition 1:K (stricter than tau); tau if none was fitted."""
        return float(self.info.get("tau_identify", self.tau))

    @property
    def image_size(self):
        return self.network.image_size

    @property
    def embedding_size(self):
        return self.network.embedding_size

    @property
    def device(self):
        """Where f runs: the device of the network's weights, "cpu" or "cuda"."""
        return next(iter(self.network.parameters())).device

    @property
    def fingerprint(self):
        digest = hashlib.sha256()
        for name, array in sorted(self.network.state_dict().items()):
            array = np.ascontiguousarray(array)
            digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
            digest.update(array.tobytes())
        if self.flip_average:
            digest.update(b"flip_average")
        return digest.hexdigest()[:16]

    def __call__(self, images):
        """f(x) for (N, 3, S, S) float images in [0, 1] (or one (3, S, S)) -> float32 (N, d).

        The images are NumPy arrays; each batch is copied to the network's
        device, and its embeddings come back as a NumPy array.
        """
        images = self.check_images(images)
        embeddings = self._network_embeddings(images)
        if self.flip_average:
            embeddings += self._network_embeddings(images, mirrored=True)
            embeddings /= np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
        return embeddings

    def _network_embeddings(self, images, mirrored=False):
        """g(x), the network's own encodings (of the mirror images), batch by batch."""
        self.network.eval()                        # batch norm with its running statistics
        embeddings = np.empty((len(images), self.embedding_size), dtype=np.float32)
        device = self.device
        with no_grad(), one_blas_thread():
            for start in range(0, len(images), EMBED_BATCH):
                batch = images[start:start + EMBED_BATCH]
                if mirrored:                       # one batch mirrored at a time, not all
                    batch = np.ascontiguousarray(batch[..., ::-1])
                embeddings[start:start + len(batch)] = to_device(
                    self.network(Tensor(batch, device=device)).data, "cpu")
        return embeddings

    def check_images(self, images, name="images"):
        """`images` as float32 (N, 3, S, S) with S = image_size, or a ValueError saying why not."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]                  # (3, S, S) -> (1, 3, S, S)
        expected = (3, self.image_size, self.image_size)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f"{name}: expected (N, {', '.join(map(str, expected))}) RGB pictures "
                             f"(load files with scratchnet.face.load_face_image, which resizes), "
                             f"got shape {images.shape}")
        if not np.issubdtype(images.dtype, np.floating):
            raise TypeError(f"{name}: expected floats in [0, 1], got dtype {images.dtype}")
        return images.astype(np.float32, copy=False)

    def distance(self, first, second):
        """d(x1, x2) = ||f(x1) - f(x2)||^2 for matching rows of two picture batches."""
        return np.sum((self(first) - self(second)) ** 2, axis=1)

    def verify(self, first, second):
        """(same, d): same is d <= tau, per pair of pictures."""
        d = self.distance(first, second)
        return d <= self.tau, d

    # -------------------------------------------------------------- the file
    def config(self):
        return {"format": FORMAT, "version": VERSION,
                "architecture": self.network.architecture(), "tau": self.tau,
                "flip_average": self.flip_average, **self.info}

    def save(self, path, extra=None):
        """Write the model (and `extra` arrays, keys with a prefix other than "encoder.")."""
        arrays = {ENCODER_PREFIX + name: value for name, value in self.network.state_dict().items()}
        arrays["config"] = np.array(json.dumps(self.config()))
        for key, value in (extra or {}).items():
            if key in arrays or key.startswith(ENCODER_PREFIX):
                raise ValueError(f"extra: key {key!r} would overwrite the model's own arrays")
            arrays[key] = value
        save_npz(path, arrays)


def load_encoder(path, with_arrays=False):
    """The Encoder saved at `path` (and, with with_arrays=True, also all arrays of the file)."""
    arrays = _read_model_file(path)
    config = _read_config(arrays, path)
    network = _network_of(config["architecture"], path)
    state = {key[len(ENCODER_PREFIX):]: value for key, value in arrays.items()
             if key.startswith(ENCODER_PREFIX)}
    try:
        network.load_state_dict(state)
    except (KeyError, ValueError) as error:
        raise ValueError(f"{path}: the encoder's weights do not fit its config: {error}") from None
    info = {key: value for key, value in config.items()
            if key not in ("format", "version", "architecture", "tau", "flip_average")}
    # files from before flip averaging have no such key: their f is the network alone
    try:
        encoder = Encoder(network, tau=config["tau"], info=info,
                          flip_average=config.get("flip_average", False))
    except ValueError as error:
        raise ValueError(f"model: {path} has a config whose {error}") from None
    return (encoder, arrays) if with_arrays else encoder


def _network_of(architecture, path):
    """The FaceEncoder that `architecture` (the config's entry) describes, or a ValueError
    naming the file."""
    if not isinstance(architecture, dict):
        raise ValueError(f"model: {path} has a config whose architecture is "
                         f"{type(architecture).__name__}, expected a JSON object")
    try:
        return FaceEncoder(**architecture)
    except (TypeError, ValueError) as error:
        raise ValueError(f"model: {path} has a config whose architecture cannot be built: "
                         f"{error}") from None
    except MemoryError:
        raise ValueError(f"model: {path} has a config whose architecture is too large for "
                         f"the memory: {architecture}") from None


def _read_model_file(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"model: no file at {path} (train one with `scratchnet face train "
                                f"--out {os.path.basename(os.fspath(path))}`)")
    try:
        return load_npz(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"model: {path} is not a readable .npz file ({error})") from None


def _read_config(arrays, path):
    try:
        config = json.loads(str(arrays["config"]))
    except (KeyError, json.JSONDecodeError):
        raise ValueError(f"model: {path} has no readable 'config' entry; is it a face model "
                         f"written by `scratchnet face train`?") from None
    if not isinstance(config, dict):
        raise ValueError(f"model: {path} has a 'config' that is not a JSON object")
    if config.get("format") != FORMAT:
        raise ValueError(f"model: {path} holds {config.get('format')!r}, expected {FORMAT!r}")
    if config.get("version") != VERSION:
        raise ValueError(f"model: {path} has format version {config.get('version')!r}; this "
                         f"scratchnet reads version {VERSION}")
    missing = [key for key in ("architecture", "tau") if key not in config]
    if missing:
        raise ValueError(f"model: {path} has a config without {', '.join(missing)}")
    if not isinstance(config.get("flip_average", False), bool):
        raise ValueError(f"model: {path} has a config whose flip_average is "
                         f"{config['flip_average']!r}, expected true or false")
    return config


def _check_tau(tau):
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating)) or not tau >= 0:
        raise ValueError(f"tau: expected a number >= 0, got {tau!r}")
    return float(tau)
