"""The nine patches that excite a unit most (the course's "what are deep ConvNets learning?").

A unit of layer l is a channel c: the same filter applied at every
position o, giving a^[l][n, c, o] for image n. Scan a set of images,
score every (image, position) by the unit's activation there, and keep the
nine best; each is shown as the piece of the input that the unit sees at
that position, its receptive field (scratchnet.visualize.receptive). By
default at most one patch comes from each image (its best position), so
that the nine show nine different things rather than one object nine
times.

The scan runs the images through the model in batches, one forward pass
per batch for all the layers asked for, and keeps for every channel only
its `count` best candidates so far (a running top-k), so its memory does
not grow with the number of images:

    per batch:  a (B, n_C, P) -> the best position of each image (distinct
                images) or all B P candidates -> merged with the best so far

A window that reaches over the picture's border is cut as far as the
picture goes; the rest of the window is filled with stripes and marked
False in `inside`, so a grid shows where a unit looked past the edge.

>>> import numpy as np
>>> from scratchnet import nn
>>> net = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU())
>>> images = np.random.default_rng(0).random((5, 3, 12, 12), dtype=np.float32)
>>> found = nine_patches(net, "0", [0, 1], images)
>>> unit = found.units[0]
>>> unit.activations.shape, unit.patches.shape, len(set(unit.image_index))
((5,), (5, 3, 3, 3), 5)
"""

import dataclasses

import numpy as np

from ..tensor import no_grad
from .layers import check_layer, frozen, network_input, run_layers
from .receptive import receptive_field

STRIPES = (0.55, 0.8)       # the two grays of the stripes that fill a window off the picture


@dataclasses.dataclass
class UnitPatches:
    """The best patches of one unit, best first (fewer than `count` when images are few)."""

    layer: str
    unit: int
    activations: np.ndarray    # (k,) a^[l][n, unit, o] of each patch
    image_index: np.ndarray    # (k,) n, the image it comes from
    position: np.ndarray       # (k, n_dims) o, the unit's position in the layer
    window_start: np.ndarray   # (k, n_dims) first input pixel of the window (< 0 off the picture)
    patches: np.ndarray        # (k, 3, r_H, r_W) the windows cut from the images
    inside: np.ndarray         # (k, r_H, r_W) True where the window lies on the picture


@dataclasses.dataclass
class NinePatches:
    """nine_patches' answer: the layer's receptive field, each unit's patches, the picture."""

    layer: str
    field: object              # the layer's ReceptiveField
    units: list                # UnitPatches, in the order asked
    image: np.ndarray          # (3, H, W) in [0, 1]: the units' 3x3 grids side by side


@dataclasses.dataclass
class TopActivations:
    """The `count` best candidates of every channel of one layer: arrays (n_C, count), best first.

    A slot not filled yet holds activation -inf and image -1.
    """

    activations: np.ndarray
    image_index: np.ndarray
    flat_position: np.ndarray  # the position o as a flat index into the layer's spatial sizes
    spatial_sizes: tuple

    @classmethod
    def empty(cls, n_channels, count, spatial_sizes):
        shape = (n_channels, count)
        return cls(np.full(shape, -np.inf, np.float64), np.full(shape, -1, np.int64),
                   np.zeros(shape, np.int64), tuple(spatial_sizes))

    def add_batch(self, a, first_image, distinct_images):
        """Merge the candidates of activations `a` (B, n_C, *spatial) of images first_image, ..."""
        batch, n_channels = a.shape[:2]
        planes = a.reshape(batch, n_channels, -1).transpose(1, 0, 2)  # (B, C, P) -> (C, B, P)
        images = first_image + np.arange(batch)
        if distinct_images:
            positions = planes.argmax(axis=2)                                      # (C, B)
            values = np.take_along_axis(planes, positions[..., None], axis=2)[..., 0]
            image_index = np.broadcast_to(images, values.shape)
        else:
            values = planes.reshape(n_channels, -1)                                # (C, B P)
            positions = np.broadcast_to(np.tile(np.arange(planes.shape[2]), batch), values.shape)
            image_index = np.broadcast_to(np.repeat(images, planes.shape[2]), values.shape)
        keep = _best_per_row(values, self.activations.shape[1])
        rows = (n_channels, -1)
        self._merge(values[keep].reshape(rows).astype(np.float64),
                    image_index[keep].reshape(rows), positions[keep].reshape(rows))

    def _merge(self, values, image_index, positions):
        """Keep the best `count` of the old and new candidates; ties go to the earlier image."""
        values = np.concatenate([self.activations, values], axis=1)
        image_index = np.concatenate([self.image_index, image_index], axis=1)
        positions = np.concatenate([self.flat_position, positions], axis=1)
        # by value (descending; empty slots, -inf, last), then image, then position:
        # the same order whatever the batch size
        order = np.lexsort((positions, image_index, -values), axis=1)
        order = order[:, : self.activations.shape[1]]
        self.activations = np.take_along_axis(values, order, axis=1)
        self.image_index = np.take_along_axis(image_index, order, axis=1)
        self.flat_position = np.take_along_axis(positions, order, axis=1)

    def filled(self, unit):
        """Which slots of `unit` hold a candidate (False where images were too few)."""
        return self.image_index[unit] >= 0

    def strongest_units(self, how_many):
        """The `how_many` channels whose best candidates have the highest mean activation."""
        values = np.where(self.image_index >= 0, self.activations, 0.0)
        return [int(u) for u in np.argsort(-values.mean(axis=1), kind="stable")[:how_many]]


