"""Neural style transfer: gradient descent on the pixels of the generated image G.

The course's recipe (Gatys et al., 2015):

    1. Initiate G randomly (or from the content image C, with some noise).
    2. Use gradient descent to minimise J(G), updating G := G - dJ/dG (scaled),
       where J(G) = alpha J_content(C, G) + beta J_style(S, G)  [+ tv_weight TV(G)]

J_content compares the activations a^[l] of one layer of a pretrained
ConvNet (VGG19's conv4_2 by default); J_style = sum_l lambda^[l] J_style^[l]
compares Gram matrices on several layers (conv1_1 ... conv5_1, lambda = 0.2
each, by default). The formulas are in scratchnet.style.

Choices made here, each a setting (`Settings`):

- G lives in RGB space, values in [0, 1], shape (1, 3, n_H, n_W). The
  network's preprocessing (scratchnet.models.vgg) is part of the graph, so
  dJ/dG is a gradient with respect to pixels, and the learning rate and the
  pixel bounds mean the same whatever file the weights came from. After
  each Adam step G is clipped to [0, 1], as in the assignment; L-BFGS keeps
  it there with bounds.
- init "noise" (the slide): G ~ U(0, 1) per pixel. "noisy" (the assignment's
  TensorFlow 2 notebook): G = clip(C + U(-0.25, 0.25)). "content": G = C.
  The noise comes from `seed`, so a run is repeatable.
- optimizer "adam" (scratchnet.optim.Adam on G, step size `lr` in pixel
  units) or "lbfgs" (scipy's L-BFGS-B with J and dJ/dG from one forward
  and one backward pass per evaluation; `lr` is unused). One iteration is
  one Adam step, or one L-BFGS iteration (which may evaluate J more than
  once, in its line search).
- The content activation a^[l](C) and the style Gram matrices are computed
  once, without recording a tape. With several style images, the target
  Gram matrix of each layer is their blend, sum_s w_s G^[l](S_s) (with
  `style_blend` weights w_s summing to 1; equal by default).
- Style images may have any size: each Gram matrix is divided by its own
  number of positions (scratchnet.style), so a style image larger or
  smaller than C describes the same texture statistics.
- preserve_colors: after optimising, G keeps its luminance Y and takes the
  chrominance I, Q of C (YIQ colour space, scratchnet.io.images), which
  is the "luminance-only" way of keeping the photograph's colours applied to
  the result (as neural-style's -original_colors does).
- content_normalization "assignment" (1/(4 n_H n_W n_C)) by default, the
  scale for which the assignment's alpha = 10, beta = 40 were chosen; "slide"
  is the slide's 1/2 ||.||^2 and needs a much smaller alpha.
- device "cpu" (default) or "cuda" (scratchnet.device): where G, the model
  (moved there in place, as Module.to does) and the targets a^[l](C) and
  G^[l](S) live. An Adam iteration then runs on the GPU from the forward
  pass to the clipping of G; only the numbers it reports (J and its parts)
  and a copy of G for the Progress come back to the host. L-BFGS is scipy's,
  on the host: each evaluation copies G to the device and dJ/dG back. The
  pictures handed out (Progress.image, Result.image, snapshots) are NumPy
  arrays on either device.

What a run reports: after every iteration a Progress (iteration, J,
J_content, J_style, TV, seconds per iteration, estimated time left, the
current image) goes to `callback`, and every `print_every` iterations one
line goes to `log` (standard error by default). The J reported for an Adam
iteration is that of the image the step started from (as in the assignment's
train_step); for an L-BFGS iteration, that of the iterate it reached. Every `save_every`
iterations the image is kept in `Result.snapshots` for a progression strip.

When things go wrong: if J or dJ/dG stops being finite, the run stops,
keeps the last image whose J was finite and says why in `Result.stopped`;
Ctrl-C (KeyboardInterrupt, also when a callback raises it) stops the run
and returns the current image, with `Result.stopped` saying so.

>>> import numpy as np
>>> from scratchnet.models import vgg19
>>> model = vgg19(weights="random", widths=(4, 4, 4, 4, 4))
>>> rng = np.random.default_rng(0)
>>> content = rng.random((3, 32, 32), dtype=np.float32)
>>> style = rng.random((3, 24, 24), dtype=np.float32)
>>> result = transfer(content, [style], model=model, iterations=5, print_every=0)
>>> result.image.shape, result.iterations_done, result.stopped
((3, 32, 32), 5, None)
>>> result.history[-1]["J"] < result.history[0]["J"]
True
"""

