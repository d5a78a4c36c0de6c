"""Image sets to scan when the user brings none: crops of the shipped photographs.

>>> crops = photo_crops(4, 32)
>>> crops.shape, crops.dtype
((4, 3, 32, 32), dtype('float32'))
"""

import numpy as np

from ..data import SAMPLES, sample_path
from ..io.images import load_image


def photo_crops(count, size, seed=0):
    """`count` square crops of side `size` (N, 3, size, size) from scratchnet/data's pictures.

    Each picture is loaded with its longest side 2 size, and the crops go
    round the pictures in turn, at places drawn from `seed`.
    """
    for name, value in (("count", count), ("size", size)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    rng = np.random.default_rng(seed)
    photos = [load_image(sample_path(name), size=2 * size, note=None) for name in sorted(SAMPLES)]
    crops = []
    for index in range(count):
        photo = photos[index % len(photos)]
        top = rng.integers(0, photo.shape[1] - size + 1)
        left = rng.integers(0, photo.shape[2] - size + 1)
        crops.append(photo[:, top:top + size, left:left + size])
    return np.stack(crops)
