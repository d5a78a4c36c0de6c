"""scratchnet.style: each cost against NumPy formulas written here, hand-worked cases,
and gradients from backward against finite differences (float64)."""

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchnet.style
from scratchnet import Tensor, gradcheck
from scratchnet.style import (
    DEFAULT_STYLE_LAYERS,
    compute_content_cost,
    compute_layer_style_cost,
    compute_style_cost,
    content_cost,
    gram_matrix,
    layer_style_cost,
    scaled_gram,
    style_cost,
    style_cost_from_grams,
    total_cost,
    total_variation,
)

# ------------------------------------------------------------- NumPy oracles


def loop_gram(a):
    """G[k, k'] = sum_i sum_j a[k, i, j] a[k', i, j] for one image a (n_C, n_H, n_W), by loops."""
    n_C, n_H, n_W = a.shape
    G = np.zeros((n_C, n_C))
    for k in range(n_C):
        for k2 in range(n_C):
            for i in range(n_H):
                for j in range(n_W):
                    G[k, k2] += a[k, i, j] * a[k2, i, j]
    return G


def numpy_content_cost(a_C, a_G, normalization):
    squared = np.sum((a_C - a_G) ** 2)
    if normalization == "slide":
        return 0.5 * squared
    _, n_C, n_H, n_W = a_G.shape
    return squared / (4 * n_H * n_W * n_C)


def numpy_layer_style_cost(a_S, a_G):
    """Each Gram over its own 2 n_H n_W n_C: the slide's formula when the sizes agree."""
    total = 0.0
    for s, g in zip(a_S, a_G):
        n_C = g.shape[0]
        k_S = 2 * s.shape[1] * s.shape[2] * n_C
        k_G = 2 * g.shape[1] * g.shape[2] * n_C
        total += np.sum((loop_gram(s) / k_S - loop_gram(g) / k_G) ** 2)
    return total


def numpy_total_variation(G):
    down = G[:, :, 1:] - G[:, :, :-1]
    right = G[:, :, :, 1:] - G[:, :, :, :-1]
    return np.sum(down**2) + np.sum(right**2)


def test_loop_gram_on_a_hand_worked_case():
    a = np.array([[[1.0, 0.0], [0.0, 1.0]],     # channel 0
                  [[1.0, 1.0], [0.0, 0.0]]])    # channel 1
    # G_00 = 1 + 1 = 2, G_11 = 1 + 1 = 2, G_01 = 1*1 (top left) = 1
    np.testing.assert_array_equal(loop_gram(a), [[2.0, 1.0], [1.0, 2.0]])


# ------------------------------------------------------------- hand-worked


def test_docstring_examples_run():
    assert doctest.testmod(scratchnet.style).failed == 0


def test_gram_of_a_1x1x2x2_activation_by_hand():
    a = Tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))  # N = 1, n_C = 1, 2 x 2
    np.testing.assert_array_equal(gram_matrix(a).data, [[[30.0]]])  # 1 + 4 + 9 + 16


def test_gram_of_two_channels_by_hand_and_of_the_unrolled_matrix():
    a = np.array([[[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [0.0, 0.0]]]])  # (1, 2, 2, 2)
    np.testing.assert_array_equal(gram_matrix(Tensor(a)).data, [[[2.0, 1.0], [1.0, 2.0]]])
    A = a[0].reshape(2, 4)  # the assignment's unrolled (n_C, n_H n_W)
    np.testing.assert_array_equal(gram_matrix(Tensor(A)).data, [[2.0, 1.0], [1.0, 2.0]])


def test_layer_style_cost_by_hand():
    a_S = Tensor(np.ones((1, 1, 2, 2)))   # G(S) = 4
    a_G = Tensor(np.zeros((1, 1, 2, 2)))  # G(G) = 0
    # (4 - 0)^2 / (2 * 2 * 2 * 1)^2 = 16 / 64
    assert layer_style_cost(a_S, a_G).item() == pytest.approx(0.25, rel=1e-15)


