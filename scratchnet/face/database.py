"""Recognition 1:K: a database of enrolled persons, looked up by the nearest encoding.

The slide: to recognise a face, compare its encoding f(x) with the stored
encodings of the K persons in the database; answer the nearest person when

    d(x, person) = ||f(x) - e_person||^2 <= tau,    else "not recognized".

One-shot learning: a person is enrolled from ONE picture, e_person = f(picture),
without training anything. Enrolled from n pictures, e_person is their mean
encoding, (1/n) sum_i f(picture_i), and n is stored with it. For a picture x of
the person, ||f(x) - mean||^2 <= mean of the ||f(x) - f(picture_i)||^2
(the squared distance is convex), so if every enrolled picture is within tau of
x, so is the mean: the tau fitted on pairs of pictures stays meaningful.

Finding the nearest of K encodings E (K, d) for a query q (d,): expanding

    ||q - e_k||^2 = |q|^2 - 2 e_k . q + |e_k|^2

makes the search one matrix-vector product E q plus the squared norms |e_k|^2,
which are kept precomputed (|q|^2 is the same for every k and is not needed to
rank them). The winner's distance is then recomputed directly, in float64, so
the distance reported is exact (the expanded form loses digits when
q is close to e_k, and could even come out slightly negative).

The encoder is any object with
    encoder(images) -> (N, d) float embeddings, images (N, 3, S, S) float32 in [0, 1]
    encoder.tau             the threshold, used when FaceDatabase gets no tau
                            (encoder.tau_identify instead, when the encoder has one:
                            the stricter threshold fitted for recognition 1:K)
    encoder.fingerprint     a string that identifies its weights
    encoder.embedding_size  d

The file. Everything lives in ONE .npz file (NumPy arrays in a zip archive,
read with allow_pickle=False) holding

    format          "scratchnet-face-database"
    version         FORMAT_VERSION (1)
    fingerprint     the encoder's fingerprint, a string
    embedding_size  d
    names           (K,) strings, in enrolment order
    embeddings      (K, d) float32, the e_person
    counts          (K,) int64, the number of pictures behind each e_person

It is rewritten after every change through a temporary file renamed over it
(scratchnet.serialize.atomic_write), so a crash mid-write leaves the previous
version; a change that cannot be saved is not applied in memory either. A
path that does not exist yet is an empty database, created at the first
enrolment. Opening a file that is not such a database, is damaged, or was
made with another encoder (fingerprint or embedding size) raises
DatabaseError naming the file, and the file is not modified. One process
should write to a database file at a time.

>>> import os, tempfile
>>> class Encoder:                      # a stand-in: the mean colour of each picture
...     tau, fingerprint, embedding_size = 0.3, "mean-colour", 3
...     def __call__(self, images):
...         return images.mean(axis=(2, 3))
>>> database = FaceDatabase(os.path.join(tempfile.mkdtemp(), "faces.npz"), Encoder())
>>> red, blue = np.zeros((3, 8, 8), np.float32), np.zeros((3, 8, 8), np.float32)
>>> red[0], blue[2] = 1, 1
>>> database.enroll("Ann", red)
>>> database.identify(red * 0.5)
('Ann', 0.25)
>>> database.identify(blue)
(None, 2.0)
"""

import os
import unicodedata
import zipfile

import numpy as np

from ..serialize import ZIP_START, load_npz, save_npz

FORMAT = "scratchnet-face-database"
FORMAT_VERSION = 1
KEYS = ("format", "version", "fingerprint", "embedding_size", "names", "embeddings", "counts")
SCORES_PER_CHUNK = 2 ** 22   # queries x enrolled scores held at once when identifying many


def _encoder_tau(encoder):
    """The encoder's recognition threshold, as given (checked where it is used)."""
    return getattr(encoder, "tau_identify", encoder.tau)


class DatabaseError(ValueError):
    """A database file cannot be used: damaged, not a database, or made with another encoder."""


class NotEnrolledError(KeyError):
    """A name that is not in the database (a KeyError whose message reads as a sentence)."""

    def __str__(self):
        return str(self.args[0])


