"""Face chips: the upright, centred, fixed-size face crops dlib's face ResNet reads.

dlib's `get_face_chip_details` and `extract_image_chip`, rewritten from their definitions
so that the chips equal dlib's own.

1. Where the chip lies. A template gives where the landmarks should fall in a chip of
   size n x n (n = 150 for the face ResNet) with a margin `padding` (0.25) on each side,
   as fractions of the face's own extent:

       template_i = (padding + mu_i) / (1 + 2 padding) * n

   mu_i is dlib's mean face: 5 points (eye corners and the base of the nose) for the
   5-point model; for the 68-point model, points 27-54 and 60-64 (nose, eyes, outer
   mouth, upper inner lip: eyebrows, jaw line and lower lip are left out). The
   least-squares similarity x -> A x + t taking the template to the landmarks (see
   `landmarks.similarity_transform`) is read as a rotation angle theta = atan2(A_10, A_00),
   a scale s = |A e_1| and the image point under the chip's centre; the chip covers the
   square of side s n (in dlib's rectangle convention, width = right - left + 1) around
   that point, rotated by theta.

2. How it is sampled. When the square is much larger than n x n, sampling it directly
   would skip pixels, so the image is first reduced by dlib's pyramid_down<2>: a 5-tap
   binomial filter [1 4 6 4 1] / 16 in each direction, keeping every other row and column,
   in integers:

       down[r, c] = floor( sum_{i,j=0..4} w_i w_j a[2r + i, 2c + j] / 256 ),  w = (1, 4, 6, 4, 1)

   of size (floor((n_H - 3) / 2), floor((n_W - 3) / 2)); a point p of the image sits at
   p / 2 - (1.25, 0.75) one level down. The pyramid is built on the part of the image the
   chip can touch (plus a border of 2 pixels per level) and descended while the square,
   one level further down, would still have more pixels than the chip. Each chip pixel
   (c, r) then maps to the level by the affine map taking the chip's corners (0, 0),
   (n - 1, 0), (0, n - 1) to the square's rotated corners, and reads it bilinearly:

       value = (1 - beta) ((1 - alpha) a_tl + alpha a_tr) + beta ((1 - alpha) a_bl + alpha a_br)

   alpha, beta the fractional parts of the mapped point; a point whose 2 x 2 neighbourhood
   is not wholly inside the level gives black. Values are truncated to uint8, not rounded.

dlib copies the pixels instead when the chip needs neither rotation nor scaling (angle
exactly 0 and a square of exactly n x n pixels); landmarks never produce that, so this
module always samples.

Exactness. dlib finds the similarity with an SVD and the chip-to-level map with a
pseudo-inverse; the closed forms here give the same numbers to about 1e-13. The chips are
byte-equal to dlib's on the test photos; over 3000 random face placements, 7 chips had one
channel value off by 1 -- a bilinear value within ~1e-13 of an integer (four equal
neighbours), truncated to the integer below on one side only. With a turn of exactly 0 a
chip row reads every pixel at the same fraction, and a flat patch of the photo can give
several such values in one chip (3 in one case found by the tests).

A face exactly twice the template's size, 40 pixels from the corner, is cut from the
300 x 300 square centred on (190, 190), unturned, through one pyramid level:

>>> face = 2 * chip_template(5, size=150, padding=0.25) + 40
>>> details = chip_details(face, size=150, padding=0.25)
>>> [round(v, 6) for v in details.rect], round(abs(details.angle), 12), details.rows
([40.5, 40.5, 339.5, 339.5], 0.0, 150)
>>> chip(np.full((400, 400, 3), 200, np.uint8), face).shape
(150, 150, 3)
"""

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .landmarks import similarity_transform

# dlib's mean face for the 5-point model: outer and inner corner of the right eye (image
# left), of the left eye, and the base of the nose, in a unit face box.
MEAN_FACE_5 = np.array([
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
])

# dlib's mean face for landmarks 17-67 of the 68-point (iBUG 300-W) model.
MEAN_FACE_68_X = (
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689,
)
MEAN_FACE_68_Y = (
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182,
)
MEAN_FACE_68 = np.stack([MEAN_FACE_68_X, MEAN_FACE_68_Y], axis=1)  # 2 x (51,) -> (51, 2): points 17-67

# The 68-point landmarks the template uses: nose, eyes, outer lips, upper inner lip.
CHIP_POINTS_68 = np.array([*range(27, 55), *range(60, 65)])

CHIP_POINTS = {5: np.arange(5), 68: CHIP_POINTS_68}
MEAN_FACE = {5: MEAN_FACE_5, 68: MEAN_FACE_68[CHIP_POINTS_68 - 17]}


@dataclass(frozen=True)
class ChipDetails:
    """Where a chip lies in the image (dlib's chip_details).

    rect   (left, top, right, bottom) floats: the square before rotation, in image pixels
    angle  radians; the square is turned by this angle about its centre (x right, y down)
    rows, cols   the chip's size in pixels
    """

    rect: tuple
    angle: float
    rows: int
    cols: int


