"""Synthetic faces: the slide's "10k pictures of 1k persons", drawn from a seed.

The triplet loss needs, for each anchor A, a positive P (the same person) and a
negative N (someone else):  L(A, P, N) = max(||f(A) - f(P)||^2 - ||f(A) - f(N)||^2
+ alpha, 0). `synthetic_faces` makes such a training set without downloading
anything: n_identities persons, per_identity pictures each.

Each person k is fixed by IDENTITY ATTRIBUTES, drawn once from (seed, k): face
width, height and jaw taper; skin tone; ears; eye level, spacing, width, aspect,
tilt and iris colour; brow gap, thickness, length, angle; nose length and width;
mouth level, width, lip thickness and colour; hair style (balding, short, long,
fringe, side parting, curly), colour, hairline and volume; glasses (none, round,
rectangular, sunglasses) and frame colour; beard (none, moustache, full, goatee)
and its colour; moles and freckles.

Each picture adds NUISANCE, drawn from (seed, k, picture): where the face is and
how big, in-plane rotation (roll), turning left or right (yaw: inner features
slide across the head as on a sphere, x = w sin(asin(x0 / w) + yaw), the far
side narrowing), eye openness, gaze, brow raise, smile, open mouth, the
direction and strength of the light (a shading gradient across the face),
brightness, contrast and colour cast, the background (two colours, a gradient,
stripes or blotches), an occluder in some pictures (a rectangle or a hand), blur
and Gaussian noise. The nuisance is strong enough that the raw-pixel distance
d(img1, img2) = ||img1 - img2||^2 verifies held-out pairs poorly (about 0.6
accuracy, see `pixel_baseline_accuracy`): telling persons apart needs a
learned encoder f.

Determinism: the same (n_identities, per_identity, seed, size) gives bit-identical
pictures, and person k's attributes and pictures depend on (seed, k) only, so
`synthetic_faces(1000, 10, seed)` begins with the 100 persons of
`synthetic_faces(100, 10, seed)`; identities never seen in training come from
another seed.

Rendering: every part of a face is a signed distance d(u, v) (negative inside) to
an ellipse, a capsule (a thick segment) or a rounded box, turned into coverage
alpha = clip(1/2 - d / pixel, 0, 1) and painted back to front,
colour <- colour + alpha (part colour - colour). A Numba kernel renders the
pictures in parallel (prange over pictures); each pixel goes through the layers
in `_paint_pixel`. The noise and background texture come from an integer hash
of (picture, pixel), so no random state is shared between threads.

Coordinates: x, y in [-1, 1] across the picture (y down); u, v are face units
(the head is about 0.7 wide and 0.9 high from its centre), u = R(-roll)(x - c) /
scale; f is u after the yaw warp, used for the inner features.

>>> images, labels = synthetic_faces(n_identities=3, per_identity=2, seed=0)
>>> images.shape, images.dtype, labels.tolist()
((6, 3, 64, 64), dtype('float32'), [0, 0, 1, 1, 2, 2])
>>> bool(0 <= images.min() and images.max() <= 1)
True
"""

import functools

import numpy as np
from numba import njit, prange

MIN_SIZE = 16                  # smaller pictures cannot show eyes and mouth
IDENTITY_STREAM, PICTURE_STREAM = 0, 1   # the second entry of a seed: [seed, stream, k]
IDENTITY_DRAWS = 96            # uniforms drawn per identity (spare ones keep old draws stable)
PICTURE_DRAWS = 64             # uniforms drawn per picture
REFERENCE_SIZE = 64            # blur is given in pixels of a 64 x 64 picture

STYLE_BALDING, STYLE_SHORT, STYLE_LONG, STYLE_FRINGE, STYLE_PARTED, STYLE_CURLY = range(6)
NO_GLASSES, ROUND_GLASSES, RECTANGULAR_GLASSES, SUNGLASSES = range(4)
NO_BEARD, MOUSTACHE, FULL_BEARD, GOATEE = range(4)
NO_OCCLUDER, RECTANGLE, HAND = range(3)
PLAIN, STRIPES, BLOTCHES = range(3)

# The renderer's Numba functions divide as NumPy does (x / 0 gives inf or nan) instead of
# checking every divisor for zero to raise ZeroDivisionError: the same pictures, bit for bit,
# drawn 15% faster.
render_jit = functools.partial(njit, cache=True, error_model="numpy")

# skin tones from light to dark; a tone is a point on this piecewise-linear path
SKIN_TONES = np.array([[0.98, 0.85, 0.75], [0.93, 0.75, 0.62], [0.82, 0.62, 0.47],
                       [0.65, 0.46, 0.32], [0.47, 0.31, 0.21], [0.32, 0.21, 0.14]])
HAIR_COLOURS = np.array([[0.07, 0.06, 0.06], [0.24, 0.15, 0.09], [0.45, 0.29, 0.16],
                         [0.62, 0.25, 0.10], [0.87, 0.74, 0.45], [0.62, 0.62, 0.62],
                         [0.90, 0.90, 0.88], [0.30, 0.30, 0.75]])
