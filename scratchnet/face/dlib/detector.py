"""dlib's CNN face detector (mmod_human_face_detector), run on scratchnet: image -> face boxes.

A sliding-window detector, as in the course's object-detection week, made
convolutional: one small ConvNet scores every 80 x 80 window of an image
pyramid at once, and windows scoring above 0 are faces.

1. Pyramid. The image is shrunk by 5/6 per level (level sizes
   floor(5/6 n_H), floor(5/6 n_W), until n_H < 5) and every level is laid out
   on one canvas (dlib's "tiled pyramid"): the image at the top left inside an
   11-pixel margin, the next levels below it with 10-pixel gaps, then back up
   the right-hand side. The canvas holds (pixel - mean_c) / 256 (means from
   the file), 0 between the tiles, and each level is a bilinear resize of the
   level before it, computed on those normalised values.
2. Network, on the canvas (n_C x stride shown; no padding at stride 2):
       conv 5x5/2 16, bn, relu     conv 5x5/2 32, bn, relu     conv 5x5/2 32, bn, relu
       3 x (conv 5x5/1 45 pad 2, bn, relu)                     conv 9x9/1 1 pad 4
   The file stores batch-norm layers (bn_con); as dlib does when it runs
   them, each is folded into a per-channel affine,
       gamma' = gamma / sqrt(running_var + eps),   beta' = beta - gamma' running_mean.
3. Decoding. Output position (c, r) with score s > 0 is a window centred at
   canvas point p = 8 (c, r) + 14 (the three stride-2 5x5 convs map an output
   point o to 2 o + 2 each; the stride-1 convs are centred): the box
   p +- 39.5. The tile nearest p gives the pyramid level l, and the corners
   go back to image coordinates by l times q -> 6/5 q + 0.3 (from the tile's
   corner), then round to whole pixels.
4. Non-maximum suppression, greedy by falling score: a box is dropped when it
   overlaps a kept one with intersection / (area of the two boxes' BOUNDING
   BOX) > 0.338 (the file's threshold) -- dlib's overlap, not the usual IoU,
   whose denominator is the union -- or covers all of it.

Boxes are (left, top, right, bottom) in pixels of the input, right and bottom
included (dlib's rectangle), each with its score as `.confidence`.

>>> layout = pyramid_layout(480, 640)
>>> layout.rects[0], layout.rects[1], (layout.n_rows, layout.n_cols)
((11, 11, 650, 490), (11, 501, 543, 900), (1782, 662))
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit

from ... import functional as F
from ...io.dlib_dnn import read_dlib_network_file
from ...io.dlib_format import DlibFormatError
from ...nn import ChannelAffine, Conv2d, Module, Sequential
from ...tensor import Tensor, no_grad
from .files import find_model_file

PYRAMID_N = 6            # pyramid_down<6>: each level is (N - 1) / N = 5/6 of the one before
MIN_LEVEL_HEIGHT = 5
PADDING, OUTER_PADDING = 10, 11   # dlib's defaults for files that do not store them

PyramidLayout = namedtuple("PyramidLayout", "rects n_rows n_cols")
PyramidLayout.__doc__ = """Where each level sits: rects[level] = (left, top, right, bottom)."""


class FaceBox(tuple):
    """(left, top, right, bottom) of a face, right and bottom included; `.confidence` its score."""

    def __new__(cls, left, top, right, bottom, confidence=math.nan):
        box = super().__new__(cls, (int(left), int(top), int(right), int(bottom)))
        box.confidence = float(confidence)
        return box

    def __repr__(self):
        return f"FaceBox{tuple(self)}, confidence={self.confidence:.4f}"


# ---- 1. the tiled pyramid ----

def pyramid_layout(n_rows, n_cols, padding=PADDING, outer_padding=OUTER_PADDING):
    """dlib's compute_tiled_image_pyramid_details: the level rectangles and the canvas size."""
    sizes = [(n_rows, n_cols)]
    rate = (PYRAMID_N - 1.0) / PYRAMID_N
    while True:
        n_rows, n_cols = math.floor(rate * n_rows), math.floor(rate * n_cols)
        if n_rows * n_cols == 0 or n_rows < MIN_LEVEL_HEIGHT:
            break
        sizes.append((n_rows, n_cols))
    height = _first_column_height(sizes, padding)
    width = sizes[0][1]
    rects, y = [], outer_padding
    for h, w in sizes:  # down the left column
        if y >= height + outer_padding:
            break
        rects.append((outer_padding, y, outer_padding + w - 1, y + h - 1))
        y += h + padding
    y -= padding
    for h, w in sizes[len(rects):]:  # back up the right-hand side, bottom-aligned at y
        right, bottom = outer_padding + width - 1, y - 1
        rect = (right - (w - 1), bottom - (h - 1), right, bottom)
        if _intersects(rect, rects[0]):
            break
        rects.append(rect)
        y -= h + padding
    return PyramidLayout(rects, height + 2 * outer_padding, width + 2 * outer_padding)


