"""Slow references for the dlib face pipeline, written from the definitions, and a file writer.

- `naive_landmarks`: the regression-tree cascade, one Python step per feature and node,
  with the similarity transform taken from an SVD (Umeyama's paper, as dlib does),
  not from the closed form the fast code uses.
- `naive_pyramid_down`: each output pixel as the full 5 x 5 binomial sum.
- `naive_bilinear`: one point read from its four neighbours.
- `shape_predictor_bytes`: a shape predictor written in dlib's serialisation, from the
  format description (integers: control byte + little-endian magnitude; floats: an integer
  mantissa and exponent), so that the reader can be tested without dlib's files.
"""

import math

import numpy as np

BINOMIAL = (1, 4, 6, 4, 1)


# ---- landmarks ------------------------------------------------------------------------


def umeyama_scale_rotation(source, target):
    """c R of the least-squares similarity source -> target, from the SVD of the covariance."""
    source = np.asarray(source, np.float64)
    target = np.asarray(target, np.float64)
    a = source - source.mean(axis=0)
    b = target - target.mean(axis=0)
    sigma2 = (a * a).sum() / len(a)
    if sigma2 == 0:
        return np.eye(2)
    covariance = b.T @ a / len(a)
    u, d, vt = np.linalg.svd(covariance)
    s = np.eye(2)
    det = np.linalg.det(covariance)
    if det < 0 or det == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0:
        s[1, 1] = -1  # the best proper rotation, giving up the smaller singular value
    return np.trace(np.diag(d) @ s) / sigma2 * (u @ s @ vt)


def naive_landmarks(image, box, predictor):
    """(P, 2) int landmarks, straight from the cascade's definition."""
    image = image if image.ndim == 3 else image[:, :, None]
    left, top, right, bottom = box
    shape = predictor.mean_shape.astype(np.float32).copy()

    def to_pixel(u, v):
        x = math.floor((right - left) * float(u) + left + 0.5)
        y = math.floor((bottom - top) * float(v) + top + 0.5)
        return x, y

    def gray(x, y):
        if 0 <= x < image.shape[1] and 0 <= y < image.shape[0]:
            return np.float32(sum(int(ch) for ch in image[y, x]) // image.shape[2])
        return np.float32(0)

    for c in range(predictor.anchors.shape[0]):
        frame = umeyama_scale_rotation(predictor.mean_shape, shape).astype(np.float32)
        features = []
        for k, (dx, dy) in zip(predictor.anchors[c], predictor.deltas[c]):
            u = frame[0, 0] * dx + frame[0, 1] * dy + shape[k, 0]
            v = frame[1, 0] * dx + frame[1, 1] * dy + shape[k, 1]
            features.append(gray(*to_pixel(u, v)))
        for t in range(predictor.split_features.shape[1]):
            splits = predictor.split_thresholds.shape[2]
            node = 0
            while node < splits:
                f1, f2 = predictor.split_features[c, t, node]
                go_left = features[f1] - features[f2] > predictor.split_thresholds[c, t, node]
                node = 2 * node + 1 if go_left else 2 * node + 2
            shape = shape + predictor.leaf_values[c, t, node - splits]
    return np.array([to_pixel(u, v) for u, v in shape], dtype=np.int64)


# ---- chips ----------------------------------------------------------------------------


def naive_pyramid_down(image):
    """down[r, c] = floor(sum_ij w_i w_j a[2r + i, 2c + j] / 256), w = 1 4 6 4 1."""
    n_H, n_W = image.shape[:2]
    if n_H <= 8 or n_W <= 8:
        return np.zeros((0, 0, 3), np.uint8)
    down = np.zeros(((n_H - 3) // 2, (n_W - 3) // 2, 3), np.uint8)
    for r in range(down.shape[0]):
        for c in range(down.shape[1]):
            for k in range(3):
                total = sum(BINOMIAL[i] * BINOMIAL[j] * int(image[2 * r + i, 2 * c + j, k])
                            for i in range(5) for j in range(5))
                down[r, c, k] = total // 256
    return down


def naive_bilinear(source, x, y):
    """The RGB value read at (x, y), truncated; None when a neighbour is outside."""
    left, top = math.floor(x), math.floor(y)
    if not (0 <= left and 0 <= top and left + 1 < source.shape[1] and top + 1 < source.shape[0]):
        return None
    return [int(min(max(untruncated_bilinear(source, x, y, k), 0), 255)) for k in range(3)]


def untruncated_bilinear(source, x, y, k):
    """Channel k of `source` read at (x, y) by bilinear interpolation, before truncation."""
    left, top = math.floor(x), math.floor(y)
    alpha, beta = x - left, y - top
    a = source[top:top + 2, left:left + 2, k].astype(np.float64)
    upper = (1 - alpha) * a[0, 0] + alpha * a[0, 1]
    lower = (1 - alpha) * a[1, 0] + alpha * a[1, 1]
    return (1 - beta) * upper + beta * lower


# ---- dlib's serialisation, written ----------------------------------------------------


def dlib_int(value):
    """Control byte (0x80 if negative, low bits = byte count), then |value| little-endian."""
    magnitude = abs(int(value))
    body = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "little")
    return bytes([(0x80 if value < 0 else 0) | len(body)]) + body


def dlib_float(value):
    """An integer mantissa m and exponent e with value = m 2^e."""
    fraction, exponent = math.frexp(float(value))
    mantissa = int(fraction * 2**53)
    return dlib_int(mantissa) + dlib_int(exponent - 53 if mantissa else 0)


def dlib_column(values):
    """A dlib matrix of one column: -rows, -1, then the floats."""
    values = np.ravel(values)
    return dlib_int(-len(values)) + dlib_int(-1) + b"".join(dlib_float(v) for v in values)


def shape_predictor_bytes(predictor, version=1):
    """The bytes of a dlib shape_predictor file holding `predictor`'s arrays."""
    out = [dlib_int(version), dlib_column(predictor.mean_shape)]
    cascades, trees = predictor.split_features.shape[:2]
    out.append(dlib_int(cascades))
    for c in range(cascades):
        out.append(dlib_int(trees))
        for t in range(trees):
            splits = predictor.split_features[c, t]
            out.append(dlib_int(len(splits)))
            for (f1, f2), tau in zip(splits, predictor.split_thresholds[c, t]):
                out += [dlib_int(f1), dlib_int(f2), dlib_float(tau)]
            leaves = predictor.leaf_values[c, t]
            out.append(dlib_int(len(leaves)))
            out += [dlib_column(leaf) for leaf in leaves]
    out.append(dlib_int(cascades))
    for anchors in predictor.anchors:
        out.append(dlib_int(len(anchors)))
        out += [dlib_int(k) for k in anchors]
    out.append(dlib_int(cascades))
    for deltas in predictor.deltas:
        out.append(dlib_int(len(deltas)))
        out += [dlib_float(d) for delta in deltas for d in delta]
    return b"".join(out)