HAIR_PROBABILITIES = np.array([0.22, 0.2, 0.16, 0.1, 0.14, 0.08, 0.05, 0.05])
IRIS_COLOURS = np.array([[0.22, 0.12, 0.06], [0.42, 0.26, 0.12], [0.48, 0.44, 0.20],
                         [0.25, 0.50, 0.28], [0.28, 0.50, 0.85], [0.52, 0.58, 0.64]])
FRAME_COLOURS = np.array([[0.05, 0.05, 0.05], [0.40, 0.24, 0.10], [0.75, 0.75, 0.78],
                          [0.75, 0.10, 0.10], [0.10, 0.25, 0.70], [0.80, 0.65, 0.20]])
SCLERA = np.array([0.95, 0.94, 0.91])
PUPIL = np.array([0.03, 0.03, 0.04])
MOUTH_INSIDE = np.array([0.32, 0.06, 0.08])
TEETH = np.array([0.96, 0.95, 0.88])
MOLE = np.array([0.28, 0.16, 0.10])
DARK_LENS = np.array([0.06, 0.07, 0.09])

_f8, _i8 = np.float64, np.int64
IDENTITY_DTYPE = np.dtype([
    ("face_width", _f8), ("face_height", _f8), ("jaw_taper", _f8), ("skin", _f8, 3),
    ("ear_size", _f8), ("ear_level", _f8),
    ("eye_level", _f8), ("eye_spacing", _f8), ("eye_width", _f8), ("eye_aspect", _f8),
    ("eye_tilt", _f8), ("iris", _f8, 3), ("iris_size", _f8),
    ("brow_gap", _f8), ("brow_thickness", _f8), ("brow_length", _f8), ("brow_angle", _f8),
    ("brow_colour", _f8, 3),
    ("nose_length", _f8), ("nose_width", _f8),
    ("mouth_level", _f8), ("mouth_width", _f8), ("lip_thickness", _f8), ("lips", _f8, 3),
    ("hair_style", _i8), ("hair", _f8, 3), ("hairline", _f8), ("hair_volume", _f8),
    ("glasses", _i8), ("frame", _f8, 3), ("frame_thickness", _f8),
    ("beard", _i8), ("beard_colour", _f8, 3),
    ("mole_u", _f8, 2), ("mole_v", _f8, 2), ("mole_size", _f8, 2),
    ("freckles", _f8), ("freckle_seed", _i8),
])
PICTURE_DTYPE = np.dtype([
    ("centre_x", _f8), ("centre_y", _f8), ("scale", _f8), ("roll", _f8), ("yaw", _f8),
    ("eye_open", _f8), ("gaze", _f8), ("brow_raise", _f8), ("smile", _f8), ("mouth_open", _f8),
    ("light_angle", _f8), ("light_strength", _f8),
    ("brightness", _f8), ("contrast", _f8), ("cast", _f8, 3),
    ("background", _f8, 3), ("background_2", _f8, 3), ("background_angle", _f8),
    ("texture", _i8), ("texture_amount", _f8), ("texture_scale", _f8),
    ("occluder", _i8), ("occluder_x", _f8), ("occluder_y", _f8), ("occluder_width", _f8),
    ("occluder_height", _f8), ("occluder_angle", _f8), ("occluder_colour", _f8, 3),
    ("blur", _f8), ("noise", _f8), ("noise_seed", _i8), ("clothes", _f8, 3),
])


def synthetic_faces(n_identities, per_identity, seed, size=64):
    """`per_identity` pictures of each of `n_identities` synthetic persons.

    Returns (images, labels): images float32 (N, 3, size, size) RGB in [0, 1] with
    N = n_identities * per_identity, and labels int64 (N,), the person of each
    picture, 0 .. n_identities - 1; the pictures of one person are contiguous
    (labels = 0, 0, ..., 1, 1, ...). `seed` is an int >= 0; the output depends on
    it alone (see the module docstring). `size` >= 16.
    """
    n_identities = _count("n_identities", n_identities, minimum=1)
    per_identity = _count("per_identity", per_identity, minimum=1)
    seed = _count("seed", seed, minimum=0)
    size = _count("size", size, minimum=MIN_SIZE)
    identities = identity_attributes(n_identities, seed)
    pictures = picture_nuisance(n_identities, per_identity, seed)
    labels = np.repeat(np.arange(n_identities, dtype=np.int64), per_identity)
    images = np.empty((len(labels), 3, size, size), dtype=np.float32)
    _render_pictures(identities, pictures, labels, images)
    return images, labels


def _count(name, value, minimum):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


# ------------------------------------------------------------------ drawing the parameters

