"""Tensor, the tape and backward: dtype policy, accumulation, no_grad, detach, deep graphs."""

import doctest

import numpy as np
import pytest

import scratchnet
import scratchnet.tensor
from scratchnet import Tensor, no_grad
from scratchnet import functional as F

# ---------------------------------------------------------------- dtype policy

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_arrays_keep_their_dtype_and_memory(dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    x = Tensor(a)
    assert x.dtype == dtype
    assert x.data is a


@pytest.mark.parametrize(
    "data", [3, 2.5, [1, 2], [[1.0, 2.0]], np.arange(3), np.array([True, False])]
)
def test_python_values_and_integer_arrays_become_float32(data):
    x = Tensor(data)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x.data, np.asarray(data, dtype=np.float32))


def test_complex_and_string_data_are_refused():
    with pytest.raises(TypeError, match="must be real"):
        Tensor(np.array([1 + 2j]))
    with pytest.raises(TypeError, match="must be numeric"):
        Tensor(["a", "b"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_scalars_adopt_the_tensor_dtype(dtype):
    x = Tensor(np.ones(3, dtype=dtype), requires_grad=True)
    for y in (x + 1.5, 1.5 + x, x * 0.1, 2.0 - x, 1 / x, x**2, 2.0**x, x / 3):
        assert y.dtype == dtype


def test_float32_meeting_float64_promotes_and_grads_keep_input_dtypes():
    a = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0], dtype=np.float64), requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])
    np.testing.assert_array_equal(b.grad, [1.0, 2.0])


def test_numpy_array_on_the_left_defers_to_the_tensor():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = np.array([10.0, 20.0]) + x
    assert isinstance(y, Tensor)
    (np.array([2.0, 3.0]) * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 3.0])


# ----------------------------------------------------------------- properties

def test_array_facts_and_conversions():
    a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    x = Tensor(a)
    assert x.shape == (2, 3, 4) and x.ndim == 3 and x.size == 24 and len(x) == 2
    assert x.numpy() is a
    assert x.T.shape == (4, 3, 2)
    np.testing.assert_array_equal(x.T.data, a.T)
    assert Tensor([[7.5]]).item() == 7.5
    with pytest.raises(ValueError, match="one element"):
        x.item()


def test_repr_shows_values_dtype_and_graph_state():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert repr(x) == "Tensor([1., 2.], dtype=float64, requires_grad=True)"
    assert repr(x * 2) == "Tensor([2., 4.], dtype=float64, grad_fn=Mul)"
    assert repr(Tensor([0.5])) == "Tensor([0.5], dtype=float32)"


def test_methods_match_functional_ops():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 4))
    x = Tensor(a)
    np.testing.assert_allclose(x.sum(axis=1).data, a.sum(axis=1))
    np.testing.assert_allclose(
        x.mean(axis=(0, 2), keepdims=True).data, a.mean(axis=(0, 2), keepdims=True)
    )
    np.testing.assert_allclose(x.max().data, a.max())
    assert x.reshape(6, 4).shape == (6, 4) and x.reshape((4, -1)).shape == (4, 6)
    assert x.permute(2, 0, 1).shape == (4, 2, 3) and x.permute((1, 2, 0)).shape == (3, 4, 2)
    assert x.transpose(0, 2).shape == (4, 3, 2)
    np.testing.assert_allclose(abs(x).data, np.abs(a))
    np.testing.assert_allclose(x.abs().exp().log().data, np.abs(a))
    np.testing.assert_allclose(x.abs().sqrt().data, np.sqrt(np.abs(a)))
    np.testing.assert_allclose(x.clamp(-0.5, 0.5).data, np.clip(a, -0.5, 0.5))
    np.testing.assert_allclose(x.relu().data, np.maximum(a, 0))
    np.testing.assert_allclose(x.tanh().data, np.tanh(a))
    np.testing.assert_allclose(x.sigmoid().data, 1 / (1 + np.exp(-a)))


# ------------------------------------------------------------------- backward

def test_backward_of_a_scalar_defaults_to_one():
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])


def test_backward_of_a_non_scalar_takes_the_given_gradient():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).backward(np.array([1.0, -1.0]))
    np.testing.assert_array_equal(x.grad, [3.0, -3.0])


def test_backward_of_a_non_scalar_without_gradient_is_refused():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"needs a one-element tensor, got shape \(2, 3\)"):
        (x * 2).backward()


def test_backward_with_a_gradient_of_the_wrong_shape_is_refused():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    expected = r"gradient must have the output's shape \(2, 3\), got \(3,\)"
    with pytest.raises(ValueError, match=expected):
        (x * 2).backward(np.ones(3))


def test_backward_on_a_tensor_without_graph_is_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor([1.0]) * 2).backward()


