"""Helpers shared by the autograd tests: random inputs, and PyTorch as an oracle.

`assert_matches_torch(ours, theirs, arrays)` runs scratchnet's op and
PyTorch's on the same float64 arrays, then backpropagates the same random
output weight u through both, and compares the outputs and every input's
gradient. It skips the test when PyTorch is not installed.
"""

import numpy as np
import pytest

from scratchnet import Tensor


def random_tensors(rng, *shapes, requires_grad=True):
    """One float64 Tensor of standard normal entries per shape."""
    return [Tensor(rng.standard_normal(shape), requires_grad=requires_grad) for shape in shapes]


def assert_matches_torch(ours, theirs, arrays, rtol=1e-7, atol=1e-10, seed=0):
    """ours(*Tensors) and theirs(*torch tensors) agree in value and in gradient."""
    torch = pytest.importorskip("torch")
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    our_inputs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    torch_inputs = [torch.tensor(a, requires_grad=True) for a in arrays]

    our_out = ours(*our_inputs)
    torch_out = theirs(*torch_inputs)
    np.testing.assert_allclose(our_out.data, torch_out.detach().numpy(), rtol=rtol, atol=atol)

    u = np.random.default_rng(seed).standard_normal(our_out.shape)
    our_out.backward(u)
    torch_out.backward(torch.tensor(u))
    for position, (mine, reference) in enumerate(zip(our_inputs, torch_inputs)):
        expected = np.zeros_like(mine.data) if reference.grad is None else reference.grad.numpy()
        got = np.zeros_like(mine.data) if mine.grad is None else mine.grad
        np.testing.assert_allclose(
            got, expected, rtol=rtol, atol=atol, err_msg=f"gradient of input {position}"
        )