class _Uniforms:
    """Hands out the columns of a table of uniform draws, one attribute after another.

    Row r holds the draws of one person (or picture); each call takes the next
    column, so an attribute added at the end never changes the earlier ones.
    """

    def __init__(self, table):
        self.table, self.used = table, 0

    def next(self):
        column = self.table[:, self.used]
        self.used += 1
        return column

    def uniform(self, low, high):
        return low + (high - low) * self.next()

    def choice(self, probabilities):
        """Indices drawn with the given probabilities (which sum to 1)."""
        cumulative = np.cumsum(probabilities)[:-1]
        return np.searchsorted(cumulative, self.next(), side="right").astype(np.int64)

    def chance(self, probability):
        return self.next() < probability

    def colour(self, palette, jitter, probabilities=None):
        """A palette entry per row, each channel moved by up to +-jitter; (rows, 3)."""
        if probabilities is None:
            probabilities = np.full(len(palette), 1 / len(palette))
        base = palette[self.choice(probabilities)]
        shift = np.stack([self.uniform(-jitter, jitter) for _ in range(3)], axis=1)
        return np.clip(base + shift, 0, 1)

    def seeds(self):
        return np.floor(self.next() * 2**31).astype(np.int64)


def _uniform_table(seed, stream, n_identities, draws_per_row, rows_per_identity=None):
    """Uniform draws of person k from np.random.default_rng([seed, stream, k]), stacked."""
    shape = draws_per_row if rows_per_identity is None else (rows_per_identity, draws_per_row)
    blocks = [np.random.default_rng([seed, stream, k]).random(shape) for k in range(n_identities)]
    return np.stack(blocks).reshape(-1, draws_per_row)  # (n, [rows,] D) -> (N, D)


def skin_tone(tone):
    """Colours along SKIN_TONES for tone in [0, 1] (0: lightest); (n,) -> (n, 3)."""
    position = np.asarray(tone) * (len(SKIN_TONES) - 1)
    low = np.minimum(np.floor(position).astype(int), len(SKIN_TONES) - 2)
    t = (position - low)[:, None]
    return (1 - t) * SKIN_TONES[low] + t * SKIN_TONES[low + 1]


def identity_attributes(n_identities, seed):
    """The attributes of persons 0 .. n_identities - 1 as an IDENTITY_DTYPE record array."""
    draw = _Uniforms(_uniform_table(seed, IDENTITY_STREAM, n_identities, IDENTITY_DRAWS))
    face = np.zeros(n_identities, dtype=IDENTITY_DTYPE)
    face["face_width"] = draw.uniform(0.60, 0.80)
    face["face_height"] = draw.uniform(0.84, 1.0)
    face["jaw_taper"] = draw.uniform(0.0, 0.5)
    face["skin"] = np.clip(skin_tone(draw.next()) + np.stack(
        [draw.uniform(-0.04, 0.04) for _ in range(3)], axis=1), 0, 1)
    face["ear_size"] = draw.uniform(0.10, 0.19)
    face["ear_level"] = draw.uniform(-0.05, 0.12)
    face["eye_level"] = draw.uniform(-0.24, -0.06)
    face["eye_spacing"] = draw.uniform(0.24, 0.38)
    face["eye_width"] = draw.uniform(0.09, 0.15)
    face["eye_aspect"] = draw.uniform(0.38, 0.72)
    face["eye_tilt"] = draw.uniform(-0.25, 0.25)
    face["iris"] = draw.colour(IRIS_COLOURS, 0.05)
    face["iris_size"] = draw.uniform(0.4, 0.62)
    face["brow_gap"] = draw.uniform(0.07, 0.16)
    face["brow_thickness"] = draw.uniform(0.012, 0.045)
    face["brow_length"] = draw.uniform(0.9, 1.5)
    face["brow_angle"] = draw.uniform(-0.5, 0.5)
    face["nose_length"] = draw.uniform(0.16, 0.34)
    face["nose_width"] = draw.uniform(0.05, 0.11)
    face["mouth_level"] = face["eye_level"] + face["nose_length"] + draw.uniform(0.12, 0.24)
    face["mouth_width"] = draw.uniform(0.12, 0.25)
    face["lip_thickness"] = draw.uniform(0.018, 0.05)
    lipstick = draw.chance(0.15)
    natural_lips = face["skin"] * np.array([0.85, 0.58, 0.58]) * draw.uniform(0.8, 1.0)[:, None]
    face["lips"] = np.where(lipstick[:, None], np.array([0.72, 0.08, 0.16]), natural_lips)
    face["hair_style"] = draw.choice([0.12, 0.26, 0.2, 0.14, 0.14, 0.14])
    face["hair"] = draw.colour(HAIR_COLOURS, 0.05, HAIR_PROBABILITIES)
    face["hairline"] = draw.uniform(-0.78, -0.5)
    face["hair_volume"] = draw.uniform(0.03, 0.2)
    face["brow_colour"] = np.minimum(face["hair"], 0.55) * draw.uniform(0.6, 1.0)[:, None]
    face["glasses"] = draw.choice([0.55, 0.17, 0.17, 0.11])
    face["frame"] = draw.colour(FRAME_COLOURS, 0.05)
    face["frame_thickness"] = draw.uniform(0.015, 0.04)
    face["beard"] = draw.choice([0.55, 0.15, 0.18, 0.12])
    own_beard_colour = draw.colour(HAIR_COLOURS, 0.05, HAIR_PROBABILITIES)
    bald = face["hair_style"] == STYLE_BALDING
    face["beard_colour"] = np.where(bald[:, None], own_beard_colour, face["hair"])
    for m in range(2):
        face["mole_u"][:, m] = draw.uniform(-0.5, 0.5)
        face["mole_v"][:, m] = draw.uniform(-0.4, 0.5)
        face["mole_size"][:, m] = np.where(draw.chance(0.25), draw.uniform(0.02, 0.035), 0.0)
    face["freckles"] = np.where(draw.chance(0.15), draw.uniform(0.3, 0.6), 0.0)
    face["freckle_seed"] = draw.seeds()
    return face