def test_a_tensor_used_twice_gets_the_sum_of_both_gradients():
    # y = x*x + x: dy/dx = 2x + 1, x reaches y along three edges
    x = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)


def test_diamond_graph_accumulates_before_passing_on():
    # x -> a = 2x -> (a*a, 3a) -> sum: dJ/da = 2a + 3, dJ/dx = 2 (2a + 3)
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    a = x * 2
    (a * a + a * 3).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * (2 * (2 * x.data) + 3))


def test_siamese_encoder_weight_gets_the_sum_of_three_gradients():
    """One weight W applied to anchor, positive and negative: dJ/dW = sum of three parts."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3))
    inputs = [rng.standard_normal((2, 3)) for _ in range(3)]

    shared = Tensor(w, requires_grad=True)
    codes = [F.linear(Tensor(x), shared) for x in inputs]
    J = (codes[0] * codes[1]).sum() - (codes[0] * codes[2]).sum()
    J.backward()

    separate_grads = []
    for role in range(3):
        copies = [Tensor(w, requires_grad=(k == role)) for k in range(3)]
        codes = [F.linear(Tensor(x), c) for x, c in zip(inputs, copies)]
        ((codes[0] * codes[1]).sum() - (codes[0] * codes[2]).sum()).backward()
        separate_grads.append(copies[role].grad)
    np.testing.assert_allclose(shared.grad, sum(separate_grads), rtol=1e-12)
    # and by hand: J = sum (f_a * (f_p - f_n)), f = x W^T
    fa, fp, fn = (x @ w.T for x in inputs)
    by_hand = (fp - fn).T @ inputs[0] + fa.T @ inputs[1] - fa.T @ inputs[2]
    np.testing.assert_allclose(shared.grad, by_hand, rtol=1e-12)


def test_grads_accumulate_across_backward_calls_until_zeroed():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_only_leaves_keep_grad_and_constants_get_none():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = Tensor(np.array([5.0, 6.0]))
    hidden = x * c
    hidden.sum().backward()
    assert hidden.grad is None and c.grad is None
    np.testing.assert_array_equal(x.grad, [5.0, 6.0])


def test_leaf_grad_is_not_aliased_by_later_accumulation():
    # Add sends the same array to both inputs; accumulating into one must not change the other
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = Tensor(np.array([1.0]), requires_grad=True)
    (x + y).sum().backward()
    (x * 5).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0])
    np.testing.assert_array_equal(y.grad, [1.0])


def test_a_chain_of_5000_ops_backpropagates_without_recursion():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(2, 1.0001**5000), rtol=1e-10)


def test_a_wide_and_deep_graph_visits_each_node_once():
    # each step reads the previous tensor twice: 2^steps paths, but linear work
    x = Tensor(np.array([0.3]), requires_grad=True)
    y = x
    for _ in range(200):
        y = (y + y) * 0.5
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0])


def test_a_backward_of_the_wrong_shape_is_reported_at_its_op():
    class Broken(F.Function):
        def forward(self, x):
            return x * 2

        def backward(self, dy):
            return dy.sum()

    x = Tensor(np.ones(3), requires_grad=True)
    expected = r"Broken.backward returned a gradient of shape \(\) for input 0 of shape \(3,\)"
    with pytest.raises(RuntimeError, match=expected):
        Broken.apply(x).sum().backward()


# ------------------------------------------------------------ no_grad, detach

def test_no_grad_records_nothing_and_restores_afterwards():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with no_grad():
        assert not scratchnet.is_grad_enabled()
        y = x * 2 + 1
    assert scratchnet.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert (x * 2).grad_fn is not None


def test_no_grad_restores_state_after_an_exception_and_when_nested():
    with pytest.raises(KeyError):
        with no_grad():
            raise KeyError("boom")
    assert scratchnet.is_grad_enabled()
    with no_grad():
        with no_grad():
            pass
        assert not scratchnet.is_grad_enabled()
    assert scratchnet.is_grad_enabled()


def test_no_grad_as_a_decorator():
    @no_grad()
    def double(t):
        """Doubles."""
        return t * 2

    x = Tensor(np.array([1.0]), requires_grad=True)
    assert not double(x).requires_grad
    assert double.__doc__ == "Doubles."
    assert scratchnet.is_grad_enabled()


def test_detach_shares_data_and_stops_gradients():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    d = (x * 2).detach()
    assert d.grad_fn is None and not d.requires_grad
    y = (x * d).sum()  # d is a constant here: dy/dx = d = 2x
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
    assert x.detach().data is x.data


# ------------------------------------------------------------------- doctests

def test_docstring_examples_run():
    result = doctest.testmod(scratchnet.tensor, extraglobs={"Tensor": Tensor})
    assert result.attempted > 0 and result.failed == 0
