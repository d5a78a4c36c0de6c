"""reshape, permute, transpose, indexing, cat, stack, pad, pixel_(un)shuffle: values, gradients."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from autograd_compare import assert_matches_torch, random_tensors
from scratchnet import Tensor, gradcheck
from scratchnet import functional as F

seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=25, deadline=None)
@given(shape=array_shapes(min_dims=1, max_dims=4, max_side=3), data=st.data())
def test_permute_and_reshape_gradients(shape, data):
    (x,) = random_tensors(np.random.default_rng(data.draw(seeds)), shape)
    dims = data.draw(st.permutations(range(len(shape))))
    np.testing.assert_array_equal(F.permute(x, dims).data, x.data.transpose(dims))
    assert gradcheck(lambda t: F.permute(t, dims), (x,))
    assert gradcheck(lambda t: F.reshape(t, (-1, 1)), (x,))


def test_transpose_swaps_two_axes_like_torch():
    x = np.arange(24.0).reshape(2, 3, 4)
    assert F.transpose(Tensor(x), 0, -1).shape == (4, 3, 2)
    assert_matches_torch(lambda t: F.transpose(t, 0, 2), lambda t: t.transpose(0, 2), [x])


def test_bad_permutation_is_refused():
    with pytest.raises(ValueError, match=r"permutation of range\(3\), got \(0, 1, 3\)"):
        F.permute(Tensor(np.ones((2, 3, 4))), (0, 1, 3))


INDICES = [
    1,
    -1,
    slice(None, None, 2),
    (Ellipsis, 1),
    (None, slice(1, 3)),
    (slice(None), None, 0),
    np.array([0, 2, 0, 0]),          # repeats: gradients add up
    (np.array([1, 1]), np.array([0, 3])),
    (slice(0, 2), np.array([3, 3, 1])),
    np.array([True, False, True]),
]


@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_indexing_values_and_gradients(index):
    x = Tensor(np.random.default_rng(7).standard_normal((3, 4)), requires_grad=True)
    np.testing.assert_array_equal(x[index].data, x.data[index])
    assert gradcheck(lambda t: t[index], (x,))


def test_repeated_integer_index_accumulates():
    x = Tensor(np.zeros(3), requires_grad=True)
    x[np.array([0, 2, 0, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


def test_indexing_with_a_tensor_is_refused():
    x = Tensor(np.zeros(3))
    with pytest.raises(TypeError, match="index with an integer array"):
        x[Tensor([0, 1])]


@pytest.mark.parametrize("index", INDICES[:3] + INDICES[6:9], ids=repr)
def test_indexing_matches_torch(index):
    torch = pytest.importorskip("torch")

    def torch_index(i):
        if isinstance(i, tuple):
            return tuple(torch_index(p) for p in i)
        return torch.from_numpy(i) if isinstance(i, np.ndarray) else i

    x = np.random.default_rng(8).standard_normal((3, 4))
    assert_matches_torch(lambda t: t[index], lambda t: t[torch_index(index)], [x])


@settings(max_examples=20, deadline=None)
@given(
    base=array_shapes(min_dims=1, max_dims=3, max_side=3),
    sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    data=st.data(),
)
def test_cat_gradients(base, sizes, data):
    dim = data.draw(st.integers(-len(base), len(base) - 1))
    shapes = [base[:dim % len(base)] + (n,) + base[dim % len(base) + 1:] for n in sizes]
    xs = random_tensors(np.random.default_rng(data.draw(seeds)), *shapes)
    np.testing.assert_array_equal(F.cat(xs, dim).data, np.concatenate([x.data for x in xs], dim))
    assert gradcheck(lambda *ts: F.cat(ts, dim=dim), tuple(xs))


@settings(max_examples=20, deadline=None)
@given(
    shape=array_shapes(min_dims=0, max_dims=3, max_side=3), count=st.integers(1, 3), data=st.data()
)
def test_stack_gradients(shape, count, data):
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)))
    xs = random_tensors(np.random.default_rng(data.draw(seeds)), *[shape] * count)
    np.testing.assert_array_equal(F.stack(xs, dim).data, np.stack([x.data for x in xs], dim))
    assert gradcheck(lambda *ts: F.stack(ts, dim=dim), tuple(xs))


def test_cat_and_stack_of_nothing_are_refused():
    with pytest.raises(ValueError, match="at least one tensor"):
        F.cat([])
    with pytest.raises(ValueError, match="at least one tensor"):
        F.stack([])


def test_cat_and_stack_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 1))
    assert_matches_torch(
        lambda x, y: F.cat([x, y], dim=1), lambda x, y: torch.cat([x, y], 1), [a, b]
    )
    c = rng.standard_normal((2, 3))
    assert_matches_torch(
        lambda x, y: F.stack([x, y], dim=-1), lambda x, y: torch.stack([x, y], -1), [a, c]
    )


@pytest.mark.parametrize("pad", [(1, 2), (0, 0), (0, 1, 2, 0), (1, 1, 1, 1, 1, 1)])
def test_pad_values_and_gradients(pad):
    x = Tensor(np.random.default_rng(10).standard_normal((2, 3, 4)), requires_grad=True)
    y = F.pad(x, pad, value=0.5)
    last_axis_first = [tuple(pad[i:i + 2]) for i in range(0, len(pad), 2)]
    widths = [(0, 0)] * (3 - len(pad) // 2) + last_axis_first[::-1]
    np.testing.assert_array_equal(y.data, np.pad(x.data, widths, constant_values=0.5))
    assert gradcheck(lambda t: F.pad(t, pad), (x,))


def test_pad_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(11).standard_normal((2, 3, 4))
    assert_matches_torch(
        lambda t: F.pad(t, (1, 0, 2, 3)), lambda t: torch.nn.functional.pad(t, (1, 0, 2, 3)), [x]
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(pad=(1,)), "even number of widths"),
        (dict(pad=(1, 1) * 4), "even number of widths"),
        (dict(pad=(1, -1)), "non-negative ints"),
        (dict(pad=(1, 1), mode="reflect"), "mode='constant' only"),
    ],
)
def test_bad_pad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        F.pad(Tensor(np.ones((2, 3, 4))), **kwargs)


def test_pixel_unshuffle_moves_each_square_into_channels():
    # x[n, c, h, w] = 1000 c + 10 h + w, so every entry says where it came from
    c, h, w = np.meshgrid(np.arange(2), np.arange(4), np.arange(6), indexing="ij")
    x = (1000 * c + 10 * h + w)[None].astype(float)                 # (1, 2, 4, 6)
    y = F.pixel_unshuffle(Tensor(x), 2).data
    assert y.shape == (1, 8, 2, 3)
    for channel, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        # channel c r^2 + i r + j holds x[c, 2 h + i, 2 w + j]
        np.testing.assert_array_equal(y[0, 4 + channel], x[0, 1, i::2, j::2])


@settings(max_examples=15, deadline=None)
@given(batch=array_shapes(min_dims=0, max_dims=2, max_side=2), c=st.integers(1, 3),
       r=st.integers(1, 3), h=st.integers(1, 2), w=st.integers(1, 2), data=st.data())
def test_pixel_shuffle_undoes_unshuffle_and_gradients_check(batch, c, r, h, w, data):
    (x,) = random_tensors(np.random.default_rng(data.draw(seeds)), batch + (c, h * r, w * r))
    y = F.pixel_unshuffle(x, r)
    assert y.shape == batch + (c * r * r, h, w)
    np.testing.assert_array_equal(F.pixel_shuffle(y, r).data, x.data)
    assert gradcheck(lambda t: F.pixel_unshuffle(t, r), (x,))
    assert gradcheck(lambda t: F.pixel_shuffle(t, r), (Tensor(y.data, requires_grad=True),))


def test_pixel_shuffles_match_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(12).standard_normal((2, 3, 4, 6))
    assert_matches_torch(lambda t: F.pixel_unshuffle(t, 2),
                         lambda t: torch.nn.functional.pixel_unshuffle(t, 2), [x])
    z = np.random.default_rng(13).standard_normal((2, 18, 2, 1))
    assert_matches_torch(lambda t: F.pixel_shuffle(t, 3),
                         lambda t: torch.nn.functional.pixel_shuffle(t, 3), [z])


@pytest.mark.parametrize(
    "op, shape, factor, message",
    [
        (F.pixel_unshuffle, (1, 3, 4, 5), 2,
         r"divisible by downscale_factor = 2, got shape \(1, 3, 4, 5\)"),
        (F.pixel_unshuffle, (1, 3, 4, 4), 0, r"downscale_factor: expected a positive int, got 0"),
        (F.pixel_unshuffle, (4, 4), 2, r"expects \(\*, C, H, W\), got shape \(4, 4\)"),
        (F.pixel_shuffle, (1, 6, 2, 2), 2, r"channels divisible by upscale_factor\^2 = 4"),
        (F.pixel_shuffle, (1, 4, 2, 2), 2.0, r"upscale_factor: expected a positive int, got 2.0"),
    ],
)
def test_bad_pixel_shuffle_arguments_are_refused(op, shape, factor, message):
    with pytest.raises(ValueError, match=message):
        op(Tensor(np.ones(shape)), factor)
