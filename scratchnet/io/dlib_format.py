"""dlib's serialisation format, read from bytes (the .dat files of dlib's pretrained models).

dlib writes an object by writing its fields one after another, with no
names, no lengths around a record and no table of contents: a reader must
know the type it expects. The building blocks, all written by dlib's
`serialize.h` unless said otherwise:

    integer   one control byte, then the absolute value in little-endian
              bytes. Control byte: bit 7 (0x80) set when the value is
              negative, bits 0-3 the number of value bytes (0 to 8; zero is
              written as the single byte 0x00). Bits 4-6 are always 0.
                  300  -> 02 2c 01          -2 -> 81 02
    float     two integers: an int64 mantissa m, then an int16 exponent e;
              the value is m * 2**e. Exponents 32000, 32001 and 32002 (and
              anything above) mean +inf, -inf and NaN. dlib takes m from
              frexp (24 bits for a float, 53 for a double) and shifts off
              whole zero bytes, so a float 1.5 is 192 * 2**-7 and a double
              1.0 is 16 * 2**-4:
                  1.5f -> 01 c0 81 07       1.0 -> 01 10 81 04
              (dlib's very old files wrote floats as ASCII text; such a
              float starts with a byte that has a bit of 0x70 set, which a
              control byte never has. This reader refuses them.)
    bool      one ASCII byte, '1' or '0'.
    string    its length as an integer, then that many raw bytes.
    vector    (std::vector) its length as an integer, then the elements.
    matrix    (dlib::matrix) -rows, -columns as integers (negated: newer
              files; older files wrote them positive), then rows*columns
              floats in row-major order, each a float as above.
    tensor    (dlib's dnn tensor, `dnn/tensor.h`) a version integer, then
              num_samples, k, nr, nc; version 2 then stores the
              num_samples*k*nr*nc values as raw little-endian float32
              (version 1: each value as a float above).

`DlibReader` walks a bytes object with a cursor (`offset`). Every read
names what it was reading, and any problem -- a file that ends early, a
control byte with reserved bits set, a bool that is not '0'/'1', a length
that cannot fit in what is left -- raises `DlibFormatError` whose message
names the byte offset where the item starts. Nothing read from a file is
ever executed or used as a type name: the caller says what comes next.

Runs of floats (the 68-point landmark model holds millions of them) are
decoded by one small Numba loop rather than one Python call per value.

>>> r = DlibReader(bytes([0x02, 0x2C, 0x01, 0x81, 0x02, 0x01, 0xC0, 0x81, 0x07]))
>>> r.read_int(), r.read_int(), r.read_float(), r.offset
(300, -2, 1.5, 9)
>>> try:
...     DlibReader(bytes([0x02, 0x2C]), "tiny.dat").read_int("num_filters")
... except DlibFormatError as error:
...     print(error.offset, str(error).split(": ")[-1])
0 needs 2 value bytes after its control byte, but the data ends at byte 2
"""

import math

import numpy as np
from numba import njit

EXPONENT_INF = 32000
EXPONENT_NINF = 32001
EXPONENT_NAN = 32002

_RESERVED_BITS = 0x70
_SIGN_BIT = 0x80
_SIZE_BITS = 0x0F

# status codes of the jitted run decoder; the Python side turns them into messages
_OK, _TRUNCATED, _RESERVED, _TOO_WIDE = 0, 1, 2, 3


class DlibFormatError(ValueError):
    """A dlib file that does not hold what was expected; `.offset`: the byte where it went wrong."""

    def __init__(self, message, offset):
        super().__init__(message)
        self.offset = offset


