"""Tensor: a NumPy array that remembers how it was computed.

Forward, every differentiable op (a `Function` in scratchnet.functional)
computes its output array a^[l] from its inputs and, when any input asks
for gradients, records itself on the output: `out.grad_fn` is the Function,
`out.grad_fn.inputs` are the tensors it read. These records form the tape,
a directed acyclic graph from the leaves (parameters, inputs) to the loss J.

Backward is the chain rule applied once per node, in reverse topological
order, so that each node's gradient dJ/da is complete (summed over every
place the node was used) before it is passed on:

    dJ/dx = sum over the ops f that read x of  (df/dx)^T dJ/df

The order is found with an explicit stack, not recursion, so graphs tens of
thousands of ops deep (VGG19 run for many steps of style transfer) are fine.
Only leaves, tensors made by the user with requires_grad=True, keep their
gradient in `.grad`; it is added to what is already there, so call
`zero_grad()` (or set `.grad = None`) between steps.

dtype policy:
- A NumPy floating-point array keeps its dtype and is wrapped without a
  copy (`Tensor(a).data is a`). Everything else (Python numbers and lists,
  integer and bool arrays) becomes float32, PyTorch's default.
- A Python number in an op adopts the tensor's dtype: `x * 0.5` with x
  float32 stays float32.
- float32 and float64 tensors in one op follow NumPy's promotion (the
  result is float64); each input's gradient comes back in its own dtype.

device policy (scratchnet.device): a tensor lives on "cpu" (`.data` is a
NumPy array) or on "cuda" (`.data` is a CudaArray in GPU memory, which
NumPy's functions accept, so the ops run unchanged on either). `x.to("cuda")`
and `x.to("cpu")` move it, recording the move on the tape so that gradients
flow back across it; tensors on different devices in one op are an error.
"""

import functools

import numpy as np

from .device import check_device, device_of, to_device

_grad_enabled = True


def is_grad_enabled():
    """True unless inside `no_grad`."""
    return _grad_enabled


class no_grad:
    """Context manager and decorator: ops inside record nothing on the tape.

    Use it as `with no_grad():` or decorate a function with `@no_grad()`
    (with the parentheses). The previous state comes back on exit, also
    after an exception. The switch is global to the process, not per thread.

    >>> x = Tensor([1.0, 2.0], requires_grad=True)
    >>> with no_grad():
    ...     y = x * 2
    >>> y.requires_grad, y.grad_fn is None
    (False, True)
    """

    def __enter__(self):
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = False
        return self

    def __exit__(self, *exc_info):
        global _grad_enabled
        _grad_enabled = self._previous
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def without_grad(*args, **kwargs):
            with no_grad():
                return func(*args, **kwargs)

        return without_grad


