"""scratchnet.style_transfer: the optimisation loop, and the check that matters --
J(G), dJ/dG and 20 Adam iterations equal an independent PyTorch implementation."""

import doctest
import itertools

import numpy as np
import pytest

import scratchnet.style_transfer
from scratchnet import Tensor
from scratchnet.io import Preprocess
from scratchnet.io.images import rgb_to_yiq
from scratchnet.models import vgg19
from scratchnet.style_transfer import Settings, StyleTransfer, transfer

SMALL = (4, 4, 6, 6, 6)
QUIET = {"print_every": 0}


@pytest.fixture(scope="module")
def model():
    return vgg19(weights="random", widths=SMALL)


def images(seed, size=(32, 32)):
    rng = np.random.default_rng(seed)
    return rng.random((3, *size), dtype=np.float32)


def test_docstring_examples_run():
    assert doctest.testmod(scratchnet.style_transfer).failed == 0


def test_adam_lowers_J_and_keeps_pixels_in_range(model):
    result = transfer(images(0), [images(1, (24, 40))], model=model, iterations=15, lr=0.05,
                      **QUIET)
    J = [row["J"] for row in result.history]
    assert len(J) == 15 and result.iterations_done == 15 and result.stopped is None
    assert J[-1] < 0.5 * J[0]
    assert result.image.shape == (3, 32, 32)
    assert 0 <= result.image.min() and result.image.max() <= 1


def test_lbfgs_runs_and_lowers_J(model):
    result = transfer(images(0), [images(1)], model=model, iterations=8, optimizer="lbfgs",
                      init="noise", **QUIET)
    J = [row["J"] for row in result.history]
    assert result.iterations_done == 8 and result.stopped is None
    assert J[-1] < 0.5 * J[0]
    assert all(later <= earlier for earlier, later in itertools.pairwise(J))  # never up
    assert 0 <= result.image.min() and result.image.max() <= 1


def test_the_same_seed_gives_the_same_picture(model):
    runs = [transfer(images(0), [images(1)], model=model, iterations=4, seed=seed, **QUIET)
            for seed in (3, 3, 4)]
    np.testing.assert_array_equal(runs[0].image, runs[1].image)
    assert [r["J"] for r in runs[0].history] == [r["J"] for r in runs[1].history]
    assert not np.array_equal(runs[0].image, runs[2].image)


def test_initial_images(model):
    content = images(0)
    initial = {init: StyleTransfer(model, content, [images(1)], Settings(init=init))
               .initial_image()[0] for init in ("content", "noisy", "noise")}
    for G in initial.values():
        assert G.shape == content.shape and 0 <= G.min() and G.max() <= 1
    np.testing.assert_array_equal(initial["content"], content)
    assert np.all(np.abs(initial["noisy"] - content) <= 0.25 + 1e-7)
    assert not np.array_equal(initial["noisy"], content)
    assert np.abs(initial["noise"] - content).mean() > 0.2


def test_progress_reaches_the_callback_and_the_log(model):
    seen, lines = [], []
    result = transfer(images(0), [images(1)], model=model, iterations=4, print_every=2,
                      save_every=2, callback=seen.append, log=lines.append)
    assert [p.iteration for p in seen] == [1, 2, 3, 4]
    assert all(p.iterations == 4 and p.seconds_per_iteration > 0 for p in seen)
    assert seen[-1].eta_seconds == 0
    assert [p.J for p in seen] == [row["J"] for row in result.history]
    assert [line.split()[1] for line in lines] == ["1/4", "2/4", "4/4"]
    assert all("J_content" not in line and "content" in line and "ETA" in line for line in lines)
    assert [iteration for iteration, _ in result.snapshots] == [0, 2, 4]
    np.testing.assert_array_equal(result.snapshots[-1][1], result.image)


def test_a_non_finite_J_stops_the_run_and_keeps_the_last_good_image(model):
    problem = StyleTransfer(model, images(0), [images(1)], Settings(iterations=10, **QUIET))
    evaluated = []
    real_cost = problem.cost

    def cost_turning_nan_at_the_fourth_evaluation(G):
        evaluated.append(G.data.copy())
        J, parts = real_cost(G)
        if len(evaluated) == 4:
            J = J * float("nan")
            parts = dict(parts, J=float("nan"))
        return J, parts

    problem.cost = cost_turning_nan_at_the_fourth_evaluation
    result = problem.run()
    assert result.iterations_done == 3 and not result.interrupted
    assert "non-finite" in result.stopped and "iteration 4" in result.stopped
    np.testing.assert_array_equal(result.image, evaluated[2][0])  # J of evaluation 3 was finite
    assert np.all(np.isfinite(result.image))