class DlibReader:
    """A cursor over the bytes of a dlib file.

    `source` names the data in error messages (a file name, say).
    """

    def __init__(self, data, source="<bytes>"):
        self.data = bytes(data)
        self.buffer = np.frombuffer(self.data, dtype=np.uint8)
        self.source = source
        self.offset = 0

    # ---- bookkeeping ----

    @property
    def remaining(self):
        """Bytes left after the cursor."""
        return len(self.data) - self.offset

    def at_end(self):
        return self.offset == len(self.data)

    def error(self, what, start, problem):
        """A DlibFormatError for `what`, which started at byte `start`."""
        message = f"{self.source}: {what} starting at byte offset {start}: {problem}"
        return DlibFormatError(message, start)

    def _take(self, count, what, start):
        """The next `count` bytes (advancing the cursor), or an error naming `what`."""
        end = self.offset + count
        if count < 0 or end > len(self.data):
            raise self.error(what, start, f"needs {count} more bytes at byte {self.offset}, "
                                          f"but the data ends at byte {len(self.data)}")
        chunk = self.data[self.offset:end]
        self.offset = end
        return chunk

    # ---- scalars ----

    def read_byte(self, what="byte"):
        start = self.offset
        return self._take(1, what, start)[0]

    def read_int(self, what="value"):
        """A signed integer: control byte (sign bit 0x80, byte count in 0x0F), then |value| LE."""
        start = self.offset
        label = f"{what} (integer)"
        control = self._take(1, label, start)[0]
        if control & _RESERVED_BITS:
            raise self.error(label, start, f"control byte 0x{control:02x} has reserved bits "
                                           f"(0x70) set: not a dlib integer")
        size = control & _SIZE_BITS
        if size > 8:
            raise self.error(label, start, f"control byte 0x{control:02x} announces {size} "
                                           f"value bytes; at most 8 are allowed")
        if self.offset + size > len(self.data):
            raise self.error(label, start, f"needs {size} value bytes after its control byte, "
                                           f"but the data ends at byte {len(self.data)}")
        magnitude = int.from_bytes(self._take(size, label, start), "little")
        return -magnitude if control & _SIGN_BIT else magnitude

    def read_uint(self, what="count"):
        """A non-negative integer (a size, a count, an index)."""
        start = self.offset
        value = self.read_int(what)
        if value < 0:
            raise self.error(f"{what} (integer)", start, f"expected a value >= 0, got {value}")
        return value

    def read_float(self, what="value"):
        """A float: int64 mantissa m, then int16 exponent e; value m * 2**e (as a Python float)."""
        start = self.offset
        control = self._peek(f"{what} (float)", start)
        if control & _RESERVED_BITS:
            raise self.error(f"{what} (float)", start,
                             f"byte 0x{control:02x} is ASCII text: dlib's old text format for "
                             f"floats is not supported")
        mantissa = self.read_int(f"{what} (float mantissa)")
        exponent = self.read_int(f"{what} (float exponent)")
        if not -2**15 <= exponent < 2**15:
            raise self.error(f"{what} (float)", start, f"exponent {exponent} does not fit in int16")
        return _float_from_parts(mantissa, exponent)

    def read_bool(self, what="flag"):
        """A bool: the ASCII byte '1' or '0'."""
        start = self.offset
        byte = self._take(1, f"{what} (bool)", start)[0]
        if byte not in (ord("0"), ord("1")):
            raise self.error(f"{what} (bool)", start,
                             f"expected the byte '0' or '1', got 0x{byte:02x}")
        return byte == ord("1")

    def read_string(self, what="string"):
        """A string: its length as an integer, then that many bytes (decoded as Latin-1)."""
        start = self.offset
        length = self.read_uint(f"{what} length")
        if length > self.remaining:
            raise self.error(f"{what} (string)", start, f"length {length} is more than the "
                                                         f"{self.remaining} bytes left")
        return self._take(length, what, start).decode("latin-1")

    def expect_string(self, expected, what="tag"):
        """Read a string and raise unless it is `expected` (one string or a tuple of them)."""
        start = self.offset
        allowed = (expected,) if isinstance(expected, str) else tuple(expected)
        found = self.read_string(what)
        if found not in allowed:
            wanted = " or ".join(repr(s) for s in allowed)
            raise self.error(what, start, f"expected {wanted}, found {found!r}")
        return found

    def expect_int(self, expected, what="version"):
        """Read an integer and raise unless it is in `expected` (one int or a tuple of them)."""
        start = self.offset
        allowed = (expected,) if isinstance(expected, int) else tuple(expected)
        found = self.read_int(what)
        if found not in allowed:
            wanted = " or ".join(str(v) for v in allowed)
            raise self.error(what, start, f"expected {wanted}, found {found}")
        return found

    def _peek(self, what, start):
        if self.offset >= len(self.data):
            raise self.error(what, start, f"the data ends at byte {len(self.data)}")
        return self.data[self.offset]

    # ---- runs and containers ----

    def read_floats(self, count, what="floats"):
        """`count` consecutive floats as a float64 array (one jitted pass, no Python loop)."""
        return self.read_records("f", count, what)[0]

    def read_ints(self, count, what="integers"):
        """`count` consecutive integers as an int64 array."""
        return self.read_records("i", count, what)[0]

    def read_records(self, pattern, count, what="records"):
        """`count` records, each the fields of `pattern` ('i' integer, 'f' float) in order.

        Returns one array per letter of `pattern`, each of length `count`:
        int64 for 'i', float64 for 'f'. For example dlib's regression-tree
        split (index, index, threshold) is `read_records("iif", n)`.
        """
        start = self.offset
        if set(pattern) - {"i", "f"} or not pattern:
            raise ValueError(f"pattern must be a non-empty string of 'i' and 'f', got {pattern!r}")
        if count < 0 or count * len(pattern) > self.remaining:
            raise self.error(what, start, f"{count} records of {pattern!r} cannot fit in the "
                                          f"{self.remaining} bytes left")
        is_float = np.array([letter == "f" for letter in pattern], dtype=np.bool_)
        ints, floats, end, status, where = _decode_records(self.buffer, self.offset, is_float,
                                                            count)
        if status != _OK:
            raise self.error(what, start, _run_problem(status, where, len(self.data)))
        self.offset = end
        return tuple(floats[:, j] if letter == "f" else ints[:, j]
                     for j, letter in enumerate(pattern))

    def read_matrix(self, what="matrix"):
        """A dlib::matrix of floats as a float64 array (rows, columns)."""
        start = self.offset
        rows = abs(self.read_int(f"{what} rows"))
        columns = abs(self.read_int(f"{what} columns"))
        if rows * columns * 2 > self.remaining:
            raise self.error(what, start, f"{rows} x {columns} floats cannot fit in the "
                                          f"{self.remaining} bytes left")
        values = self.read_floats(rows * columns, what)
        return values.reshape(rows, columns)  # (rows*columns,) -> (rows, columns), row-major

    def read_tensor(self, what="tensor"):
        """A dnn tensor as a float32 array (num_samples, k, nr, nc)."""
        start = self.offset
        version = self.expect_int((1, 2), f"{what} version")
        shape = tuple(self.read_uint(f"{what} {dim}") for dim in ("num_samples", "k", "nr", "nc"))
        size = math.prod(shape)
        if version == 1:
            values = self.read_floats(size, what).astype(np.float32)
        else:
            if 4 * size > self.remaining:
                raise self.error(what, start, f"shape {shape} needs {4 * size} bytes of float32, "
                                              f"only {self.remaining} are left")
            raw = self._take(4 * size, what, start)
            values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        return values.reshape(shape)  # (n*k*nr*nc,) -> (num_samples, k, nr, nc)


