"""F.batch_norm: one Function with a hand-written backward pass.

Oracles: torch.nn.functional.batch_norm in float64 (outputs, the running
estimates it updates, and the gradients of x, gamma and beta), central finite
differences (scratchnet.gradcheck), and identities (weight=None is gamma = 1,
beta = 0; evaluation mode is an affine map per channel).
"""

import numpy as np
import pytest

from scratchnet import Tensor, gradcheck
from scratchnet import functional as F

SHAPES = [(6, 3), (4, 3, 5), (3, 3, 4, 2), (2, 3, 2, 3, 2)]    # 2-D ... 5-D, C = 3


def draw(shape, seed):
    """x (shifted and scaled, so normalising matters), gamma, beta, running mean and variance."""
    rng = np.random.default_rng(seed)
    channels = shape[1]
    return (3 * rng.standard_normal(shape) + 1, rng.uniform(0.5, 2.0, channels),
            rng.standard_normal(channels), rng.standard_normal(channels),
            rng.uniform(0.5, 2.0, channels))


def ours(x, running_mean, running_var, weight, bias, u, **options):
    """(y, dx, dgamma, dbeta) of scratchnet's batch_norm for dJ/dy = u."""
    x = Tensor(x, requires_grad=True)
    weight = None if weight is None else Tensor(weight, requires_grad=True)
    bias = None if bias is None else Tensor(bias, requires_grad=True)
    y = F.batch_norm(x, running_mean, running_var, weight, bias, **options)
    y.backward(u)
    return (y.data, x.grad, None if weight is None else weight.grad,
            None if bias is None else bias.grad)


