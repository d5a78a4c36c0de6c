"""Face landmarks with dlib's pretrained shape predictor (a cascade of regression trees).

The model (Kazemi & Sullivan, "One millisecond face alignment", CVPR 2014) places P points
on a face inside a detector's box. Shapes live in the box's unit square: u = 0 at the box's
left column, u = 1 at its right column (and v likewise from top to bottom row). Starting
from the mean shape s_bar = s^(0), each of the C cascades adds the outputs of its T trees:

    s^(c+1) = s^(c) + sum_{t=1..T} r_ct(features^(c)),    c = 0 .. C-1

Features. Cascade c owns F feature points, each stored relative to s_bar as an anchor
landmark k_f and an offset delta_f. On the current shape it sits at

    q_f = s^(c)[k_f] + A^(c) delta_f        (float32 arithmetic)

where A^(c) is the scale-and-rotation part of the least-squares similarity transform taking
s_bar to s^(c) (Umeyama's solution; in 2-D it has the closed form below). q_f goes to the
image through the box (left, top, right, bottom), rounded to the nearest pixel:

    x = left + (right - left) u,   y = top + (bottom - top) v,   (x, y) -> floor(. + 1/2)

and the feature is that pixel's intensity: gray = floor((R + G + B) / 3) for a colour
image, 0 for a pixel outside the image.

Trees. A tree of depth d is a full binary tree with 2^d - 1 splits and 2^d leaves, stored
breadth-first. Split j holds two feature indices (f1, f2) and a threshold tau_j; from node
j the walk goes to the left child 2j + 1 when features[f1] - features[f2] > tau_j, else to
the right child 2j + 2. Reaching node i >= 2^d - 1 selects leaf i - (2^d - 1), a (P, 2)
shape increment added to s^(c).

The final shape is mapped to the image as the features are and rounded: dlib's landmarks
are integer pixel positions. All of this follows dlib's `shape_predictor.h` to the bit, so
that the points equal dlib's own.

Similarity in closed form. With centred points a_i = from_i - mean(from), b_i = to_i -
mean(to), sigma^2 = mean |a_i|^2 and the 2 x 2 covariance M = mean b_i a_i^T, Umeyama's
scale times rotation is [[p, -q], [q, p]] / sigma^2 with p = M_00 + M_11, q = M_10 - M_01
(the sum of the singular values of M, signed by det M, is sqrt(p^2 + q^2)). dlib gets the
same matrix from an SVD of M; the two agree to float64 rounding, far below the float32
that A^(c) is kept in. (Only for two or collinear points, where M has rank 1, may dlib's SVD
pick a reflection instead; its models have 5 and 68 points.)

The model file (dlib's serialisation; see `scratchnet.io.dlib_format`):

    version            integer, 1
    s_bar              matrix of 2P floats (rows = 2P, columns = 1): x0, y0, x1, y1, ...
    forests            C, then per cascade T, then per tree:
                         splits: a count S = 2^d - 1, then S records (f1, f2, tau)
                         leaves: a count L = 2^d, then L matrices of 2P floats
    anchors            C, then per cascade F, then F integers k_f
    deltas             C, then per cascade F, then F pairs of floats (dx, dy)

A model without cascades shows the box mapping: the unit square's corners and centre
land on the box's corners and centre.

>>> square = ShapePredictor.constant([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]])
>>> landmarks(np.zeros((40, 50, 3), np.uint8), (10, 5, 30, 25), points=5, model=square)
array([[10,  5],
       [30,  5],
       [30, 25],
       [10, 25],
       [20, 15]])
"""

import functools
import math
import os
from dataclasses import dataclass

import numpy as np
from numba import njit

from ...io.dlib_format import DlibFormatError, DlibReader
from .files import find_model_file


