"""Face data: real pictures in the usual layouts, pairs for verification, and looking at them.

Real data comes in two layouts:

- ONE FOLDER PER PERSON, `root/<name>/*.jpg` (or .png, .bmp, ...), read by
  `load_image_folder`. Names are the sorted folder names; label k means names[k].
- LFW's verification protocol, `load_lfw_pairs`: its pairs.txt starts with a line
  "10 300" (10 folds, 300 pairs of each kind per fold); each fold then lists 300
  matched pairs "name i j" (pictures i and j of one person) and 300 mismatched
  pairs "name1 i name2 j", picture i of `name` being
  `images_root/name/name_000i.jpg`. An accuracy "as in LFW" fits tau on nine
  folds, measures on the tenth, and averages over the ten choices.

Every picture becomes a float32 (3, size, size) RGB array in [0, 1], whatever the
file holds (gray, RGBA, palette, 16-bit: see scratchnet.io.images.load_image):
the largest centred square is cut out, the central `crop` fraction of it kept
(LFW's 250 x 250 pictures show the face in about the middle half: crop=0.5), and
the square resized to size x size with the Lanczos filter. Unreadable files are
skipped and counted, never fatal; `note` (print by default, None for silence)
receives one line per kind of event: pictures skipped, pictures resized, persons
left out.

Verification asks whether d(img1, img2) <= tau. `sample_pairs` draws balanced
same/different pairs, `fit_threshold` chooses the tau that classifies them best,
and `pixel_baseline_accuracy` uses the raw pixels as the encoding,
d = ||img1 - img2||^2: the number a learned encoder f must beat.
`contact_sheet` lays out a grid of persons x pictures to look at.

>>> from scratchnet.face import synthetic_faces
>>> images, labels = synthetic_faces(4, 3, seed=0, size=32)
>>> contact_sheet(images, labels, n_identities=4, per_identity=3).shape
(134, 100, 3)
>>> first, second, same = sample_pairs(labels, n_pairs=6, seed=0)
>>> bool(same.sum() == 3 and all((labels[first] == labels[second]) == same))
True
"""

import os

import numpy as np
from PIL import Image

from scratchnet.io.images import load_image, resize_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                    ".ppm", ".pgm")
LFW_NAME = "{name}/{name}_{index:04d}.jpg"   # a picture's path inside LFW's images root
NAMES_IN_A_NOTE = 3                           # how many examples a note lists
SHEET_GAP = 2                                 # white pixels between pictures in a contact sheet


# ------------------------------------------------------------------ reading pictures

def load_face_image(path, size=64, crop=1.0):
    """The picture at `path` as float32 (3, size, size): centred square, central `crop`, resized.

    Raises FileNotFoundError or ValueError (from load_image) when the file cannot be read.
    """
    return _face_square(load_image(path, note=None), size, crop)


def _face_square(image, size, crop):
    """(3, H, W) -> (3, size, size): the centred square, its central `crop`, resized."""
    height, width = image.shape[1:]
    side = max(1, round(min(height, width) * crop))
    top, left = (height - side) // 2, (width - side) // 2
    square = image[:, top:top + side, left:left + side]  # (3, H, W) -> (3, side, side)
    return resize_image(square, (size, size)) if side != size else square.copy()


def _check_size_and_crop(size, crop):
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size: expected a positive int, got {size!r}")
    if not isinstance(crop, (int, float)) or not 0 < crop <= 1:
        raise ValueError(f"crop: expected a fraction in (0, 1], got {crop!r}")


def _load_many(paths, size, crop, note):
    """Read `paths`; returns (images of the readable ones, their indices in `paths`).

    The unreadable files are skipped, and `note` told how many, and how many
    pictures were not size x size already.
    """
    images, kept, unreadable, resized = [], [], [], 0
    for index, path in enumerate(paths):
        try:
            image = load_image(path, note=None)
        except (OSError, ValueError, Image.DecompressionBombError):  # missing, corrupt, huge
            unreadable.append(path)
            continue
        resized += image.shape[1:] != (size, size)
        images.append(_face_square(image, size, crop))
        kept.append(index)
    _note_skipped(note, "unreadable pictures", unreadable)
    if note is not None and resized:
        note(f"resized {resized} of {len(images)} pictures to {size} x {size}")
    stacked = np.stack(images) if images else np.empty((0, 3, size, size), dtype=np.float32)
    return stacked, np.array(kept, dtype=np.int64)