def _first_column_height(sizes, padding):
    """How tall the left column of levels is (dlib stops once the rest fits on the right)."""
    first_h, first_w = sizes[0]
    total = sum(h + padding for h, _ in sizes) - 2 * padding
    height, previous_w = 0, 0
    for h, w in sizes:
        if w <= first_w - previous_w - padding and (height - first_h) * 2 >= total - first_h:
            break
        height += h + padding
        previous_w = w
    return height - padding


def _intersects(a, b):
    return max(a[0], b[0]) <= min(a[2], b[2]) and max(a[1], b[1]) <= min(a[3], b[3])


def tiled_pyramid(image, mean_rgb, layout):
    """The canvas (3, n_rows, n_cols) float32: level 0 = (image - mean) / 256, then each
    level resized from the one before."""
    canvas = np.zeros((3, layout.n_rows, layout.n_cols), dtype=np.float32)
    left, top, right, bottom = layout.rects[0]
    mean = np.asarray(mean_rgb, dtype=np.float32)
    normalised = (image.astype(np.float32) - mean) / np.float32(256)
    # (H, W, 3) -> (3, H, W)
    canvas[:, top:bottom + 1, left:right + 1] = normalised.transpose(2, 0, 1)
    _fill_levels(canvas, np.asarray(layout.rects, dtype=np.int64))
    return canvas


@njit(cache=True)
def _fill_levels(canvas, rects):
    """Each level l >= 1 of the canvas, resized bilinearly from level l - 1 (all channels)."""
    for level in range(1, rects.shape[0]):
        for channel in range(canvas.shape[0]):
            _resize_bilinear(canvas[channel], rects[level - 1], canvas[channel], rects[level])


@njit(cache=True)
def _resize_bilinear(source, source_rect, target, target_rect):
    """dlib's resize_image on sub-images: out(r, c) = bilinear at (x_c, y_r), stepping x by
    x_scale = (n_in - 1) / (n_out - 1) (y likewise); the right/bottom neighbour is clamped
    to the source's last column/row."""
    s_left, s_top = source_rect[0], source_rect[1]
    s_cols, s_rows = source_rect[2] - s_left + 1, source_rect[3] - s_top + 1
    t_left, t_top = target_rect[0], target_rect[1]
    t_cols, t_rows = target_rect[2] - t_left + 1, target_rect[3] - t_top + 1
    x_scale = (s_cols - 1) / max(t_cols - 1, 1)
    y_scale = (s_rows - 1) / max(t_rows - 1, 1)
    y = -y_scale
    for r in range(t_rows):
        y += y_scale
        top = int(math.floor(y))
        row0, row1 = s_top + top, s_top + min(top + 1, s_rows - 1)
        fy = y - top
        x = -x_scale
        for c in range(t_cols):
            x += x_scale
            left = int(math.floor(x))
            col0, col1 = s_left + left, s_left + min(left + 1, s_cols - 1)
            fx = x - left
            target[t_top + r, t_left + c] = (
                (1 - fy) * ((1 - fx) * source[row0, col0] + fx * source[row0, col1])
                + fy * ((1 - fx) * source[row1, col0] + fx * source[row1, col1]))


# ---- 2. the network ----

