"""A 3D ConvNet at work: finding a lesion in a CT-like volume, and telling its kind.

THE DATA. `generate` draws volumes of n x n x n voxels (n = 24 by default)
from a seed, three classes in equal numbers (CLASS_NAMES):

    healthy   tissue only
    nodule    tissue with a solid lesion: a round blob BRIGHTER than the tissue
    cyst      tissue with a fluid-filled lesion: a round blob DARKER than the tissue

A volume is a sum of parts, each a function of the voxel position x = (d, h, w):

    v(x) = gain (texture + interface + vessels + spots + lesion) + offset + noise

- texture: white noise smoothed by a Gaussian (sigma 1.2 voxels), the
  grain of soft tissue, with standard deviation 0.2-0.35;
- interface: a smooth step of 0.5-1.5 (up or down) across a random plane,
  where one tissue meets another;
- vessels: 1-3 straight bright tubes, a exp(-r^2 / (2 s^2)) at distance r
  from their axis, radius s 0.7-1.3 voxels, a = 0.8-1.6;
- spots: 0-3 calcifications (+3..5) and 0-3 air bubbles (-3..-5), tiny
  Gaussian spots (sigma 0.7 voxel);
- lesion (nodule and cyst): an ellipsoid with radii R (0.8-1.2) for R in
  3-4.5 voxels, anywhere fully inside the volume, with a soft edge,
  c / (1 + exp((rho - 1) R / 0.7)) where rho is the ellipsoid's normalised
  radius (rho = 1 on its surface), c = +1.5..2.5 (nodule) or -1.5..2.5 (cyst);
- gain 0.7-1.3, offset -0.5..0.5 (the scanner's calibration), and white
  noise with sigma 0.15-0.3.

The data is made so that intensity statistics do not give the class away:
calcifications are brighter than nodules and air darker than cysts, in
every class, so the maximum and the minimum say little; the offset and the
interface move the mean of a volume by tenths, a lesion by hundredths; and
vessels and the interface make bright and dark regions everywhere. What
tells the classes apart is LOCAL: a round blob several voxels thick,
brighter or darker than what surrounds it, where vessels are thin tubes and
spots single voxels. That is what a 3D convolution looks for.

`generate` returns a VolumeSet (volumes (N, 1, n, n, n) float32, labels (N,)
int64, lesions (N, n, n, n) bool: the voxels inside each lesion, rho <= 1;
none for healthy volumes). Parts are evaluated with NumPy on whole chunks of
volumes at once, no loop over voxels.

THE MODEL (`model`): two blocks of Conv3d (f = 5) -> BatchNorm3d -> ReLU ->
MaxPool3d(2), widths 8 and 16 (24^3 -> 20^3 x8 -> 10^3 x8 -> 6^3 x16 -> 3^3
x16), the maximum over the remaining positions (global max pooling: is
there a lesion ANYWHERE?) and a Linear layer to three class scores: the
heartbeat model's code, with Conv3d for Conv1d.

BASELINES: the majority class, and the nearest class centroid on the
intensity statistics of each volume (mean, standard deviation, minimum,
maximum).

>>> data = generate(per_class=1, seed=0, size=16)
>>> data.volumes.shape, data.volumes.dtype, sorted(data.labels.tolist())
((3, 1, 16, 16, 16), dtype('float32'), [0, 1, 2])
>>> [bool(data.lesions[data.labels == c].any()) for c in (HEALTHY, NODULE, CYST)]
[False, True, True]
"""

import collections
import dataclasses
import time

import numpy as np
from scipy.ndimage import gaussian_filter

from . import classify, pictures

CLASS_NAMES = ("healthy", "nodule", "cyst")
HEALTHY, NODULE, CYST = range(3)
SIZE = 24                   # voxels along each side
MIN_SIZE = 16               # room for the largest lesion and its surroundings
VESSELS, SPOTS = 3, 3       # at most, per volume: vessels; calcifications, and as many air bubbles
SPOT_SIGMA = 0.7            # voxels: the width of a calcification or an air bubble
CHUNK = 64                  # volumes rendered together

VolumeSet = collections.namedtuple("VolumeSet", "volumes labels lesions")


# ---------------------------------------------------------------- the data