def picture_nuisance(n_identities, per_identity, seed):
    """The nuisance of each picture: a PICTURE_DTYPE record array, n_identities * per_identity."""
    table = _uniform_table(seed, PICTURE_STREAM, n_identities, PICTURE_DRAWS, per_identity)
    draw = _Uniforms(table)
    picture = np.zeros(len(table), dtype=PICTURE_DTYPE)
    picture["centre_x"] = draw.uniform(-0.14, 0.14)
    picture["centre_y"] = draw.uniform(-0.08, 0.16)
    picture["scale"] = draw.uniform(0.62, 0.82)
    picture["roll"] = draw.uniform(-0.25, 0.25)
    picture["yaw"] = draw.uniform(-0.45, 0.45)
    picture["eye_open"] = np.where(draw.chance(0.08), 0.08, draw.uniform(0.6, 1.25))
    picture["gaze"] = draw.uniform(-1, 1)
    picture["brow_raise"] = draw.uniform(-0.02, 0.07)
    picture["smile"] = draw.uniform(-0.3, 1.0)
    picture["mouth_open"] = np.where(draw.chance(0.35), draw.uniform(0.2, 1.0), 0.0)
    picture["light_angle"] = draw.uniform(0, 2 * np.pi)
    picture["light_strength"] = draw.uniform(0.0, 0.6)
    picture["brightness"] = draw.uniform(0.75, 1.15)
    picture["contrast"] = draw.uniform(0.75, 1.15)
    picture["cast"] = np.stack([draw.uniform(0.88, 1.12) for _ in range(3)], axis=1)
    picture["background"] = np.stack([draw.next() for _ in range(3)], axis=1)
    picture["background_2"] = np.stack([draw.next() for _ in range(3)], axis=1)
    picture["background_angle"] = draw.uniform(0, 2 * np.pi)
    picture["texture"] = draw.choice([0.4, 0.3, 0.3])
    picture["texture_amount"] = draw.uniform(0.05, 0.35)
    picture["texture_scale"] = draw.uniform(3, 12)
    picture["occluder"] = draw.choice([0.8, 0.1, 0.1])
    picture["occluder_x"] = picture["centre_x"] + picture["scale"] * draw.uniform(-0.7, 0.7)
    picture["occluder_y"] = picture["centre_y"] + picture["scale"] * draw.uniform(-0.3, 1.0)
    picture["occluder_width"] = draw.uniform(0.12, 0.25)
    picture["occluder_height"] = draw.uniform(0.12, 0.25)
    picture["occluder_angle"] = draw.uniform(-np.pi, np.pi)
    rectangle_colour = np.stack([draw.next() for _ in range(3)], axis=1)
    hand_colour = skin_tone(draw.next())
    is_hand = picture["occluder"] == HAND
    picture["occluder_colour"] = np.where(is_hand[:, None], hand_colour, rectangle_colour)
    picture["blur"] = draw.uniform(0.0, 0.8)
    picture["noise"] = draw.uniform(0.0, 0.035)
    picture["noise_seed"] = draw.seeds()
    picture["clothes"] = np.stack([draw.next() for _ in range(3)], axis=1)
    return picture


# ------------------------------------------------------------------ rendering: the driver

@render_jit(parallel=True)
def _render_pictures(identities, pictures, labels, images):
    """images[i] <- picture i of person labels[i]; one picture per parallel iteration."""
    for i in prange(images.shape[0]):
        _render_picture(identities[labels[i]], pictures[i], images[i])


@render_jit
def _render_picture(face, picture, image):
    """Paint every pixel of one (3, size, size) picture, then blur it and add the camera's noise."""
    size = image.shape[1]
    pixel = np.empty(3)
    for row in range(size):
        for col in range(size):
            x = (col + 0.5) * 2.0 / size - 1.0
            y = (row + 0.5) * 2.0 / size - 1.0
            _paint_pixel(pixel, face, picture, x, y, size)
            for c in range(3):
                image[c, row, col] = pixel[c]
    _blur(image, picture.blur * size / REFERENCE_SIZE)
    _camera(image, picture)