class DetectorNetwork(Module):
    """(conv, affine, relu) blocks, then the last conv: canvas -> score map (N, 1, h, w)."""

    def __init__(self, blocks, head, mean_rgb, options):
        super().__init__()
        self.blocks = Sequential(*blocks)
        self.head = head
        self.register_buffer("mean_rgb", np.asarray(mean_rgb, dtype=np.float32))
        self.options = options
        self.convs = [block.conv for block in blocks] + [head]

    def forward(self, x):
        return self.head(self.blocks(x))

    def output_to_canvas(self, column, row):
        """The canvas point under output (column, row): o -> o s - p + f // 2, last conv first."""
        x, y = float(column), float(row)
        for conv in reversed(self.convs):
            x = x * conv.stride[1] - conv.padding[1] + conv.kernel_size[1] // 2
            y = y * conv.stride[0] - conv.padding[0] + conv.kernel_size[0] // 2
        return x, y


class ConvAffineReLU(Module):
    """relu(gamma' conv(x) + beta'): one block of the detector."""

    def __init__(self, conv, affine):
        super().__init__()
        self.conv, self.affine = conv, affine

    def forward(self, x):
        return F.relu(self.affine(self.conv(x)))


def _conv_from_record(record):
    weight = record.values["weight"]
    conv = Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:],
                  stride=record.values["stride"], padding=record.values["padding"])
    conv.weight.data[...] = weight
    conv.bias.data[...] = record.values["bias"]
    return conv


def fold_batch_norm(values):
    """bn (gamma, beta, running mean and variance, eps) -> affine (gamma', beta'), float32."""
    gamma = values["gamma"].astype(np.float32)
    variance = values["running_var"].astype(np.float32)
    scale = gamma / np.sqrt(variance + np.float32(values["eps"]))
    shift = values["beta"].astype(np.float32) - scale * values["running_mean"].astype(np.float32)
    return ChannelAffine(scale, shift)


def build_detector(network, source="<network>"):
    """A DetectorNetwork from a parsed DlibNetwork: (con, bn_con, relu) blocks, then one con."""
    if network.loss.kind != "loss_mmod" or network.input.kind != "input_rgb_image_pyramid":
        raise DlibFormatError(f"{source}: not dlib's MMOD detector (loss {network.loss.tag!r}, "
                              f"input {network.input.tag!r})", network.loss.offset)
    layers, blocks = network.layers, []
    while len(layers) > 1:
        kinds = [layer.kind for layer in layers[:3]]
        if kinds not in (["con", "bn_con", "relu"], ["con", "affine", "relu"]):
            raise DlibFormatError(f"{source}: expected con, bn_con, relu; found {kinds}",
                                  layers[0].offset)
        conv, norm = _conv_from_record(layers[0]), layers[1]
        affine = (fold_batch_norm(norm.values) if norm.kind == "bn_con"
                  else ChannelAffine(norm.values["gamma"], norm.values["beta"]))
        blocks.append(ConvAffineReLU(conv, affine))
        layers = layers[3:]
    if len(layers) != 1 or layers[0].kind != "con":
        raise DlibFormatError(f"{source}: the detector must end with one con layer",
                              network.loss.offset)
    options = dict(network.loss.values)
    options["padding"] = network.input.values.get("padding", PADDING)
    options["outer_padding"] = network.input.values.get("outer_padding", OUTER_PADDING)
    return DetectorNetwork(blocks, _conv_from_record(layers[0]), network.input.values["mean_rgb"],
                           options)


# ---- 3. and 4. decoding and non-maximum suppression ----

def canvas_to_image(rect, layout):
    """A canvas box (l, t, r, b floats) -> image box: from its tile's corner, `level` times
    q -> 6/5 q + 0.3."""
    centre = (round_half_up((rect[0] + rect[2]) / 2), round_half_up((rect[1] + rect[3]) / 2))
    level = nearest_rect(layout.rects, centre)
    origin_x, origin_y = layout.rects[level][:2]
    corners = [rect[0] - origin_x, rect[1] - origin_y, rect[2] - origin_x, rect[3] - origin_y]
    ratio = PYRAMID_N / (PYRAMID_N - 1.0)
    for _ in range(level):
        corners = [q * ratio + 0.3 for q in corners]
    return corners


