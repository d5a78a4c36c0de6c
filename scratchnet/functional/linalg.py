"""Matrix products and L2 normalisation, and their gradients.

    Z = A B          dA = dZ B^T,  dB = A^T dZ   (per batch entry; batch axes
                     that were broadcast are summed back)
    y = x W^T + b    dx = dy W,  dW = dy^T x,  db = sum of dy over all rows
                     (W has PyTorch's (out_features, in_features) layout)
    y = x / max(||x||_p, eps)      along `dim`, with n = ||x||_p:
                     dx = dy / max(n, eps)
                          - [n > eps] (sum dy x) / n^2 * sign(x) |x|^(p-1) / n^(p-1)
                     for p = 2 the last term is y (sum dy y) / n.
"""

import numpy as np

from ._function import Function, factors_read, normalize_axes, unbroadcast


class MatMul(Function):
    def read_by_backward(self, inputs, output):   # da = dz b^T reads b, db = a^T dz reads a
        return factors_read(inputs, self.needs_input_grad)

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, dz):
        # NumPy's rule for 1-D operands: a (k,) acts as (1, k), b (k,) as (k, 1)
        a = self.a[None, :] if self.a.ndim == 1 else self.a
        b = self.b[:, None] if self.b.ndim == 1 else self.b
        if self.b.ndim == 1:
            dz = np.expand_dims(dz, -1)  # (..., n) -> (..., n, 1)
        if self.a.ndim == 1:
            dz = np.expand_dims(dz, -2)  # (..., m) -> (..., 1, m)
        da = db = None
        if self.needs_input_grad[0]:
            da = unbroadcast(dz @ np.swapaxes(b, -1, -2), a.shape).reshape(self.a.shape)
        if self.needs_input_grad[1]:
            db = unbroadcast(np.swapaxes(a, -1, -2) @ dz, b.shape).reshape(self.b.shape)
        return da, db


class Linear(Function):
    def read_by_backward(self, inputs, output):   # dx = dy w reads w, dw = dy^T x reads x
        return factors_read(inputs, self.needs_input_grad)

    def forward(self, x, w, b=None):
        self.x, self.w = x, w
        y = x @ w.T  # (..., in) x (in, out) -> (..., out)
        return y if b is None else y + b

    def backward(self, dy):
        needs = self.needs_input_grad + (False,)  # (x, w, b); b absent is (x, w)
        dy_rows = dy.reshape(-1, dy.shape[-1])  # (..., out) -> (rows, out)
        dx = dw = db = None
        if needs[0]:
            dx = dy @ self.w  # (..., out) x (out, in) -> (..., in)
        if needs[1]:
            x_rows = self.x.reshape(-1, self.x.shape[-1])  # (..., in) -> (rows, in)
            dw = dy_rows.T @ x_rows  # (out, rows) x (rows, in) -> (out, in)
        if needs[2]:
            db = dy_rows.sum(axis=0)
        return (dx, dw, db)[: len(self.needs_input_grad)]


class Normalize(Function):
    def forward(self, x, p, dim, eps):
        self.x, self.p, self.dim = x, p, dim
        self.norm = np.sum(np.abs(x) ** p, axis=dim, keepdims=True) ** (1 / p)
        self.divisor = np.maximum(self.norm, eps)
        self.above_eps = self.norm > eps
        return x / self.divisor

    def backward(self, dy):
        x, p, n = self.x, self.p, np.where(self.above_eps, self.norm, 1)
        dx = dy / self.divisor
        dy_dot_x = np.sum(dy * x, axis=self.dim, keepdims=True)
        dnorm = np.sign(x) * np.abs(x) ** (p - 1) / n ** (p - 1)  # d||x||_p / dx
        return dx - self.above_eps * dy_dot_x / n**2 * dnorm


def matmul(a, b):
    """a @ b with NumPy's rules: batched over leading axes, 1-D operands allowed."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul needs operands with at least 1 dimension, got shapes {a.shape} and {b.shape}"
        )
    return MatMul.apply(a, b)


def linear(x, weight, bias=None):
    """x W^T + b with weight (out_features, in_features), as torch.nn.functional.linear."""
    if weight.ndim != 2:
        raise ValueError(
            f"weight must be 2-D (out_features, in_features), got shape {weight.shape}"
        )
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"input's last dimension must equal weight's in_features {weight.shape[1]}, "
            f"got input shape {x.shape}"
        )
    if bias is None:
        return Linear.apply(x, weight)
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}")
    return Linear.apply(x, weight, bias)


def normalize(x, p=2.0, dim=1, eps=1e-12):
    """x / max(||x||_p, eps) along `dim`, as torch.nn.functional.normalize (p >= 1)."""
    if not 1 <= p < np.inf:
        raise ValueError(f"p must be a finite number >= 1, got {p}")
    (dim,) = normalize_axes(dim, x.ndim, name="dim")
    return Normalize.apply(x, p=float(p), dim=dim, eps=eps)
