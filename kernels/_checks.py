"""Argument checks shared by every public kernel.

The public tier of each kernel module calls these before any jitted code
runs, so that bad input fails here with a message that names the argument,
what was expected and what came, instead of deep inside Numba.
"""

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def check_float_array(name, a, ndim=None):
    """Return `a` as a C-contiguous float32/float64 array, or raise.

    `ndim` is an int or a tuple of allowed ranks. Non-contiguous input is
    copied (so views and transposes work); integer, bool and complex input
    is refused rather than silently cast. A 0-d array stays 0-d
    (np.ascontiguousarray would make it shape (1,)).
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    check_float_dtype_and_ndim(name, a, ndim)
    return np.asarray(a, order="C")


def check_float_dtype_and_ndim(name, a, ndim=None):
    """Raise unless the array `a` is float32/float64 with one of the ranks `ndim` allows.

    The part of the check that does not care where the array lives: the GPU
    twin of check_float_array calls it on device arrays.
    """
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            expected = " or ".join(str(k) for k in allowed)
            raise ValueError(f"{name} must have {expected} dimensions, got shape {a.shape}")


def check_same_dtype(**arrays):
    """Raise TypeError unless all the named arrays share one dtype."""
    dtypes = {name: a.dtype for name, a in arrays.items() if a is not None}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{name} is {dt}" for name, dt in dtypes.items())
        raise TypeError(f"arrays must share one dtype: {listed}")


def check_same_shape(**arrays):
    """Raise ValueError unless all the named arrays share one shape."""
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name} has shape {shape}" for name, shape in shapes.items())
        raise ValueError(f"arrays must share one shape: {listed}")


def check_shape(name, shape, ndim=None, empty_batch=False):
    """Return `shape` as a tuple of positive ints, or raise.

    empty_batch=True lets the first entry, the batch size N, be 0.
    """
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of ints, got {shape!r}") from None
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{name} must have {ndim} entries, got {shape}")
    batch_minimum = 0 if empty_batch else 1
    if shape and shape[0] < batch_minimum or any(s < 1 for s in shape[1:]):
        expected = "positive sizes (the batch size may be 0)" if empty_batch else "positive sizes"
        raise ValueError(f"{name} must hold {expected}, got {shape}")
    return shape


def check_bool(name, value):
    """Raise TypeError unless `value` is True or False (a NumPy bool too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def as_tuple(name, value, n, minimum):
    """Expand an int or a length-n sequence to an n-tuple of ints >= minimum."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values = (int(value),) * n
    elif isinstance(value, (tuple, list)) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        values = tuple(int(v) for v in value)
        if len(values) != n:
            raise ValueError(
                f"{name} must be an int or a tuple of {n} ints (one per spatial "
                f"dimension), got {value!r}"
            )
    else:
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{name} must be >= {minimum} in every dimension, got {value!r}")
    return values


def resolve_padding(padding, in_sizes, kernel, stride, dilation):
    """Padding as a tuple of (before, after) pairs, one pair per spatial dim.

    `padding` is an int, a tuple of ints (symmetric), or a string:
    'valid' means no padding; 'same' follows TensorFlow's rule, which also
    covers stride > 1: the output has ceil(n / s) positions, and the total
    padding max((ceil(n/s) - 1) s + d (f - 1) + 1 - n, 0) is split with the
    extra pixel, when odd, after (bottom/right).
    """
    n = len(in_sizes)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            pairs = []
            for size, f, s, d in zip(in_sizes, kernel, stride, dilation):
                out = -(-size // s)
                total = max((out - 1) * s + d * (f - 1) + 1 - size, 0)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(f"padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    return tuple((p, p) for p in as_tuple("padding", padding, n, minimum=0))


def output_sizes(in_sizes, kernel, stride, padding, dilation):
    """floor((n + p_before + p_after - d (f - 1) - 1) / s) + 1 per dimension.

    Raises ValueError when the dilated kernel does not fit in the padded input.
    """
    sizes = []
    for axis, (size, f, s, (lo, hi), d) in enumerate(
        zip(in_sizes, kernel, stride, padding, dilation)
    ):
        span = d * (f - 1) + 1
        if size + lo + hi < span:
            raise ValueError(
                f"kernel size (dilated) {span} is larger than the padded input "
                f"{size + lo + hi} in spatial dimension {axis}"
            )
        sizes.append((size + lo + hi - span) // s + 1)
    return tuple(sizes)
