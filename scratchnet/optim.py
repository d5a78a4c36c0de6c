"""Optimisers: gradient descent with momentum, and Adam (course 2, week 2).

Each step reads every parameter's gradient g = dJ/dW (plus weight_decay * W
when weight_decay is set: L2 regularisation) and updates W in place, with
PyTorch's exact rules, so that a run can be checked against torch.optim
step by step.

SGD, with PyTorch's form of momentum (v starts as the first g):

    v <- momentum v + (1 - dampening) g
    W <- W - lr v                         nesterov: W <- W - lr (g + momentum v)

(The course's v_dW = beta v_dW + (1 - beta) dW is dampening = beta: the
same direction, a step 1 - beta times as long.)

Adam, with t counting the steps taken:

    v <- beta1 v + (1 - beta1) g          the course's v_dW   (exp_avg)
    s <- beta2 s + (1 - beta2) g^2        the course's s_dW   (exp_avg_sq)
    W <- W - lr v_hat / (sqrt(s_hat) + eps),
         v_hat = v / (1 - beta1^t),  s_hat = s / (1 - beta2^t)

Differences from torch.optim: one parameter group; change the learning
rate by assigning `optimizer.lr`. `state_dict()` is a flat dict of NumPy
arrays (the hyperparameters, and `state.<i>.<name>` for parameter i), so
`save(path)` / `load(path)` checkpoint it to an .npz file, and training
resumed from a checkpoint reproduces the same numbers.

>>> import numpy as np
>>> from scratchnet.nn import Parameter
>>> w = Parameter(np.array([1.0, -2.0]))
>>> opt = SGD([w], lr=0.1)
>>> (w * w).sum().backward()
>>> opt.step()
>>> w.data
array([ 0.8, -1.6])
"""

import math

import numpy as np

from .device import to_device
from .serialize import load_npz, save_npz
from .tensor import Tensor


