"""Tests for scratchnet.optim: SGD and Adam.

Oracles: the update rules written here in NumPy straight from the course's
formulas, a hand-worked first Adam step, torch.optim on the same problem
(float64, ten steps; skipped without PyTorch), and checkpoint/resume
reproducing an uninterrupted run bit for bit.
"""

import numpy as np
import pytest

from scratchnet import Tensor, nn, optim

STEPS = 10


# ------------------------------------------------------------ a small problem

def problem_arrays(seed=0):
    """Starting weights W (3, 4), b (3,) and data x (5, 4), y (5, 3) of a least-squares fit."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((3, 4)), rng.standard_normal(3),
            rng.standard_normal((5, 4)), rng.standard_normal((5, 3)))


def loss_of(params, x, y):
    """J = mean (x W^T + b - y)^2 + 0.1 sum(W^4): not quadratic, so Adam's state matters."""
    w, b = params
    residual = x @ w.T + b - y
    return (residual * residual).mean() + 0.1 * (w * w * w * w).sum()


def gradient_of(params, x, y):
    """dJ/dW and dJ/db of loss_of, by hand."""
    w, b = params
    residual = x @ w.T + b - y
    d_residual = 2 * residual / residual.size
    return [d_residual.T @ x + 0.4 * w**3, d_residual.sum(axis=0)]


def test_hand_gradient_by_finite_differences():
    w, b, x, y = problem_arrays()
    analytic = gradient_of([w, b], x, y)
    eps = 1e-6
    for position, array in enumerate([w, b]):
        for index in np.ndindex(array.shape):
            plus, minus = [w.copy(), b.copy()], [w.copy(), b.copy()]
            plus[position][index] += eps
            minus[position][index] -= eps
            numeric = (loss_of(plus, x, y) - loss_of(minus, x, y)) / (2 * eps)
            assert analytic[position][index] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def run_ours(make_optimizer, steps=STEPS, seed=0):
    """Trajectory of [W, b] (a list per step) under scratchnet's optimizer and autograd."""
    w0, b0, x, y = problem_arrays(seed)
    params = [nn.Parameter(w0.copy()), nn.Parameter(b0.copy())]
    optimizer = make_optimizer(params)
    trajectory = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss_of(params, Tensor(x), Tensor(y)).backward()
        optimizer.step()
        trajectory.append([p.data.copy() for p in params])
    return trajectory


# ------------------------------------------------------------ NumPy oracles

