"""Module.summary(input_shape): the slides' shape chains exactly, and a table worked by hand.

Oracles: the slides' 1D/2D/3D chains (14 -> 10x16 -> 6x32 and its 2D and 3D
versions); parameter counts and receptive fields worked out by hand below;
the output shapes of an actual forward pass.
"""

import numpy as np
import pytest

from scratchnet import Tensor, nn, no_grad
from scratchnet.models import FaceEncoder, vgg19
from scratchnet.visualize import shape_chain

SLIDES = [
    (nn.Conv1d, (1, 14), "14 -> 10x16 -> 6x32"),
    (nn.Conv2d, (3, 14, 14), "14x14x3 -> 10x10x16 -> 6x6x32"),
    (nn.Conv3d, (1, 14, 14, 14), "14x14x14 -> 10x10x10x16 -> 6x6x6x32"),
]


@pytest.mark.parametrize("conv, input_shape, chain", SLIDES)
def test_the_slides_shape_chains(conv, input_shape, chain):
    model = nn.Sequential(conv(input_shape[0], 16, 5), conv(16, 32, 5))
    text = model.summary(input_shape, print_fn=None)
    assert text.splitlines()[-1] == f"Shapes: {chain}"
    with_batch = model.summary((1,) + input_shape, print_fn=None)
    assert with_batch.splitlines()[-1] == f"Shapes: {chain}"


def test_hand_worked_table():
    # Conv2d(3, 8, 3, padding=1): 8 * 3 * 3 * 3 + 8 = 224 parameters, r = 3, j = 1
    # ReLU: nothing;  MaxPool2d(2): r = 3 + 1 * 1 = 4, j = 2, 16 -> 8
    # Conv2d(8, 4, 3, stride=2): 4 * 8 * 9 + 4 = 292, r = 4 + 2 * 2 = 8, j = 4, 8 -> 3
    # Flatten: 4 * 3 * 3 = 36;  Linear(36, 10): 370 parameters, no receptive field
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 4, 3, stride=2), nn.Flatten(), nn.Linear(36, 10))
    printed = []
    text = model.summary((3, 16, 16), print_fn=printed.append)
    assert printed == text.splitlines()
    assert text == "\n".join([
        "Model: Sequential",
        "Layer (type)    Output shape     Param #   Receptive field",
        "=" * 58,  # the columns' widths 13 + 14 + 7 + 15 and three gaps of 3
        "0 (Conv2d)      (N, 8, 16, 16)       224   3x3, jump 1",
        "1 (ReLU)        (N, 8, 16, 16)         0   3x3, jump 1",
        "2 (MaxPool2d)   (N, 8, 8, 8)           0   4x4, jump 2",
        "3 (Conv2d)      (N, 4, 3, 3)         292   8x8, jump 4",
        "4 (Flatten)     (N, 36)                0   -",
        "5 (Linear)      (N, 10)              370   -",
        "=" * 58,  # the columns' widths 13 + 14 + 7 + 15 and three gaps of 3
        "Total params: 886",
        "Trainable params: 886",
        "Non-trainable params: 0",
        "Shapes: 16x16x3 -> 16x16x8 -> 8x8x8 -> 3x3x4 -> 36 -> 10",
    ])


def test_shapes_match_a_forward_pass_and_batch_is_shown():
    model = FaceEncoder(width=4, seed=0)
    text = model.summary((2, 3, 64, 64), print_fn=None)
    with no_grad():
        a = model.shrink(Tensor(np.zeros((2, 3, 64, 64), np.float32)))
        for block in model.features:
            a = block(a)
    assert f"block3 (Conv2d+BatchNorm2d+ReLU+MaxPool2d)   {a.shape}" in text
    assert "embedding (Linear)" in text and "(2, 128)" in text
    total = sum(p.data.size for p in model.parameters())
    assert f"Total params: {total:,}" in text


def test_summary_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5))
    state = {name: array.copy() for name, array in model.state_dict().items()}
    model.summary((3, 8, 8), print_fn=None)
    assert all(module.training for module in model.modules())
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, state[name])
    frozen = vgg19(weights="random", widths=(2, 2, 2, 2, 2), note=None)
    text = frozen.summary((3, 32, 32), print_fn=None)
    assert "Trainable params: 0" in text and not any(m.training for m in frozen.modules())


def test_not_a_chain_is_explained():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 3)
            self.b = nn.Linear(4, 3)

        def forward(self, x):
            return self.a(x) + self.b(x)

    with pytest.raises(ValueError, match="named_layers"):
        TwoInputs().summary((4,), print_fn=None)


def test_bad_input_shape_is_named():
    model = nn.Sequential(nn.Conv1d(1, 16, 5))
    with pytest.raises(ValueError, match="input_shape"):
        model.summary((1, 1, 1, 14), print_fn=None)
    with pytest.raises(ValueError, match="input_shape"):
        model.summary((1, 0), print_fn=None)


def test_shape_chain_notation():
    assert shape_chain([(1, 14), (16, 10), (16, 10), (32, 6)]) == "14 -> 10x16 -> 6x32"
    assert shape_chain([(3, 4, 5), (7,)]) == "4x5x3 -> 7"
