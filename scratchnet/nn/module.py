"""Parameter, Module and Sequential: how a network holds its weights.

Layer l of the course computes a^[l] = g^[l](z^[l]) with z^[l] made from
a^[l-1] and the layer's learned W^[l], b^[l]. Here each W^[l], b^[l] is a
`Parameter` (a Tensor that asks for its gradient), and a `Module` is a
piece of network: it owns parameters, sub-modules (the layers inside it)
and buffers (NumPy arrays it keeps but does not learn, like BatchNorm's
running mean), and computes its output in `forward`. Assigning an
attribute registers it, as in PyTorch:

    class TwoLayer(Module):
        def __init__(self):
            super().__init__()
            self.hidden = Linear(4, 8)     # a sub-module, found by parameters()
            self.out = Linear(8, 1)

        def forward(self, x):
            return self.out(F.relu(self.hidden(x)))

Every parameter and buffer has a dotted name, the path of attribute names
from the outer module: `hidden.weight`, `features.0.bias`. `state_dict()`
maps these names to copies of the arrays, `load_state_dict` copies arrays
back in place (checking names and shapes first), and `save(path)` /
`load(path)` do the same through an .npz file written atomically (see
scratchnet.serialize), never through pickle.

Parameters are created float32, PyTorch's default; `model.double()` (or
`model.to(np.float64)`) converts parameters and floating-point buffers, and
`model.to("cuda")` moves them to the GPU (`model.to("cpu")` back; see
scratchnet.device). Convert or move before creating an optimizer, which
keeps arrays of its own. state_dict() always holds NumPy arrays.
"""

from collections import namedtuple

import numpy as np

from ..device import CudaArray, DEVICES, to_device
from ..serialize import load_npz, save_npz
from ..tensor import Tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", "missing_keys unexpected_keys")
IncompatibleKeys.__doc__ = "What load_state_dict(strict=False) skipped: two lists of names."