class Optimizer:
    """Holds the parameters, their per-parameter state, and the update rule `_update`."""

    hyperparameter_names = ()

    def __init__(self, params):
        self.params = _check_params(params)
        self.state = [{} for _ in self.params]  # per parameter: name -> array

    def zero_grad(self):
        """Forget every parameter's gradient (.grad = None), before the next backward."""
        for param in self.params:
            param.grad = None

    def step(self):
        """Update every parameter that has a gradient; the others are left as they are."""
        for param, state in zip(self.params, self.state):
            if param.grad is not None:
                self._update(param.data, param.grad, state)

    def _update(self, w, g, state):
        raise NotImplementedError(f"{type(self).__name__} must define _update")

    def _initial_state(self, w):
        """Name -> zero array of each state entry kept for a parameter like w."""
        raise NotImplementedError(f"{type(self).__name__} must define _initial_state")

    # -------------------------------------------------------------- state dict
    def state_dict(self):
        """Hyperparameters and per-parameter state as a flat dict of NumPy arrays (copies).

        State kept on a GPU is copied to the host, so the dict can be saved as is.
        """
        state = {name: np.array(getattr(self, name)) for name in self.hyperparameter_names}
        for index, param_state in enumerate(self.state):
            for name, value in param_state.items():
                state[f"state.{index}.{name}"] = np.array(to_device(value, "cpu"))
        return state

    def load_state_dict(self, state_dict):
        """Restore what state_dict() returned; checks everything before changing anything."""
        problems, hyperparameters = self._read_hyperparameters(state_dict)
        read, state_problems = self._read_param_states(state_dict)
        problems += state_problems
        if problems:
            raise ValueError(
                f"cannot load state_dict into {type(self).__name__}:\n  " + "\n  ".join(problems)
            )
        for name, value in hyperparameters.items():
            setattr(self, name, value)
        self.state = read

    def save(self, path):
        """Write state_dict() to the .npz file `path`, atomically (see scratchnet.serialize)."""
        save_npz(path, self.state_dict())

    def load(self, path):
        """Load the .npz file that save() wrote."""
        self.load_state_dict(load_npz(path))

    def _read_hyperparameters(self, state_dict):
        problems, values = [], {}
        for name in self.hyperparameter_names:
            current = getattr(self, name)
            if name not in state_dict:
                problems.append(f"missing key: {name}")
            elif np.shape(state_dict[name]) != np.shape(current):
                problems.append(
                    f"{name}: expected shape {np.shape(current)}, got {np.shape(state_dict[name])}"
                )
            else:
                values[name] = _like(np.asarray(state_dict[name]), current)
        return problems, values

    def _read_param_states(self, state_dict):
        """(list of per-parameter state dicts, problems) from the `state.<i>.<name>` keys."""
        states, problems = [{} for _ in self.params], []
        present = [set() for _ in self.params]  # names given per parameter, fitting or not
        for key, value in state_dict.items():
            if key in self.hyperparameter_names:
                continue
            parts = key.split(".")
            index = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else -1
            if parts[0] != "state" or not 0 <= index < len(self.params):
                problems.append(f"unexpected key: {key}")
                continue
            expected = self._initial_state(self.params[index].data).get(parts[2])
            present[index].add(parts[2])
            if expected is None:
                problems.append(f"unexpected key: {key}")
            elif np.shape(value) != expected.shape:
                problems.append(f"{key}: expected shape {expected.shape}, got {np.shape(value)}")
            else:
                states[index][parts[2]] = np.array(value, dtype=expected.dtype)
        for index, names in enumerate(present):
            missing = set(self._initial_state(self.params[index].data)) - names
            if names and missing:
                problems.append(f"state.{index} lacks {', '.join(sorted(missing))}")
        return states, problems


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as torch.optim.SGD."""

    hyperparameter_names = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        super().__init__(params)
        self.lr = _non_negative("lr", lr)
        self.momentum = _non_negative("momentum", momentum)
        self.dampening = float(dampening)
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening = 0")

    def _initial_state(self, w):
        return {"momentum_buffer": np.zeros_like(w)} if self.momentum else {}

    def _update(self, w, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * w
        if self.momentum:
            v = state.get("momentum_buffer")
            if v is None:
                v = state["momentum_buffer"] = g.copy()
            else:
                v *= self.momentum
                v += (1 - self.dampening) * g
            g = g + self.momentum * v if self.nesterov else v
        w -= self.lr * g


class Adam(Optimizer):
    """Adam: momentum and RMSprop with bias correction, as torch.optim.Adam."""

    hyperparameter_names = ("lr", "betas", "eps", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self.lr = _non_negative("lr", lr)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = _non_negative("eps", eps)
        self.weight_decay = _non_negative("weight_decay", weight_decay)

    def _initial_state(self, w):
        return {
            "step": np.array(0, dtype=np.int64),  # t
            "exp_avg": np.zeros_like(w),  # v
            "exp_avg_sq": np.zeros_like(w),  # s
        }

    def _update(self, w, g, state):
        if not state:
            state.update(self._initial_state(w))
        if self.weight_decay:
            g = g + self.weight_decay * w
        beta1, beta2 = self.betas
        state["step"] += 1
        t = int(state["step"])
        v, s = state["exp_avg"], state["exp_avg_sq"]
        v *= beta1
        v += (1 - beta1) * g
        s *= beta2
        s += (1 - beta2) * g * g
        bias_correction1 = 1 - beta1**t
        bias_correction2 = 1 - beta2**t
        denominator = np.sqrt(s) / math.sqrt(bias_correction2) + self.eps  # sqrt(s_hat) + eps
        w -= (self.lr / bias_correction1) * v / denominator


def _check_params(params):
    if isinstance(params, Tensor):
        raise TypeError(
            "params must be an iterable of Parameters, got a single Tensor; wrap it: [w]"
        )
    if hasattr(params, "parameters") and callable(params.parameters):
        raise TypeError(
            "params must be an iterable of Parameters, got a Module: pass model.parameters()"
        )
    params = list(params)
    if not params:
        raise ValueError("the optimizer got an empty list of parameters")
    for position, param in enumerate(params):
        if not isinstance(param, Tensor):
            raise TypeError(f"params[{position}] must be a Tensor, got {type(param).__name__}")
        if not param.is_leaf:
            raise ValueError(
                f"params[{position}] is computed by an op; only leaves can be optimised"
            )
    if len({id(p) for p in params}) != len(params):
        raise ValueError("params lists a parameter more than once")
    return params


def _non_negative(name, value):
    value = float(value)
    if not value >= 0.0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _like(array, current):
    """`array` (from a state dict) as a Python value of the kind `current` is."""
    if isinstance(current, tuple):
        return tuple(float(v) for v in array)
    return type(current)(array.item())