@render_jit
def _paint_pixel(pixel, face, picture, x, y, size):
    """The colour at (x, y): background, then the head's layers back to front, then an occluder."""
    _background(pixel, picture, x, y)
    u, v = _rotate(x - picture.centre_x, y - picture.centre_y, picture.roll)
    u, v = u / picture.scale, v / picture.scale
    px = 2.0 / (size * picture.scale)  # one pixel in face units
    f = _turned(u, face.face_width, picture.yaw)
    light = max(0.2, 1.0 + picture.light_strength * (
        np.cos(picture.light_angle) * u + np.sin(picture.light_angle) * v))
    _hair_behind(pixel, face, u, v, light, px)
    _body_and_ears(pixel, face, picture, u, v, light, px)
    head = _head(face, u, v)
    _paint(pixel, face.skin, _cover(head, px), light * _roundness(face, u, v))
    if head < 3 * px:
        _freckles_and_moles(pixel, face, f, v, light, px)
        _beard(pixel, face, picture, f, v, head, light, px)
        _mouth(pixel, face, picture, f, v, light, px)
        _nose(pixel, face, picture, f, v, light, px)
        for side in (-1.0, 1.0):
            _eye(pixel, face, picture, f - side * face.eye_spacing, v - face.eye_level, side,
                 light, px)
            _brow(pixel, face, picture, f - side * face.eye_spacing, v - face.eye_level, side,
                  light, px)
    _hair_front(pixel, face, u, v, light, px)
    if head < 0.04:
        _glasses(pixel, face, f, v, light, px)
    _occluder(pixel, picture, x, y, 2.0 / size)


# ------------------------------------------------------------------ rendering: shapes

@render_jit
def _rotate(p, q, angle):
    """(p, q) turned by -angle: a point's coordinates in a frame turned by +angle."""
    c, s = np.cos(angle), np.sin(angle)
    return c * p + s * q, -s * p + c * q


@render_jit
def _ellipse(p, q, a, b):
    """Signed distance (approximate, exact on the axes) to the ellipse p^2/a^2 + q^2/b^2 = 1.

    d = k0 (k0 - 1) / k1 with k0 = |(p/a, q/b)| and k1 = |(p/a^2, q/b^2)|: the
    level-set value k0 - 1 divided by its gradient's length k1 / k0.
    """
    k0 = np.sqrt((p / a) ** 2 + (q / b) ** 2)
    k1 = np.sqrt((p / (a * a)) ** 2 + (q / (b * b)) ** 2)
    if k1 == 0.0:
        return -min(a, b)
    return k0 * (k0 - 1.0) / k1


@render_jit
def _capsule(p, q, p0, q0, p1, q1, radius):
    """Signed distance to the segment (p0, q0)-(p1, q1) thickened by `radius`."""
    dp, dq = p1 - p0, q1 - q0
    t = ((p - p0) * dp + (q - q0) * dq) / max(dp * dp + dq * dq, 1e-12)
    t = min(max(t, 0.0), 1.0)
    return np.sqrt((p - p0 - t * dp) ** 2 + (q - q0 - t * dq) ** 2) - radius


@render_jit
def _box(p, q, a, b, corner):
    """Signed distance to the box |p| <= a, |q| <= b with corners rounded by `corner`."""
    dp = abs(p) - a + corner
    dq = abs(q) - b + corner
    outside = np.sqrt(max(dp, 0.0) ** 2 + max(dq, 0.0) ** 2)
    return outside + min(max(dp, dq), 0.0) - corner


@render_jit
def _cover(distance, px):
    """How much of a pixel of size px a shape covers, from its signed distance: 0 .. 1."""
    return min(max(0.5 - distance / px, 0.0), 1.0)


@render_jit
def _paint(pixel, colour, alpha, factor):
    """pixel <- pixel + alpha (factor * colour - pixel): paint over with opacity alpha."""
    if alpha > 0.0:
        for c in range(3):
            pixel[c] += alpha * (factor * colour[c] - pixel[c])


@render_jit
def _hash01(a, b, c):
    """A uniform number in [0, 1) from three integers >= 0 (a SplitMix64-style hash)."""
    h = (np.uint64(a) * np.uint64(0x9E3779B97F4A7C15)
         ^ np.uint64(b) * np.uint64(0xC2B2AE3D27D4EB4F)
         ^ np.uint64(c) * np.uint64(0x165667B19E3779F9))
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)) * (1.0 / 9007199254740992.0)  # top 53 bits / 2^53


@render_jit
def _value_noise(x, y, seed):
    """Smooth noise in [0, 1): hashed values on the integer grid, blended with smoothstep."""
    ix, iy = int(np.floor(x)), int(np.floor(y))
    tx, ty = x - ix, y - iy
    tx, ty = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)
    top = (1 - tx) * _hash01(seed, ix, iy) + tx * _hash01(seed, ix + 1, iy)
    bottom = (1 - tx) * _hash01(seed, ix, iy + 1) + tx * _hash01(seed, ix + 1, iy + 1)
    return (1 - ty) * top + ty * bottom


# ------------------------------------------------------------------ rendering: the layers