import dataclasses
import math
import sys
import time

import numpy as np

from .device import check_device, to_device
from .io.images import image_strip, preserve_colours
from .nn import Parameter
from .optim import Adam
from .style import (
    CONTENT_NORMALIZATIONS,
    DEFAULT_STYLE_LAYERS,
    content_cost,
    scaled_gram,
    style_cost_from_grams,
    total_cost,
    total_variation,
)
from .tensor import Tensor, no_grad

INITS = ("noise", "noisy", "content")
OPTIMIZERS = ("adam", "lbfgs")
NOISY_INIT_AMPLITUDE = 0.25  # the assignment's U(-0.25, 0.25) around the content image


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that decides the optimisation; see the module docstring."""

    content_layer: str = "conv4_2"
    style_layers: tuple = DEFAULT_STYLE_LAYERS   # (layer name, lambda^[l]) pairs
    content_weight: float = 10.0                 # alpha
    style_weight: float = 40.0                   # beta
    tv_weight: float = 0.0
    content_normalization: str = "assignment"
    style_blend: tuple = None                    # one weight per style image; None: equal
    init: str = "noisy"
    optimizer: str = "adam"
    lr: float = 0.02                             # Adam's step size, in pixel units (0 to 1)
    iterations: int = 100
    seed: int = 0
    preserve_colors: bool = False
    save_every: int = 0                          # keep a snapshot every k iterations (0: none)
    print_every: int = 10                        # a progress line every k iterations (0: none)
    device: str = "cpu"                          # where the optimisation runs: "cpu" or "cuda"

    def __post_init__(self):
        object.__setattr__(self, "style_layers", _checked_style_layers(self.style_layers))
        check_device(self.device)
        for name in ("content_weight", "style_weight", "tv_weight", "lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value)
                    and value >= 0):
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        for name, allowed in (("content_normalization", CONTENT_NORMALIZATIONS),
                              ("init", INITS), ("optimizer", OPTIMIZERS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: expected one of {allowed}, got {getattr(self, name)!r}")
        for name, minimum in (("iterations", 1), ("seed", 0), ("save_every", 0),
                              ("print_every", 0)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) \
                    or value < minimum:
                raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
        if self.style_blend is not None:
            blend = tuple(float(w) for w in self.style_blend)
            if not blend or any(not math.isfinite(w) or w < 0 for w in blend) or sum(blend) <= 0:
                raise ValueError(
                    f"style_blend: expected weights >= 0 with a positive sum, got {blend!r}")
            object.__setattr__(self, "style_blend", blend)


@dataclasses.dataclass
class Progress:
    """What one iteration reports; `image` is G after it, (3, n_H, n_W) in [0, 1]."""

    iteration: int
    iterations: int
    J: float
    J_content: float
    J_style: float
    J_tv: float
    seconds_per_iteration: float
    eta_seconds: float
    image: np.ndarray


@dataclasses.dataclass
class Result:
    """The generated image and how the run went.

    image: (3, n_H, n_W) RGB in [0, 1]. history: one dict per iteration
    (iteration, J, J_content, J_style, J_tv, seconds). snapshots: (iteration,
    image) pairs, iteration 0 and the last included. stopped: None when every
    iteration ran, else why the run stopped early. interrupted: True after Ctrl-C.
    """

    image: np.ndarray
    history: list
    snapshots: list
    iterations_done: int
    stopped: str = None
    interrupted: bool = False


class NonFiniteCost(ArithmeticError):
    """J(G) or dJ/dG came out NaN or infinite."""


class StyleTransfer:
    """One style transfer problem: the model, C, the styles, and the cost J(G).

    content: (3, n_H, n_W) RGB in [0, 1]; styles: a list of such images, of
    any sizes. The model is moved to settings.device (in place), and the
    targets (a^[l](C), the blended style Gram matrices) are computed there,
    once.
    """

    def __init__(self, model, content, styles, settings=None):
        self.settings = Settings() if settings is None else settings
        self.device = self.settings.device
        self.model = model.to(self.device)
        self.dtype = next(iter(model.parameters())).dtype
        self.content = _as_image_batch("content", content, self.dtype)
        styles = [styles] if isinstance(styles, np.ndarray) and styles.ndim == 3 else list(styles)
        if not styles:
            raise ValueError("styles: expected at least one style image, got none")
        self.styles = [_as_image_batch(f"styles[{i}]", s, self.dtype) for i, s in enumerate(styles)]
        self.blend = _blend_weights(self.settings.style_blend, len(self.styles))
        self.style_weights = dict(self.settings.style_layers)
        self._check_layers()
        with no_grad():
            self.a_C = self._features(self.on_device(self.content),
                                      [self.settings.content_layer])[self.settings.content_layer]
            self.style_targets = self._blended_style_grams()

    # ----------------------------------------------------------- the cost
    def cost(self, G):
        """J(G) as a Tensor (a backward pass gives dJ/dG), and its parts as floats.

        G: a Tensor (1, 3, n_H, n_W) of RGB values in [0, 1], the content's
        shape, on settings.device.
        """
        s = self.settings
        layers = [s.content_layer] + [name for name in self.style_weights
                                      if name != s.content_layer]
        activations = self._features(G, layers)
        J_content = content_cost(self.a_C, activations[s.content_layer], s.content_normalization)
        J_style = style_cost_from_grams(self.style_targets, activations, self.style_weights)
        J = total_cost(J_content, J_style, alpha=s.content_weight, beta=s.style_weight)
        J_tv = total_variation(G) if s.tv_weight else None
        if J_tv is not None:
            J = J + J_tv * s.tv_weight
        parts = {"J": J.item(), "J_content": J_content.item(), "J_style": J_style.item(),
                 "J_tv": 0.0 if J_tv is None else J_tv.item()}
        return J, parts

    def evaluate(self, image):
        """The parts of J (floats) for an image (1, 3, n_H, n_W), without a tape."""
        with no_grad():
            return self.cost(self.on_device(image))[1]

    def on_device(self, image):
        """A NumPy image as a constant Tensor of the model's dtype on settings.device."""
        return Tensor(np.asarray(image, dtype=self.dtype), device=self.device)

    def initial_image(self):
        """G at iteration 0, (1, 3, n_H, n_W), from `init` and `seed`."""
        rng = np.random.default_rng(self.settings.seed)
        C = self.content
        if self.settings.init == "noise":
            G = rng.uniform(0.0, 1.0, size=C.shape)
        elif self.settings.init == "noisy":
            G = C + rng.uniform(-NOISY_INIT_AMPLITUDE, NOISY_INIT_AMPLITUDE, size=C.shape)
        else:
            G = C
        return np.clip(G, 0.0, 1.0).astype(self.dtype)

    def finish(self, image):
        """An iterate (1, 3, n_H, n_W) as the picture to show, (3, n_H, n_W), colours kept if asked."""
        picture = np.asarray(image, dtype=self.dtype)[0]  # (1, 3, H, W) -> (3, H, W)
        picture = np.clip(picture, 0.0, 1.0)
        if self.settings.preserve_colors:
            picture = preserve_colours(picture, self.content[0]).astype(self.dtype)
        return picture

    # ------------------------------------------------------------ the run
    def run(self, callback=None, log=None):
        """Optimise G for `settings.iterations` iterations; returns a Result.

        callback(progress) is called after every iteration; log(line) gets the
        progress lines (default: standard error).
        """
        monitor = _Monitor(self, callback, _print_to_stderr if log is None else log)
        monitor.start(self.initial_image())
        try:
            stopped = RUNNERS[self.settings.optimizer](self, monitor)
        except NonFiniteCost as error:
            return monitor.result(monitor.last_good, str(error))
        except KeyboardInterrupt:
            return monitor.result(monitor.current, f"interrupted after iteration "
                                  f"{monitor.iteration}", interrupted=True)
        return monitor.result(monitor.current, stopped)

    # ------------------------------------------------------------ helpers
    def _features(self, images, layers):
        return self.model.features(self.model.preprocess(images), layers)

    def _blended_style_grams(self):
        """Layer name -> sum_s w_s G^[l](S_s) / (2 n_H n_W n_C), constant Tensors."""
        targets = {}
        for style, weight in zip(self.styles, self.blend):
            activations = self._features(self.on_device(style), list(self.style_weights))
            for name, a_S in activations.items():
                term = scaled_gram(a_S) * weight
                targets[name] = term if name not in targets else targets[name] + term
        return targets

    def _check_layers(self):
        known = self.model.layer_names
        for name in [self.settings.content_layer, *self.style_weights]:
            if name not in known:
                raise ValueError(f"layer {name!r} is not a layer of the model; known: "
                                 f"{', '.join(known)}")