def generate(per_class, seed=0, size=SIZE):
    """A VolumeSet of 3 per_class volumes, the classes in shuffled order (see the module doc).

    The same arguments give bit-identical arrays.
    """
    per_class = classify.check_positive_int("per_class", per_class)
    seed = classify.check_seed(seed)
    size = classify.check_positive_int("size", size)
    if size < MIN_SIZE:
        raise ValueError(f"size: expected at least {MIN_SIZE} voxels, got {size}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(CLASS_NAMES)), per_class))
    n = len(labels)
    parts = _draw_parts(labels, size, rng)
    texture = gaussian_filter(rng.standard_normal((n, size, size, size), dtype=np.float32),
                              sigma=(0, 1.2, 1.2, 1.2), mode="wrap")
    texture *= parts.pop("texture") / texture.std(axis=(1, 2, 3), keepdims=True)
    noise = rng.standard_normal((n, size, size, size), dtype=np.float32)
    volumes = np.empty((n, size, size, size), dtype=np.float32)
    lesions = np.empty((n, size, size, size), dtype=bool)
    points = np.indices((size,) * 3, dtype=np.float32).reshape(3, -1)  # (3, V): voxels' d, h, w
    for start in range(0, n, CHUNK):
        part = {name: value[start:start + CHUNK] for name, value in parts.items()}
        tissue, lesions[start:start + CHUNK] = _render(part, points, size)
        volumes[start:start + CHUNK] = (part["gain"] * (texture[start:start + CHUNK] + tissue)
                                        + part["offset"]
                                        + part["noise"] * noise[start:start + CHUNK])
    return VolumeSet(volumes[:, None], labels.astype(np.int64), lesions)  # (N, 1, n, n, n)


def _draw_parts(labels, size, rng):
    """Every volume's random parameters, drawn in one fixed order: name -> array (N, ...)."""
    n, per_volume, centre = len(labels), (len(labels), 1, 1, 1), (size - 1) / 2
    parts = {
        "texture": rng.uniform(0.2, 0.35, per_volume), "gain": rng.uniform(0.7, 1.3, per_volume),
        "offset": rng.uniform(-0.5, 0.5, per_volume), "noise": rng.uniform(0.15, 0.3, per_volume),
        "interface_normal": _unit_vectors(rng, (n,)),
        "interface_at": rng.uniform(-size / 4, size / 4, (n, 1)),
        "interface_step": rng.choice([-1, 1], (n, 1)) * rng.uniform(0.5, 1.5, (n, 1)),
        "vessel_point": centre + rng.uniform(-size / 3, size / 3, (n, VESSELS, 3)),
        "vessel_direction": _unit_vectors(rng, (n, VESSELS)),
        "vessel_radius": rng.uniform(0.7, 1.3, (n, VESSELS)),
        "vessel_height": rng.uniform(0.8, 1.6, (n, VESSELS)) * _some(rng, n, VESSELS, least=1),
        "spot_point": rng.uniform(1, size - 2, (n, 2 * SPOTS, 3)),
        "spot_height": rng.uniform(3, 5, (n, 2 * SPOTS)) * np.concatenate(
            [_some(rng, n, SPOTS), -1.0 * _some(rng, n, SPOTS)], axis=1),  # calcifications, air
    }
    radius = rng.uniform(3, 4.5, (n, 1))
    parts["lesion_radii"] = radius * rng.uniform(0.8, 1.2, (n, 3))
    margin = parts["lesion_radii"] + 1.5                                 # fully inside
    parts["lesion_centre"] = margin + rng.uniform(0, 1, (n, 3)) * (size - 1 - 2 * margin)
    contrast = rng.uniform(1.5, 2.5, n)
    parts["lesion_contrast"] = np.select([labels == NODULE, labels == CYST],
                                         [contrast, -contrast], 0.0)
    return {name: value.astype(np.float32) for name, value in parts.items()}


def _some(rng, n, most, least=0):
    """(n, most) bool: for each volume the first k of `most` slots, k drawn from least..most."""
    return np.arange(most) < rng.integers(least, most + 1, (n, 1))


def _unit_vectors(rng, shape):
    """Directions drawn uniformly on the sphere: shape + (3,)."""
    v = rng.standard_normal(shape + (3,))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _render(part, points, size):
    """(interface + vessels + calcifications + lesion, lesion mask) for a chunk: (n, s, s, s) each.

    points (3, V) are the voxel positions (d, h, w), V = s^3; a part's
    parameters of shape (n, K, 3) give arrays (n, K, V), one row per part.
    """
    shape = (len(part["gain"]), size, size, size)
    # interface: a smooth step across the plane u . (x - centre) = at
    along = part["interface_normal"] @ (points - (size - 1) / 2)           # (n, 3) @ (3, V)
    interface = part["interface_step"] / (1 + np.exp(-(along - part["interface_at"])))
    # vessels: squared distance to each axis, |x - p|^2 - ((x - p) . u)^2
    offset = [points[c] - part["vessel_point"][:, :, c, None] for c in range(3)]  # 3 x (n, K, V)
    along_axis = sum(offset[c] * part["vessel_direction"][:, :, c, None] for c in range(3))
    r2 = sum(o * o for o in offset) - along_axis ** 2
    radius2 = part["vessel_radius"][:, :, None] ** 2
    vessels = np.einsum("nk,nkv->nv", part["vessel_height"], np.exp(-r2 / (2 * radius2)))
    # calcifications and air bubbles: tiny Gaussian spots, bright and dark
    d2 = sum((points[c] - part["spot_point"][:, :, c, None]) ** 2 for c in range(3))
    spots = np.einsum("nk,nkv->nv", part["spot_height"], np.exp(-d2 / (2 * SPOT_SIGMA ** 2)))
    # lesion: rho = normalised ellipsoid radius, soft edge of 0.7 voxel
    rho = np.sqrt(sum(((points[c] - part["lesion_centre"][:, c, None])
                       / part["lesion_radii"][:, c, None]) ** 2 for c in range(3)))  # (n, V)
    mean_radius = part["lesion_radii"].mean(axis=1, keepdims=True)
    profile = 1 / (1 + np.exp(np.clip((rho - 1) * mean_radius / 0.7, -50, 50)))
    lesion = part["lesion_contrast"][:, None] * profile
    mask = (rho <= 1) & (part["lesion_contrast"] != 0)[:, None]
    tissue = interface + vessels + spots + lesion
    return tissue.reshape(shape).astype(np.float32), mask.reshape(shape)


def lesion_centres(lesions):
    """Each volume's lesion centre as voxel indices (N, 3); the middle voxel when it has none."""
    lesions = np.asarray(lesions)
    if lesions.ndim != 4 or lesions.dtype != bool:
        raise ValueError(f"lesions: expected a bool array (N, D, H, W), "
                         f"got {lesions.dtype} {lesions.shape}")
    grid = np.indices(lesions.shape[1:]).reshape(3, -1)                  # (3, V)
    flat = lesions.reshape(len(lesions), -1)                              # (N, V)
    counts = flat.sum(axis=1, keepdims=True)
    centres = flat @ grid.T / np.maximum(counts, 1)                       # (N, V) @ (V, 3)
    middle = (np.array(lesions.shape[1:]) - 1) // 2
    return np.where(counts > 0, np.round(centres), middle).astype(np.int64)


def intensity_statistics(volumes):
    """(N, 4): each volume's mean, standard deviation, minimum and maximum."""
    flat = np.asarray(volumes).reshape(len(volumes), -1)
    return np.stack([flat.mean(1), flat.std(1), flat.min(1), flat.max(1)], axis=1)


# ---------------------------------------------------------------- the task

@dataclasses.dataclass(frozen=True)
class Settings:
    """How `run` makes the data and trains the model."""

    train_per_class: int = 300
    test_per_class: int = 100
    size: int = SIZE
    widths: tuple = (8, 16)             # channels of the conv blocks
    kernel_size: int = 5
    training: classify.Training = classify.Training(epochs=8, batch_size=32, lr=3e-3)
    seed: int = 0


FULL = Settings()
QUICK = Settings(train_per_class=160, test_per_class=50, size=20,
                 training=classify.Training(epochs=5, batch_size=32, lr=3e-3))


def model(settings=FULL):
    """The Conv3d classifier of `settings` (weights drawn from scratchnet.nn's generator)."""
    return classify.ConvClassifier(3, 1, settings.widths, len(CLASS_NAMES),
                                   kernel_size=settings.kernel_size, pooling="max")


def run(settings=None, quick=False, progress=None):
    """Generate the volumes, train the Conv3d model, measure it and the baselines.

    settings: a Settings (None: QUICK if `quick`, else FULL); progress: None
    or a callable given one line of text at each stage and epoch.
    Returns a classify.TaskResult.
    """
    started = time.perf_counter()
    settings = classify.choose_settings(settings, quick, FULL, QUICK)
    say = classify.reporter(progress)
    data = generate(settings.train_per_class + settings.test_per_class, seed=settings.seed,
                    size=settings.size)
    is_test = classify.test_mask(data.labels, settings.test_per_class)
    train_x, train_y = data.volumes[~is_test], data.labels[~is_test]
    test_x, test_y = data.volumes[is_test], data.labels[is_test]
    say(f"{len(train_y)} training and {len(test_y)} test volumes of {settings.size}^3 voxels")
    baselines = {
        "majority class": classify.majority_accuracy(train_y, test_y),
        "nearest centroid, intensity statistics": classify.nearest_centroid_accuracy(
            intensity_statistics(train_x), train_y, intensity_statistics(test_x), test_y),
    }
    fit = classify.fit(lambda: model(settings), (train_x, train_y), (test_x, test_y),
                       settings.training, settings.seed, say)
    first_conv = fit.model.conv1.weight.data
    drawn = {"examples": pictures.volume_slices(
                 test_x, test_y, CLASS_NAMES, lesion_centres(data.lesions[is_test]),
                 caption="each example: axial, coronal and sagittal slice through the "
                         "lesion's centre (healthy: the middle)"),
             "filters": pictures.filter_slices(first_conv),
             "confusion": pictures.confusion_picture(fit.confusion, CLASS_NAMES)}
    return classify.TaskResult.from_fit("volumes", CLASS_NAMES, fit, baselines, drawn,
                                        started, settings)