def sgd_formula(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """Trajectory from the rule: g += wd W; v = g first, then mu v + (1 - d) g; W -= lr v."""
    w, b, x, y = problem_arrays()
    params, velocities, trajectory = [w.copy(), b.copy()], [None, None], []
    for _ in range(STEPS):
        grads = gradient_of(params, x, y)
        for i, (param, g) in enumerate(zip(params, grads)):
            g = g + weight_decay * param
            if momentum:
                if velocities[i] is None:
                    velocities[i] = g
                else:
                    velocities[i] = momentum * velocities[i] + (1 - dampening) * g
                g = g + momentum * velocities[i] if nesterov else velocities[i]
            params[i] = param - lr * g
        trajectory.append([p.copy() for p in params])
    return trajectory


def adam_formula(lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    """Trajectory from the course's Adam: v, s, bias-corrected, W -= lr v^ / (sqrt(s^) + eps)."""
    w, b, x, y = problem_arrays()
    params = [w.copy(), b.copy()]
    v = [np.zeros_like(p) for p in params]
    s = [np.zeros_like(p) for p in params]
    trajectory = []
    for t in range(1, STEPS + 1):
        grads = gradient_of(params, x, y)
        for i, g in enumerate(grads):
            g = g + weight_decay * params[i]
            v[i] = beta1 * v[i] + (1 - beta1) * g
            s[i] = beta2 * s[i] + (1 - beta2) * g * g
            v_hat = v[i] / (1 - beta1**t)
            s_hat = s[i] / (1 - beta2**t)
            params[i] = params[i] - lr * v_hat / (np.sqrt(s_hat) + eps)
        trajectory.append([p.copy() for p in params])
    return trajectory


SGD_SETTINGS = [
    {"lr": 0.05},
    {"lr": 0.05, "momentum": 0.9},
    {"lr": 0.02, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01},
    {"lr": 0.03, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
]
ADAM_SETTINGS = [
    {"lr": 0.01},
    {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6},
    {"lr": 0.02, "weight_decay": 0.1},
]


def assert_same_trajectory(ours, expected, rtol=1e-12, atol=1e-14):
    for step, (mine, theirs) in enumerate(zip(ours, expected)):
        for name, a, b in zip(("W", "b"), mine, theirs):
            np.testing.assert_allclose(
                a, b, rtol=rtol, atol=atol, err_msg=f"{name}, step {step + 1}"
            )


@pytest.mark.parametrize("settings", SGD_SETTINGS)
def test_sgd_follows_the_formula(settings):
    assert_same_trajectory(run_ours(lambda p: optim.SGD(p, **settings)), sgd_formula(**settings))


@pytest.mark.parametrize("settings", ADAM_SETTINGS)
def test_adam_follows_the_formula(settings):
    formula = {k: v for k, v in settings.items() if k != "betas"}
    if "betas" in settings:
        formula["beta1"], formula["beta2"] = settings["betas"]
    # the formula divides in another order than the optimizer: a few ulps apart (measured
    # 1.5e-14 relative)
    assert_same_trajectory(run_ours(lambda p: optim.Adam(p, **settings)), adam_formula(**formula),
                           rtol=1e-12)


def test_first_adam_step_moves_each_weight_by_lr_against_its_gradient_sign():
    # t = 1: v^ = g and s^ = g^2, so the step is lr g / (|g| + eps) ~ lr sign(g)
    w = nn.Parameter(np.array([3.0, -0.5, 1e-3]))
    optimizer = optim.Adam([w], lr=0.1, eps=0.0)
    (w * w).sum().backward()  # g = 2 w
    optimizer.step()
    np.testing.assert_allclose(w.data, [2.9, -0.4, 1e-3 - 0.1], rtol=1e-14)


def test_first_sgd_momentum_step_is_a_plain_step():
    # v starts as the first gradient, so step 1 equals plain gradient descent
    w = nn.Parameter(np.array([1.0, -2.0]))
    optimizer = optim.SGD([w], lr=0.25, momentum=0.9)
    (w * w).sum().backward()
    optimizer.step()
    np.testing.assert_allclose(w.data, [0.5, -1.0])


# ------------------------------------------------------------ torch

def run_torch(make_optimizer):
    torch = pytest.importorskip("torch")
    w0, b0, x, y = problem_arrays()
    params = [torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)]
    optimizer = make_optimizer(torch, params)
    x, y = torch.tensor(x), torch.tensor(y)
    trajectory = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss_of(params, x, y).backward()
        optimizer.step()
        trajectory.append([p.detach().numpy().copy() for p in params])
    return trajectory


@pytest.mark.parametrize("settings", SGD_SETTINGS)
def test_sgd_matches_torch(settings):
    expected = run_torch(lambda torch, p: torch.optim.SGD(p, **settings))
    assert_same_trajectory(run_ours(lambda p: optim.SGD(p, **settings)), expected)


@pytest.mark.parametrize("settings", ADAM_SETTINGS)
def test_adam_matches_torch(settings):
    expected = run_torch(lambda torch, p: torch.optim.Adam(p, foreach=False, **settings))
    assert_same_trajectory(run_ours(lambda p: optim.Adam(p, **settings)), expected)


# ------------------------------------------------------------ behaviour

def test_parameters_without_gradient_are_skipped():
    used, unused = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    optimizer = optim.Adam([used, unused], lr=0.1)
    used.sum().backward()
    optimizer.step()
    np.testing.assert_array_equal(unused.data, [1.0, 1.0])
    assert not np.array_equal(used.data, [1.0, 1.0])
    assert list(optimizer.state_dict()) == [
        "lr", "betas", "eps", "weight_decay",
        "state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq",
    ]


def test_zero_grad_and_float32_stays_float32():
    w = nn.Parameter(np.ones(3, dtype=np.float32))
    optimizer = optim.Adam([w])
    (w * w).sum().backward()
    optimizer.step()
    assert w.dtype == np.float32 and optimizer.state[0]["exp_avg"].dtype == np.float32
    optimizer.zero_grad()
    assert w.grad is None


def test_updates_happen_in_place():
    w = nn.Parameter(np.ones(3))
    array = w.data
    optimizer = optim.SGD([w], lr=0.5)
    w.sum().backward()
    optimizer.step()
    assert w.data is array
    np.testing.assert_array_equal(array, [0.5, 0.5, 0.5])


def test_learning_rate_can_be_changed_between_steps():
    w = nn.Parameter(np.zeros(1))
    optimizer = optim.SGD([w], lr=1.0)
    for lr in (1.0, 0.5):
        optimizer.lr = lr
        optimizer.zero_grad()
        (w * 1.0).sum().backward()  # g = 1
        optimizer.step()
    np.testing.assert_array_equal(w.data, [-1.5])


def test_bad_arguments_are_refused():
    w = nn.Parameter(np.ones(2))
    with pytest.raises(TypeError, match=r"got a Module: pass model.parameters\(\)"):
        optim.SGD(nn.Linear(2, 2), lr=0.1)
    with pytest.raises(TypeError, match=r"got a single Tensor; wrap it: \[w\]"):
        optim.SGD(w, lr=0.1)
    with pytest.raises(ValueError, match="empty list of parameters"):
        optim.Adam([])
    with pytest.raises(ValueError, match="more than once"):
        optim.Adam([w, w])
    with pytest.raises(ValueError, match="only leaves can be optimised"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(ValueError, match="lr must be >= 0, got -0.1"):
        optim.SGD([w], lr=-0.1)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"betas must be two numbers in \[0, 1\)"):
        optim.Adam([w], betas=(0.9, 1.0))


# ------------------------------------------------------------ checkpoints

def make_model_and_adam():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    return model, optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-3)


def train(model, optimizer, steps, start):
    for step in range(start, start + steps):
        rng = np.random.default_rng(step)
        x, y = Tensor(rng.standard_normal((16, 4))), Tensor(rng.standard_normal((16, 1)))
        optimizer.zero_grad()
        nn.MSELoss()(model(x), y).backward()
        optimizer.step()


def make_model_and_sgd():
    model, _ = make_model_and_adam()
    return model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)


