"""The pictures of the slides: nine patches per unit in a 3x3 grid, units side by side, layers
one under another ("Layer 1 ... Layer 5").

    layer_figure(model, layers, images)      one row per layer, a few units per row
    maximized_figure(model, layers, units)   the same rows with activation maximisation
    units_strip(unit_patches, cell)          the 3x3 grids of some units of one layer
    default_layers(model)                    the first layer at each new resolution

Each patch is the unit's whole receptive field, resized to a square cell
of `cell` pixels: small windows (the first layers see 3x3 pixels) are
enlarged with nearest-neighbour so their pixels stay visible, large ones
are shrunk with the Lanczos filter. The part of a window that lies off the
picture keeps its stripes (patches.cut_window). Every picture is a
(3, H, W) float32 array in [0, 1], for scratchnet.io.images.save_image.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..io.images import image_strip, resize_image, stack_rows
from .layers import layer_names
from .maximize import maximize_activation
from .patches import STRIPES, check_images, scan, unit_patches
from .receptive import receptive_fields, spatial_dims

GRID = 3                 # a unit's patches: GRID x GRID, best first, row by row
GAP = 2                  # white pixels between the cells of a grid
UNIT_GAP = 10            # between the grids of two units
ROW_GAP = 6              # above each layer's title
TEXT_MARGIN = 3
NOMINAL_SIDE = 256       # input side used to read a model's strides (jumps do not depend on it)


def layer_figure(model, layers, images, units_per_layer=4, units=None, count=9,
                 distinct_images=True, cell=32, batch_size=8, progress=None):
    """The nine-patch figure: one row per layer ("Layer 1: conv1_1 ..."), a 3x3 grid per unit.

    model, images   as for nine_patches; one pass over the images serves all layers
    layers          names among layer_names(model), shallow to deep
    units           a dict from layer to channel numbers; a layer not in it shows
                    its `units_per_layer` strongest units (the highest mean
                    activation of their best patches)
    progress        called as progress(done, total) after each batch of images

    Returns a (3, H, W) float32 array in [0, 1].
    """
    layers = _checked_layers(model, layers)
    images = check_images(images)
    units = dict(units or {})
    tops = scan(model, images, layers, count, distinct_images, batch_size, progress, units)
    deepest = max(layers, key=layer_names(model).index)
    fields = dict(receptive_fields(model, images.shape[1:], last=deepest))
    rows = []
    for number, layer in enumerate(layers, start=1):
        chosen = units.get(layer) or tops[layer].strongest_units(units_per_layer)
        found = [unit_patches(tops[layer], fields[layer], images, layer, u) for u in chosen]
        size = "x".join(str(r) for r in fields[layer].size)
        rows.append(_titled(f"Layer {number}: {layer}, receptive field {size} pixels",
                            units_strip(found, cell)))
    return stack_rows(rows)


def maximized_figure(model, layers, units, image_size=96, steps=60, seed=0, progress=None,
                     **settings):
    """One row per layer ("Layer 1: ..."), one activation-maximisation image per unit.

    `units` is a list of channel numbers for every layer, or a dict from layer
    to such a list. `settings` go to maximize_activation (step_size, jitter,
    blur_every, blur_sigma, decay); unit u starts from seed + u.
    `progress(layer, unit)` is called before each unit. Returns (3, H, W).
    """
    layers = _checked_layers(model, layers)
    rows = []
    for number, layer in enumerate(layers, start=1):
        chosen = units[layer] if isinstance(units, dict) else units
        pictures = []
        for unit in chosen:
            if progress is not None:
                progress(layer, unit)
            pictures.append(maximize_activation(model, layer, unit, image_size, steps,
                                                seed + unit, **settings))
        strip = image_strip(pictures, [f"unit {u}" for u in chosen],
                            height=pictures[0].shape[1], gap=UNIT_GAP)
        rows.append(_titled(f"Layer {number}: {layer}", strip))
    return stack_rows(rows)


def units_strip(unit_patches_list, cell=40):
    """The 3x3 grids of several units side by side, each labelled "unit c"."""
    grids = [unit_grid(found, cell) for found in unit_patches_list]
    labels = [f"unit {found.unit}" for found in unit_patches_list]
    return image_strip(grids, labels, height=grids[0].shape[1], gap=UNIT_GAP)


def unit_grid(found, cell=40):
    """One unit's patches, best first, in a 3x3 grid of cells (white where there are fewer)."""
    side = GRID * cell + (GRID - 1) * GAP
    grid = np.ones((3, side, side), dtype=np.float32)
    for k, (patch, inside) in enumerate(zip(found.patches[: GRID * GRID], found.inside)):
        row, col = divmod(k, GRID)
        top, left = row * (cell + GAP), col * (cell + GAP)
        grid[:, top:top + cell, left:left + cell] = patch_cell(patch, inside, cell)
    return grid


def patch_cell(patch, inside, cell):
    """`patch` (3, r_H, r_W) as a (3, cell, cell) square; stripes where it is off the picture."""
    height, width = patch.shape[1:]
    scale = cell / max(height, width)
    shape = (max(1, round(height * scale)), max(1, round(width * scale)))
    rows = (np.arange(shape[0]) * height // shape[0])[:, None]   # nearest source pixel of each
    cols = (np.arange(shape[1]) * width // shape[1])[None, :]
    if scale >= 1:
        resized = patch[:, rows, cols]                            # enlarged: pixels stay sharp
    else:
        y, x = np.indices(shape)
        stripes = np.where((y + x) // 2 % 2, *STRIPES)
        resized = np.where(inside[rows, cols], resize_image(patch, shape), stripes)
    out = np.ones((3, cell, cell), dtype=np.float32)
    top, left = (cell - shape[0]) // 2, (cell - shape[1]) // 2
    out[:, top:top + shape[0], left:left + shape[1]] = resized
    return out


def default_layers(model, count=5):
    """Up to `count` layers to show: the first layer at each new resolution (where the jump j_l
    of the receptive field grows), as the slides show one layer per stage of the network.

    VGG19: conv1_1, conv2_1, conv3_1, conv4_1, conv5_1; the face encoder: its blocks.
    """
    n_spatial = spatial_dims(model) or 2
    fields = dict(receptive_fields(model, (1,) + (NOMINAL_SIDE,) * n_spatial))
    chosen, last_jump = [], None
    for name in layer_names(model):
        jump = fields[name].jump
        if jump != last_jump:
            chosen.append(name)
            last_jump = jump
    return chosen[:count]


def _checked_layers(model, layers):
    layers = [layers] if isinstance(layers, str) else list(layers)
    known = layer_names(model)
    unknown = [layer for layer in layers if layer not in known]
    if unknown or not layers:
        raise ValueError(f"layers: expected names among {', '.join(known)}; "
                         f"got {unknown if unknown else 'none'}")
    return layers


def _titled(title, picture):
    """`picture` under a white band holding `title` (as wide as the wider of the two)."""
    font = ImageFont.load_default()
    width = max(picture.shape[2], round(font.getlength(title)) + 2 * TEXT_MARGIN)
    band = Image.new("RGB", (width, font.getbbox("Ag")[3] + 2 * TEXT_MARGIN + ROW_GAP), "white")
    ImageDraw.Draw(band).text((TEXT_MARGIN, TEXT_MARGIN + ROW_GAP), title, fill="black",
                              font=font)
    band = np.asarray(band, dtype=np.float32).transpose(2, 0, 1) / 255  # (h, W, 3) -> (3, h, W)
    return stack_rows([band, picture])
