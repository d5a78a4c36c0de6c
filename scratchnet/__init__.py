"""scratchnet: a deep-learning engine in NumPy and Numba, written to be read."""

from . import functional
from . import nn, optim
from .gradcheck import GradcheckError, gradcheck, gradcheck_report
from .tensor import Tensor, is_grad_enabled, no_grad

__all__ = [
    "Tensor", "no_grad", "is_grad_enabled", "functional",
    "gradcheck", "gradcheck_report", "GradcheckError",
]