class FaceDatabase:
    """The persons enrolled for recognition 1:K, kept in the file at `path`.

    tau: the threshold of "recognized when d <= tau"; None (the default) uses
    the encoder's recognition threshold (`encoder.tau_identify` if it has one, else
    `encoder.tau`), read at every identification.
    """

    def __init__(self, path, encoder, tau=None):
        self.path = os.fspath(path)
        self.encoder = encoder
        self.embedding_size, self.fingerprint = _check_encoder(encoder)
        _check_tau(_encoder_tau(encoder) if tau is None else tau,
                   "encoder.tau" if tau is None else "tau")
        self._tau = None if tau is None else float(tau)
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"path: the folder {folder} of {self.path} does not exist")
        if os.path.exists(self.path):
            self._set(*_read(self.path, self.fingerprint, self.embedding_size))
        else:
            self._set([], np.empty((0, self.embedding_size), np.float32), np.empty(0, np.int64))

    def __repr__(self):
        return f"FaceDatabase({self.path!r}, enrolled={len(self)}, tau={self.tau:g})"

    @property
    def tau(self):
        """The threshold in use: the one given, else the encoder's current tau."""
        return float(_encoder_tau(self.encoder)) if self._tau is None else self._tau

    # ------------------------------------------------------------------ what is enrolled

    def __len__(self):
        return len(self._names)

    def __contains__(self, name):
        return name in self._row

    def names(self):
        """The enrolled names, in enrolment order."""
        return list(self._names)

    def picture_count(self, name):
        """How many pictures the stored encoding of `name` is the mean of."""
        return int(self._counts[self._row_of(name)])

    # ------------------------------------------------------------------ changes

    def enroll(self, name, images, replace=False):
        """Enrol `name` from one picture (3, S, S) or several (n, 3, S, S): the mean encoding.

        A name already enrolled is refused with a ValueError unless replace=True,
        which replaces its encoding. The file is rewritten.
        """
        _checked_name(name)                             # before the pictures are encoded
        embeddings = self._encode(images).astype(np.float64)
        mean = embeddings.mean(axis=0, keepdims=True)   # (n, d) -> (1, d)
        self.enroll_embeddings([name], mean, counts=[len(embeddings)], replace=replace)

    def enroll_embeddings(self, names, embeddings, counts=None, replace=False):
        """Enrol many persons at once from encodings already computed: the bulk path.

        names: K' distinct names; embeddings: (K', d), row k the encoding of
        names[k]; counts: the number of pictures behind each (default 1). Names
        already enrolled are refused unless replace=True. The file is written once.
        """
        names = [_checked_name(name) for name in ([names] if isinstance(names, str) else names)]
        if len(set(names)) != len(names):
            raise ValueError("names: expected distinct names, got the same name twice")
        embeddings = self._check_embeddings(embeddings, "embeddings")
        counts = _check_counts(np.ones(len(names), np.int64) if counts is None else counts,
                               len(names))
        if len(embeddings) != len(names):
            raise ValueError(f"embeddings: expected one row per name ({len(names)}), "
                             f"got {len(embeddings)}")
        is_new = np.array([name not in self._row for name in names], dtype=bool)
        if not replace and not is_new.all():
            taken = names[int(np.argmin(is_new))]
            raise ValueError(f"name: {taken!r} is already enrolled in {self.path} (from "
                             f"{self.picture_count(taken)} picture(s)); pass replace=True "
                             f"(--replace) to replace it")
        all_names = self._names + [name for name, new in zip(names, is_new) if new]
        all_embeddings = np.concatenate([self._embeddings, embeddings[is_new]])
        all_counts = np.concatenate([self._counts, counts[is_new]])
        replaced_rows = [self._row[name] for name, new in zip(names, is_new) if not new]
        all_embeddings[replaced_rows] = embeddings[~is_new]
        all_counts[replaced_rows] = counts[~is_new]
        self._commit(all_names, all_embeddings, all_counts)

    def remove(self, name):
        """Forget `name`; NotEnrolledError (a KeyError) if it is not enrolled. Rewrites the file."""
        row = self._row_of(name)
        self._commit(self._names[:row] + self._names[row + 1:],
                     np.delete(self._embeddings, row, axis=0), np.delete(self._counts, row))

    # ------------------------------------------------------------------ recognition

    def identify(self, image):
        """(name, d) of the nearest enrolled person for one picture (3, S, S) or (1, 3, S, S).

        name is None ("not recognized") when d > tau or nobody is enrolled; d is the
        squared distance to the nearest encoding (inf when nobody is enrolled).
        """
        image = np.asarray(image)
        if image.ndim == 4 and len(image) != 1:
            raise ValueError(f"image: expected one picture, got {len(image)}; "
                             f"use identify_many for several")
        names, distances = self.identify_many(image)
        return names[0], float(distances[0])

    def identify_many(self, images):
        """identify for each picture of (n, 3, S, S): (list of names or None, distances (n,))."""
        images = _check_images(images)
        if len(self) == 0:                 # no need to encode: nobody to recognize
            return [None] * len(images), np.full(len(images), np.inf)
        return self.identify_embeddings(self._encode(images))

    def identify_embeddings(self, embeddings):
        """identify_many for encodings already computed, (n, d): (names or None, distances)."""
        names, distances = self.nearest(embeddings)
        recognized = distances <= self.tau
        return [name if ok else None for name, ok in zip(names, recognized)], distances

    def nearest(self, embeddings):
        """The nearest enrolled name for each encoding (n, d), whatever its distance; (names, d).

        For an empty database the names are None and the distances inf.
        """
        queries = self._check_embeddings(embeddings, "embeddings")
        if len(self) == 0:
            return [None] * len(queries), np.full(len(queries), np.inf)
        chunk = max(1, SCORES_PER_CHUNK // len(self))
        best = np.concatenate([self._nearest_rows(queries[begin:begin + chunk])
                               for begin in range(0, len(queries), chunk)])
        differences = queries.astype(np.float64) - self._embeddings[best]
        distances = np.einsum("nd,nd->n", differences, differences)  # exact ||q - e_best||^2
        return [self._names[row] for row in best], distances

    def _nearest_rows(self, queries):
        """argmin over k of |e_k|^2 - 2 e_k . q per query (adding |q|^2 would not change it)."""
        products = queries @ self._embeddings.T       # (n, d) x (d, K) -> (n, K)
        scores = self._squared_norms - 2 * products
        return np.argmin(scores, axis=1)

    # ------------------------------------------------------------------ inside

    def _set(self, names, embeddings, counts):
        self._names = list(names)
        self._row = {name: row for row, name in enumerate(self._names)}
        self._embeddings = embeddings
        self._squared_norms = np.einsum("kd,kd->k", embeddings, embeddings)  # |e_k|^2, (K,)
        self._counts = counts

    def _commit(self, names, embeddings, counts):
        """Write the new contents to the file, then (only if that worked) take them in memory."""
        save_npz(self.path, {
            "format": np.array(FORMAT),
            "version": np.array(FORMAT_VERSION),
            "fingerprint": np.array(self.fingerprint),
            "embedding_size": np.array(self.embedding_size),
            "names": np.array(names, dtype=str),
            "embeddings": embeddings,
            "counts": counts,
        })
        self._set(names, embeddings, counts)

    def _row_of(self, name):
        if isinstance(name, str) and name not in self._row:
            name = unicodedata.normalize("NFC", name)   # as enrol stored it
        if name not in self._row:
            shown = ", ".join(repr(known) for known in self._names[:5])
            more = " ..." if len(self) > 5 else ""
            enrolled = f"enrolled: {shown}{more}" if len(self) else "nobody is enrolled"
            raise NotEnrolledError(f"name: {name!r} is not enrolled in {self.path} ({enrolled})")
        return self._row[name]

    def _encode(self, images):
        """The encoder's (n, d) float32 embeddings of `images`, checked."""
        images = _check_images(images)
        embeddings = np.asarray(self.encoder(images))
        if embeddings.shape != (len(images), self.embedding_size):
            raise ValueError(f"encoder: expected ({len(images)}, {self.embedding_size}) "
                             f"embeddings, got shape {embeddings.shape}")
        return self._check_embeddings(embeddings, "encoder output")

    def _check_embeddings(self, embeddings, name):
        embeddings = np.asarray(embeddings)
        if not np.issubdtype(embeddings.dtype, np.floating):
            raise TypeError(f"{name}: expected float encodings, got dtype {embeddings.dtype}")
        if embeddings.ndim == 1:
            embeddings = embeddings[None]             # (d,) -> (1, d)
        if (embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_size
                or len(embeddings) == 0):
            raise ValueError(f"{name}: expected (n, {self.embedding_size}) encodings with "
                             f"n >= 1, got shape {embeddings.shape}")
        if not np.all(np.isfinite(embeddings)):
            raise ValueError(f"{name}: expected finite numbers, got NaN or inf")
        return embeddings.astype(np.float32)


# ------------------------------------------------------------------ arguments

def _check_encoder(encoder):
    """(embedding_size, fingerprint) of a usable encoder; TypeError naming what is missing."""
    missing = [attribute for attribute in ("tau", "fingerprint", "embedding_size")
               if not hasattr(encoder, attribute)]
    if missing or not callable(encoder):
        what = ", ".join(missing) + (" and a __call__" if not callable(encoder) else "")
        raise TypeError(f"encoder: expected a callable with tau, fingerprint and embedding_size, "
                        f"{type(encoder).__name__} lacks {what.lstrip(', ')}")
    size = encoder.embedding_size
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"encoder.embedding_size: expected a positive int, got {size!r}")
    if not isinstance(encoder.fingerprint, str) or not encoder.fingerprint:
        raise ValueError(f"encoder.fingerprint: expected a non-empty str, "
                         f"got {encoder.fingerprint!r}")
    return int(size), encoder.fingerprint