def _note_skipped(note, what, items):
    if note is not None and items:
        shown = ", ".join(str(item) for item in items[:NAMES_IN_A_NOTE])
        more = f" and {len(items) - NAMES_IN_A_NOTE} more" if len(items) > NAMES_IN_A_NOTE else ""
        note(f"skipped {len(items)} {what}: {shown}{more}")


# ------------------------------------------------------------------ one folder per person

def load_image_folder(root, size=64, min_per_identity=1, crop=1.0, note=print):
    """Pictures of persons stored as `root/<name>/<picture>`; returns (images, labels, names).

    images: float32 (N, 3, size, size); labels: int64 (N,), label k meaning
    names[k]; names: the sorted names of the folders kept. Files whose extension is
    not an image's (IMAGE_EXTENSIONS), hidden files and files directly in `root` are
    ignored; unreadable pictures are skipped. A person with fewer than
    `min_per_identity` readable pictures is left out (min_per_identity=2 for
    triplets, which need an anchor and a positive); `note` reports both counts.

    Raises FileNotFoundError if `root` is not a folder, and ValueError if no
    person is left.
    """
    root = os.fspath(root)
    _check_size_and_crop(size, crop)
    if not isinstance(min_per_identity, (int, np.integer)) or min_per_identity < 1:
        raise ValueError(f"min_per_identity: expected an int >= 1, got {min_per_identity!r}")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"root: {root} is not a folder")
    folders = sorted(entry.name for entry in os.scandir(root)
                     if entry.is_dir() and not entry.name.startswith("."))
    paths, owners = [], []
    for person, name in enumerate(folders):
        pictures = _image_files(os.path.join(root, name))
        paths += pictures
        owners += [person] * len(pictures)
    images, kept = _load_many(paths, size, crop, note)
    owners = np.array(owners, dtype=np.int64)[kept]
    counts = np.bincount(owners, minlength=len(folders))
    keep = counts >= min_per_identity
    too_few = [name for name, enough in zip(folders, keep) if not enough]
    what = ("persons without a readable picture" if min_per_identity == 1
            else f"persons with fewer than {min_per_identity} pictures")
    _note_skipped(note, what, too_few)
    if not keep.any():
        raise ValueError(f"root: no person in {root} has {min_per_identity} readable pictures")
    new_label = np.cumsum(keep) - 1  # old person index -> label among the kept ones
    chosen = keep[owners]
    names = [name for name, enough in zip(folders, keep) if enough]
    return images[chosen], new_label[owners[chosen]], names


def _image_files(folder):
    return sorted(
        os.path.join(folder, entry.name) for entry in os.scandir(folder)
        if entry.is_file() and not entry.name.startswith(".")
        and os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS
    )


def count_single_picture_identities(labels):
    """How many persons have exactly one picture: they cannot give a triplet's anchor AND positive.

    >>> count_single_picture_identities(np.array([0, 0, 1, 2, 2, 3]))
    2
    """
    return int(np.sum(np.bincount(np.asarray(labels)) == 1))


# ------------------------------------------------------------------ LFW pairs

def read_lfw_pairs(pairs_path):
    """The folds of an LFW pairs file: a list of (first, second, same), nothing read but the file.

    first and second are lists of (name, picture number) and same a bool array;
    in each fold the matched pairs come first. A header of one number n (as in
    pairsDevTrain.txt) means one fold of n pairs of each kind. Raises ValueError
    naming the line when the file does not follow the format.
    """
    try:
        with open(pairs_path, encoding="utf-8") as file:
            lines = [line.split() for line in file if line.strip()]
    except UnicodeDecodeError:
        raise ValueError(f"pairs_path: {pairs_path} is not a UTF-8 text file") from None
    if not lines:
        raise ValueError(f"pairs_path: {pairs_path} is empty")
    header = _ints(lines[0], pairs_path, 1)
    if len(header) > 2 or min(header) < 1:
        raise ValueError(f"pairs_path: {pairs_path} line 1: expected a header 'folds pairs' "
                         f"or 'pairs' of positive numbers, got {' '.join(lines[0])!r}")
    n_folds, per_kind = (1, header[0]) if len(header) == 1 else header
    if len(lines) - 1 != 2 * n_folds * per_kind:
        raise ValueError(f"pairs_path: the header announces {n_folds} folds of 2 x {per_kind} "
                         f"pairs, the file has {len(lines) - 1} pair lines")
    folds = []
    for fold in range(n_folds):
        start = 1 + 2 * fold * per_kind
        block = [_lfw_pair(lines[start + k], pairs_path, start + k + 1)
                 for k in range(2 * per_kind)]
        first, second, same = zip(*block)
        folds.append((list(first), list(second), np.array(same)))
    return folds