def transfer(content, styles, settings=None, model=None, callback=None, log=None, **options):
    """Style transfer in one call: returns StyleTransfer(...).run(...), a Result.

    `options` override fields of `settings` (e.g. iterations=50). `model`
    defaults to vgg19() (weights from the usual places, else random ones).
    """
    settings = dataclasses.replace(Settings() if settings is None else settings, **options)
    if model is None:
        from .models import vgg19

        model = vgg19()
    return StyleTransfer(model, content, styles, settings).run(callback, log)


def progression_strip(content, styles, result, height=128):
    """C, each S, then G at each kept iteration (Result.snapshots), side by side and labelled.

    Every picture is shown `height` pixels high, a small result enlarged, so that each
    label ("iteration 250") fits under its picture.
    """
    labels = ["content"] + (["style"] if len(styles) == 1 else
                            [f"style {i + 1}" for i in range(len(styles))])
    labels += [f"iteration {iteration}" for iteration, _ in result.snapshots]
    pictures = [content, *styles] + [image for _, image in result.snapshots]
    return image_strip(pictures, labels, height=height)


def format_progress(p):
    """One progress line:

    iteration  10/100  J 1.2345e+01 (content 5.1e-01, style 1.7e-01)  0.85 s/it  ETA 1m16s
    """
    width = len(str(p.iterations))
    tv = f", TV {p.J_tv:.3e}" if p.J_tv else ""
    return (f"iteration {p.iteration:{width}d}/{p.iterations}  J {p.J:.4e} "
            f"(content {p.J_content:.3e}, style {p.J_style:.3e}{tv})  "
            f"{p.seconds_per_iteration:.2f} s/it  ETA {_minutes(p.eta_seconds)}")


