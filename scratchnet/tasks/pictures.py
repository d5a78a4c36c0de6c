"""The tasks' pictures, drawn with Pillow: signals, volume slices, filters, confusion matrices.

Each function returns an RGB image as scratchnet.io.images does: a float32
array (3, H, W) with values in [0, 1], ready for `save_image` or a page.

- `signal_rows`: example signals of each class as line plots, a row per class;
- `volume_slices`: axial, coronal and sagittal slices of example volumes,
  a row per class (gray levels from each volume's 1st to 99th percentile);
- `filter_slices`: the middle slices of 3D filters (the first layer's
  weights), blue for negative weights, red for positive, white for 0;
- `confusion_picture`: the confusion matrix, each cell shaded by the
  fraction of its row (its true class) and labelled with its count.

>>> picture = confusion_picture(np.array([[9, 1], [2, 8]]), ["yes", "no"])
>>> picture.shape[0], picture.dtype, bool(0 <= picture.min() and picture.max() <= 1)
(3, dtype('float32'), True)
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND, INK, GRID, LINE = "white", (0, 0, 0), (225, 225, 225), (31, 90, 180)
PAD = 6                     # pixels between the parts of a picture


def signal_rows(signals, labels, class_names, rate, per_class=2, plot_size=(360, 90)):
    """The first `per_class` signals of each class, (N, 1, L), as line plots in rows.

    Faint vertical lines mark every second (`rate` samples per second).
    """
    signals, labels = np.asarray(signals), np.asarray(labels)
    if signals.ndim != 3 or signals.shape[1] != 1 or len(signals) != len(labels):
        raise ValueError(f"signals, labels: expected shapes (N, 1, L) and (N,), got "
                         f"{signals.shape} and {labels.shape}")
    rows = [[_line_plot(signal[0], rate, plot_size) for signal in _examples(signals, labels,
                                                                           c, per_class)]
            for c in range(len(class_names))]
    seconds = signals.shape[2] / rate
    return _labelled_grid(rows, class_names, caption=f"{seconds:g} s at {rate} samples per "
                          f"second; a grid line every second")


def volume_slices(volumes, labels, class_names, centres, per_class=2, zoom=4,
                  caption="each example: axial, coronal and sagittal slice through its centre"):
    """Three slices through `centres` (N, 3) voxel indices of the first volumes of each class.

    volumes (N, 1, D, H, W); each example shows, left to right, the axial
    (fixed depth), coronal (fixed height) and sagittal (fixed width) slice.
    """
    volumes, labels = np.asarray(volumes), np.asarray(labels)
    if volumes.ndim != 5 or volumes.shape[1] != 1 or len(volumes) != len(labels):
        raise ValueError(f"volumes, labels: expected shapes (N, 1, D, H, W) and (N,), got "
                         f"{volumes.shape} and {labels.shape}")
    rows = []
    for c in range(len(class_names)):
        chosen = np.flatnonzero(labels == c)[:per_class]
        rows.append([_three_slices(volumes[i, 0], centres[i], zoom) for i in chosen])
    return _labelled_grid(rows, class_names, caption)


def filter_slices(weight, zoom=10):
    """Middle slices of each filter of a Conv3d weight (C_out, 1, k, k, k), a column per filter.

    Rows: axial, coronal, sagittal. Each filter has its own scale: its
    largest |w| is full red (positive) or full blue (negative).
    """
    weight = np.asarray(weight)
    if weight.ndim != 5 or weight.shape[1] != 1:
        raise ValueError(f"weight: expected a first-layer Conv3d weight (C_out, 1, k, k, k), "
                         f"got shape {weight.shape}")
    columns = []
    for w in weight[:, 0]:                                   # (k, k, k) each
        middle = [s // 2 for s in w.shape]
        scaled = w / (np.abs(w).max() + 1e-12)
        cuts = [scaled[middle[0]], scaled[:, middle[1]], scaled[:, :, middle[2]]]
        columns.append([_zoomed(_diverging(cut), zoom) for cut in cuts])
    rows = [[column[r] for column in columns] for r in range(3)]
    return _labelled_grid(rows, ["axial", "coronal", "sagittal"],
                          caption="middle slices of each filter: blue < 0 < red")


def confusion_picture(matrix, class_names, cell=44):
    """The confusion matrix (rows: true class, columns: predicted) as a shaded table."""
    matrix = np.asarray(matrix)
    k = len(class_names)
    if matrix.shape != (k, k):
        raise ValueError(f"matrix: expected shape ({k}, {k}) for {k} class names, "
                         f"got {matrix.shape}")
    font = ImageFont.load_default()
    left = int(max(font.getlength(name) for name in class_names)) + 2 * PAD
    top = 2 * _line_height(font) + 2 * PAD
    image = Image.new("RGB", (left + k * cell + PAD, top + k * cell + PAD), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((left, PAD), "predicted", fill=INK, font=font)
    draw.text((PAD, PAD + _line_height(font)), "true class", fill=INK, font=font)
    fractions = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    for i, name in enumerate(class_names):
        draw.text((PAD, top + i * cell + cell // 3), name, fill=INK, font=font)
        draw.text((left + i * cell + 2, PAD + _line_height(font)), name[:6], fill=INK, font=font)
        for j in range(k):
            shade = int(255 * (1 - 0.75 * fractions[i, j]))
            box = (left + j * cell, top + i * cell, left + (j + 1) * cell - 1,
                   top + (i + 1) * cell - 1)
            draw.rectangle(box, fill=(shade, shade, 255), outline=GRID)
            colour = "white" if fractions[i, j] > 0.6 else INK
            draw.text((box[0] + 4, box[1] + cell // 3), str(matrix[i, j]), fill=colour, font=font)
    return _as_array(image)


# ---------------------------------------------------------------- pieces

def _examples(arrays, labels, c, count):
    return arrays[np.flatnonzero(labels == c)[:count]]


def _line_plot(values, rate, size):
    """A Pillow image of `values` against time, scaled to its own range."""
    width, height = size
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    for second in range(1, int(len(values) / rate) + 1):
        x = second * rate * (width - 1) / (len(values) - 1)
        draw.line([(x, 0), (x, height - 1)], fill=GRID)
    low, high = float(values.min()), float(values.max())
    x = np.arange(len(values)) * (width - 1) / (len(values) - 1)
    y = (height - 3) - (values - low) / max(high - low, 1e-12) * (height - 5)
    draw.line(list(zip(x.tolist(), y.tolist())), fill=LINE, width=1)
    draw.rectangle((0, 0, width - 1, height - 1), outline=GRID)
    return image


def _three_slices(volume, centre, zoom):
    """Axial, coronal and sagittal slices of (D, H, W) through `centre`, side by side."""
    low, high = np.percentile(volume, [1, 99])
    gray = np.clip((volume - low) / max(high - low, 1e-12), 0, 1)
    d, h, w = (int(i) for i in centre)
    cuts = [gray[d], gray[:, h], gray[:, :, w]]
    pieces = [_zoomed(np.repeat(cut[..., None], 3, axis=2), zoom) for cut in cuts]
    return _side_by_side(pieces, gap=2)


def _diverging(values):
    """(a, b) values in [-1, 1] -> (a, b, 3) RGB: blue for -1, white for 0, red for +1."""
    positive, negative = np.clip(values, 0, 1), np.clip(-values, 0, 1)
    red = 1 - negative
    green = 1 - positive - negative
    blue = 1 - positive
    return np.stack([red, green, blue], axis=2)


def _zoomed(rgb, zoom):
    """An (a, b, 3) array in [0, 1], each pixel a zoom x zoom square, as a Pillow image."""
    pixels = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    big = np.repeat(np.repeat(pixels, zoom, axis=0), zoom, axis=1)  # (a, b, 3) -> (za, zb, 3)
    return Image.fromarray(np.ascontiguousarray(big))


def _side_by_side(pieces, gap):
    width = sum(piece.width for piece in pieces) + gap * (len(pieces) - 1)
    image = Image.new("RGB", (width, max(piece.height for piece in pieces)), BACKGROUND)
    left = 0
    for piece in pieces:
        image.paste(piece, (left, 0))
        left += piece.width + gap
    return image


def _labelled_grid(rows, row_names, caption):
    """Rows of Pillow images under a caption, each row preceded by its name, as (3, H, W)."""
    font = ImageFont.load_default()
    label_width = int(max(font.getlength(name) for name in row_names)) + 2 * PAD
    lines = [_side_by_side(row, gap=PAD) if row else Image.new("RGB", (1, 1), BACKGROUND)
             for row in rows]
    width = max(label_width + max(line.width for line in lines), int(font.getlength(caption))
                + PAD) + PAD
    top = _line_height(font) + 2 * PAD
    height = top + sum(line.height + PAD for line in lines)
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((PAD, PAD), caption, fill=INK, font=font)
    for name, line in zip(row_names, lines):
        draw.text((PAD, top + line.height // 2 - _line_height(font) // 2), name, fill=INK,
                  font=font)
        image.paste(line, (label_width, top))
        top += line.height + PAD
    return _as_array(image)


def _line_height(font):
    return font.getbbox("Ag")[3]


def _as_array(image):
    return np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255  # (H, W, 3) -> (3, H, W)