def test_ctrl_c_returns_the_current_image(model):
    seen = []

    def interrupt_at_third(progress):
        seen.append(progress.image)
        if progress.iteration == 3:
            raise KeyboardInterrupt

    result = transfer(images(0), [images(1)], model=model, iterations=10,
                      callback=interrupt_at_third, **QUIET)
    assert result.interrupted and result.iterations_done == 3
    assert "interrupted" in result.stopped
    np.testing.assert_array_equal(result.image, seen[-1])


def test_several_styles_are_blended_by_gram_matrix(model):
    content, first, second = images(0), images(1), images(2, (20, 28))
    only_first = StyleTransfer(model, content, [first], Settings())
    blended = StyleTransfer(model, content, [first, second], Settings(style_blend=(3, 1)))
    only_second = StyleTransfer(model, content, [second], Settings())
    for name, target in blended.style_targets.items():
        expected = (0.75 * only_first.style_targets[name].data
                    + 0.25 * only_second.style_targets[name].data)
        np.testing.assert_allclose(target.data, expected, rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="style_blend"):
        StyleTransfer(model, content, [first, second], Settings(style_blend=(1.0,)))


def test_preserve_colors_keeps_the_content_chrominance(model):
    content = images(0) * 0.5 + 0.25  # away from 0 and 1, so that no clipping happens
    result = transfer(content, [images(1)], model=model, iterations=3, preserve_colors=True,
                      **QUIET)
    plain = transfer(content, [images(1)], model=model, iterations=3, **QUIET)
    yiq, content_yiq = rgb_to_yiq(result.image), rgb_to_yiq(content)
    plain_yiq = rgb_to_yiq(plain.image)
    inside = (result.image > 0.01).all(axis=0) & (result.image < 0.99).all(axis=0)
    np.testing.assert_allclose(yiq[1:, inside], content_yiq[1:, inside], atol=1e-5)
    np.testing.assert_allclose(yiq[0, inside], plain_yiq[0, inside], atol=1e-5)


def test_bad_settings_and_layers_are_named(model):
    for field, value in [("init", "zeros"), ("optimizer", "sgd"), ("lr", -1.0),
                         ("iterations", 0), ("content_normalization", "x"),
                         ("style_layers", [("conv1_1", -1)])]:
        with pytest.raises(ValueError, match=field):
            Settings(**{field: value})
    with pytest.raises(ValueError, match="conv9_9"):
        StyleTransfer(model, images(0), [images(1)], Settings(content_layer="conv9_9"))
    with pytest.raises(ValueError, match="styles"):
        StyleTransfer(model, images(0), [], Settings())
    with pytest.raises(ValueError, match="content"):
        StyleTransfer(model, np.zeros((32, 32)), [images(1)], Settings())


# ------------------------------------------------------------------------------------------
# The check that matters: an independent PyTorch implementation of the same J(G).
# Same weights, images and hyper-parameters; PyTorch's conv2d, relu, pooling, Gram by bmm,
# and the slide's formulas written again here.

TORCH_CASES = {
    "max, assignment content cost": {"pooling": "max", "recipe": None, "settings": {
        "content_normalization": "assignment", "tv_weight": 0.0, "content_layer": "conv4_2"}},
    "avg, slide content cost, TV, BGR 0-255 input": {
        "pooling": "avg", "recipe": Preprocess("BGR", 255.0, (103.939, 116.779, 123.68)),
        "settings": {"content_normalization": "slide", "tv_weight": 2.0, "content_weight": 1e-3,
                     "style_weight": 1e-4, "content_layer": "conv3_2",
                     "style_layers": (("conv1_1", 0.5), ("conv2_2", 0.3), ("conv4_1", 0.2))}},
}
EQUIVALENCE_WIDTHS = (8, 8, 16, 16, 16)


