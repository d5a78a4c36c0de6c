"""Activation maximisation: the image that a unit would like to see most.

Nine patches show what excites a unit among images that exist; gradient
ascent on the input shows what it responds to when we may draw anything.
Starting from a gray image x with a little noise, repeat

    J(x)  = mean over positions o of a^[l][unit, o](x)    the unit's mean activation
    x    <- x + alpha g / mean|g|,   g = dJ/dx            (backward through the model)

with the weights fixed; the step is normalised so that alpha means the
same for every layer. Left alone, the ascent finds high-frequency noise
that excites the unit without looking like anything, so three regularisers
keep the image natural:

    jitter   each step looks at x shifted by a random (dy, dx) of up to
             `jitter` pixels (circularly), so the pattern must work
             wherever it lands, not at one pixel's precision
    blur     every `blur_every` steps x is smoothed with a Gaussian of
             standard deviation `blur_sigma` pixels
    decay    x <- x - decay (x - 1/2): an L2 pull back towards gray

and x is clipped to [0, 1] after each step.

>>> import numpy as np
>>> from scratchnet import nn
>>> _ = nn.manual_seed(0)
>>> net = nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU())
>>> picture = maximize_activation(net, "0", 2, image_size=24, steps=10, seed=0)
>>> picture.shape, bool(0 <= picture.min() <= picture.max() <= 1)
((3, 24, 24), True)
"""

import numpy as np
from scipy.ndimage import gaussian_filter

from ..tensor import Tensor
from .layers import check_layer, frozen, network_input, run_layers
from .patches import check_images, check_units

START_NOISE = 0.05       # standard deviation of the noise on the gray start


def maximize_activation(model, layer, unit, image_size=128, steps=100, seed=0, step_size=0.05,
                        jitter=4, blur_every=4, blur_sigma=0.5, decay=0.0, start=None,
                        progress=None):
    """An image (3, n_H, n_W) in [0, 1] that makes channel `unit` of `layer` large.

    image_size   an int (square) or (n_H, n_W); ignored when `start` is given
    start        the image to start from, (3, n_H, n_W) in [0, 1]; default: gray
                 plus noise drawn from `seed` (which also draws the jitter)
    progress     called as progress(step, steps, J) after each step
    The other arguments are the module docstring's alpha (step_size), jitter,
    blur_every (0: never), blur_sigma and decay.
    """
    check_layer(model, layer)
    rng = np.random.default_rng(seed)
    x = _start_image(start, image_size, rng)
    with frozen(model):
        for step in range(1, steps + 1):
            shift = tuple(int(v) for v in rng.integers(-jitter, jitter + 1, size=2))
            shifted = np.roll(x, shift, axis=(1, 2))
            J, gradient = _mean_activation_and_gradient(model, layer, unit, shifted)
            gradient = np.roll(gradient, (-shift[0], -shift[1]), axis=(1, 2))  # back to x's frame
            x = x + step_size * gradient / (np.abs(gradient).mean() + 1e-12)
            x = x - decay * (x - 0.5)
            if blur_every and step % blur_every == 0:
                x = gaussian_filter(x, sigma=(0, blur_sigma, blur_sigma), mode="reflect")
            x = np.clip(x, 0, 1).astype(np.float32)
            if progress is not None:
                progress(step, steps, J)
    return x


def mean_activation(model, layer, unit, images):
    """J for each image: the mean over positions of channel `unit` of `layer`, shape (N,)."""
    images = check_images(images)
    with frozen(model):
        a = run_layers(model, network_input(model, images), [layer])[layer].numpy()
    check_units([unit], a.shape[1], layer)
    return a[:, unit].reshape(len(images), -1).mean(axis=1)


def _mean_activation_and_gradient(model, layer, unit, x):
    """(J(x), dJ/dx) for one image x (3, n_H, n_W), by one forward and one backward pass."""
    image = Tensor(x[None], requires_grad=True)                 # (3, H, W) -> (1, 3, H, W)
    a = run_layers(model, network_input(model, image), [layer])[layer]
    check_units([unit], a.shape[1], layer)
    J = a[:, unit].mean()
    J.backward()
    return float(J.numpy()), image.grad[0]


def _start_image(start, image_size, rng):
    if start is not None:
        return check_images(np.asarray(start)[None])[0].copy()
    size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else image_size
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in size):
        raise ValueError(f"image_size: expected a positive int or (n_H, n_W), got {image_size!r}")
    noise = START_NOISE * rng.standard_normal((3,) + tuple(size))
    return np.clip(0.5 + noise, 0, 1).astype(np.float32)