@render_jit
def _background(pixel, picture, x, y):
    """A gradient between two colours, plain, striped or blotched."""
    along = np.cos(picture.background_angle) * x + np.sin(picture.background_angle) * y
    t = min(max(0.5 + 0.4 * along, 0.0), 1.0)
    if picture.texture == STRIPES:
        across = -np.sin(picture.background_angle) * x + np.cos(picture.background_angle) * y
        texture = np.sin(picture.texture_scale * 2.0 * across)
    elif picture.texture == BLOTCHES:
        s = picture.texture_scale * 0.5
        texture = 2.0 * _value_noise((x + 2.0) * s, (y + 2.0) * s, picture.noise_seed + 1) - 1.0
    else:
        texture = 0.0
    for c in range(3):
        colour = (1 - t) * picture.background[c] + t * picture.background_2[c]
        pixel[c] = colour * (1.0 + picture.texture_amount * texture)


@render_jit
def _turned(u, width, yaw):
    """Where the feature seen at u sits on a face turned by `yaw`: w sin(asin(u / w) - yaw)."""
    s = min(max(u / width, -1.0), 1.0)
    return width * np.sin(np.arcsin(s) - yaw)


@render_jit
def _head(face, u, v):
    """Signed distance to the head: an ellipse whose lower half narrows towards the chin."""
    taper = 1.0 - face.jaw_taper * (max(v, 0.0) / face.face_height) ** 2
    return _ellipse(u / taper, v, face.face_width, face.face_height) * taper


@render_jit
def _roundness(face, u, v):
    """Shading that darkens the skin towards the head's edge, so the head looks round."""
    r2 = (u / face.face_width) ** 2 + (v / face.face_height) ** 2
    return 1.0 - 0.22 * min(r2, 1.0) ** 2


@render_jit
def _body_and_ears(pixel, face, picture, u, v, light, px):
    shoulders = _ellipse(u, v - 2.05, 1.6, 0.9)
    _paint(pixel, picture.clothes, _cover(shoulders, px), light)
    neck = _box(u, v - 1.4, 0.42 * face.face_width, 0.8, 0.05)
    _paint(pixel, face.skin, _cover(neck, px), 0.75 * light)
    shift = -0.25 * face.face_width * np.sin(picture.yaw)  # ears move against the features
    for side in (-1.0, 1.0):
        ear = _ellipse(u - side * face.face_width - shift, v - face.ear_level,
                       0.55 * face.ear_size, face.ear_size)
        _paint(pixel, face.skin, _cover(ear, px), 0.9 * light)
        inner = _ellipse(u - side * (face.face_width + 0.02) - shift, v - face.ear_level,
                         0.25 * face.ear_size, 0.6 * face.ear_size)
        _paint(pixel, face.skin, 0.5 * _cover(inner, px), 0.65 * light)


@render_jit
def _hair_texture(u, v):
    return 0.92 + 0.08 * np.sin(55.0 * u + 12.0 * v)


@render_jit
def _hair_behind(pixel, face, u, v, light, px):
    """Long hair falling behind the neck, or a curly mass around the head."""
    if face.hair_style == STYLE_LONG:
        width = face.face_width + face.hair_volume + 0.06
        hair = _box(u, v - 0.75, width, 1.25, 0.2)
    elif face.hair_style == STYLE_CURLY:
        angle = np.arctan2(v + 0.2, u)
        bumps = 0.05 * np.sin(13.0 * angle)
        hair = _ellipse(u, v + 0.2, face.face_width + 0.22 + face.hair_volume,
                        0.85 * face.face_height + 0.25 + face.hair_volume) + bumps
    else:
        return
    _paint(pixel, face.hair, _cover(hair, px), 0.8 * light * _hair_texture(u, v))


@render_jit
def _hair_front(pixel, face, u, v, light, px):
    """Hair on the head: a cap above a hairline whose shape is the person's style."""
    cap = _ellipse(u, v + 0.04, face.face_width + 0.03 + 0.5 * face.hair_volume,
                   face.face_height + 0.02 + face.hair_volume)
    across = u / face.face_width
    style = face.hair_style
    if style == STYLE_BALDING:  # tufts over the ears only
        tuft = _ellipse(abs(u) - face.face_width, v + 0.1, 0.16, 0.28)
        hair = max(cap, tuft)
    elif style == STYLE_FRINGE:  # a straight, jagged fringe low on the forehead
        line = face.hairline + 0.3 + 0.025 * np.sin(60.0 * u) + 0.9 * across ** 6
        hair = max(cap, v - line)
    elif style == STYLE_PARTED:  # a hairline rising towards one side
        line = face.hairline + 0.15 * across + 0.45 * across ** 2
        hair = max(cap, v - line)
    else:  # short, long and curly: a rounded hairline, lower at the temples
        drop = 0.9 if style == STYLE_LONG else 0.45
        hair = max(cap, v - (face.hairline + drop * across ** 2))
    _paint(pixel, face.hair, _cover(hair, px), light * _hair_texture(u, v))