@pytest.mark.parametrize("make", [make_model_and_adam, make_model_and_sgd])
def test_resuming_from_a_checkpoint_reproduces_the_run(tmp_path, make):
    model, optimizer = make()
    train(model, optimizer, 10, start=0)
    uninterrupted = model.state_dict()

    model, optimizer = make()
    train(model, optimizer, 5, start=0)
    model.save(tmp_path / "model.npz")
    optimizer.save(tmp_path / "optimizer.npz")

    resumed, resumed_optimizer = make()
    resumed_optimizer.lr = 123.0  # restored from the file
    resumed.load(tmp_path / "model.npz")
    resumed_optimizer.load(tmp_path / "optimizer.npz")
    assert resumed_optimizer.lr == optimizer.lr
    train(resumed, resumed_optimizer, 5, start=5)
    for name, array in resumed.state_dict().items():
        np.testing.assert_array_equal(array, uninterrupted[name], err_msg=name)


def test_state_dict_is_a_copy_and_loads_types_back():
    w = nn.Parameter(np.ones(2))
    optimizer = optim.Adam([w], lr=0.1, betas=(0.8, 0.9))
    w.sum().backward()
    optimizer.step()
    state = optimizer.state_dict()
    state["state.0.exp_avg"][...] = 99.0
    assert not np.any(optimizer.state[0]["exp_avg"] == 99.0)
    other = optim.Adam([nn.Parameter(np.zeros(2))])
    other.load_state_dict(optimizer.state_dict())
    assert other.betas == (0.8, 0.9) and isinstance(other.betas[0], float)
    assert int(other.state[0]["step"]) == 1
    np.testing.assert_array_equal(other.state[0]["exp_avg_sq"], optimizer.state[0]["exp_avg_sq"])


def test_wrong_optimizer_state_is_refused_and_nothing_changes():
    w = nn.Parameter(np.ones(3))
    optimizer = optim.Adam([w], lr=0.1)
    w.sum().backward()
    optimizer.step()
    state = optimizer.state_dict()
    state["state.0.exp_avg"] = np.zeros(4)
    state["state.1.exp_avg"] = np.zeros(3)
    del state["eps"]
    del state["state.0.step"]
    fresh = optim.Adam([nn.Parameter(np.ones(3))], lr=0.5)
    with pytest.raises(ValueError) as error:
        fresh.load_state_dict(state)
    message = str(error.value)
    assert "missing key: eps" in message
    assert "state.0.exp_avg: expected shape (3,), got (4,)" in message
    assert "unexpected key: state.1.exp_avg" in message
    assert "state.0 lacks step" in message
    assert fresh.lr == 0.5 and fresh.state == [{}]