def test_content_cost_by_hand():
    a_C = Tensor(np.array([[[[1.0, 2.0]], [[0.0, -1.0]]]]))  # (1, 2, 1, 2)
    a_G = Tensor(np.zeros((1, 2, 1, 2)))
    assert content_cost(a_C, a_G).item() == pytest.approx(3.0)  # (1 + 4 + 0 + 1) / 2
    assert content_cost(a_C, a_G, "assignment").item() == pytest.approx(6.0 / 16)


# ------------------------------------------------------------- against NumPy

shapes = st.tuples(st.integers(1, 2), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4))


@settings(max_examples=25, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16),
       normalization=st.sampled_from(["slide", "assignment"]))
def test_content_cost_matches_numpy(shape, seed, normalization):
    rng = np.random.default_rng(seed)
    a_C, a_G = rng.standard_normal(shape), rng.standard_normal(shape)
    got = content_cost(Tensor(a_C), Tensor(a_G), normalization).item()
    assert got == pytest.approx(numpy_content_cost(a_C, a_G, normalization), rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16),
       style_size=st.tuples(st.integers(1, 5), st.integers(1, 5)))
def test_layer_style_cost_matches_numpy(shape, seed, style_size):
    rng = np.random.default_rng(seed)
    a_G = rng.standard_normal(shape)
    same_size = rng.standard_normal(shape)
    other_size = rng.standard_normal(shape[:2] + style_size)
    for a_S in (same_size, other_size):
        got = layer_style_cost(Tensor(a_S), Tensor(a_G)).item()
        assert got == pytest.approx(numpy_layer_style_cost(a_S, a_G), rel=1e-10)


def test_same_sizes_give_the_slide_formula_exactly():
    rng = np.random.default_rng(0)
    a_S, a_G = rng.standard_normal((1, 3, 4, 5)), rng.standard_normal((1, 3, 4, 5))
    slide = np.sum((loop_gram(a_S[0]) - loop_gram(a_G[0])) ** 2) / (2 * 4 * 5 * 3) ** 2
    assert layer_style_cost(a_S, a_G).item() == pytest.approx(slide, rel=1e-12)


def test_a_tiled_style_image_has_the_same_style_cost():
    """Per-position Gram matrices: the style image repeated twice describes the same texture."""
    rng = np.random.default_rng(1)
    a_S, a_G = rng.standard_normal((1, 3, 4, 4)), rng.standard_normal((1, 3, 4, 4))
    tiled = np.concatenate([a_S, a_S], axis=3)  # (1, 3, 4, 4) -> (1, 3, 4, 8)
    assert layer_style_cost(tiled, a_G).item() == pytest.approx(
        layer_style_cost(a_S, a_G).item(), rel=1e-12)


def test_scaled_gram_is_the_gram_over_2_n_H_n_W_n_C():
    a = np.random.default_rng(2).standard_normal((1, 3, 2, 5))
    np.testing.assert_allclose(scaled_gram(a).data[0], loop_gram(a[0]) / (2 * 2 * 5 * 3))


def test_style_cost_is_the_lambda_weighted_sum():
    rng = np.random.default_rng(3)
    style = {name: rng.standard_normal((1, 2, 4, 4)) for name in ("conv1_1", "conv2_1")}
    generated = {name: rng.standard_normal((1, 2, 4, 4)) for name in style}
    lambdas = {"conv1_1": 0.3, "conv2_1": 0.7}
    expected = sum(w * numpy_layer_style_cost(style[n], generated[n]) for n, w in lambdas.items())
    assert style_cost(style, generated, lambdas).item() == pytest.approx(expected, rel=1e-12)
    pairs = list(lambdas.items())
    assert style_cost(style, generated, pairs).item() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="conv3_1"):
        style_cost(style, generated, {"conv3_1": 1.0})
    grams = {name: scaled_gram(Tensor(a)) for name, a in style.items()}   # computed once
    assert style_cost_from_grams(grams, generated, lambdas).item() == pytest.approx(expected,
                                                                                   rel=1e-12)
    with pytest.raises(ValueError, match="generated_activations has no activation"):
        style_cost_from_grams(grams, {"conv1_1": generated["conv1_1"]}, lambdas)