def round_half_up(value):
    """dlib's rounding of a coordinate to a pixel: floor(v + 0.5)."""
    return math.floor(value + 0.5)


def nearest_rect(rects, point):
    """The index of the first rect holding `point`, else of the one nearest to it."""
    best, best_distance = 0, math.inf
    for i, (left, top, right, bottom) in enumerate(rects):
        if left <= point[0] <= right and top <= point[1] <= bottom:
            return i
        dx = point[0] - min(max(point[0], left), right)
        dy = point[1] - min(max(point[1], top), bottom)
        distance = math.hypot(dx, dy)
        if distance < best_distance:
            best, best_distance = i, distance
    return best


def boxes_overlap(a, b, iou_threshold, covered_threshold):
    """dlib's test_box_overlap: inner / bounding-box area > iou_threshold, or inner / the area
    of either box > covered_threshold."""
    inner = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    if inner == 0:
        return False
    outer = _area((min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])))
    return (inner / outer > iou_threshold or inner / _area(a) > covered_threshold
            or inner / _area(b) > covered_threshold)


def _area(rect):
    """Pixels in an inclusive rectangle (0 when empty)."""
    width, height = rect[2] - rect[0] + 1, rect[3] - rect[1] + 1
    return width * height if width > 0 and height > 0 else 0


def decode(scores, network, layout, threshold=0.0):
    """FaceBoxes from a score map (h, w): windows scoring above `threshold`, NMS'd, best first."""
    width, height = network.options["detector_windows"][0]
    rows, columns = np.nonzero(scores > threshold)
    candidates = []
    for r, c in zip(rows, columns, strict=True):
        x, y = network.output_to_canvas(c, r)
        half_w, half_h = (width - 1) / 2, (height - 1) / 2
        rect = canvas_to_image((x - half_w, y - half_h, x + half_w, y + half_h), layout)
        candidates.append((float(scores[r, c]), tuple(round_half_up(v) for v in rect)))
    candidates.sort(key=lambda candidate: -candidate[0])
    return suppress(candidates, *network.options["overlaps_nms"])


def suppress(candidates, iou_threshold, covered_threshold):
    """Greedy NMS over (score, box) sorted best first: keep a box unless it overlaps a kept one."""
    kept = []
    for score, box in candidates:
        if not any(boxes_overlap(other, box, iou_threshold, covered_threshold) for other in kept):
            kept.append(FaceBox(*box, score))
    return kept


# ---- the detector ----

_loaded = {}


def load_detector(path=None):
    """The detector network read from dlib's file (found as in files.py); loaded once per path."""
    file = find_model_file("detector", path)
    if file not in _loaded:
        _loaded[file] = build_detector(read_dlib_network_file(file), str(file))
    return _loaded[file]


def check_image(image):
    """image as an (H, W, 3) uint8 RGB array."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy.ndarray, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"image must have dtype uint8 (RGB 0..255), got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    return image


def score_map(image, network):
    """The network's output on the image's tiled pyramid: (scores (h, w), layout)."""
    image = check_image(image)
    options = network.options
    layout = pyramid_layout(image.shape[0], image.shape[1], options["padding"],
                            options["outer_padding"])
    canvas = tiled_pyramid(image, network.mean_rgb, layout)
    with no_grad():
        scores = network(Tensor(canvas[None])).data[0, 0]  # (1, 1, h, w) -> (h, w)
    return scores, layout


# Below this many pixels on a side, the tiled pyramid is narrower than the
# network's unpadded 5x5 convolutions need (measured: 6 fails, 7 runs): such
# a picture holds no detectable face, and detect answers with no boxes.
MIN_IMAGE_SIDE = 7


def detect(image, threshold=0.0, path=None):
    """The faces in an (H, W, 3) uint8 RGB image: a list of FaceBox, highest confidence first."""
    network = load_detector(path)
    if min(check_image(image).shape[:2]) < MIN_IMAGE_SIDE:
        return []
    scores, layout = score_map(image, network)
    return decode(scores, network, layout, threshold)