def _check_tau(tau, name):
    if not isinstance(tau, (int, float, np.integer, np.floating)) or not np.isfinite(tau):
        raise ValueError(f"{name}: expected a finite number, got {tau!r}")


def _checked_name(name):
    """`name` in Unicode's composed form (NFC), so that a name typed with "e" and a combining
    accent and the same name typed with "é" are one person; else a TypeError or ValueError."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    if not name or name.strip() != name or not name.isprintable():
        raise ValueError(f"name: expected a non-empty name without spaces at either end or "
                         f"control characters (new lines, tabs ...), got {name!r}")
    return unicodedata.normalize("NFC", name)


def _check_counts(counts, n_names):
    counts = np.asarray(counts)
    integers = np.issubdtype(counts.dtype, np.integer)
    if counts.shape != (n_names,) or not integers or np.any(counts < 1):
        raise ValueError(f"counts: expected {n_names} positive ints, got {counts!r}")
    return counts.astype(np.int64)


def _check_images(images):
    """Pictures as (n, 3, S, S), a single (3, S, S) picture becoming n = 1."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]                     # (3, S, S) -> (1, 3, S, S)
    if images.ndim != 4 or images.shape[1] != 3 or len(images) == 0:
        raise ValueError(f"images: expected pictures (n, 3, S, S) or one (3, S, S), "
                         f"got shape {images.shape}")
    return images