def test_total_cost_and_total_variation():
    assert total_cost(Tensor(2.0), Tensor(3.0)).item() == 10 * 2 + 40 * 3
    assert total_cost(Tensor(2.0), Tensor(3.0), alpha=1, beta=0.5).item() == 3.5
    G = np.random.default_rng(4).random((1, 3, 4, 5))
    assert total_variation(Tensor(G)).item() == pytest.approx(numpy_total_variation(G), rel=1e-12)
    assert total_variation(Tensor(np.full((1, 3, 4, 5), 0.3))).item() == 0


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="a_C and a_G"):
        content_cost(np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 3, 4)))
    with pytest.raises(ValueError, match="number of channels"):
        layer_style_cost(np.zeros((1, 2, 3, 3)), np.zeros((1, 3, 3, 3)))
    with pytest.raises(ValueError, match="normalization"):
        content_cost(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1)), "course")


# ------------------------------------------------------------- gradients


def _pair(seed, shape=(1, 2, 3, 3)):
    rng = np.random.default_rng(seed)
    fixed = Tensor(rng.standard_normal(shape))
    return fixed, Tensor(rng.standard_normal(shape), requires_grad=True)


@pytest.mark.parametrize("normalization", ["slide", "assignment"])
def test_content_cost_gradient(normalization):
    a_C, a_G = _pair(5)
    assert gradcheck(lambda c, g: content_cost(c, g, normalization), (a_C, a_G))


def test_layer_style_cost_gradient():
    a_S, a_G = _pair(6)
    assert gradcheck(layer_style_cost, (a_S, a_G), atol=1e-6)
    a_S_other = Tensor(np.random.default_rng(7).standard_normal((1, 2, 2, 5)))
    assert gradcheck(layer_style_cost, (a_S_other, a_G), atol=1e-6)


def test_style_cost_gradient_reaches_every_layer():
    rng = np.random.default_rng(8)
    names = [name for name, _ in DEFAULT_STYLE_LAYERS[:2]]
    style = {n: Tensor(rng.standard_normal((1, 2, 3, 3))) for n in names}
    generated = [Tensor(rng.standard_normal((1, 2, 3, 3)), requires_grad=True) for _ in names]

    def J_style(g1, g2):
        return style_cost(style, dict(zip(names, (g1, g2))), DEFAULT_STYLE_LAYERS[:2])

    assert gradcheck(J_style, tuple(generated), atol=1e-6)


def test_total_variation_gradient():
    G = Tensor(np.random.default_rng(9).random((1, 3, 3, 4)), requires_grad=True)
    assert gradcheck(total_variation, (G,))


# ------------------------------------------------------------- the assignment's names


def test_assignment_aliases_follow_its_conventions():
    rng = np.random.default_rng(10)
    a_C, a_G = rng.standard_normal((1, 3, 2, 2)), rng.standard_normal((1, 3, 2, 2))
    expected = numpy_content_cost(a_C, a_G, "assignment")
    assert compute_content_cost(Tensor(a_C), Tensor(a_G)).item() == pytest.approx(expected)
    outputs_C = [Tensor(np.zeros((1, 3, 2, 2))), Tensor(a_C)]  # the content layer comes last
    outputs_G = [Tensor(np.zeros((1, 3, 2, 2))), Tensor(a_G)]
    assert compute_content_cost(outputs_C, outputs_G).item() == pytest.approx(expected)
    assert compute_layer_style_cost is layer_style_cost

    STYLE_LAYERS = [("conv1_1", 0.25), ("conv2_1", 0.75)]
    style_out = [Tensor(rng.standard_normal((1, 2, 3, 3))) for _ in range(3)]  # + content's
    generated_out = [Tensor(rng.standard_normal((1, 2, 3, 3))) for _ in range(3)]
    expected_style = sum(w * numpy_layer_style_cost(s.data, g.data)
                         for (_, w), s, g in zip(STYLE_LAYERS, style_out, generated_out))
    got = compute_style_cost(style_out, generated_out, STYLE_LAYERS).item()
    assert got == pytest.approx(expected_style, rel=1e-12)
    as_dicts = compute_style_cost(dict(zip(["conv1_1", "conv2_1"], style_out)),
                                  dict(zip(["conv1_1", "conv2_1"], generated_out)), STYLE_LAYERS)
    assert as_dicts.item() == pytest.approx(expected_style, rel=1e-12)
