"""relu, sigmoid, tanh, softmax, log_softmax: gradients, stability, PyTorch."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from autograd_compare import assert_matches_torch, random_tensors
from scratchnet import Tensor, gradcheck
from scratchnet import functional as F

seeds = st.integers(0, 2**32 - 1)
shapes = array_shapes(min_dims=1, max_dims=3, max_side=4)
pointwise_shapes = array_shapes(min_dims=0, max_dims=3, max_side=4)   # a 0-d tensor too


@pytest.mark.parametrize("op", [F.relu, F.sigmoid, F.tanh])
@settings(max_examples=15, deadline=None)
@given(shape=pointwise_shapes, seed=seeds)
def test_pointwise_activation_gradients(op, shape, seed):
    (x,) = random_tensors(np.random.default_rng(seed), shape)
    x.data[np.abs(x.data) < 1e-3] = 0.5  # relu's kink
    assert gradcheck(op, (x,))
    op(x).sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("op", [F.softmax, F.log_softmax])
@settings(max_examples=15, deadline=None)
@given(shape=shapes, seed=seeds, data=st.data())
def test_softmax_family_gradients(op, shape, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    (x,) = random_tensors(np.random.default_rng(seed), shape)
    assert gradcheck(lambda t: op(t, dim=dim), (x,))


def test_softmax_rows_sum_to_one_and_log_softmax_is_its_log():
    x = Tensor(np.random.default_rng(0).standard_normal((4, 5)) * 3)
    s = F.softmax(x, dim=1).data
    np.testing.assert_allclose(s.sum(axis=1), np.ones(4))
    np.testing.assert_allclose(F.log_softmax(x, dim=1).data, np.log(s))
    # invariant to a shift of each row
    np.testing.assert_allclose(F.softmax(x + 100.0, dim=1).data, s)


def test_activation_values_by_hand():
    x = Tensor(np.array([-2.0, 0.0, 3.0]))
    np.testing.assert_array_equal(F.relu(x).data, [0.0, 0.0, 3.0])
    np.testing.assert_allclose(F.sigmoid(x).data, [1 / (1 + np.e**2), 0.5, 1 / (1 + np.e**-3)])
    np.testing.assert_allclose(F.softmax(Tensor(np.log([1.0, 3.0]))).data, [0.25, 0.75])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_inputs_stay_finite_without_warnings(dtype):
    x = Tensor(np.array([[-1000.0, 0.0, 1000.0]], dtype=dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = F.sigmoid(x)
        ls = F.log_softmax(x, dim=1)
        sm = F.softmax(x, dim=1)
        (s.sum() + ls.sum() + sm.sum()).backward()
    assert s.dtype == ls.dtype == sm.dtype == dtype
    np.testing.assert_array_equal(s.data, [[0.0, 0.5, 1.0]])
    np.testing.assert_allclose(ls.data, [[-2000.0, -1000.0, 0.0]])
    assert np.all(np.isfinite(x.grad))


def test_relu_gradient_at_zero_is_zero():
    x = Tensor(np.array([-1.0, 0.0, 1.0]), requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_pointwise_activations_match_torch(name):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((3, 4)) * 4
    assert_matches_torch(getattr(F, name), getattr(torch, name), [x])


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_family_matches_torch(name, dim):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((3, 4, 2)) * 5
    assert_matches_torch(
        lambda t: getattr(F, name)(t, dim=dim),
        lambda t: getattr(torch.nn.functional, name)(t, dim=dim),
        [x],
    )


def test_inplace_relu_writes_into_its_input_and_has_the_same_values_and_gradient():
    data = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    grads = []
    for inplace in (False, True):
        x = Tensor(data.copy(), requires_grad=True)
        z = x * 2                                  # not a leaf: may be overwritten
        y = F.relu(z, inplace=inplace)
        assert np.shares_memory(y.data, z.data) == inplace
        np.testing.assert_array_equal(y.data, np.maximum(2 * data, 0))
        (y * y).sum().backward()
        grads.append(x.grad)
    np.testing.assert_array_equal(grads[1], grads[0])
    np.testing.assert_array_equal(grads[0], 8 * data * (data > 0))   # d/dx (2x)^2 [x > 0]


def test_inplace_relu_of_a_view_with_gaps_makes_a_new_array_with_the_same_gradient():
    data = np.random.default_rng(2).standard_normal((3, 4))
    x = Tensor(data.copy(), requires_grad=True)
    z = (x * 2).T                                  # a transposed view: not C-contiguous
    assert not z.data.flags.c_contiguous
    y = F.relu(z, inplace=True)
    assert not np.shares_memory(y.data, z.data)
    np.testing.assert_array_equal(y.data, np.maximum(2 * data, 0).T)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 2.0 * (data > 0))


def test_inplace_relu_refuses_a_leaf_that_requires_grad():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="x: an in-place relu cannot overwrite a leaf tensor"):
        F.relu(x, inplace=True)
    np.testing.assert_array_equal(x.data, np.ones(3))      # untouched


# Programs that write over an array with an in-place relu after another op used it. Each
# gets `relu_` (an in-place relu) and x, and returns the scalar to differentiate; with it,
# whether scratchnet refuses the program and whether PyTorch does.
OVERWRITE_PROGRAMS = {
    # tanh's backward reads its result, which relu_ overwrites
    "tanh's result": (lambda relu_, x: relu_(x.tanh()).sum(), True, True),
    # (x + 1) * x reads x + 1; relu_ then overwrites it
    "a product's factor": (lambda relu_, x: _factor_then_relu(relu_, x), True, True),
    # the same through a view: the reshape shares the factor's memory
    "a view of a factor": (lambda relu_, x: _view_of_factor_then_relu(relu_, x), True, True),
    # the same through detach, which shares the array too
    "a detached factor": (lambda relu_, x: _detached_factor_then_relu(relu_, x), True, True),
    # h * 3 reads 3, not h, when only h's gradient is wanted
    "a factor whose partner is a constant": (
        lambda relu_, x: _constant_partner_then_relu(relu_, x), False, False),
    # reading h + 1 needs nothing of h: overwriting h after it is fine
    "a sum's term": (lambda relu_, x: _term_then_relu(relu_, x), False, False),
    # a convolution-like product's output, overwritten before anything read it
    "a fresh result": (lambda relu_, x: relu_(x * 3 - 1).sum(), False, False),
    # h itself used after relu_(h): PyTorch rebases h on the relu, scratchnet refuses h
    "the tensor relu_ was given, used after": (
        lambda relu_, x: _given_then_used(relu_, x), True, False),
    # a view of h made before relu_(h), used after: refused too (PyTorch rebases it)
    "a view made before, used after": (
        lambda relu_, x: _view_then_used(relu_, x), True, False),
}


def _factor_then_relu(relu_, x):
    h = x + 1
    product = h * x
    return product.sum() + relu_(h).sum()


def _view_of_factor_then_relu(relu_, x):
    h = x + 1
    product = h * x
    relu_(h.reshape(-1))
    return product.sum()


def _detached_factor_then_relu(relu_, x):
    h = x - 1
    product = h * x
    relu_(h.detach())
    return product.sum()


def _constant_partner_then_relu(relu_, x):
    h = x * 2
    product = h * 3
    return product.sum() + relu_(h).sum()


def _term_then_relu(relu_, x):
    h = x * 2
    total = (h + 1).sum()
    return total + relu_(h).sum()


def _given_then_used(relu_, x):
    h = x * 2
    relu_(h)
    return (h * 3).sum()


def _view_then_used(relu_, x):
    h = x * 2
    view = h.reshape(-1)
    relu_(h)
    return (view * 3).sum()


def _gradient(program, relu_, module):
    """x's gradient of program(relu_, x) on a fixed x, in scratchnet or in torch."""
    data = np.array([[-1.0, 0.5], [2.0, -0.25]])
    x = (Tensor(data.copy(), requires_grad=True) if module is None
         else module.tensor(data, requires_grad=True))
    program(relu_, x).backward()
    return np.asarray(x.grad)