def _float_from_parts(mantissa, exponent):
    """m * 2**e, or inf / -inf / NaN for dlib's reserved exponents."""
    if exponent < EXPONENT_INF:
        return math.ldexp(float(mantissa), exponent)
    if exponent == EXPONENT_INF:
        return math.inf
    if exponent == EXPONENT_NINF:
        return -math.inf
    return math.nan


def _run_problem(status, where, length):
    if status == _TRUNCATED:
        return f"the data ends at byte {length} inside the value starting at byte {where}"
    if status == _RESERVED:
        return f"byte {where} is not an integer control byte (reserved bits 0x70 set)"
    return (f"the value at byte {where} does not fit (more than 8 bytes, or an exponent "
            f"beyond int16)")


@njit(cache=True)
def _decode_int(buffer, position):
    """(value, next position, status) of the integer whose control byte is at `position`."""
    if position >= buffer.size:
        return 0, position, _TRUNCATED
    control = buffer[position]
    if control & _RESERVED_BITS:
        return 0, position, _RESERVED
    size = control & _SIZE_BITS
    if size > 8:
        return 0, position, _TOO_WIDE
    if position + 1 + size > buffer.size:
        return 0, position, _TRUNCATED
    magnitude = np.uint64(0)
    for i in range(size - 1, -1, -1):
        magnitude = (magnitude << np.uint64(8)) | np.uint64(buffer[position + 1 + i])
    value = np.int64(magnitude)
    if control & _SIGN_BIT:
        value = -value
    return value, position + 1 + size, _OK


@njit(cache=True)
def _decode_float(buffer, position):
    """(value, next position, status) of the float (mantissa, exponent) at `position`."""
    mantissa, position, status = _decode_int(buffer, position)
    if status != _OK:
        return 0.0, position, status
    exponent, after, status = _decode_int(buffer, position)
    if status != _OK:
        return 0.0, position, status
    if exponent < -32768 or exponent > 32767:
        return 0.0, position, _TOO_WIDE
    if exponent < EXPONENT_INF:
        return math.ldexp(float(mantissa), exponent), after, _OK
    if exponent == EXPONENT_INF:
        return math.inf, after, _OK
    if exponent == EXPONENT_NINF:
        return -math.inf, after, _OK
    return math.nan, after, _OK


@njit(cache=True)
def _decode_records(buffer, position, is_float, count):
    """Decode `count` records of len(is_float) fields; ints and floats land in separate tables."""
    fields = is_float.size
    ints = np.zeros((count, fields), dtype=np.int64)
    floats = np.zeros((count, fields), dtype=np.float64)
    for r in range(count):
        for j in range(fields):
            if is_float[j]:
                value, next_position, status = _decode_float(buffer, position)
                floats[r, j] = value
            else:
                integer, next_position, status = _decode_int(buffer, position)
                ints[r, j] = integer
            if status != _OK:
                return ints, floats, position, status, next_position
            position = next_position
    return ints, floats, position, _OK, position
