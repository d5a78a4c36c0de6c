"""Function: one differentiable op, its forward and backward side by side.

An op y = f(x_1, ..., x_k) is a subclass of Function with two methods on
plain NumPy arrays:

- forward(x_1, ..., x_k, **params) -> y, saving on `self` whatever the
  backward pass will need (inputs, the output, a mask ...);
- backward(dy) -> (dx_1, ..., dx_k): given dJ/dy, the vector-Jacobian
  products dJ/dx_i = (dy/dx_i)^T dJ/dy, one per input, each of its
  input's shape (None for an input that needs none). Gradients of
  broadcast inputs are summed back to the input's shape with `unbroadcast`.

`Function.apply(*tensors, **params)` runs forward and, when gradients are
on and some input requires them, records the Function on the output so
that Tensor.backward can call it later. `self.needs_input_grad[i]` tells
backward which gradients are wanted, so expensive ones can be skipped.

Two class attributes say which arrays backward reads, so that writing over
one of them later (relu with inplace=True) is an error at backward time
rather than a wrong gradient (scratchnet.tensor.VersionCounter):
`keeps_inputs` (default True: the safe guess) and `keeps_output` (default
False). An op that reads no input, as Add, says keeps_inputs = False; one
that reads its own result, as Exp, says keeps_output = True; one whose reads
depend on which gradients are wanted (Mul: dx reads y, dy reads x) overrides
`read_by_backward`. A forward that wrote its result over input i's array
sets `self.overwrote = i`: the output shares that input's counter, which
counts one more write. Otherwise an output that shares memory with an input
(a view, as reshape's) shares its counter. A tensor of the graph whose array
was written over after it was made (the tensor relu in place was given, a
view made before) is refused as an input: its values are no longer the ones
its gradient path describes.

All tensors of one op must be on one device ("cpu" or "cuda", see
scratchnet.device). forward and backward then get NumPy arrays, or
CudaArrays, which NumPy's functions accept: one NumPy code serves both.

A Function is used once: apply makes a fresh instance per call, so the
values saved by forward belong to that call only.

>>> import numpy as np
>>> from scratchnet import Tensor
>>> class Cube(Function):
...     def forward(self, x):
...         self.x = x
...         return x ** 3
...     def backward(self, dy):
...         return 3 * self.x ** 2 * dy
>>> x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
>>> Cube.apply(x).sum().backward()
>>> x.grad
array([ 3., 12.])
"""

import numpy as np

from ..device import CudaArray, common_device, shares_memory
from ..tensor import Tensor, is_grad_enabled


class Function:
    """Base class of every differentiable op; see the module docstring."""

    inputs = ()
    needs_input_grad = ()
    keeps_inputs = True     # backward reads the input arrays
    keeps_output = False    # backward reads the output array
    overwrote = None        # the input whose array forward wrote its result over, if any
    saved_versions = ()     # (counter, value) of each array backward reads, when recorded

    @classmethod
    def apply(cls, *inputs, **params):
        inputs = tuple(as_tensor(x) for x in inputs)
        common_device(cls.__name__, [x.data for x in inputs])
        fn = cls()
        fn.needs_input_grad = tuple(x.requires_grad for x in inputs)
        recording = is_grad_enabled() and any(fn.needs_input_grad)
        if recording:
            _check_not_written_over(cls.__name__, inputs)
        output = Tensor(fn.forward(*(x.data for x in inputs), **params))
        _share_version_counter(output, inputs, fn.overwrote)
        if recording:
            fn.inputs = inputs
            fn.saved_versions = tuple((t._version_counter, t._version)
                                      for t in fn.read_by_backward(inputs, output))
            output.requires_grad = True
            output.grad_fn = fn
        return output

    def read_by_backward(self, inputs, output):
        """The tensors whose arrays backward will read: the inputs if keeps_inputs, the output
        if keeps_output. Tensor.backward checks that none was written over since."""
        return (inputs if self.keeps_inputs else ()) + ((output,) if self.keeps_output else ())

    def forward(self, *arrays, **params):
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, grad_output):
        raise NotImplementedError(f"{type(self).__name__} must define backward")


def _check_not_written_over(name, inputs):
    """Raise if an input of the graph had its array written over in place after it was made:
    its gradient path no longer describes its values."""
    for position, x in enumerate(inputs):
        if x.requires_grad and x._version != x._version_when_made:
            raise RuntimeError(
                f"{name}: input {position} was written over by an in-place op (relu with "
                f"inplace=True) after it was made; use that op's result instead"
            )


def _share_version_counter(output, inputs, overwrote):
    """One array, one counter: the output takes the counter of the input whose array it is
    (written over in place, one more write) or views (reshape, basic indexing)."""
    if overwrote is not None:
        output._version_counter = inputs[overwrote]._version_counter
        output._version_counter.value += 1
    else:
        for x in inputs:
            if shares_memory(output.data, x.data):
                output._version_counter = x._version_counter
    output._version_when_made = output._version


def factors_read(inputs, needs_input_grad):
    """For a product of two factors (x y, a @ b, x w^T), what backward reads: the gradient
    of each factor reads the other, so a factor is read when the other's gradient is wanted."""
    first, second = inputs[:2]
    return ((second,) if needs_input_grad[0] else ()) + ((first,) if needs_input_grad[1] else ())


def as_tensor(x):
    """x itself when it is a Tensor, else a Tensor holding it: every op takes arrays too."""
    return x if isinstance(x, Tensor) else Tensor(x)


def unbroadcast(grad, shape):
    """Sum `grad` over the axes NumPy broadcasting added or stretched, down to `shape`.

    If x of shape (3, 1) met y of shape (2, 1, 4), the output is (2, 3, 4):
    dJ/dx sums the output gradient over the new leading axis and over the
    stretched last axis.
    """
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))  # drop the leading axes x lacked
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def as_operand(value, like):
    """A Tensor for an op's argument: Tensors pass through, constants are wrapped.

    Python numbers, lists and integer arrays adopt the dtype of `like` (the
    tensor they meet), so `x * 0.5` does not upcast a float32 x; floating
    NumPy arrays keep their own dtype. Constants go to the device of `like`.
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (np.ndarray, CudaArray)) and np.issubdtype(value.dtype, np.floating):
        return Tensor(value, device=like.device)
    return Tensor(np.asarray(value, dtype=like.dtype), device=like.device)


def operands(a, b):
    """Both arguments of a binary op as Tensors, constants taking the other's dtype."""
    if isinstance(a, Tensor):
        return a, as_operand(b, a)
    if isinstance(b, Tensor):
        return as_operand(a, b), b
    raise TypeError(f"expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")


def normalize_axes(axis, ndim, name="axis"):
    """axis (None, an int or a tuple of ints, negatives allowed) -> sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{name} {a} is out of range for a tensor with {ndim} dimensions")
    axes = tuple(sorted(int(a) % ndim for a in axes))
    if len(set(axes)) != len(axes):
        raise ValueError(f"{name} repeats an axis: {axis!r}")
    return axes


def promote(*arrays):
    """Cast arrays (None passes through) to their common NumPy result dtype.

    The kernels want one dtype; this applies the policy that float32 meeting
    float64 computes in float64.
    """
    dtype = np.result_type(*(a for a in arrays if a is not None))
    return tuple(None if a is None else a.astype(dtype, copy=False) for a in arrays)