def theirs(torch, x, running_mean, running_var, weight, bias, u, **options):
    """The same through torch.nn.functional.batch_norm."""
    tensors = [None if a is None else torch.tensor(a, requires_grad=True)
               for a in (x, weight, bias)]
    x_t, weight_t, bias_t = tensors
    y = torch.nn.functional.batch_norm(x_t, running_mean, running_var, weight_t, bias_t,
                                       **options)
    y.backward(torch.tensor(u))
    return (y.detach().numpy(), *(None if t is None else t.grad.numpy() for t in tensors))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_matches_torch_in_float64(shape, training, affine):
    torch = pytest.importorskip("torch")
    x, gamma, beta, mean, var = draw(shape, seed=len(shape))
    if not affine:
        gamma = beta = None
    u = np.random.default_rng(9).standard_normal(shape)
    options = {"training": training, "momentum": 0.3, "eps": 1e-4}
    our_mean, our_var = mean.copy(), var.copy()
    their_mean, their_var = torch.tensor(mean), torch.tensor(var)
    got = ours(x, our_mean, our_var, gamma, beta, u, **options)
    expected = theirs(torch, x, their_mean, their_var, gamma, beta, u, **options)
    for name, a, b in zip(("y", "dx", "dgamma", "dbeta"), got, expected):
        if b is None:
            assert a is None, name
        else:
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(our_mean, their_mean.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(our_var, their_var.numpy(), rtol=1e-12, atol=1e-14)
    if not training:
        np.testing.assert_array_equal(our_mean, mean)     # evaluation leaves them alone
        np.testing.assert_array_equal(our_var, var)


def test_running_estimates_follow_torch_over_several_batches():
    torch = pytest.importorskip("torch")
    our_mean, our_var = np.zeros(3), np.ones(3)
    their_mean, their_var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for step in range(4):
        x = draw((5, 3, 2, 2), seed=step)[0]
        F.batch_norm(Tensor(x), our_mean, our_var, training=True, momentum=0.1)
        torch.nn.functional.batch_norm(torch.tensor(x), their_mean, their_var, training=True,
                                       momentum=0.1)
    np.testing.assert_allclose(our_mean, their_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(our_var, their_var.numpy(), rtol=1e-12)


def test_running_estimates_are_updated_in_place_by_the_formula():
    # hand-worked: channel values 1, 3 (mu 2, biased var 1, unbiased 2) and 0, 4 (mu 2, var 4 / 8)
    x = np.array([[1.0, 0.0], [3.0, 4.0]])
    running_mean, running_var = np.array([10.0, 0.0]), np.array([1.0, 1.0])
    arrays = running_mean, running_var
    # eps must be positive in training, as in torch; 1e-12 moves y by 5e-13
    y = F.batch_norm(Tensor(x), running_mean, running_var, training=True, momentum=0.5,
                     eps=1e-12)
    assert arrays[0] is running_mean and arrays[1] is running_var
    np.testing.assert_allclose(running_mean, [0.5 * 10 + 0.5 * 2, 0.5 * 0 + 0.5 * 2])
    np.testing.assert_allclose(running_var, [0.5 * 1 + 0.5 * 2, 0.5 * 1 + 0.5 * 8])
    np.testing.assert_allclose(y.data, [[-1.0, -1.0], [1.0, 1.0]])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_float64(shape, training):
    x, gamma, beta, mean, var = draw(shape, seed=1)
    inputs = (Tensor(x, requires_grad=True), Tensor(gamma, requires_grad=True),
              Tensor(beta, requires_grad=True))

    def fn(x, weight, bias):
        # running estimates: None while training (not updated between the differences)
        running = (None, None) if training else (mean, var)
        return F.batch_norm(x, *running, weight, bias, training=training, eps=1e-3)

    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradcheck_without_weight_and_bias():
    x = draw((4, 2, 3), seed=2)[0]
    assert gradcheck(lambda x: F.batch_norm(x, None, None, training=True),
                     (Tensor(x, requires_grad=True),), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("training", [True, False])
def test_weight_none_is_gamma_one_and_beta_zero(training):
    x, _, beta, mean, var = draw((4, 3, 2, 2), seed=3)
    u = np.random.default_rng(4).standard_normal(x.shape)
    plain = ours(x, mean.copy(), var.copy(), None, None, u, training=training)
    ones = ours(x, mean.copy(), var.copy(), np.ones(3), np.zeros(3), u, training=training)
    np.testing.assert_allclose(plain[0], ones[0], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(plain[1], ones[1], rtol=1e-14, atol=1e-15)
    only_bias = ours(x, mean.copy(), var.copy(), None, beta, u, training=training)
    np.testing.assert_allclose(only_bias[0], ones[0] + beta.reshape(1, 3, 1, 1), rtol=1e-14)
    assert only_bias[2] is None
    np.testing.assert_allclose(only_bias[3], u.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_evaluation_is_the_affine_map_of_the_running_estimates():
    x, gamma, beta, mean, var = draw((3, 3, 4), seed=5)
    eps = 1e-5
    y = F.batch_norm(Tensor(x), mean, var, Tensor(gamma), Tensor(beta), training=False, eps=eps)
    per_channel = (1, 3, 1)
    expected = ((x - mean.reshape(per_channel)) / np.sqrt(var.reshape(per_channel) + eps)
                * gamma.reshape(per_channel) + beta.reshape(per_channel))
    np.testing.assert_allclose(y.data, expected, rtol=1e-13)


def test_training_output_has_zero_mean_and_unit_variance_per_channel():
    x = draw((8, 3, 5, 5), seed=6)[0]
    # eps must be positive in training; with sigma2 near 9, 1e-14 moves the variance by 1e-15
    y = F.batch_norm(Tensor(x), None, None, training=True, eps=1e-14).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-13)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1.0, rtol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_float32_in_float32_out(training):
    x, gamma, beta, mean, var = (a.astype(np.float32) for a in draw((4, 3, 3, 3), seed=7))
    x_t = Tensor(x, requires_grad=True)
    y = F.batch_norm(x_t, mean, var, Tensor(gamma), Tensor(beta), training=training)
    y.backward(np.ones(x.shape, np.float32))
    assert y.dtype == np.float32 and x_t.grad.dtype == np.float32
    expected = F.batch_norm(Tensor(x.astype(np.float64)), mean.astype(np.float64),
                            var.astype(np.float64), Tensor(gamma.astype(np.float64)),
                            Tensor(beta.astype(np.float64)), training=training)
    np.testing.assert_allclose(y.data, expected.data, rtol=1e-4, atol=1e-5)


def test_bad_calls_are_named():
    with pytest.raises(ValueError, match="running_mean and running_var"):
        F.batch_norm(Tensor(np.ones((4, 2))), None, None, training=False)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(Tensor(np.ones((1, 2))), None, None, training=True)
    with pytest.raises(ValueError, match=r"input: expected \(N, C, ...\)"):
        F.batch_norm(Tensor(np.ones(4)), None, None, training=True)


X = np.arange(12.0).reshape(4, 3)


@pytest.mark.parametrize("arguments, error, message", [
    (dict(running_mean=np.zeros(3), running_var=None, training=True), ValueError,
     "running_mean and running_var must either both be None or neither be None"),
    (dict(running_mean=None, running_var=np.ones(3), training=False), ValueError,
     "running_mean and running_var must either both be None or neither be None"),
    (dict(running_mean=np.zeros(4), running_var=np.ones(4), training=False), ValueError,
     r"running_mean: expected shape \(3,\), one entry per channel of input \(4, 3\), got \(4,\)"),
    (dict(running_mean=np.zeros(3), running_var=np.ones(1), training=True), ValueError,
     r"running_var: expected shape \(3,\).*got \(1,\)"),
    (dict(running_mean=np.zeros(3), running_var=[1.0, 1.0, 1.0], training=True), TypeError,
     "running_var: expected a Tensor or an array of shape \\(3,\\), got list"),
    (dict(running_mean=np.zeros(3), running_var=np.ones(3), weight=Tensor(np.ones(4)),
          training=True), ValueError, r"weight: expected shape \(3,\).*got \(4,\)"),
    (dict(running_mean=np.zeros(3), running_var=np.ones(3), bias=np.zeros((3, 1)),
          training=True), ValueError, r"bias: expected shape \(3,\).*got \(3, 1\)"),
    (dict(running_mean=np.zeros(3), running_var=np.ones(3), training=True, eps=-1e-5),
     ValueError, r"eps must be positive during training.*got -1e-05"),
    (dict(running_mean=None, running_var=None, training=True, eps=0.0), ValueError,
     r"eps must be positive during training"),
    (dict(running_mean=np.zeros(3), running_var=np.ones(3), training=False, eps=-1.0),
     ValueError, r"eps: expected a number >= 0, got -1.0"),
])
def test_bad_arguments_are_refused_before_the_running_estimates_change(arguments, error,
                                                                         message):
    arguments = dict(arguments)
    saved = {name: np.copy(arguments[name]) for name in ("running_mean", "running_var")
             if isinstance(arguments[name], np.ndarray)}
    with pytest.raises(error, match=message):
        F.batch_norm(Tensor(X), **arguments)
    for name, before in saved.items():
        np.testing.assert_array_equal(arguments[name], before, err_msg=name)


def test_plain_arrays_are_accepted_as_by_every_other_op():
    mean, var = np.zeros(3), np.ones(3)
    from_array = F.batch_norm(X, mean, var, training=True)
    np.testing.assert_array_equal(from_array.data,
                                  F.batch_norm(Tensor(X), np.zeros(3), np.ones(3),
                                               training=True).data)
    np.testing.assert_allclose(mean, 0.1 * X.mean(axis=0))


@pytest.mark.parametrize("training", [True, False])
def test_tensor_running_estimates_work_as_in_torch(training):
    torch = pytest.importorskip("torch")
    x, gamma, beta, mean, var = draw((4, 3, 5), seed=11)
    mean_t, var_t = torch.tensor(mean), torch.tensor(var)
    expected = torch.nn.functional.batch_norm(torch.tensor(x), mean_t, var_t, torch.tensor(gamma),
                                              torch.tensor(beta), training=training)
    ours_mean, ours_var = Tensor(mean.copy()), Tensor(var.copy())
    y = F.batch_norm(Tensor(x), ours_mean, ours_var, Tensor(gamma), Tensor(beta),
                     training=training)
    np.testing.assert_allclose(y.data, expected.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours_mean.data, mean_t.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours_var.data, var_t.numpy(), rtol=1e-12)


def test_an_empty_batch_normalises_to_an_empty_output_in_evaluation():
    torch = pytest.importorskip("torch")
    x = np.zeros((0, 3, 4))
    expected = torch.nn.functional.batch_norm(torch.tensor(x), torch.zeros(3, dtype=torch.float64),
                                              torch.ones(3, dtype=torch.float64))
    assert F.batch_norm(x, np.zeros(3), np.ones(3)).shape == tuple(expected.shape)