def torch_J(torch, G, weights, recipe, pooling, content, style, s):
    """J(G) from PyTorch ops, following the course's formulas."""
    F = torch.nn.functional
    layers = [f"conv{b}_{i}" for b, depth in enumerate((2, 2, 4, 4, 4), start=1)
              for i in range(1, depth + 1)]
    ends_block = {"conv1_2", "conv2_2", "conv3_4", "conv4_4"}

    def preprocess(x):
        order = [0, 1, 2] if recipe.channel_order == "RGB" else [2, 1, 0]
        mean = torch.tensor(recipe.mean, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(recipe.std, dtype=x.dtype).view(1, 3, 1, 1)
        return (recipe.scale * x[:, order] - mean) / std

    def activations(x):
        out, a = {}, preprocess(x)
        for name in layers:
            a = F.relu(F.conv2d(a, weights[f"{name}.weight"], weights[f"{name}.bias"], padding=1))
            out[name] = a
            if name in ends_block:
                a = F.max_pool2d(a, 2) if pooling == "max" else F.avg_pool2d(a, 2)
        return out

    def gram(a):
        A = a.reshape(a.shape[0], a.shape[1], -1)  # (1, n_C, n_H n_W)
        return torch.bmm(A, A.transpose(1, 2))

    a_C, a_S, a_G = activations(content), activations(style), activations(G)
    c = a_G[s.content_layer]
    n_C, n_H, n_W = c.shape[1:]
    squared = ((a_C[s.content_layer] - c) ** 2).sum()
    if s.content_normalization == "slide":
        J_content = squared / 2
    else:
        J_content = squared / (4 * n_H * n_W * n_C)
    J_style = 0
    for name, lam in s.style_layers:
        n_C, n_H, n_W = a_G[name].shape[1:]
        squared = ((gram(a_S[name]) - gram(a_G[name])) ** 2).sum()
        J_style = J_style + lam * squared / (2 * n_H * n_W * n_C) ** 2
    J = s.content_weight * J_content + s.style_weight * J_style
    tv = ((G[:, :, 1:] - G[:, :, :-1]) ** 2).sum() + ((G[:, :, :, 1:] - G[:, :, :, :-1]) ** 2).sum()
    return J + s.tv_weight * tv


@pytest.fixture
def torch_one_thread():
    """PyTorch on one thread: its thread pool and scratchnet's otherwise fight over the cores."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_J_gradient_and_20_adam_steps_equal_pytorch(case, torch_one_thread):
    torch = torch_one_thread
    spec = TORCH_CASES[case]
    model = vgg19(weights="random", pooling=spec["pooling"], widths=EQUIVALENCE_WIDTHS).double()
    if spec["recipe"] is not None:
        model.preprocessing = spec["recipe"]
    rng = np.random.default_rng(0)
    for p in model.parameters():  # non-zero biases too, so that they are checked
        p.data += 0.05 * rng.standard_normal(p.shape)
    content, style = rng.random((3, 32, 32)), rng.random((3, 32, 32))
    s = Settings(iterations=20, lr=0.02, init="noisy", seed=5, print_every=0, **spec["settings"])
    problem = StyleTransfer(model, content, [style], s)

    G0 = problem.initial_image()
    G = Tensor(G0.copy(), requires_grad=True)
    J, _ = problem.cost(G)
    J.backward()

    weights = {name: torch.from_numpy(a) for name, a in model.state_dict().items()}
    content_t, style_t = (torch.from_numpy(image[None]) for image in (content, style))

    def reference(G_t):
        return torch_J(torch, G_t, weights, model.preprocessing, spec["pooling"],
                       content_t, style_t, s)

    G_t = torch.tensor(G0, requires_grad=True)
    J_t = reference(G_t)
    J_t.backward()
    # float64 round-off only, through every layer and in another order of sums: measured
    # J within 2e-15, the gradient within 6e-11 entry by entry (2e-14 of its largest entry)
    # and the image after 20 steps within 9e-15; the bounds leave room for other BLAS builds,
    # a wrong formula shows at 1e-3 or more
    assert abs(J.item() / J_t.item() - 1) < 1e-12
    tiny = 1e-12 * np.abs(G.grad).max()
    np.testing.assert_allclose(G.grad, G_t.grad.numpy(), rtol=1e-8, atol=tiny)

    optimizer = torch.optim.Adam([G_t], lr=s.lr)
    for _ in range(s.iterations):
        optimizer.zero_grad()
        reference(G_t).backward()
        optimizer.step()
        with torch.no_grad():
            G_t.clamp_(0, 1)
    result = problem.run()
    assert result.iterations_done == 20 and result.image.dtype == np.float64
    assert np.abs(result.image - G_t.detach().numpy()[0]).max() < 1e-10
    assert np.abs(result.image - G0[0]).max() > 0.05  # the images did move