# ------------------------------------------------------------------ reading the file

def _load_archive(path):
    """The arrays of the .npz file at `path`; DatabaseError if it cannot be read as one."""
    try:
        with open(path, "rb") as file:
            start = file.read(len(ZIP_START))
        # checked first: on other bytes np.load tries other formats and talks about pickles
        arrays = load_npz(path) if start == ZIP_START else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DatabaseError(f"{path}: not a readable face database ({error}); "
                            f"the file was not modified") from error
    if arrays is None:
        what = "is empty" if not start else "does not start as a zip archive (.npz) does"
        raise DatabaseError(f"{path}: not a face database: the file {what}; "
                            f"the file was not modified")
    return arrays


def _read(path, fingerprint, embedding_size):
    """(names, embeddings, counts) from the file; DatabaseError if it is not usable as is."""
    arrays = _load_archive(path)
    missing = [key for key in KEYS if key not in arrays]
    if missing or _scalar(arrays["format"], "U") != FORMAT:
        raise DatabaseError(f"{path}: not a scratchnet face database (missing "
                            f"{', '.join(missing) or 'nothing'}, format "
                            f"{arrays.get('format', 'none')!s}); the file was not modified")
    version = _scalar(arrays["version"], "i")
    if version != FORMAT_VERSION:
        raise DatabaseError(f"{path}: format version {version}, this scratchnet reads "
                            f"version {FORMAT_VERSION}; the file was not modified")
    stored = (_scalar(arrays["fingerprint"], "U"), _scalar(arrays["embedding_size"], "i"))
    if stored != (fingerprint, embedding_size):
        raise DatabaseError(
            f"{path}: made with another encoder (fingerprint {stored[0]!r}, embedding size "
            f"{stored[1]}), not this one (fingerprint {fingerprint!r}, embedding size "
            f"{embedding_size}); its encodings cannot be compared with this encoder's. Use the "
            f"encoder that made it, or another database file; the file was not modified")
    return _checked_contents(path, arrays, embedding_size)


def _scalar(array, kind):
    """The Python value of a 0-d array whose dtype is of `kind` ("U" str, "i" int), else None."""
    return array.item() if array.shape == () and array.dtype.kind == kind else None


def _checked_contents(path, arrays, embedding_size):
    """(names, embeddings, counts) once their dtypes, shapes and values are checked."""
    names, embeddings, counts = arrays["names"], arrays["embeddings"], arrays["counts"]
    if names.ndim != 1 or names.dtype.kind != "U":
        _damaged(path, f"names of dtype {names.dtype} and shape {names.shape}")
    if embeddings.shape != (len(names), embedding_size) or embeddings.dtype != np.float32:
        _damaged(path, f"embeddings of dtype {embeddings.dtype} and shape {embeddings.shape} "
                       f"for {len(names)} names")
    if counts.shape != (len(names),) or counts.dtype.kind != "i":
        _damaged(path, f"counts of dtype {counts.dtype} and shape {counts.shape}")
    names = names.tolist()
    if len(set(names)) != len(names):
        _damaged(path, "a name appears twice")
    if not np.all(np.isfinite(embeddings)) or np.any(counts < 1):
        _damaged(path, "non-finite encodings or counts below 1")
    return names, embeddings, counts.astype(np.int64)


def _damaged(path, what):
    raise DatabaseError(f"{path}: damaged: {what}; the file was not modified")
