"""The course slide on 1D, 2D and 3D convolution, as exact shape chains.

The slide convolves a 14-long signal, a 14 x 14 x 3 image and a 14 x 14 x 14
volume with 16 filters of size 5, then 32 filters of size 5: each
valid convolution takes n to n - f + 1 = n - 4, so 14 -> 10 -> 6.
"""

import numpy as np
import pytest

from scratchnet import Tensor, nn

SLIDE = [
    # (layer, input shape, [(in, out, weight shape, output shape) per layer])
    (nn.Conv1d, (1, 1, 14), [(1, 16, (16, 1, 5), (1, 16, 10)),
                             (16, 32, (32, 16, 5), (1, 32, 6))]),
    (nn.Conv2d, (1, 3, 14, 14), [(3, 16, (16, 3, 5, 5), (1, 16, 10, 10)),
                                 (16, 32, (32, 16, 5, 5), (1, 32, 6, 6))]),
    (nn.Conv3d, (1, 1, 14, 14, 14), [(1, 16, (16, 1, 5, 5, 5), (1, 16, 10, 10, 10)),
                                     (16, 32, (32, 16, 5, 5, 5), (1, 32, 6, 6, 6))]),
]


@pytest.mark.parametrize("layer_class, input_shape, chain", SLIDE,
                         ids=["1D", "2D", "3D"])
def test_slide_shape_chain(layer_class, input_shape, chain):
    a = Tensor(np.random.default_rng(0).standard_normal(input_shape).astype(np.float32))
    for in_channels, out_channels, weight_shape, output_shape in chain:
        layer = layer_class(in_channels, out_channels, 5)
        assert layer.weight.shape == weight_shape
        assert layer.bias.shape == (out_channels,)
        a = layer(a)
        assert a.shape == output_shape
        assert a.dtype == np.float32


@pytest.mark.parametrize("layer_class, input_shape, chain", SLIDE,
                         ids=["1D", "2D", "3D"])
def test_slide_chain_as_one_sequential(layer_class, input_shape, chain):
    model = nn.Sequential(*(layer_class(c_in, c_out, 5) for c_in, c_out, _, _ in chain))
    out = model(Tensor(np.zeros(input_shape, dtype=np.float32)))
    assert out.shape == chain[-1][3]
    # zero input: every output entry is its channel's bias, passed through the last layer
    first_bias = model[0].bias.data.reshape((1, -1) + (1,) * (len(input_shape) - 2))
    expected = model[1](Tensor(np.broadcast_to(first_bias, chain[0][3]).copy())).data
    np.testing.assert_allclose(out.data, expected, rtol=1e-6)