def chip_template(points, size=150, padding=0.25):
    """(K, 2) float64: where the chip's K reference landmarks should land, in chip pixels."""
    return (padding + MEAN_FACE[points]) / (2 * padding + 1) * size


def chip_details(landmarks, size=150, padding=0.25):
    """The ChipDetails of the size x size chip for a face's 5 or 68 landmarks."""
    points = _check_landmarks(landmarks)
    size, padding = _check_size(size), _check_padding(padding)
    count = points.shape[0]
    scale_rotation, translation = similarity_transform(
        chip_template(count, size, padding), points[CHIP_POINTS[count]])
    column = scale_rotation[:, 0]  # the image of the chip's x axis: s (cos theta, sin theta)
    angle = math.atan2(column[1], column[0])
    scale = math.sqrt(column[0] * column[0] + column[1] * column[1])
    middle = [scale_rotation[i, 0] * (size / 2.0) + scale_rotation[i, 1] * (size / 2.0)
              + translation[i] for i in range(2)]  # the chip centre's image, A (n/2, n/2) + t
    half = (size * scale - 1) / 2  # dlib's centered_drect: width counts both end pixels
    rect = (middle[0] - half, middle[1] - half, middle[0] + half, middle[1] + half)
    return ChipDetails(tuple(float(v) for v in rect), angle, size, size)


def chip(image, landmarks, size=150, padding=0.25):
    """The face chip, (size, size, 3) uint8, for `landmarks` (5 or 68 points) in `image`.

    image: (n_H, n_W, 3) uint8 RGB, as Pillow gives it. Equals dlib.get_face_chip.
    """
    return extract_chip(image, chip_details(landmarks, size, padding))


def extract_chip(image, details):
    """The (rows, cols, 3) uint8 chip that `details` (a ChipDetails) describes."""
    source, linear, offset = sampling_grid(image, details)
    return _sample_bilinear(source, linear, offset, details.rows, details.cols)


def sampling_grid(image, details):
    """(source, linear, offset): the pyramid level of `image` that the chip is read from,
    and the map from chip pixel (c, r) to the point linear @ (c, r) + offset of that level."""
    pixels = _check_image(image)
    rows, cols = details.rows, details.cols
    grow = _pyramid_margin(details.rect, rows * cols)
    left, top, right, bottom = _source_box(details, grow, pixels.shape[0], pixels.shape[1])
    source = pixels[top:bottom + 1, left:right + 1]  # (n_H', n_W', 3): what the chip can touch
    rect = _translate(details.rect, -left, -top)
    while _area(_rect_down(rect)) > rows * cols:
        source = _pyramid_down(np.ascontiguousarray(source))
        rect = _rect_down(rect)
    linear, offset = _chip_to_source(rect, details.angle, rows, cols)
    return np.ascontiguousarray(source), linear, offset


# ---- argument checks -------------------------------------------------------------------


def _check_landmarks(landmarks):
    points = np.asarray(landmarks)
    if points.dtype == bool or not np.issubdtype(points.dtype, np.number):
        raise TypeError(f"landmarks must be numbers, got dtype {points.dtype}")
    if points.shape not in ((5, 2), (68, 2)):
        raise ValueError(f"landmarks must have shape (5, 2) or (68, 2), got {points.shape}")
    points = points.astype(np.float64)
    if not np.all(np.isfinite(points)):
        raise ValueError("landmarks must be finite")
    return points


def _check_size(size):
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool):
        raise TypeError(f"size must be an int, got {size!r}")
    if size < 2:
        raise ValueError(f"size must be >= 2, got {size}")
    return int(size)


def _check_padding(padding):
    if not isinstance(padding, (int, float, np.integer, np.floating)) or isinstance(padding, bool):
        raise TypeError(f"padding must be a number, got {padding!r}")
    if not 0 <= padding < math.inf:
        raise ValueError(f"padding must be finite and >= 0, got {padding}")
    return float(padding)


def _check_image(image):
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy.ndarray, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"image must have dtype uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (n_H, n_W, 3), got {image.shape}")
    return image


# ---- geometry (dlib's drectangle: (left, top, right, bottom), width = right - left + 1) --


def _area(rect):
    left, top, right, bottom = rect
    if left > right or top > bottom:
        return 0.0
    return (right - left + 1) * (bottom - top + 1)


def _translate(rect, dx, dy):
    left, top, right, bottom = rect
    return (left + dx, top + dy, right + dx, bottom + dy)


def _rect_down(rect):
    """The rectangle one pyramid level down: p -> p / 2 - (1.25, 0.75)."""
    left, top, right, bottom = rect
    return (left / 2.0 - 1.25, top / 2.0 - 0.75, right / 2.0 - 1.25, bottom / 2.0 - 0.75)