@dataclass(frozen=True)
class ShapePredictor:
    """The arrays of a loaded shape predictor (C cascades, T trees of S splits, L leaves).

    mean_shape        (P, 2) float32   s_bar in the box's unit square, (u, v) per point
    split_features    (C, T, S, 2) int64   the two feature indices (f1, f2) of every split
    split_thresholds  (C, T, S) float32    tau of every split
    leaf_values       (C, T, L, P, 2) float32   the shape increment of every leaf
    anchors           (C, F) int64     k_f: the landmark each feature point hangs from
    deltas            (C, F, 2) float32   delta_f: its offset in the mean shape's frame
    """

    mean_shape: np.ndarray
    split_features: np.ndarray
    split_thresholds: np.ndarray
    leaf_values: np.ndarray
    anchors: np.ndarray
    deltas: np.ndarray

    @property
    def num_parts(self):
        return self.mean_shape.shape[0]

    @classmethod
    def constant(cls, mean_shape):
        """A predictor with no cascades: it returns `mean_shape` mapped through the box."""
        mean_shape = np.asarray(mean_shape, dtype=np.float32).reshape(-1, 2)
        points = mean_shape.shape[0]
        return cls(
            mean_shape=mean_shape,
            split_features=np.zeros((0, 0, 1, 2), np.int64),
            split_thresholds=np.zeros((0, 0, 1), np.float32),
            leaf_values=np.zeros((0, 0, 2, points, 2), np.float32),
            anchors=np.zeros((0, 0), np.int64),
            deltas=np.zeros((0, 0, 2), np.float32),
        )


# ---- loading ---------------------------------------------------------------------------


def load_shape_predictor(path):
    """Read a dlib shape predictor .dat file (e.g. shape_predictor_68_face_landmarks.dat).

    Raises DlibFormatError, naming the byte offset, for a file that is not a shape
    predictor, is truncated, or holds indices that point outside the model.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        reader = DlibReader(file.read(), source=os.path.basename(path))
    reader.expect_int(1, "shape predictor version")
    mean_shape = _read_mean_shape(reader)
    points = mean_shape.shape[0]
    cascades = reader.read_uint("number of cascades")
    forests = [_read_forest(reader, c, points) for c in range(cascades)]
    reader.expect_int(cascades, "number of anchor lists")
    anchors = [_read_anchors(reader, c, points, forests[c]) for c in range(cascades)]
    reader.expect_int(cascades, "number of delta lists")
    deltas = [_read_deltas(reader, c, len(anchors[c])) for c in range(cascades)]
    if not reader.at_end():
        raise reader.error("end of the shape predictor", reader.offset,
                           f"{reader.remaining} unexpected bytes follow the model")
    sizes = {(f.split_features.shape, f.leaf_values.shape, len(a)) for f, a in zip(forests, anchors)}
    if len(sizes) > 1:
        raise reader.error("shape predictor", forests[0].offset,
                           "its cascades differ in number of trees, depth or features")
    if not forests:
        return ShapePredictor.constant(mean_shape)
    return ShapePredictor(
        mean_shape=mean_shape,
        split_features=np.stack([forest.split_features for forest in forests]),
        split_thresholds=np.stack([forest.split_thresholds for forest in forests]),
        leaf_values=np.stack([forest.leaf_values for forest in forests]),
        anchors=np.stack(anchors),
        deltas=np.stack(deltas),
    )


@dataclass(frozen=True)
class _Forest:
    """One cascade's trees as read, with the byte offset where they start."""

    offset: int
    split_features: np.ndarray  # (T, S, 2) int64
    split_thresholds: np.ndarray  # (T, S) float32
    leaf_values: np.ndarray  # (T, L, P, 2) float32


def _read_mean_shape(reader):
    start = reader.offset
    matrix = reader.read_matrix("mean shape")
    if matrix.shape[1] != 1 or matrix.shape[0] % 2 or matrix.shape[0] == 0:
        raise reader.error("mean shape", start, f"expected a column of 2P floats, got a "
                                                f"{matrix.shape[0]} x {matrix.shape[1]} matrix")
    return matrix.astype(np.float32).reshape(-1, 2)  # (2P, 1) -> (P, 2): x0, y0, x1, y1, ...