def _best_per_row(values, count):
    """A mask keeping, in each row, the `count` largest values (ties: the first ones), in
    linear time: everything above the count-th largest, then as many of its ties as fit."""
    n = values.shape[1]
    if n <= count:
        return np.ones(values.shape, dtype=bool)
    kth = np.partition(values, n - count, axis=1)[:, n - count, None]   # (C, 1)
    above, ties = values > kth, values == kth
    room = count - above.sum(axis=1, keepdims=True)
    return above | (ties & (np.cumsum(ties, axis=1) <= room))


def scan(model, images, layers, count=9, distinct_images=True, batch_size=8, progress=None,
         units=None):
    """Dict from each layer in `layers` to its TopActivations over `images`, in one pass.

    `images` is (N, 3, n_H, n_W) RGB in [0, 1]. `progress(done, total)` is
    called after each batch. `units` (a dict from layer to channel numbers)
    is checked against the layers' channel counts after the first batch, so
    a wrong one fails before a long scan. The model is run in evaluation
    mode, without recording a tape, and left as it was.
    """
    images = check_images(images)
    _check_positive("count", count)
    _check_positive("batch_size", batch_size)
    tops = {}
    with frozen(model), no_grad():
        for first in range(0, len(images), batch_size):
            batch = network_input(model, images[first:first + batch_size])
            for name, a in run_layers(model, batch, layers).items():
                a = np.asarray(a.numpy())
                if a.ndim < 3:
                    raise ValueError(f"layers: {name!r} is not spatial (its output has shape "
                                     f"{a.shape}); expected a layer with positions")
                if name not in tops:
                    check_units((units or {}).get(name, []), a.shape[1], name)
                    tops[name] = TopActivations.empty(a.shape[1], count, a.shape[2:])
                tops[name].add_batch(a, first, distinct_images)
            if progress is not None:
                progress(min(first + batch_size, len(images)), len(images))
    return tops


def unit_patches(top, field, images, layer, unit):
    """The UnitPatches of channel `unit` from a layer's TopActivations and ReceptiveField."""
    filled = top.filled(unit)
    image_index = top.image_index[unit][filled]
    position = np.stack(np.unravel_index(top.flat_position[unit][filled], top.spatial_sizes),
                        axis=1)                                  # (k,) flat -> (k, n_dims)
    starts = field.window_starts(position)
    cuts = [cut_window(images[n], start, field.size) for n, start in zip(image_index, starts)]
    return UnitPatches(layer, int(unit), top.activations[unit][filled].astype(np.float32),
                       image_index, position, starts,
                       np.stack([patch for patch, _ in cuts]), np.stack([ok for _, ok in cuts]))


def cut_window(image, start, size):
    """(patch (3, r_H, r_W), inside (r_H, r_W)): the window of `image` at `start`, striped
    where it lies off the picture."""
    (top, left), (height, width) = start, size
    patch = np.empty((3, height, width), dtype=np.float32)
    rows, cols = np.indices((height, width))
    patch[:] = np.where((rows + cols) // 2 % 2, *STRIPES)
    inside = np.zeros((height, width), dtype=bool)
    n_H, n_W = image.shape[1:]
    y0, y1 = max(top, 0), min(top + height, n_H)
    x0, x1 = max(left, 0), min(left + width, n_W)
    if y0 < y1 and x0 < x1:
        patch[:, y0 - top:y1 - top, x0 - left:x1 - left] = image[:, y0:y1, x0:x1]
        inside[y0 - top:y1 - top, x0 - left:x1 - left] = True
    return patch, inside


def nine_patches(model, layer, units, images, count=9, distinct_images=True, batch_size=8,
                 cell=40, progress=None):
    """The `count` (nine) patches of `images` that excite each unit of `layer` most.

    model    a scratchnet model with a chain of layers (scratchnet.visualize.layers)
    layer    one of layer_names(model), such as "conv3_1"
    units    a channel number or a list of them
    images   (N, 3, n_H, n_W) RGB in [0, 1], all of one size
    distinct_images   at most one patch per image (its best position)
    cell     pixels of one patch in the picture (patches are resized to it)

    Returns NinePatches: the data of each unit (activations, images,
    positions, windows, the patches) and `image`, the units' 3x3 grids side
    by side, labelled, as a (3, H, W) array in [0, 1].
    """
    from .figures import units_strip  # drawing lives in figures.py

    check_layer(model, layer)
    images = check_images(images)
    units = [units] if isinstance(units, (int, np.integer)) else list(units)
    if not units:
        raise ValueError("units: expected at least one channel number, got none")
    top = scan(model, images, [layer], count, distinct_images, batch_size, progress,
               units={layer: units})[layer]
    field = receptive_field(model, layer, images.shape[1:])
    found = [unit_patches(top, field, images, layer, unit) for unit in units]
    return NinePatches(layer, field, found, units_strip(found, cell))


def check_images(images):
    """`images` as a float32 (N, 3, n_H, n_W) array in [0, 1], or a ValueError/TypeError."""
    array = np.asarray(images)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"images: expected floats in [0, 1], got dtype {array.dtype}")
    if array.ndim != 4 or array.shape[1] != 3 or len(array) == 0:
        raise ValueError(f"images: expected shape (N, 3, n_H, n_W) with N >= 1, "
                         f"got {array.shape}")
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
        raise ValueError("images: expected finite values in [0, 1]")
    return np.ascontiguousarray(array, dtype=np.float32)


def check_units(units, n_channels, layer):
    bad = [u for u in units if not isinstance(u, (int, np.integer)) or not 0 <= u < n_channels]
    if bad:
        raise ValueError(f"units: layer {layer} has {n_channels} units (0 ... {n_channels - 1}), "
                         f"got {bad}")


def _check_positive(name, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