def _ints(fields, path, line_number):
    try:
        return [int(field) for field in fields]
    except ValueError:
        raise ValueError(f"pairs_path: {path} line {line_number}: expected numbers, "
                         f"got {' '.join(fields)!r}") from None


def _lfw_pair(fields, path, line_number):
    """((name, i), (name, j), True) from "name i j", or ... False from "name1 i name2 j"."""
    if len(fields) == 3:
        i, j = _ints(fields[1:], path, line_number)
        return (fields[0], i), (fields[0], j), True
    if len(fields) == 4:
        i, j = _ints(fields[1::2], path, line_number)
        return (fields[0], i), (fields[2], j), False
    raise ValueError(f"pairs_path: {path} line {line_number}: expected 'name i j' or "
                     f"'name1 i name2 j', got {' '.join(fields)!r}")


def load_lfw_pairs(pairs_path, images_root, size=64, crop=1.0, note=print):
    """The folds of LFW's protocol with their pictures: a list of (images1, images2, same).

    images1 and images2 are float32 (n, 3, size, size), the two sides of fold's n
    pairs, and same a bool (n,) array. Each picture file is read once even when it
    is in several pairs. A pair with an unreadable or missing picture is dropped
    from its fold and counted in a note. Raises FileNotFoundError if no picture at
    all can be read (a wrong `images_root`).
    """
    _check_size_and_crop(size, crop)
    folds = read_lfw_pairs(pairs_path)
    wanted = sorted({person for first, second, _ in folds for person in first + second})
    paths = [os.path.join(images_root, LFW_NAME.format(name=name, index=index))
             for name, index in wanted]
    images, kept = _load_many(paths, size, crop, note)
    if len(kept) == 0:
        raise FileNotFoundError(f"images_root: none of the pictures named in {pairs_path} "
                                f"could be read under {images_root}, e.g. {paths[0]}")
    row = {wanted[k]: position for position, k in enumerate(kept)}
    loaded, dropped = [], 0
    for first, second, same in folds:
        usable = np.array([a in row and b in row for a, b in zip(first, second)], dtype=bool)
        dropped += int(np.sum(~usable))
        rows1 = np.array([row[a] for a, ok in zip(first, usable) if ok], dtype=np.int64)
        rows2 = np.array([row[b] for b, ok in zip(second, usable) if ok], dtype=np.int64)
        loaded.append((images[rows1], images[rows2], same[usable]))
    if note is not None and dropped:
        note(f"dropped {dropped} pairs whose pictures could not be read")
    return loaded


# ------------------------------------------------------------------ pairs and the pixel baseline

def sample_pairs(labels, n_pairs, seed):
    """n_pairs index pairs (first, second, same), half of one person and half of two, shuffled.

    A same pair joins two different pictures of one person (persons with at least
    two pictures); a different pair joins pictures of two persons.
    """
    labels = np.asarray(labels)
    if not isinstance(n_pairs, (int, np.integer)) or n_pairs < 2:
        raise ValueError(f"n_pairs: expected an int >= 2, got {n_pairs!r}")
    counts = np.bincount(labels)
    if np.count_nonzero(counts) < 2 or counts.max() < 2:
        raise ValueError("labels: expected at least two persons and one with two pictures")
    rng = np.random.default_rng(seed)
    n_same = n_pairs // 2
    order = np.argsort(labels, kind="stable")    # pictures grouped by person
    start = np.cumsum(counts) - counts           # where each person's group begins in `order`
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))           # picture -> its position in `order`
    anchors = rng.choice(np.flatnonzero(counts[labels] >= 2), n_same)
    group = labels[anchors]
    other = rng.integers(0, counts[group] - 1)    # one of the n - 1 other pictures
    other += other >= rank[anchors] - start[group]  # skip the anchor itself
    positives = order[start[group] + other]
    first = rng.integers(0, len(labels), n_pairs - n_same)
    second = rng.integers(0, len(labels), n_pairs - n_same)
    while np.any(clash := labels[first] == labels[second]):
        second[clash] = rng.integers(0, len(labels), np.count_nonzero(clash))
    pairs_first = np.concatenate([anchors, first])
    pairs_second = np.concatenate([positives, second])
    same = np.arange(n_pairs) < n_same
    shuffle = rng.permutation(n_pairs)
    return pairs_first[shuffle], pairs_second[shuffle], same[shuffle]