class Parameter(Tensor):
    """A Tensor that is a learned weight: requires_grad=True, found by Module.parameters().

    >>> Parameter(np.zeros(2)).requires_grad
    True
    """

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model; subclasses define `forward`.

    >>> from scratchnet.nn import Linear, ReLU
    >>> model = Sequential(Linear(4, 3), ReLU(), Linear(3, 2))
    >>> [name for name, _ in model.named_parameters()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
    >>> model
    Sequential(
      (0): Linear(in_features=4, out_features=3, bias=True)
      (1): ReLU()
      (2): Linear(in_features=3, out_features=2, bias=True)
    )
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def __call__(self, *inputs, **options):
        return self.forward(*inputs, **options)

    # ------------------------------------------------------------ registration
    def register_parameter(self, name, param):
        """Register `param` (a Parameter, or None for an absent one such as bias=False)."""
        self._check_registrable(name, param, Parameter)
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name, array):
        """Register `array` (a NumPy array or a CudaArray, or None): saved, not learned."""
        kind = CudaArray if isinstance(array, CudaArray) else np.ndarray
        self._check_registrable(name, array, kind)
        self._forget(name)
        self._buffers[name] = array

    def add_module(self, name, module):
        """Register `module` (a Module, or None) under `name`."""
        self._check_registrable(name, module, Module)
        self._forget(name)
        self._modules[name] = module

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self.add_module(name, value)
        elif name in self.__dict__.get("_parameters", ()):
            self.register_parameter(name, value)  # None, or a TypeError for anything else
        elif name in self.__dict__.get("_modules", ()):
            self.add_module(name, value)
        elif name in self.__dict__.get("_buffers", ()):
            self.register_buffer(name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Only reached when ordinary lookup fails: registered members live in the three dicts.
        for registry in ("_parameters", "_buffers", "_modules"):
            members = self.__dict__.get(registry, {})
            if name in members:
                return members[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(registry, {}):
                del self.__dict__[registry][name]
                return
        object.__delattr__(self, name)

    def _check_registrable(self, name, value, kind):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"call super().__init__() at the start of {type(self).__name__}.__init__, "
                f"before assigning {name!r}"
            )
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"a member name must be a non-empty string without '.', got {name!r}")
        if value is not None and not isinstance(value, kind):
            raise TypeError(
                f"{type(self).__name__}.{name} must be a {kind.__name__} or None, "
                f"got {type(value).__name__}"
            )

    def _forget(self, name):
        """Drop `name` from wherever it was registered, so it lives in one place only."""
        self.__dict__.pop(name, None)
        for registry in ("_parameters", "_buffers", "_modules"):
            self.__dict__[registry].pop(name, None)

    # --------------------------------------------------------------- traversal
    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every module inside it, each once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(_join(name, n), m) for n, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))  # so the first child comes out first

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """(name, module) for the modules registered directly on this one."""
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, Parameter) for every parameter, each once even if shared."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True):
        """(dotted name, array) for every buffer."""
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, array in self.named_buffers(recurse=recurse):
            yield array

    def _named_members(self, registry, prefix, recurse):
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        seen = set()
        for module_name, module in modules:
            for name, member in getattr(module, registry).items():
                if member is None or id(member) in seen:
                    continue
                seen.add(id(member))
                yield _join(module_name, name), member

    # ------------------------------------------------------------ mode, grads
    def train(self, mode=True):
        """Training mode (mode=True) or evaluation mode for this module and all inside it."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode: BatchNorm uses its running statistics, Dropout does nothing."""
        return self.train(False)

    def zero_grad(self):
        """Forget every parameter's gradient (sets .grad to None, as PyTorch does by default)."""
        for param in self.parameters():
            param.grad = None

    def requires_grad_(self, requires_grad=True):
        """Turn gradients of all parameters on or off (off: a frozen network)."""
        for param in self.parameters():
            param.requires_grad = bool(requires_grad)
        return self

    def to(self, target):
        """Convert parameters, their gradients and buffers, in place, to `target`:
        a device ("cpu" or "cuda": all buffers move) or a dtype (float32 or
        float64: the floating-point buffers convert)."""
        if isinstance(target, str) and target in DEVICES:
            self._convert(lambda array: to_device(array, target), lambda array: True)
            return self
        try:
            dtype = np.dtype(target)
        except TypeError:
            raise TypeError(f"target must be 'cpu', 'cuda', float32 or float64, got {target!r}") \
                from None
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        self._convert(lambda array: array.astype(dtype, copy=False),
                      lambda array: np.issubdtype(array.dtype, np.floating))
        return self

    def _convert(self, convert, applies_to_buffer):
        for module in self.modules():
            for param in module._parameters.values():
                if param is not None:
                    param.data = convert(param.data)
                    if param.grad is not None:
                        param.grad = convert(param.grad)
            for name, array in module._buffers.items():
                if array is not None and applies_to_buffer(array):
                    module._buffers[name] = convert(array)

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    # -------------------------------------------------------------- state dict
    def state_dict(self):
        """Dict from dotted name to a NumPy copy of each parameter's and buffer's array.

        Per module, in the order the modules were registered: its parameters,
        then its buffers (PyTorch's order, so the names line up with a
        PyTorch model built the same way).
        """
        arrays = self._state_arrays()
        return {name: to_device(array, "cpu").copy() for name, array in arrays.items()}

    def load_state_dict(self, state_dict, strict=True):
        """Copy the arrays of `state_dict` into this module's parameters and buffers.

        Everything is checked before anything is copied: with strict=True a
        missing or unexpected name is an error, and a shape or dtype that
        does not fit is always one; the ValueError lists every problem.
        Returns IncompatibleKeys(missing_keys, unexpected_keys).
        """
        targets = self._state_arrays()
        missing = [name for name in targets if name not in state_dict]
        unexpected = [name for name in state_dict if name not in targets]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        values = {}
        for name, target in targets.items():
            if name in state_dict:
                values[name] = _as_array(state_dict[name])
                problems.extend(_fit_problems(name, values[name], target))
        if problems:
            raise ValueError(
                f"cannot load state_dict into {type(self).__name__}:\n  " + "\n  ".join(problems)
            )
        for name, value in values.items():
            np.copyto(targets[name], value, casting="same_kind")
        return IncompatibleKeys(missing, unexpected)

    def save(self, path):
        """Write state_dict() to the .npz file `path`, atomically (see scratchnet.serialize)."""
        save_npz(path, self.state_dict())

    def load(self, path, strict=True):
        """Load the .npz file that save() wrote; checks as load_state_dict."""
        return self.load_state_dict(load_npz(path), strict=strict)

    def _state_arrays(self):
        """Dict from dotted name to the live array of each parameter and buffer."""
        arrays = {}
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                if param is not None:
                    arrays[_join(prefix, name)] = param.data
            for name, array in module._buffers.items():
                if array is not None:
                    arrays[_join(prefix, name)] = array
        return arrays

    # ----------------------------------------------------------------- summary
    def summary(self, input_shape, print_fn=print):
        """Print (through print_fn, line by line; None: silent) and return a table: per layer
        its output shape, parameter count and receptive field, then the total number of
        parameters and the chain of shapes in the slides' notation (14 -> 10x16 -> 6x32).

        `input_shape` is (C, *spatial) or (N, C, *spatial). The table is made by
        scratchnet.visualize.model_summary, next to the receptive-field arithmetic it uses.
        """
        from ..visualize.model_summary import summary  # imported here: it builds on scratchnet.nn

        return summary(self, input_shape, print_fn)

    # -------------------------------------------------------------------- repr
    def extra_repr(self):
        """The layer's settings, shown inside the parentheses of its repr."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        children = [f"({name}): {module!r}" for name, module in self._modules.items()]
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = ([extra] if extra else []) + children
        body = "".join("  " + line.replace("\n", "\n  ") + "\n" for line in lines)
        return f"{type(self).__name__}(\n{body})"


class Sequential(Module):
    """Layers applied one after another: a^[l] = layer_l(a^[l-1]).

    Built from layers (named "0", "1", ...) or from one dict of name -> layer.
    Indexing gives a layer, slicing a Sequential of the chosen layers.

    >>> from scratchnet.nn import Linear, ReLU
    >>> net = Sequential(Linear(2, 2), ReLU())
    >>> len(net), type(net[-1]).__name__, len(net[:1])
    (2, 'ReLU', 1)
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], dict):
            named = layers[0].items()
        else:
            named = ((str(index), layer) for index, layer in enumerate(layers))
        for name, layer in named:
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential takes Modules, got {type(layer).__name__} at {name!r}")
            self.add_module(name, layer)

    def forward(self, x):
        for layer in self:
            x = layer(x)
        return x

    def append(self, layer):
        """Add `layer` at the end, named by its position."""
        self.add_module(str(len(self)), layer)
        return self

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(dict(items[index]))
        if not -len(items) <= index < len(items):
            raise IndexError(f"index {index} is out of range for a Sequential of {len(items)}")
        return items[index][1]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _as_array(value):
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def _fit_problems(name, value, target):
    """Why `value` cannot be copied into `target` (an empty list when it can)."""
    if value.shape != target.shape:
        return [f"{name}: expected shape {target.shape}, got {value.shape}"]
    if not np.can_cast(value.dtype, target.dtype, casting="same_kind"):
        return [f"{name}: expected dtype {target.dtype} (or one castable to it), got {value.dtype}"]
    return []
