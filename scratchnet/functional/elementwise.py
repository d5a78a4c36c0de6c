"""Elementwise arithmetic with NumPy broadcasting, and its derivatives.

For z = f(x, y) applied entry by entry, the backward pass multiplies the
incoming dJ/dz by the local derivative and, where an input was broadcast,
sums the result back to that input's shape (`unbroadcast`):

    z = x + y    dx = dz                 dy = dz
    z = x - y    dx = dz                 dy = -dz
    z = x * y    dx = dz * y             dy = dz * x
    z = x / y    dx = dz / y             dy = -dz * x / y^2
    z = x ** y   dx = dz * y x^(y-1)     dy = dz * z log(x)
    z = e^x      dx = dz * z
    z = log x    dx = dz / x
    z = sqrt x   dx = dz / (2 z)
    z = |x|      dx = dz * sign(x)       (0 at x = 0)
    z = clamp(x, lo, hi)  dx = dz where lo <= x <= hi, else 0

The exponent's gradient z log(x) needs x > 0; as in PyTorch it is 0 where
x = 0 and NaN where x < 0. The base's gradient is 0 where y = 0, as in PyTorch:
x^0 = 1 is constant, even at x = 0, where y x^(y-1) would read 0 * inf.
"""

import numpy as np

from ._function import Function, factors_read, operands, unbroadcast


class Add(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, x, y):
        self.shapes = x.shape, y.shape
        return x + y

    def backward(self, dz):
        return unbroadcast(dz, self.shapes[0]), unbroadcast(dz, self.shapes[1])


class Sub(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, x, y):
        self.shapes = x.shape, y.shape
        return x - y

    def backward(self, dz):
        return unbroadcast(dz, self.shapes[0]), unbroadcast(-dz, self.shapes[1])


class Mul(Function):
    def read_by_backward(self, inputs, output):   # dx = dz y reads y, dy = dz x reads x
        return factors_read(inputs, self.needs_input_grad)

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dz):
        dx = unbroadcast(dz * self.y, self.x.shape) if self.needs_input_grad[0] else None
        dy = unbroadcast(dz * self.x, self.y.shape) if self.needs_input_grad[1] else None
        return dx, dy


class Div(Function):
    def read_by_backward(self, inputs, output):   # dx = dz / y reads y, dy reads x and y
        x, y = inputs
        return (y,) + ((x,) if self.needs_input_grad[1] else ())

    def forward(self, x, y):
        self.x, self.y = x, y
        return x / y

    def backward(self, dz):
        dx = unbroadcast(dz / self.y, self.x.shape) if self.needs_input_grad[0] else None
        dy = None
        if self.needs_input_grad[1]:
            dy = unbroadcast(-dz * self.x / self.y**2, self.y.shape)
        return dx, dy


class Pow(Function):
    def read_by_backward(self, inputs, output):   # dy = dz z log x reads z as well
        return inputs + ((output,) if self.needs_input_grad[1] else ())

    def forward(self, x, y):
        self.x, self.y = x, y
        self.z = x**y
        return self.z

    def backward(self, dz):
        dx = dy = None
        if self.needs_input_grad[0]:
            with np.errstate(divide="ignore", invalid="ignore"):   # 0^(y-1) is inf for y < 1
                slope = np.where(self.y == 0, 0, self.y * self.x ** (self.y - 1))
            dx = unbroadcast(dz * slope, self.x.shape)
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_x = np.where(self.x == 0, 0, np.log(self.x))
            dy = unbroadcast(dz * self.z * log_x, self.y.shape)
        return dx, dy


class Neg(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, x):
        return -x

    def backward(self, dz):
        return -dz


class Exp(Function):
    keeps_inputs, keeps_output = False, True  # backward reads the result only

    def forward(self, x):
        self.z = np.exp(x)
        return self.z

    def backward(self, dz):
        return dz * self.z


class Log(Function):
    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, dz):
        return dz / self.x


class Sqrt(Function):
    keeps_inputs, keeps_output = False, True  # backward reads the result only

    def forward(self, x):
        self.z = np.sqrt(x)
        return self.z

    def backward(self, dz):
        return dz / (2 * self.z)


class Abs(Function):
    def forward(self, x):
        self.x = x
        return np.abs(x)

    def backward(self, dz):
        return dz * np.sign(self.x)


class Clamp(Function):
    keeps_inputs = False  # backward reads no input

    def forward(self, x, lo, hi):
        self.inside = np.ones_like(x, dtype=bool)
        if lo is not None:
            self.inside &= x >= lo
        if hi is not None:
            self.inside &= x <= hi
        return np.clip(x, lo, hi)

    def backward(self, dz):
        return dz * self.inside


def add(x, y):
    """x + y with broadcasting."""
    return Add.apply(*operands(x, y))


def sub(x, y):
    """x - y with broadcasting."""
    return Sub.apply(*operands(x, y))


def mul(x, y):
    """x * y with broadcasting."""
    return Mul.apply(*operands(x, y))


def div(x, y):
    """x / y with broadcasting."""
    return Div.apply(*operands(x, y))


def pow(x, y):
    """x ** y with broadcasting; either may be a tensor or a number."""
    return Pow.apply(*operands(x, y))


def neg(x):
    """-x."""
    return Neg.apply(x)


def exp(x):
    """e^x."""
    return Exp.apply(x)


def log(x):
    """Natural logarithm."""
    return Log.apply(x)


def sqrt(x):
    """Square root."""
    return Sqrt.apply(x)


def abs(x):
    """|x|; its gradient at 0 is taken as 0."""
    return Abs.apply(x)


def clamp(x, min=None, max=None):
    """Limit x to [min, max] (either bound may be None), as torch.clamp."""
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    lo = None if min is None else np.asarray(min, dtype=x.dtype)
    hi = None if max is None else np.asarray(max, dtype=x.dtype)
    return Clamp.apply(x, lo=lo, hi=hi)


clip = clamp