# --------------------------------------------------------------- optimisers

# Each runner does the iterations, reporting each to the monitor, and returns None, or why
# it stopped before the last one.

def _run_adam(problem, monitor):
    """Adam on G; each iteration evaluates J(G) and dJ/dG, steps, clips G to [0, 1]."""
    G = Parameter(to_device(problem.initial_image(), problem.device))
    optimizer = Adam([G], lr=problem.settings.lr)
    for iteration in range(1, problem.settings.iterations + 1):
        optimizer.zero_grad()
        J, parts = problem.cost(G)
        _require_finite(iteration, "J", parts["J"])
        J.backward()
        _require_finite(iteration, "dJ/dG", G.grad)
        monitor.last_good = monitor.current  # G before this step (a host copy): its J is finite
        optimizer.step()
        np.clip(G.data, 0.0, 1.0, out=G.data)
        monitor.record(iteration, to_device(G.data, "cpu"), parts)


def _run_lbfgs(problem, monitor):
    """scipy's L-BFGS-B on the flattened G, with bounds [0, 1] and one backward per evaluation."""
    from scipy.optimize import Bounds, minimize

    G = Tensor(problem.initial_image(), requires_grad=True, device=problem.device)
    shape = G.shape
    last = {}

    def J_and_gradient(x):
        G.data[...] = problem.on_device(x.reshape(shape)).data  # (n,) -> (1, 3, H, W)
        G.grad = None
        J, parts = problem.cost(G)
        _require_finite(monitor.iteration + 1, "J", parts["J"])
        J.backward()
        _require_finite(monitor.iteration + 1, "dJ/dG", G.grad)
        last.update(x=x.copy(), parts=parts)
        gradient = to_device(G.grad, "cpu")
        return parts["J"], gradient.astype(np.float64).ravel()  # (1, 3, H, W) -> (n,)

    def after_iteration(xk):
        image = xk.reshape(shape)  # (n,) -> (1, 3, H, W)
        parts = last["parts"] if np.array_equal(xk, last["x"]) else problem.evaluate(image)
        monitor.last_good = image.astype(problem.dtype)
        monitor.record(monitor.iteration + 1, image, parts)

    x0 = problem.initial_image().astype(np.float64).ravel()  # (1, 3, H, W) -> (n,)
    iterations = problem.settings.iterations
    outcome = minimize(
        J_and_gradient, x0, jac=True, method="L-BFGS-B", bounds=Bounds(0.0, 1.0),
        callback=after_iteration, options={"maxiter": iterations, "ftol": 0.0, "gtol": 0.0},
    )
    if monitor.iteration < iterations:
        return f"L-BFGS stopped after {monitor.iteration} iterations: {outcome.message}"
    return None