def as_float_array(data):
    """`data` as a floating-point NumPy array, following the dtype policy above."""
    if isinstance(data, Tensor):
        return data.data
    if device_of(data) == "cuda":
        return data if np.issubdtype(data.dtype, np.floating) else data.astype(np.float32)
    if isinstance(data, (np.ndarray, np.generic)) and np.issubdtype(data.dtype, np.floating):
        return np.asarray(data)
    array = np.asarray(data)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TypeError(f"Tensor data must be numeric, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"Tensor data must be real, got dtype {array.dtype}")
    return array.astype(np.float32)


class VersionCounter:
    """How many times an array has been written over in place.

    Each Tensor starts with a counter of its own at 0. An op that writes its
    result into an input's array (relu with inplace=True) gives its output
    that input's counter and adds 1 to it. A recorded op notes the counters
    of the arrays its backward pass will read, and their values; if a value
    has changed when backward comes, the array holds other numbers than the
    op saw, and Tensor.backward stops with an error rather than compute a
    wrong gradient (as PyTorch does). A tensor also remembers the value when
    it was made, so that one written over since (through another tensor
    holding its array) is refused as the input of a recorded op.
    """

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Tensor:
    """An n-dimensional float array with an optional gradient.

    >>> x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> loss = (x * x).sum()
    >>> loss.backward()
    >>> x.grad
    array([[2., 4.],
           [6., 8.]], dtype=float32)
    """

    # Makes NumPy hand `array + tensor` to Tensor.__radd__ instead of
    # looping over the array's elements.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False, device=None):
        self.data = as_float_array(data)
        if device is not None:
            self.data = to_device(self.data, device)
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.grad_fn = None  # the Function that made this tensor, if recorded
        self._version_counter = VersionCounter()  # shared by the tensors holding this array
        self._version_when_made = 0

    # ----------------------------------------------------------- array facts
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size, doc="Number of elements (NumPy's meaning).")
    device = property(lambda self: device_of(self.data), doc='"cpu" or "cuda".')

    @property
    def is_leaf(self):
        """True for tensors made by the user rather than by a recorded op."""
        return self.grad_fn is None

    @property
    def _version(self):
        """How many times an in-place op has written over this tensor's array (as torch's)."""
        return self._version_counter.value

    def __len__(self):
        return len(self.data)

    def numpy(self):
        """The underlying array (shared, not copied); on "cuda", move to "cpu" first."""
        if self.device != "cpu":
            raise TypeError(f"a tensor on {self.device!r} has no NumPy array; use .cpu().numpy()")
        return self.data

    def to(self, device):
        """This tensor on `device` ("cpu" or "cuda"): itself if it is there, else a copy
        that gradients flow back through."""
        return self if device_of(self.data) == check_device(device) else F.to_device(self, device)

    def cuda(self):
        return self.to("cuda")

    def cpu(self):
        return self.to("cpu")

    def item(self):
        """The value of a one-element tensor as a Python float."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def detach(self):
        """A new leaf sharing this tensor's data (and its version counter), cut off from
        the tape."""
        detached = Tensor(self.data)
        detached._version_counter = self._version_counter
        detached._version_when_made = self._version
        return detached

    def zero_grad(self):
        """Forget the accumulated gradient."""
        self.grad = None

    def __repr__(self):
        body = np.array2string(to_device(self.data, "cpu"), separator=", ", prefix="Tensor(")
        extras = [f"dtype={self.dtype}"]
        if self.device != "cpu":
            extras.append(f"device={self.device!r}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={type(self.grad_fn).__name__}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"Tensor({body}, {', '.join(extras)})"

    # ------------------------------------------------------------- backward
    def backward(self, gradient=None):
        """Accumulate dJ/dleaf into `.grad` of every leaf this tensor depends on.

        J is this tensor when it has one element (then `gradient` defaults to
        1); otherwise pass `gradient`, an array of this tensor's shape holding
        dJ/dself for some scalar J further on.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad: none of "
                "its inputs had requires_grad=True, or it was computed under no_grad"
            )
        grads = {id(self): _seed_gradient(self, gradient)}
        for node in _reverse_topological_order(self):
            grad = grads.pop(id(node), None)
            if grad is None:  # the op that read this node sent it no gradient
                continue
            if node.grad_fn is None:
                node.grad = grad.copy() if node.grad is None else node.grad + grad
                continue
            for inp, inp_grad in _input_gradients(node.grad_fn, grad):
                previous = grads.get(id(inp))
                grads[id(inp)] = inp_grad if previous is None else previous + inp_grad

    # ------------------------------------------------------------ operators
    def __add__(self, other):
        return F.add(self, other)

    def __radd__(self, other):
        return F.add(other, self)

    def __sub__(self, other):
        return F.sub(self, other)

    def __rsub__(self, other):
        return F.sub(other, self)

    def __mul__(self, other):
        return F.mul(self, other)

    def __rmul__(self, other):
        return F.mul(other, self)

    def __truediv__(self, other):
        return F.div(self, other)

    def __rtruediv__(self, other):
        return F.div(other, self)

    def __pow__(self, other):
        return F.pow(self, other)

    def __rpow__(self, other):
        return F.pow(other, self)

    def __matmul__(self, other):
        return F.matmul(self, other)

    def __rmatmul__(self, other):
        return F.matmul(other, self)

    def __neg__(self):
        return F.neg(self)

    def __abs__(self):
        return F.abs(self)

    def __getitem__(self, index):
        return F.getitem(self, index)

    # --------------------------------------------------------------- methods
    def sum(self, axis=None, keepdims=False):
        return F.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return F.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return F.max(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        """x.reshape(2, 3) or x.reshape((2, 3)); one entry may be -1."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return F.reshape(self, shape)

    def permute(self, *dims):
        """Reorder all axes: x.permute(0, 2, 3, 1) or x.permute((0, 2, 3, 1))."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = dims[0]
        return F.permute(self, dims)

    def transpose(self, dim0, dim1):
        """Swap two axes (PyTorch's meaning, not NumPy's)."""
        return F.transpose(self, dim0, dim1)

    @property
    def T(self):
        """All axes reversed, as NumPy's `.T`."""
        return F.permute(self, tuple(reversed(range(self.ndim))))

    def exp(self):
        return F.exp(self)

    def log(self):
        return F.log(self)

    def sqrt(self):
        return F.sqrt(self)

    def abs(self):
        return F.abs(self)

    def clamp(self, min=None, max=None):
        return F.clamp(self, min=min, max=max)

    def relu(self):
        return F.relu(self)

    def sigmoid(self):
        return F.sigmoid(self)

    def tanh(self):
        return F.tanh(self)


def _seed_gradient(output, gradient):
    """dJ/doutput: 1 for a one-element output, else the array the caller gave."""
    if gradient is None:
        if output.size != 1:
            raise ValueError(
                f"backward() without a gradient needs a one-element tensor, got shape "
                f"{output.shape}; pass gradient=<array of shape {output.shape}>"
            )
        return np.ones_like(output.data)
    gradient = as_float_array(gradient)
    if device_of(gradient) != output.device:
        raise ValueError(
            f"gradient must be on the output's device {output.device!r}, got one on "
            f"{device_of(gradient)!r}"
        )
    if gradient.shape != output.shape:
        raise ValueError(
            f"gradient must have the output's shape {output.shape}, got {gradient.shape}"
        )
    return gradient.astype(output.dtype, copy=False)


def _reverse_topological_order(root):
    """Every tensor requiring grad that `root` depends on, consumers first.

    A depth-first search with an explicit stack: a node is appended after
    all the nodes it reads from (post-order), so the reversed list puts
    each node before everything it was computed from.
    """
    post_order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            post_order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if node.grad_fn is not None:
            stack.extend((inp, False) for inp in node.grad_fn.inputs if inp.requires_grad)
    return reversed(post_order)


def _input_gradients(fn, grad):
    """Run fn.backward and pair each gradient with the input it belongs to.

    First checks that no in-place op has written over an array fn's backward
    reads. Checks the shapes, so that a mistake in a hand-written backward is
    reported at the op that made it, and casts each gradient to its input's
    dtype (an op mixing float32 and float64 computes in float64).
    """
    for counter, version in fn.saved_versions:
        if counter.value != version:
            name = type(fn).__name__
            raise RuntimeError(
                f"{name}.backward needs an array that an in-place op (relu with "
                f"inplace=True) wrote over after {name} used it; make that op not in place"
            )
    grads = fn.backward(grad)
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) != len(fn.inputs):
        raise RuntimeError(
            f"{type(fn).__name__}.backward returned {len(grads)} gradients for "
            f"{len(fn.inputs)} inputs"
        )
    for position, (inp, inp_grad) in enumerate(zip(fn.inputs, grads)):
        if inp_grad is None or not inp.requires_grad:
            continue
        if device_of(inp_grad) != inp.device:
            raise RuntimeError(
                f"{type(fn).__name__}.backward returned a gradient on {device_of(inp_grad)!r} "
                f"for input {position} on {inp.device!r}"
            )
        inp_grad = np.asarray(inp_grad) if inp.device == "cpu" else inp_grad
        if inp_grad.shape != inp.shape:
            raise RuntimeError(
                f"{type(fn).__name__}.backward returned a gradient of shape "
                f"{inp_grad.shape} for input {position} of shape {inp.shape}"
            )
        yield inp, inp_grad.astype(inp.dtype, copy=False)


# The ops live in scratchnet.functional, which builds on Tensor; importing it
# last lets the operators above find it while avoiding an import cycle.
from . import functional as F  # noqa: E402