@pytest.mark.parametrize("name", sorted(OVERWRITE_PROGRAMS))
def test_overwriting_an_array_a_gradient_needs_is_an_error_and_other_overwrites_are_not(name):
    program, refused, _ = OVERWRITE_PROGRAMS[name]
    in_place = lambda t: F.relu(t, inplace=True)    # noqa: E731
    if refused:
        with pytest.raises(RuntimeError, match=r"an in-place op \(relu with inplace=True\)"):
            _gradient(program, in_place, None)
        return
    np.testing.assert_array_equal(_gradient(program, in_place, None),
                                  _gradient(program, F.relu, None))   # the same without it


@pytest.mark.parametrize("name", sorted(OVERWRITE_PROGRAMS))
def test_overwrites_are_refused_where_pytorch_refuses_them_or_rebases(name):
    torch = pytest.importorskip("torch")
    program, refused, torch_refuses = OVERWRITE_PROGRAMS[name]
    try:
        gradient = _gradient(program, torch.relu_, torch)
    except RuntimeError as error:
        assert "modified by an inplace operation" in str(error) and torch_refuses
        return
    assert not torch_refuses
    if not refused:                           # where both go on, the same gradient
        in_place = lambda t: F.relu(t, inplace=True)    # noqa: E731
        np.testing.assert_array_equal(_gradient(program, in_place, None), gradient)


def test_an_in_place_relu_refuses_an_array_and_a_view_of_a_leaf_that_requires_grad():
    array = np.array([-1.0, 2.0])
    with pytest.raises(TypeError, match="x: an in-place relu needs a Tensor, got ndarray"):
        F.relu(array, inplace=True)
    w = Tensor(np.array([[-1.0, 2.0], [3.0, -4.0]]), requires_grad=True)
    for view in (w.reshape(-1), w[0], w.T[1:]):
        with pytest.raises(ValueError, match="nor a view of one"):
            F.relu(view, inplace=True)
    np.testing.assert_array_equal(w.data, [[-1.0, 2.0], [3.0, -4.0]])     # untouched
    assert w._version == 0 and array.tolist() == [-1.0, 2.0]


def test_an_in_place_relu_counts_a_write_on_the_array_it_shares():
    x = Tensor(np.array([-1.0, 2.0]), requires_grad=True)
    z = x * 3
    view = z.reshape(2, 1)
    assert z._version == view._version == 0
    y = F.relu(view, inplace=True)
    assert z._version == view._version == y._version == 1     # one array, one counter
    assert F.relu(y)._version == 0                            # a new array, a new counter
    assert x._version == 0


def test_relu_keeps_nan_as_pytorch_does():
    torch = pytest.importorskip("torch")
    values = np.array([np.nan, -np.inf, np.inf, -1.0, 0.0, 2.0], dtype=np.float32)
    expected = torch.relu(torch.from_numpy(values)).numpy()
    np.testing.assert_array_equal(F.relu(Tensor(values)).data, expected)
    np.testing.assert_array_equal(F.relu(Tensor(values.copy()), inplace=True).data, expected)