RUNNERS = {"adam": _run_adam, "lbfgs": _run_lbfgs}


class _Monitor:
    """Counts and times the iterations, keeps the images, reports progress."""

    def __init__(self, problem, callback, log):
        self.problem, self.callback, self.log = problem, callback, log
        self.iterations = problem.settings.iterations
        self.iteration = 0
        self.history, self.snapshots = [], []

    def start(self, G0):
        self.current = self.last_good = G0.copy()
        self.snapshots.append((0, self.problem.finish(G0)))
        self.started = self.previous = time.perf_counter()
        self.after_first = None

    def record(self, iteration, image, parts):
        """Iteration `iteration` is done: `image` is G after it, `parts` its J and terms."""
        now = time.perf_counter()
        seconds, self.previous = now - self.previous, now
        if iteration == 1:
            self.after_first = now
        self.iteration, self.current = iteration, np.array(image, dtype=self.problem.dtype)
        self.history.append({"iteration": iteration, **parts, "seconds": seconds})
        # the first iteration may include one-off compilation: leave it out once there are others
        per_iteration = (now - self.after_first) / (iteration - 1) if iteration > 1 else seconds
        picture = self.problem.finish(image)
        progress = Progress(iteration, self.iterations, parts["J"], parts["J_content"],
                            parts["J_style"], parts["J_tv"], per_iteration,
                            per_iteration * (self.iterations - iteration), picture)
        settings = self.problem.settings
        if settings.save_every and iteration % settings.save_every == 0:
            self.snapshots.append((iteration, picture))
        if settings.print_every and (iteration % settings.print_every == 0 or iteration == 1
                                     or iteration == self.iterations):
            self.log(format_progress(progress))
        if self.callback is not None:
            self.callback(progress)

    def result(self, image, stopped, interrupted=False):
        """The Result with `image` (an iterate, (1, 3, n_H, n_W)) as its picture."""
        picture = self.problem.finish(image)
        snapshots = list(self.snapshots)
        if snapshots[-1][0] != self.iteration:
            snapshots.append((self.iteration, picture))
        return Result(picture, self.history, snapshots, self.iteration, stopped, interrupted)


def _require_finite(iteration, what, value):
    if not np.all(np.isfinite(value)):
        shown = f" ({value:g})" if np.ndim(value) == 0 else ""
        raise NonFiniteCost(
            f"{what} became non-finite{shown} at iteration {iteration}; stopped and kept the "
            "last image whose J was finite (try smaller weights, or with Adam a smaller --lr)")


def _as_image_batch(argument, image, dtype):
    """(3, n_H, n_W) or (1, 3, n_H, n_W) floats in [0, 1] -> (1, 3, n_H, n_W) in `dtype`."""
    array = np.asarray(image)
    if array.ndim == 3:
        array = array[None]  # (3, H, W) -> (1, 3, H, W)
    if array.ndim != 4 or array.shape[:2] != (1, 3) or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"{argument}: expected a float RGB image of shape (3, n_H, n_W), got "
            f"{array.dtype} {np.shape(image)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{argument}: expected finite values, got NaN or infinity")
    return array.astype(dtype)


def _blend_weights(blend, n_styles):
    if blend is None:
        return [1.0 / n_styles] * n_styles
    if len(blend) != n_styles:
        raise ValueError(f"style_blend: expected one weight per style image ({n_styles}), "
                         f"got {len(blend)}")
    total = sum(blend)
    return [w / total for w in blend]


def _checked_style_layers(style_layers):
    """((name, lambda), ...) from a dict or pairs; lambdas finite and >= 0."""
    if isinstance(style_layers, dict):
        pairs = list(style_layers.items())
    else:
        pairs = [tuple(pair) for pair in style_layers]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"style_layers: expected (layer name, weight) pairs, got {style_layers!r}")
    if not pairs:
        raise ValueError("style_layers: expected at least one (layer, weight) pair, got none")
    for name, weight in pairs:
        if not isinstance(name, str) or not math.isfinite(float(weight)) or float(weight) < 0:
            raise ValueError(f"style_layers: expected (layer name, weight >= 0) pairs, "
                             f"got {(name, weight)!r}")
    if len({name for name, _ in pairs}) != len(pairs):
        raise ValueError(f"style_layers: a layer is named twice in {pairs!r}")
    return tuple((name, float(weight)) for name, weight in pairs)


def _minutes(seconds):
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _print_to_stderr(line):
    print(line, file=sys.stderr, flush=True)