def _rotated_corners(rect, angle):
    """tl, tr, bl, br of `rect` turned by `angle` about its centre."""
    left, top, right, bottom = rect
    centre_x, centre_y = (left + right) / 2.0, (top + bottom) / 2.0
    sin, cos = math.sin(angle), math.cos(angle)
    corners = []
    for x, y in ((left, top), (right, top), (left, bottom), (right, bottom)):
        dx, dy = x - centre_x, y - centre_y
        corners.append((cos * dx - sin * dy + centre_x, sin * dx + cos * dy + centre_y))
    return corners


def _pyramid_margin(rect, chip_pixels):
    """Border (pixels) the pyramid needs around the chip: 2, then 2 g + 2 per level."""
    grow = 2.0
    rect = _rect_down(rect)
    while _area(rect) > chip_pixels:
        rect = _rect_down(rect)
        grow = grow * 2 + 2
    return grow


def _source_box(details, grow, n_H, n_W):
    """Integer (left, top, right, bottom) of the image part the chip reads (maybe empty).

    The rotated square's bounding box, grown by `grow`, clipped to the image and rounded
    half up; an empty box becomes (0, 0, -1, -1), as dlib's empty rectangle.
    """
    xs, ys = zip(*_rotated_corners(details.rect, details.angle))
    box = (max(min(xs) - grow, 0), max(min(ys) - grow, 0),
           min(max(xs) + grow, n_W - 1), min(max(ys) + grow, n_H - 1))
    left, top, right, bottom = (math.floor(v + 0.5) for v in box)
    if left > right or top > bottom:
        return 0, 0, -1, -1
    return left, top, right, bottom


def _chip_to_source(rect, angle, rows, cols):
    """(M, b): chip pixel (c, r) -> M @ (c, r) + b, the affine map onto the rotated square."""
    top_left, top_right, bottom_left, _ = _rotated_corners(rect, angle)
    linear = np.array([
        [(top_right[0] - top_left[0]) / (cols - 1), (bottom_left[0] - top_left[0]) / (rows - 1)],
        [(top_right[1] - top_left[1]) / (cols - 1), (bottom_left[1] - top_left[1]) / (rows - 1)],
    ])
    return linear, np.array(top_left)


# ---- pixel kernels ---------------------------------------------------------------------


@njit(cache=True)
def _pyramid_down(image):
    """dlib's pyramid_down<2> on an RGB image: [1 4 6 4 1]^2 / 256, every other pixel."""
    n_H, n_W = image.shape[0], image.shape[1]
    if n_H <= 8 or n_W <= 8:
        return np.zeros((0, 0, 3), dtype=np.uint8)
    out_H, out_W = (n_H - 3) // 2, (n_W - 3) // 2
    row_sums = np.empty((n_H, out_W, 3), dtype=np.int64)
    for r in range(n_H):
        for c in range(out_W):
            for k in range(3):
                row_sums[r, c, k] = _binomial5(image[r, 2 * c:2 * c + 5, k])
    down = np.empty((out_H, out_W, 3), dtype=np.uint8)
    for r in range(out_H):
        for c in range(out_W):
            for k in range(3):
                down[r, c, k] = _binomial5(row_sums[2 * r:2 * r + 5, c, k]) // 256
    return down


@njit(cache=True)
def _binomial5(values):
    """1 a + 4 b + 6 c + 4 d + 1 e of five consecutive values, in integers."""
    return (np.int64(values[0]) + 4 * np.int64(values[1]) + 6 * np.int64(values[2])
            + 4 * np.int64(values[3]) + np.int64(values[4]))


@njit(cache=True)
def _sample_bilinear(source, linear, offset, rows, cols):
    """chip[r, c] = bilinear read of `source` at linear @ (c, r) + offset; black where the
    point's 2 x 2 neighbourhood is not wholly inside `source`."""
    chip = np.zeros((rows, cols, 3), dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            x = linear[0, 0] * c + linear[0, 1] * r + offset[0]
            y = linear[1, 0] * c + linear[1, 1] * r + offset[1]
            if 0.0 <= x < source.shape[1] - 1 and 0.0 <= y < source.shape[0] - 1:
                for k in range(3):
                    chip[r, c, k] = _bilinear(source, x, y, k)
    return chip


@njit(cache=True)
def _bilinear(source, x, y, k):
    """Channel k of `source` read at (x, y) >= 0, truncated to uint8 (the value lies in
    [0, 255]: a weighted mean of uint8 values with weights >= 0 that sum to 1)."""
    left, top = int(x), int(y)  # floor, since x, y >= 0
    alpha, beta = x - left, y - top
    top_left, top_right = np.float64(source[top, left, k]), np.float64(source[top, left + 1, k])
    bottom_left = np.float64(source[top + 1, left, k])
    bottom_right = np.float64(source[top + 1, left + 1, k])
    upper = (1 - alpha) * top_left + alpha * top_right
    lower = (1 - alpha) * bottom_left + alpha * bottom_right
    return np.uint8((1 - beta) * upper + beta * lower)
