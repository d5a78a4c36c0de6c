"""The random numbers behind weight initialisation and dropout.

Every random draw in scratchnet.nn comes from one NumPy Generator, so a
single call makes a whole model reproducible:

    manual_seed(0)
    model = build_model()    # the same weights on every run

Functions that draw (the `init` functions, Dropout) also accept their own
`generator`, a `np.random.Generator`, which is used instead when given.
"""

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Restart the shared generator from `seed` (as torch.manual_seed); returns it.

    >>> first = manual_seed(3).standard_normal()
    >>> first == manual_seed(3).standard_normal()
    True
    """
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def resolve_generator(generator):
    """`generator` if one was given, else the shared one."""
    if generator is None:
        return _generator
    if not isinstance(generator, np.random.Generator):
        raise TypeError(
            f"generator must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(generator).__name__}"
        )
    return generator