@render_jit
def _freckles_and_moles(pixel, face, f, v, light, px):
    for m in range(2):
        if face.mole_size[m] > 0:
            mole = np.sqrt((f - face.mole_u[m]) ** 2 + (v - face.mole_v[m]) ** 2)
            _paint(pixel, MOLE, _cover(mole - face.mole_size[m], px), light)
    cheek = v - face.eye_level
    if face.freckles > 0 and 0.08 < cheek < 0.3 and 0.1 < abs(f) < 0.85 * face.face_width:
        cell = 0.07
        i, j = int(np.floor(f / cell + 50)), int(np.floor(v / cell + 50))
        if _hash01(face.freckle_seed, i, j) < face.freckles:
            cf = (i - 50 + 0.2 + 0.6 * _hash01(face.freckle_seed + 1, i, j)) * cell
            cv = (j - 50 + 0.2 + 0.6 * _hash01(face.freckle_seed + 2, i, j)) * cell
            dot = np.sqrt((f - cf) ** 2 + (v - cv) ** 2) - 0.018
            _paint(pixel, face.skin, 0.7 * _cover(dot, px), 0.72 * light)


@render_jit
def _mouth_frame(face, picture, f, v):
    """Coordinates (p, q) around the mouth's centre, bent upwards at the corners by a smile."""
    p = f
    q = v - face.mouth_level + picture.smile * 0.07 * (f / face.mouth_width) ** 2
    return p, q


@render_jit
def _beard(pixel, face, picture, f, v, head, light, px):
    style = face.beard
    if style == NO_BEARD:
        return
    colour_factor = 0.85 * light * _hair_texture(f, v)
    p, q = _mouth_frame(face, picture, f, v)
    moustache = _ellipse(p, q + face.lip_thickness + 0.04, 1.05 * face.mouth_width, 0.035)
    if style == FULL_BEARD:
        top = face.mouth_level - 0.12
        sides = face.eye_level + 0.18
        line = top - (top - sides) * (f / face.face_width) ** 2
        beard = max(head - 0.02, line - v)
        _paint(pixel, face.beard_colour, _cover(min(beard, moustache), px), colour_factor)
    elif style == GOATEE:
        chin = _ellipse(p, q - face.lip_thickness - 0.1, 0.55 * face.mouth_width, 0.12)
        _paint(pixel, face.beard_colour, _cover(min(chin, moustache), px), colour_factor)
    else:
        _paint(pixel, face.beard_colour, _cover(moustache, px), colour_factor)


@render_jit
def _mouth(pixel, face, picture, f, v, light, px):
    p, q = _mouth_frame(face, picture, f, v)
    if abs(p) > 1.3 * face.mouth_width or abs(q) > 0.25:
        return
    opening = 0.08 * picture.mouth_open
    lips = _ellipse(p, q, face.mouth_width, face.lip_thickness + opening)
    _paint(pixel, face.lips, _cover(lips, px), light)
    if opening > 0:
        inside = _ellipse(p, q, 0.8 * face.mouth_width, opening)
        _paint(pixel, MOUTH_INSIDE, _cover(inside, px), light)
        teeth = max(inside, q + opening - 0.035)
        _paint(pixel, TEETH, _cover(teeth, px), light)
    else:
        parting = max(abs(q) - 0.006, abs(p) - 0.95 * face.mouth_width)
        _paint(pixel, face.lips, _cover(parting, px), 0.45 * light)


@render_jit
def _nose(pixel, face, picture, f, v, light, px):
    p = f + 0.1 * np.sin(picture.yaw)  # the nose stands out, so a turn moves it further
    tip = face.eye_level + face.nose_length
    width = face.nose_width
    if abs(p) > 3 * width or v < face.eye_level or v > tip + 0.1:
        return
    ridge = _capsule(p, v, 0.45 * width, face.eye_level + 0.08, 0.75 * width, tip - 0.04, 0.018)
    _paint(pixel, face.skin, 0.6 * _cover(ridge, px), 0.72 * light)
    ball = _ellipse(p, v - tip, width, 0.55 * width)
    _paint(pixel, face.skin, 0.5 * _cover(ball, px), 0.86 * light)
    for side in (-1.0, 1.0):
        nostril = _ellipse(p - side * 0.5 * width, v - tip - 0.25 * width,
                           0.3 * width, 0.16 * width)
        _paint(pixel, face.skin, _cover(nostril, px), 0.3 * light)


@render_jit
def _eye(pixel, face, picture, p, q, side, light, px):
    """One eye at (p, q) from its centre: the white, the iris, the pupil, the lash line."""
    width = face.eye_width
    if abs(p) > 1.6 * width or abs(q) > 1.2 * width:
        return
    p, q = _rotate(p, q, side * face.eye_tilt)
    height = max(width * face.eye_aspect * picture.eye_open, 0.004)
    white = _ellipse(p, q, width, height)
    _paint(pixel, SCLERA, _cover(white, px), light)
    iris_p = p - 0.35 * width * picture.gaze
    iris = max(np.sqrt(iris_p ** 2 + q ** 2) - face.iris_size * width, white)
    _paint(pixel, face.iris, _cover(iris, px), light)
    pupil = max(np.sqrt(iris_p ** 2 + q ** 2) - 0.45 * face.iris_size * width, white)
    _paint(pixel, PUPIL, _cover(pupil, px), 1.0)
    lash = max(abs(white) - 0.012, q)  # the outline's upper half
    _paint(pixel, PUPIL, _cover(lash, px), 1.0)