def _read_forest(reader, cascade, points):
    """The trees of one cascade.

    All trees of a cascade have the same depth, so each tree is one fixed record of
    integers and floats, and the whole cascade is decoded in one pass.
    """
    what = f"cascade {cascade}"
    trees = reader.read_uint(f"{what}: number of trees")
    start = reader.offset
    splits, leaves = _first_tree_sizes(reader, what) if trees else (1, 2)
    reader.offset = start
    tree_pattern = "i" + "iif" * splits + "i" + ("ii" + "f" * 2 * points) * leaves
    columns = reader.read_records(tree_pattern, trees, f"{what}: trees")
    ints = np.stack([col for col, kind in zip(columns, tree_pattern) if kind == "i"], axis=1)
    floats = np.stack([col for col, kind in zip(columns, tree_pattern) if kind == "f"], axis=1)
    # ints per tree:   S, (f1, f2) * S, L, (rows, columns) * L
    # floats per tree: tau * S, (2P leaf values) * L
    split_counts, features = ints[:, 0], ints[:, 1:1 + 2 * splits]
    leaf_counts, leaf_sizes = ints[:, 1 + 2 * splits], ints[:, 2 + 2 * splits:]
    if np.any(split_counts != splits) or np.any(leaf_counts != leaves):
        raise reader.error(f"{what}: trees", start, "its trees do not all have the same depth")
    if np.any(np.abs(leaf_sizes.reshape(trees, leaves, 2)) != (2 * points, 1)):  # (T, 2L) -> (T, L, 2)
        raise reader.error(f"{what}: leaves", start,
                           f"every leaf must be a column of {2 * points} floats")
    return _Forest(
        offset=start,
        split_features=features.reshape(trees, splits, 2),  # (T, 2S) -> (T, S, 2)
        split_thresholds=floats[:, :splits].astype(np.float32),
        leaf_values=floats[:, splits:].astype(np.float32)
        .reshape(trees, leaves, points, 2),  # (T, L * 2P) -> (T, L, P, 2)
    )


def _first_tree_sizes(reader, what):
    """(S, L) of the tree at the cursor, checked to be a full binary tree."""
    start = reader.offset
    splits = reader.read_uint(f"{what}: number of splits")
    reader.read_records("iif", splits, f"{what}: splits")
    leaves = reader.read_uint(f"{what}: number of leaves")
    if leaves != splits + 1 or leaves & (leaves - 1):
        raise reader.error(f"{what}: first tree", start,
                           f"{splits} splits and {leaves} leaves do not make a full binary tree")
    return splits, leaves


def _read_anchors(reader, cascade, points, forest):
    """k_f of one cascade, checked against the landmarks and the forest's split features."""
    what = f"cascade {cascade}: anchors"
    count = reader.read_uint(f"{what}: count")
    start = reader.offset
    anchors = reader.read_ints(count, what)
    if np.any((anchors < 0) | (anchors >= points)):
        raise reader.error(what, start, f"an anchor lies outside the {points} landmarks")
    if np.any((forest.split_features < 0) | (forest.split_features >= count)):
        raise reader.error(f"cascade {cascade}: splits", forest.offset,
                           f"a split reads a feature outside the cascade's {count}")
    return anchors


def _read_deltas(reader, cascade, features):
    what = f"cascade {cascade}: deltas"
    reader.expect_int(features, f"{what}: count (one per anchor)")
    dx, dy = reader.read_records("ff", features, what)
    return np.stack([dx, dy], axis=1).astype(np.float32)  # 2 x (F,) -> (F, 2)


@functools.lru_cache(maxsize=4)
def _cached_predictor(path):
    return load_shape_predictor(path)


# ---- prediction ------------------------------------------------------------------------