def fit_threshold(distances, same):
    """The tau >= 0 for which "same person when d <= tau" classifies the pairs (d >= 0) best;
    (tau, accuracy).

    >>> fit_threshold(np.array([0.1, 0.2, 0.9, 1.0]), np.array([True, True, False, False]))
    (0.55, 1.0)
    """
    distances, same = np.asarray(distances, dtype=np.float64), np.asarray(same, dtype=bool)
    order = np.argsort(distances, kind="stable")
    d, s = distances[order], same[order]
    # accepting the k closest pairs as "same": right are the same among them, different after
    same_below = np.concatenate([[0], np.cumsum(s)])
    different_above = np.sum(~s) - np.concatenate([[0], np.cumsum(~s)])
    right = same_below + different_above
    ties = np.concatenate([[False], d[1:] == d[:-1], [False]])  # a cut between equal distances
    right[ties] = -1
    if d[0] <= 0:
        right[0] = -1             # no tau >= 0 accepts no pair when one is at distance 0
    k = int(np.argmax(right))
    if k == 0:                    # accept none: halfway between 0 and the closest pair
        return float(d[0] / 2), float(right[0] / len(d))
    above = d[k] if k < len(d) else d[-1] + 1.0
    return float((d[k - 1] + above) / 2), float(right[k] / len(d))


def pair_distances(images, first, second, chunk=512):
    """d = ||images[first] - images[second]||^2 per pair, computed `chunk` pairs at a time."""
    distances = np.empty(len(first))
    for begin in range(0, len(first), chunk):
        a = images[first[begin:begin + chunk]].reshape(len(first[begin:begin + chunk]), -1)
        b = images[second[begin:begin + chunk]].reshape(len(a), -1)  # (n, 3, H, W) -> (n, 3 H W)
        distances[begin:begin + chunk] = np.sum((a.astype(np.float64) - b) ** 2, axis=1)
    return distances


def pixel_baseline_accuracy(images, labels, n_pairs=2000, seed=0):
    """Verification accuracy of the raw pixels: d = ||img1 - img2||^2 <= tau.

    Balanced pairs from `sample_pairs`; tau is fitted on the first half of them and
    the accuracy measured on the second half. 0.5 is chance.
    """
    first, second, same = sample_pairs(labels, n_pairs, seed)
    distances = pair_distances(np.asarray(images), first, second)
    half = n_pairs // 2
    tau, _ = fit_threshold(distances[:half], same[:half])
    return float(np.mean((distances[half:] <= tau) == same[half:]))


# ------------------------------------------------------------------ looking at the data

def contact_sheet(images, labels, n_identities=8, per_identity=8):
    """A grid to look at: one row per person (the first n_identities to appear), their pictures.

    images: (N, 3, H, W) floats in [0, 1]; returns a uint8 (rows, columns, 3) array
    that Pillow saves with Image.fromarray(sheet).save(path). Pictures are separated
    by SHEET_GAP white pixels; a person with fewer pictures leaves white cells.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 4 or images.shape[1] != 3 or len(images) != len(labels):
        raise ValueError(f"images: expected (N, 3, H, W) with N = len(labels) = {len(labels)}, "
                         f"got {images.shape}")
    _, first_seen = np.unique(labels, return_index=True)
    persons = labels[np.sort(first_seen)][:n_identities]
    height, width = images.shape[2:]
    step_h, step_w = height + SHEET_GAP, width + SHEET_GAP
    sheet = np.full((len(persons) * step_h - SHEET_GAP, per_identity * step_w - SHEET_GAP, 3),
                    255, dtype=np.uint8)
    for row, person in enumerate(persons):
        for column, picture in enumerate(np.flatnonzero(labels == person)[:per_identity]):
            pixels = np.clip(images[picture], 0, 1).transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
            sheet[row * step_h:row * step_h + height, column * step_w:column * step_w + width] = (
                np.round(pixels * 255).astype(np.uint8))
    return sheet