@render_jit
def _brow(pixel, face, picture, p, q, side, light, px):
    inner = -side * 0.7 * face.eye_width
    outer = side * face.brow_length * face.eye_width
    level = -face.brow_gap - picture.brow_raise
    brow = _capsule(p, q, inner, level, outer,
                    level - face.brow_angle * face.eye_width, face.brow_thickness)
    _paint(pixel, face.brow_colour, _cover(brow, px), light)


@render_jit
def _lens(face, p, q):
    """Signed distance to one lens around the eye centre, for the person's frame style."""
    width = face.eye_width
    if face.glasses == ROUND_GLASSES:
        return _ellipse(p, q, 1.45 * width, 1.3 * width)
    if face.glasses == RECTANGULAR_GLASSES:
        return _box(p, q, 1.6 * width, 1.0 * width, 0.03)
    return _box(p, q, 1.65 * width, 1.25 * width, 0.08)


@render_jit
def _glasses(pixel, face, f, v, light, px):
    if face.glasses == NO_GLASSES:
        return
    q = v - face.eye_level - 0.01
    if abs(q) > 0.35:
        return
    half = face.frame_thickness / 2
    reach = 1.6 * face.eye_width
    for side in (-1.0, 1.0):
        p = f - side * face.eye_spacing
        lens = _lens(face, p, q)
        if face.glasses == SUNGLASSES:
            _paint(pixel, DARK_LENS, 0.88 * _cover(lens, px), 1.0)
        _paint(pixel, face.frame, _cover(abs(lens) - half, px), light)
        arm = _capsule(f, q, side * (face.eye_spacing + reach), -0.02,
                       side * face.face_width, 0.02, half)
        _paint(pixel, face.frame, _cover(arm, px), light)
    bridge = _capsule(f, q, -face.eye_spacing + reach, -0.03, face.eye_spacing - reach, -0.03, half)
    _paint(pixel, face.frame, _cover(bridge, px), light)


@render_jit
def _occluder(pixel, picture, x, y, px):
    """A rectangle, or a hand (palm and four fingers), over part of the picture."""
    if picture.occluder == NO_OCCLUDER:
        return
    p, q = _rotate(x - picture.occluder_x, y - picture.occluder_y, picture.occluder_angle)
    w, h = picture.occluder_width, picture.occluder_height
    if picture.occluder == RECTANGLE:
        shape = _box(p, q, w, h, 0.01)
    else:
        shape = _ellipse(p, q, 0.8 * w, 0.7 * h)
        for finger in range(4):
            along = (finger - 1.5) * 0.42 * w
            length = (1.0 - 0.15 * abs(finger - 1.5)) * 1.2 * h
            shape = min(shape, _capsule(p, q, along, -0.3 * h, along, -0.3 * h - length, 0.17 * w))
    shading = 1.0 + 0.15 * q / h
    _paint(pixel, picture.occluder_colour, _cover(shape, px), shading)


# ------------------------------------------------------------------ rendering: the camera

@render_jit
def _blur(image, sigma):
    """Gaussian blur of standard deviation sigma pixels, separably: rows, then columns."""
    if sigma < 0.3:
        return
    radius = int(np.ceil(2.5 * sigma))
    weights = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    weights /= weights.sum()
    size = image.shape[1]
    work = np.empty_like(image)
    for c in range(3):
        for row in range(size):
            for col in range(size):
                total = 0.0
                for k in range(-radius, radius + 1):
                    total += weights[k + radius] * image[c, row, min(max(col + k, 0), size - 1)]
                work[c, row, col] = total
        for row in range(size):
            for col in range(size):
                total = 0.0
                for k in range(-radius, radius + 1):
                    total += weights[k + radius] * work[c, min(max(row + k, 0), size - 1), col]
                image[c, row, col] = total


@render_jit
def _camera(image, picture):
    """Colour cast, brightness, contrast, Gaussian noise (Box-Muller on hashed uniforms), clip."""
    size = image.shape[1]
    for c in range(3):
        gain = picture.cast[c] * picture.brightness
        for row in range(size):
            for col in range(size):
                index = (c * size + row) * size + col
                u1 = 1.0 - _hash01(picture.noise_seed, index, 0)
                u2 = _hash01(picture.noise_seed, index, 1)
                gaussian = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
                value = (image[c, row, col] * gain - 0.5) * picture.contrast + 0.5
                value += picture.noise * gaussian
                image[c, row, col] = min(max(value, 0.0), 1.0)