def landmarks(image, box, points=68, model=None):
    """The `points` landmarks of the face in `box`, as a (points, 2) int64 array of (x, y).

    image  (n_H, n_W, 3) uint8 RGB (as Pillow gives it) or (n_H, n_W) uint8 gray
    box    (left, top, right, bottom) integer pixel coordinates, right and bottom included
           (dlib's rectangle; an object with left(), top(), right(), bottom() also works)
    points 5 or 68: which of dlib's models to use (any count for a model of one's own)
    model  None (dlib's file, found as `files.find_model_file` says), a path (the .dat
           file or a folder holding it), or a ShapePredictor; it must have `points`
           landmarks. Files are read once and kept (the 4 most recent).
    """
    pixels = _check_image(image)
    box = _check_box(box)
    predictor = _resolve_model(model, points)
    return _predict(pixels, box, predictor.mean_shape, predictor.split_features,
                    predictor.split_thresholds, predictor.leaf_values,
                    predictor.anchors, predictor.deltas)


def _check_image(image):
    """The image as a C-contiguous (n_H, n_W, n_C) uint8 array, n_C = 3 or 1."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy.ndarray, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"image must have dtype uint8, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]  # (n_H, n_W) -> (n_H, n_W, 1)
    if image.ndim != 3 or image.shape[2] != 3 and image.shape[2] != 1:
        raise ValueError(f"image must have shape (n_H, n_W, 3) or (n_H, n_W), got {image.shape}")
    pixels = np.ascontiguousarray(image).view()
    pixels.flags.writeable = False  # one compiled variant, Pillow's read-only arrays or not
    return pixels


def _check_box(box):
    """The box as an int64 array (left, top, right, bottom)."""
    if all(hasattr(box, name) for name in ("left", "top", "right", "bottom")):
        box = (box.left(), box.top(), box.right(), box.bottom())
    try:
        values = tuple(box)
    except TypeError:
        raise TypeError(f"box must be (left, top, right, bottom), got {box!r}") from None
    if len(values) != 4 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values
    ):
        raise TypeError(f"box must be 4 integers (left, top, right, bottom), got {box!r}")
    return np.array(values, dtype=np.int64)


def _resolve_model(model, points):
    if not isinstance(points, (int, np.integer)) or isinstance(points, bool) or points < 1:
        raise TypeError(f"points must be a positive int, got {points!r}")
    file = None                             # the model file, when the model is read from one
    if isinstance(model, ShapePredictor):
        predictor = model
    elif isinstance(model, (str, os.PathLike)) and os.path.isfile(model):
        file = os.path.abspath(model)
    elif model is None or isinstance(model, (str, os.PathLike)):
        if points not in (5, 68):
            raise ValueError(f"dlib's models place 5 or 68 landmarks, got points={points!r}")
        file = os.path.abspath(find_model_file(f"landmarks{points}", model))
    else:
        raise TypeError(f"model must be None, a path or a ShapePredictor, got {type(model).__name__}")
    if file is not None:
        predictor = _cached_predictor(file)
    if predictor.num_parts != points:
        message = f"points is {points} but the model places {predictor.num_parts} landmarks"
        if file is not None:                # the file is not the model its name promised
            raise DlibFormatError(f"{file}: {message}", -1)      # -1: no one byte is wrong
        raise ValueError(message)
    return predictor


@njit(cache=True)
def _predict(image, box, mean_shape, split_features, split_thresholds, leaf_values,
             anchors, deltas):
    """The landmarks in pixels (P, 2) int64: s_bar moved by every cascade, through the box."""
    cascades, trees, leaves, parts = leaf_values.shape[:4]
    shape = mean_shape.copy()
    shape_flat = shape.reshape(2 * parts)  # (P, 2) -> (2P,), a view: x0, y0, x1, y1, ...
    increments = leaf_values.reshape(cascades, trees, leaves, 2 * parts)  # (.., P, 2) -> (.., 2P)
    features = np.empty(anchors.shape[1], dtype=np.float32)
    for c in range(cascades):
        frame = similarity_transform(mean_shape, shape)[0].astype(np.float32)
        _read_features(image, box, shape, frame, anchors[c], deltas[c], features)
        for t in range(trees):
            leaf = _leaf_index(split_features[c, t], split_thresholds[c, t], features)
            _add_into(shape_flat, increments[c, t, leaf])
    points = np.empty(shape.shape, dtype=np.int64)
    for i in range(shape.shape[0]):
        points[i, 0], points[i, 1] = _to_pixel(box, shape[i, 0], shape[i, 1])
    return points


@njit(cache=True)
def _add_into(total, increment):
    """total += increment, elementwise in float32 (one flat loop, which LLVM vectorises)."""
    for j in range(total.shape[0]):
        total[j] += increment[j]


@njit(cache=True)
def _read_features(image, box, shape, frame, anchors, deltas, features):
    """features[f] = gray value at q_f = shape[k_f] + frame @ delta_f, 0 outside the image."""
    n_H, n_W = image.shape[0], image.shape[1]
    for f in range(anchors.shape[0]):
        dx, dy = deltas[f, 0], deltas[f, 1]
        u = frame[0, 0] * dx + frame[0, 1] * dy + shape[anchors[f], 0]  # float32
        v = frame[1, 0] * dx + frame[1, 1] * dy + shape[anchors[f], 1]
        x, y = _to_pixel(box, u, v)
        features[f] = _gray(image, y, x) if 0 <= x < n_W and 0 <= y < n_H else 0


@njit(cache=True)
def _to_pixel(box, u, v):
    """Unit-square point (u, v) -> the nearest pixel (x, y) of the box, halves rounded up."""
    left, top, right, bottom = box[0], box[1], box[2], box[3]
    x = math.floor((right - left) * np.float64(u) + left + 0.5)
    y = math.floor((bottom - top) * np.float64(v) + top + 0.5)
    return x, y


@njit(cache=True)
def _gray(image, row, column):
    """floor(mean of the channels): (R + G + B) // 3 for RGB, the value itself for gray."""
    total = 0
    for k in range(image.shape[2]):
        total += np.int64(image[row, column, k])
    return np.float32(total // image.shape[2])


@njit(cache=True)
def _leaf_index(features_used, thresholds, features):
    """Walk one tree: left (2j + 1) when features[f1] - features[f2] > tau_j, else right."""
    splits = thresholds.shape[0]
    node = 0
    while node < splits:
        difference = features[features_used[node, 0]] - features[features_used[node, 1]]
        node = 2 * node + 1 if difference > thresholds[node] else 2 * node + 2
    return node - splits


@njit(cache=True)
def similarity_transform(source, target):
    """(A, t), float64, of the least-squares similarity x -> A x + t taking source to target.

    `source`, `target`: (P, 2) points. A = scale times rotation from the closed form of the
    module docstring; t = mean(target) - A mean(source). A is the identity when `source`
    has no spread (a one-point shape), as dlib does for one landmark.
    """
    n = source.shape[0]
    mean_sx = mean_sy = mean_tx = mean_ty = 0.0
    for i in range(n):
        mean_sx += source[i, 0]
        mean_sy += source[i, 1]
        mean_tx += target[i, 0]
        mean_ty += target[i, 1]
    mean_sx /= n
    mean_sy /= n
    mean_tx /= n
    mean_ty /= n
    sigma2 = m00 = m01 = m10 = m11 = 0.0
    for i in range(n):
        ax, ay = source[i, 0] - mean_sx, source[i, 1] - mean_sy
        bx, by = target[i, 0] - mean_tx, target[i, 1] - mean_ty
        sigma2 += ax * ax + ay * ay
        m00 += bx * ax
        m01 += bx * ay
        m10 += by * ax
        m11 += by * ay
    scale_rotation = np.eye(2)
    if sigma2 != 0.0:
        p = (m00 + m11) / sigma2
        q = (m10 - m01) / sigma2
        scale_rotation[0, 0], scale_rotation[0, 1] = p, -q
        scale_rotation[1, 0], scale_rotation[1, 1] = q, p
    translation = np.empty(2)
    translation[0] = mean_tx - (scale_rotation[0, 0] * mean_sx + scale_rotation[0, 1] * mean_sy)
    translation[1] = mean_ty - (scale_rotation[1, 0] * mean_sx + scale_rotation[1, 1] * mean_sy)
    return scale_rotation, translation
