"""Tests for scratchnet.nn: module mechanics, state dicts and files, layers, initialisers.

Oracles for the layers: formulas written here in NumPy (and the naive loop
references of naive_conv.py / naive_pool.py), central finite differences
(scratchnet.gradcheck), the closed-form BatchNorm backward, and torch.nn
with the same weights when PyTorch is installed (those tests skip without it).
"""

import doctest
import errno
import importlib
import os

import naive_conv
import naive_pool
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import scratchnet.serialize
from scratchnet import Tensor, gradcheck, nn
from scratchnet.nn import init

RTOL, ATOL = 1e-10, 1e-12  # float64 comparisons


def random_input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def run_with_gradient(module, x, seed=1):
    """(output, dJ/dx, {name: dJ/dparam}) for J = <u, module(x)> with a random u."""
    x = Tensor(np.array(x, dtype=np.float64), requires_grad=True)
    module.zero_grad()
    y = module(x)
    u = np.random.default_rng(seed).standard_normal(y.shape)
    y.backward(u)
    grads = {name: p.grad for name, p in module.named_parameters()}
    return y.data, x.grad, grads, u


# ======================================================= module mechanics

class Block(nn.Module):
    """A small model that nests a Sequential, a Linear, a bare Parameter and buffers."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
        self.head = nn.Linear(2, 3)
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))

    def forward(self, x):
        pooled = self.features(x).mean(axis=(2, 3))  # (N, 2, H, W) -> (N, 2)
        return self.head(pooled) * self.scale


BLOCK_PARAMETERS = [
    "scale", "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
    "head.weight", "head.bias",
]
BLOCK_STATE = [
    "scale", "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
    "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
    "head.weight", "head.bias",
]


def test_attribute_assignment_registers_parameters_modules_and_buffers():
    block = Block()
    assert [name for name, _ in block.named_parameters()] == BLOCK_PARAMETERS
    assert list(block.state_dict()) == BLOCK_STATE
    assert [name for name, _ in block.named_children()] == ["features", "head"]
    assert [name for name, _ in block.named_modules()] == [
        "", "features", "features.0", "features.1", "features.2", "head",
    ]
    assert [name for name, _ in block.named_buffers()] == [
        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
    ]
    assert block.features[1].running_var is list(block.buffers())[1]
    assert [name for name, _ in block.named_parameters(recurse=False)] == ["scale"]


def test_names_match_torch_for_the_same_architecture():
    torch = pytest.importorskip("torch")

    class TorchBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Sequential(
                torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU()
            )
            self.head = torch.nn.Linear(2, 3)
            self.scale = torch.nn.Parameter(torch.ones(1))

    theirs = TorchBlock()
    assert [n for n, _ in Block().named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(Block().state_dict()) == list(theirs.state_dict())


def test_a_shared_parameter_is_listed_once():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(model.modules())) == 3  # the Sequential, the Linear once, the ReLU


def test_reassigning_and_deleting_members():
    layer = nn.Linear(3, 2)
    layer.bias = None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert "bias" not in layer.state_dict()
    with pytest.raises(TypeError, match="bias must be a Parameter or None, got Tensor"):
        layer.bias = Tensor(np.zeros(2))
    block = Block()
    del block.head
    assert "head.weight" not in dict(block.named_parameters())
    with pytest.raises(AttributeError, match="no attribute 'head'"):
        _ = block.head


def test_forgetting_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\)"):
        Broken()


def test_buffers_must_be_arrays():
    module = nn.Module()
    with pytest.raises(TypeError, match="must be a ndarray or None, got list"):
        module.register_buffer("stats", [1.0, 2.0])


def test_train_and_eval_reach_every_submodule():
    block = Block()
    assert block.eval() is block
    assert not any(m.training for m in block.modules())
    block.train()
    assert all(m.training for m in block.modules())


def test_zero_grad_and_requires_grad():
    block = Block()
    out = block(Tensor(random_input((2, 1, 5, 5))))
    out.sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    block.zero_grad()
    assert all(p.grad is None for p in block.parameters())
    block.requires_grad_(False)
    assert not block(Tensor(random_input((2, 1, 5, 5)))).requires_grad


def test_double_converts_parameters_and_float_buffers_only():
    block = Block().double()
    assert all(p.dtype == np.float64 for p in block.parameters())
    bn = block.features[1]
    assert bn.running_mean.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64
    assert block.float().head.weight.dtype == np.float32


def test_repr_lists_layers_like_torch():
    model = nn.Sequential(
        nn.Conv2d(3, 16, 5, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(16, 4, bias=False)
    )
    expected = (
        "Sequential(\n"
        "  (0): Conv2d(3, 16, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))\n"
        "  (1): ReLU()\n"
        "  (2): Flatten(start_dim=1, end_dim=-1)\n"
        "  (3): Linear(in_features=16, out_features=4, bias=False)\n"
        ")"
    )
    assert repr(model) == expected
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 5, padding=2), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(16, 4, bias=False),
    )
    assert repr(model) == repr(theirs)


def test_nested_repr_indents_children():
    text = repr(Block())
    assert "  (features): Sequential(\n    (0): Conv2d(1, 2" in text
    assert text.endswith("  (head): Linear(in_features=2, out_features=3, bias=True)\n)")


def test_sequential_indexing_slicing_iteration():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and list(model) == layers
    assert model[0] is layers[0] and model[-1] is layers[2]
    head = model[1:]
    assert isinstance(head, nn.Sequential) and list(head) == layers[1:]
    assert [name for name, _ in head.named_parameters()] == ["2.weight", "2.bias"]
    with pytest.raises(IndexError, match="index 3 is out of range"):
        model[3]
    model.append(nn.Sigmoid())
    assert len(model) == 4
    x = Tensor(random_input((4, 2)))
    expected = layers[2](layers[1](layers[0](x))).sigmoid()
    np.testing.assert_array_equal(model(x).data, expected.data)
    named = nn.Sequential({"fc": nn.Linear(2, 2), "act": nn.Tanh()})
    assert [name for name, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]


# ======================================================= state dict, files

def trained_block(seed):
    """A Block whose weights and running statistics come from `seed`."""
    nn.manual_seed(seed)
    block = Block()
    block(Tensor(random_input((4, 1, 6, 6), seed)))  # moves the running statistics
    return block


def test_state_dict_holds_copies():
    block = trained_block(0)
    state = block.state_dict()
    state["head.weight"][...] = 123.0
    assert not np.any(block.head.weight.data == 123.0)


def test_state_dict_round_trip_through_npz_is_bit_exact(tmp_path):
    source, target = trained_block(0), trained_block(1)
    path = tmp_path / "block.npz"
    source.save(path)
    result = target.load(path)
    assert result.missing_keys == [] and result.unexpected_keys == []
    loaded, original = target.state_dict(), source.state_dict()
    assert list(loaded) == list(original)
    for name in original:
        assert loaded[name].dtype == original[name].dtype, name
        np.testing.assert_array_equal(loaded[name], original[name], err_msg=name)
    x = Tensor(random_input((2, 1, 6, 6), 5))
    source.eval(), target.eval()
    np.testing.assert_array_equal(source(x).data, target(x).data)


def test_loading_keeps_the_parameter_objects(tmp_path):
    block = trained_block(1)
    weight = block.head.weight
    block.load_state_dict(trained_block(0).state_dict())
    assert block.head.weight is weight  # an optimizer holding it stays valid


def test_wrong_keys_and_shapes_are_all_named_and_nothing_is_loaded():
    block = trained_block(0)
    before = block.state_dict()
    state = trained_block(1).state_dict()
    del state["head.bias"]
    state["head.extra"] = np.zeros(3)
    state["features.0.weight"] = np.zeros((2, 1, 5, 5))
    with pytest.raises(ValueError) as error:
        block.load_state_dict(state)
    message = str(error.value)
    assert "missing keys: head.bias" in message
    assert "unexpected keys: head.extra" in message
    assert "features.0.weight: expected shape (2, 1, 3, 3), got (2, 1, 5, 5)" in message
    for name, array in block.state_dict().items():
        np.testing.assert_array_equal(array, before[name], err_msg=name)


def test_non_strict_loading_reports_what_it_skipped():
    block = trained_block(0)
    state = trained_block(1).state_dict()
    del state["scale"]
    state["unused"] = np.zeros(1)
    result = block.load_state_dict(state, strict=False)
    assert result.missing_keys == ["scale"] and result.unexpected_keys == ["unused"]
    np.testing.assert_array_equal(block.head.weight.data, state["head.weight"])
    with pytest.raises(ValueError, match="head.bias: expected shape"):
        block.load_state_dict({"head.bias": np.zeros(4)}, strict=False)


def test_a_float_array_cannot_be_loaded_into_an_int_buffer():
    block = trained_block(0)
    state = block.state_dict()
    state["features.1.num_batches_tracked"] = np.array(1.5)
    with pytest.raises(ValueError, match="num_batches_tracked: expected dtype int64"):
        block.load_state_dict(state)


def test_failed_save_leaves_the_target_untouched(tmp_path, monkeypatch):
    path = tmp_path / "block.npz"
    trained_block(0).save(path)
    before = path.read_bytes()

    def write_half_then_fail(file, arrays):
        file.write(b"PK partial archive")
        raise OSError("disk full")

    monkeypatch.setattr(scratchnet.serialize, "_write_archive", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        trained_block(1).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["block.npz"]  # the temporary file was removed


def test_save_cleans_up_when_the_rename_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(scratchnet.serialize.os, "replace", _raise_permission_error)
    with pytest.raises(PermissionError):
        trained_block(0).save(tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


def _raise_permission_error(*args):
    # with its errno, as the system raises it: serialize re-raises an OSError of that errno,
    # which Python makes a PermissionError again
    raise PermissionError(errno.EACCES, "read-only folder")


def test_files_with_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, weight=np.array([{"not": "an array"}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        trained_block(0).load(path)
    with pytest.raises(TypeError, match="cannot save an array of Python objects"):
        scratchnet.serialize.save_npz(tmp_path / "x.npz", {"w": np.array([None], dtype=object)})


def test_saved_file_is_an_ordinary_npz(tmp_path):
    block = trained_block(0)
    block.save(tmp_path / "block.npz")
    with np.load(tmp_path / "block.npz") as archive:
        assert archive.files == BLOCK_STATE
        np.testing.assert_array_equal(archive["head.weight"], block.head.weight.data)


# ======================================================= convolution layers

CONV_CASES = [
    # (n_spatial, in, out, kernel, options)
    (1, 2, 4, 3, {}),
    (1, 4, 6, 2, {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}),
    (2, 3, 4, 3, {"padding": "same"}),
    (2, 2, 3, (2, 3), {"stride": (2, 1), "padding": (1, 0), "bias": False}),
    (2, 4, 4, 4, {"padding": "same", "dilation": 2, "groups": 4}),
    (3, 2, 3, 2, {"padding": "valid", "stride": 2}),
    (3, 1, 2, (1, 2, 3), {"padding": (0, 1, 1)}),
]
CONV_LAYERS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
INPUT_SIZES = {1: (9,), 2: (7, 6), 3: (5, 4, 6)}


def conv_case(case):
    n_spatial, c_in, c_out, kernel, options = case
    nn.manual_seed(0)
    layer = CONV_LAYERS[n_spatial](c_in, c_out, kernel, **options).double()
    x = random_input((2, c_in) + INPUT_SIZES[n_spatial])
    return layer, x, options


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_layer_against_the_naive_formula(case):
    layer, x, options = conv_case(case)
    geometry = {key: options.get(key, default) for key, default in
                (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1))}
    w = layer.weight.data
    b = None if layer.bias is None else layer.bias.data
    y, dx, grads, u = run_with_gradient(layer, x)
    np.testing.assert_allclose(y, naive_conv.conv(x, w, b, **geometry), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        dx, naive_conv.conv_grad_input(u, w, x.shape, **geometry), rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(
        grads["weight"], naive_conv.conv_grad_weight(u, x, w.shape, **geometry),
        rtol=RTOL, atol=ATOL,
    )
    if b is not None:
        np.testing.assert_allclose(grads["bias"], u.sum(axis=(0,) + tuple(range(2, u.ndim))))


@st.composite
def conv_layer_settings(draw):
    """(n_spatial, layer arguments, input shape) for a small valid convolution layer."""
    n = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    in_channels, out_channels = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(n))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(n))
    padding = draw(st.one_of(st.just("same"), st.just("valid"),
                             st.tuples(*[st.integers(0, 2)] * n)))
    sizes = tuple(draw(st.integers(3, 6)) for _ in range(n))
    pads = (0,) * n if isinstance(padding, str) else padding
    assume(all(s + 2 * p >= d * (f - 1) + 1
               for s, p, d, f in zip(sizes, pads, dilation, kernel)))
    arguments = dict(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel,
                     stride=stride, padding=padding, dilation=dilation, groups=groups,
                     bias=draw(st.booleans()))
    return n, arguments, (2, in_channels) + sizes


@settings(max_examples=25, deadline=None)
@given(conv_layer_settings())
def test_conv_layer_forward_for_drawn_settings(drawn):
    n, arguments, input_shape = drawn
    layer = CONV_LAYERS[n](**arguments).double()
    x = random_input(input_shape)
    geometry = {k: arguments[k] for k in ("stride", "padding", "dilation", "groups")}
    bias = None if layer.bias is None else layer.bias.data
    expected = naive_conv.conv(x, layer.weight.data, bias, **geometry)
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=RTOL, atol=ATOL)


def assert_matches_torch_module(ours, theirs, x, rtol=RTOL, atol=ATOL, copy_state=True):
    """ours and theirs (torch) agree in output and in every gradient.

    With copy_state, theirs first gets our weights and buffers (in float64).
    """
    torch = pytest.importorskip("torch")
    if copy_state:
        ours.double()
        theirs.double()
        theirs.load_state_dict({name: torch.tensor(a) for name, a in ours.state_dict().items()})
    y, dx, grads, u = run_with_gradient(ours, x)
    x_t = torch.tensor(x, requires_grad=True)
    theirs.zero_grad()
    y_t = theirs(x_t)
    y_t.backward(torch.tensor(u))
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=rtol, atol=atol, err_msg="output")
    np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=rtol, atol=atol, err_msg="input grad")
    their_params = dict(theirs.named_parameters())
    assert list(grads) == list(their_params)
    for name, grad in grads.items():
        np.testing.assert_allclose(
            grad, their_params[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name
        )
    return theirs


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_layer_against_torch(case):
    torch = pytest.importorskip("torch")
    layer, x, options = conv_case(case)
    n_spatial, c_in, c_out, kernel, _ = case
    theirs = getattr(torch.nn, f"Conv{n_spatial}d")(c_in, c_out, kernel, **options)
    assert repr(layer) == repr(theirs)
    assert_matches_torch_module(layer, theirs, x)


def test_conv_layer_refuses_bad_arguments_and_inputs():
    divisible = r"in_channels \(3\) and out_channels \(4\) must both be divisible by groups \(2\)"
    with pytest.raises(ValueError, match=divisible):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="kernel_size must be an int or a tuple of 2 ints"):
        nn.Conv2d(3, 4, (3, 3, 3))
    with pytest.raises(TypeError, match="dilation must be an int or a tuple of 2 ints"):
        nn.Conv2d(3, 4, 3, dilation=True)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        nn.Conv1d(1, 1, 3, stride=0)
    with pytest.raises(ValueError, match="padding must be an int, a tuple, 'same' or 'valid'"):
        nn.Conv2d(1, 1, 3, padding="full")
    layout = (r"Conv2d expects input \(N, C, H, W\) with C = in_channels = 3, "
              r"got shape \(1, 2, 8, 8\)")
    with pytest.raises(ValueError, match=layout):
        nn.Conv2d(3, 4, 3)(Tensor(np.zeros((1, 2, 8, 8))))


# ======================================================= linear, pooling, activations

def test_linear_against_the_formula():
    nn.manual_seed(0)
    layer = nn.Linear(4, 3).double()
    x = random_input((2, 5, 4))  # extra leading axes are batch axes
    y, dx, grads, u = run_with_gradient(layer, x)
    w, b = layer.weight.data, layer.bias.data
    np.testing.assert_allclose(y, np.einsum("nti,oi->nto", x, w) + b, rtol=RTOL)
    np.testing.assert_allclose(dx, np.einsum("nto,oi->nti", u, w), rtol=RTOL)
    np.testing.assert_allclose(grads["weight"], np.einsum("nto,nti->oi", u, x), rtol=RTOL)
    np.testing.assert_allclose(grads["bias"], u.sum(axis=(0, 1)), rtol=RTOL)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_against_torch(bias):
    torch = pytest.importorskip("torch")
    layer = nn.Linear(5, 3, bias=bias)
    assert_matches_torch_module(layer, torch.nn.Linear(5, 3, bias=bias), random_input((4, 5)))


POOL_CASES = [
    # (n_spatial, kind, kernel, options)
    (1, "Max", 2, {}),
    (1, "Avg", 3, {"stride": 2, "padding": 1}),
    (2, "Max", 3, {"stride": 2, "padding": 1}),
    (2, "Avg", 2, {"stride": 1, "padding": 1, "count_include_pad": False}),
    (3, "Max", 2, {"stride": (1, 2, 2)}),
    (3, "Avg", (1, 2, 2), {}),
    (2, "Max", 2, {"ceil_mode": True}),                              # 7 x 6 -> 4 x 3
    (1, "Avg", 3, {"stride": 2, "padding": 1, "ceil_mode": True}),  # 9 -> 5
]


def pool_case(case):
    n_spatial, kind, kernel, options = case
    layer = getattr(nn, f"{kind}Pool{n_spatial}d")(kernel, **options)
    return layer, random_input((2, 3) + INPUT_SIZES[n_spatial], seed=n_spatial)


@pytest.mark.parametrize("case", POOL_CASES)
def test_pool_layer_against_the_naive_formula(case):
    layer, x = pool_case(case)
    _, kind, kernel, options = case
    y, dx, _, u = run_with_gradient(layer, x)
    window = (kernel, options.get("stride"), options.get("padding", 0))
    ceil_mode = options.get("ceil_mode", False)
    if kind == "Max":
        expected = naive_pool.max_pool(x, *window, ceil_mode=ceil_mode)
        expected_dx = naive_pool.max_pool_grad(u, x, *window, ceil_mode=ceil_mode)
    else:
        include = options.get("count_include_pad", True)
        expected = naive_pool.avg_pool(x, *window, count_include_pad=include, ceil_mode=ceil_mode)
        expected_dx = naive_pool.avg_pool_grad(u, x.shape, *window, count_include_pad=include,
                                               ceil_mode=ceil_mode)
    np.testing.assert_allclose(y, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dx, expected_dx, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", POOL_CASES)
def test_pool_layer_against_torch(case):
    torch = pytest.importorskip("torch")
    layer, x = pool_case(case)
    n_spatial, kind, kernel, options = case
    theirs = getattr(torch.nn, f"{kind}Pool{n_spatial}d")(kernel, **options)
    assert_matches_torch_module(layer, theirs, x)


def test_pool_stride_defaults_to_the_kernel_size():
    assert nn.MaxPool2d(3).stride == 3
    assert repr(nn.AvgPool1d(2, count_include_pad=False)) == (
        "AvgPool1d(kernel_size=2, stride=2, padding=0, count_include_pad=False)"
    )
    assert repr(nn.MaxPool1d(2, ceil_mode=True)) == (
        "MaxPool1d(kernel_size=2, stride=2, padding=0, ceil_mode=True)"
    )


def test_avg_pool_layer_takes_its_arguments_in_torchs_order():
    torch = pytest.importorskip("torch")
    # the fourth argument is ceil_mode, the fifth count_include_pad, as in torch
    for arguments in [(3, 1, 1, False), (3, 2, 1, True, False)]:
        assert_matches_torch_module(nn.AvgPool2d(*arguments), torch.nn.AvgPool2d(*arguments),
                                    random_input((2, 3, 7, 6)))


def test_max_pool_layer_refuses_torchs_fifth_argument_rather_than_misread_it():
    # torch's MaxPool2d(kernel_size, stride, padding, dilation, return_indices, ceil_mode):
    # scratchnet has no return_indices, so its ceil_mode is keyword-only
    with pytest.raises(TypeError):
        nn.MaxPool2d(3, 2, 1, 1, True)


def test_max_pool_layer_takes_a_dilation_fourth_as_torch_does():
    torch = pytest.importorskip("torch")
    assert_matches_torch_module(nn.MaxPool2d(3, 1, 1, 2), torch.nn.MaxPool2d(3, 1, 1, 2),
                                random_input((2, 3, 7, 6)))
    assert_matches_torch_module(nn.MaxPool2d(2, 2, 0, 2, ceil_mode=True),
                                torch.nn.MaxPool2d(2, 2, 0, 2, ceil_mode=True),
                                random_input((2, 3, 7, 6)))
    assert repr(nn.MaxPool2d(3, 1, 1, 2)) == ("MaxPool2d(kernel_size=3, stride=1, padding=1, "
                                              "dilation=2)")


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def log_softmax_rows(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


ACTIVATIONS = [
    # (layer, forward formula, derivative formula given z and the output a, as u -> dz)
    (nn.ReLU(), lambda z: np.maximum(z, 0), lambda z, a, u: u * (z > 0)),
    (nn.Sigmoid(), sigmoid, lambda z, a, u: u * a * (1 - a)),
    (nn.Tanh(), np.tanh, lambda z, a, u: u * (1 - a**2)),
    (nn.Softmax(dim=1), lambda z: np.exp(log_softmax_rows(z)),
     lambda z, a, u: a * (u - (u * a).sum(axis=1, keepdims=True))),
    (nn.LogSoftmax(dim=1), log_softmax_rows,
     lambda z, a, u: u - np.exp(a) * u.sum(axis=1, keepdims=True)),
]


@pytest.mark.parametrize("layer, formula, derivative", ACTIVATIONS,
                         ids=[type(a[0]).__name__ for a in ACTIVATIONS])
def test_activation_layers_against_formulas(layer, formula, derivative):
    z = random_input((4, 5))
    a, dz, _, u = run_with_gradient(layer, z)
    np.testing.assert_allclose(a, formula(z), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dz, derivative(z, a, u), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", ["ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax"])
def test_activation_layers_against_torch(name):
    torch = pytest.importorskip("torch")
    options = {"dim": 1} if "Softmax" in name else {}
    ours, theirs = getattr(nn, name)(**options), getattr(torch.nn, name)(**options)
    assert_matches_torch_module(ours, theirs, random_input((3, 4, 2)))


def test_flatten_and_identity():
    x = Tensor(random_input((2, 3, 4, 5)))
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Flatten(start_dim=2)(x).shape == (2, 3, 20)
    np.testing.assert_array_equal(nn.Flatten()(x).data, x.data.reshape(2, 60))
    assert nn.Identity()(x) is x
    with pytest.raises(ValueError, match="start after end"):
        nn.Flatten(2, 1)(x)


@pytest.mark.parametrize("name, factor, shape", [("PixelUnshuffle", 2, (2, 3, 4, 6)),
                                                 ("PixelShuffle", 3, (2, 18, 2, 1))])
def test_pixel_shuffle_layers_against_torch(name, factor, shape):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(factor), getattr(torch.nn, name)(factor)
    assert repr(ours) == repr(theirs)
    assert_matches_torch_module(ours, theirs, random_input(shape))


def test_flatten_against_torch():
    torch = pytest.importorskip("torch")
    x = random_input((2, 3, 4, 5))
    assert_matches_torch_module(nn.Flatten(1, 2), torch.nn.Flatten(1, 2), x)


def test_an_empty_batch_goes_through_conv_pool_and_flatten_as_in_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), nn.Flatten())
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.MaxPool2d(2),
                                 torch.nn.Flatten())
    x = np.zeros((0, 3, 6, 6))
    y = ours.double()(Tensor(x))
    assert y.shape == tuple(theirs.double()(torch.tensor(x)).shape) == (0, 36)


# ======================================================= dropout

def test_dropout_scales_kept_entries_and_is_identity_in_eval():
    p = 0.3
    layer = nn.Dropout(p, generator=np.random.default_rng(0))
    x = random_input((100, 100))
    y, dx, _, u = run_with_gradient(layer, x)
    kept = y != 0
    assert abs(kept.mean() - (1 - p)) < 0.02
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=RTOL)
    np.testing.assert_allclose(dx, u * kept / (1 - p), rtol=RTOL)
    layer.eval()
    t = Tensor(x)
    assert layer(t) is t


def test_dropout_edge_probabilities_and_seeding():
    x = Tensor(random_input((10, 10)))
    assert nn.Dropout(0.0)(x) is x
    np.testing.assert_array_equal(nn.Dropout(1.0)(x).data, np.zeros((10, 10)))
    nn.manual_seed(4)
    first = nn.Dropout(0.5)(x).data
    nn.manual_seed(4)
    np.testing.assert_array_equal(nn.Dropout(0.5)(x).data, first)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(TypeError, match="generator must be a numpy.random.Generator"):
        nn.Dropout(0.5, generator=3)


# ======================================================= batch normalisation

BN_INPUTS = [(nn.BatchNorm1d, (6, 3)), (nn.BatchNorm1d, (4, 3, 5)),
             (nn.BatchNorm2d, (3, 3, 4, 2)), (nn.BatchNorm3d, (2, 3, 2, 3, 2))]


def batch_norm_formula(x, gamma, beta, eps):
    """Training-mode output, batch mean and biased variance, per channel (axis 1)."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma.reshape(shape) * x_hat + beta.reshape(shape), mu.reshape(-1), var.reshape(-1)


def batch_norm_backward_formula(x, gamma, eps, u):
    """Closed-form dJ/dx, dJ/dgamma, dJ/dbeta of training-mode batch norm for dJ/dy = u.

    dx = gamma / sqrt(var + eps) * (u - mean(u) - x_hat mean(u x_hat)),
    the means taken per channel over the m values of the batch.
    """
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mu = x.mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(((x - mu) ** 2).mean(axis=axes, keepdims=True) + eps)
    x_hat = (x - mu) * inv_std
    mean_u = u.mean(axis=axes, keepdims=True)
    mean_u_x_hat = (u * x_hat).mean(axis=axes, keepdims=True)
    dx = gamma.reshape(shape) * inv_std * (u - mean_u - x_hat * mean_u_x_hat)
    return dx, (u * x_hat).sum(axis=axes), u.sum(axis=axes)


def test_batch_norm_backward_formula_by_hand():
    # one channel, two values: x_hat = (-1, 1) for any x0 < x1, so y = gamma x_hat + beta
    # does not depend on x at all (up to eps), and dx must vanish.
    x = np.array([[1.0], [3.0]])
    u = np.array([[5.0], [7.0]])
    dx, dgamma, dbeta = batch_norm_backward_formula(x, np.array([2.0]), 0.0, u)
    np.testing.assert_allclose(dx, 0.0, atol=1e-15)
    np.testing.assert_allclose(dgamma, [-5.0 + 7.0])
    np.testing.assert_allclose(dbeta, [12.0])


@pytest.mark.parametrize("layer_class, shape", BN_INPUTS)
def test_batch_norm_training_against_the_formula(layer_class, shape):
    bn = layer_class(shape[1], momentum=0.2).double()
    rng = np.random.default_rng(0)
    bn.weight.data[...] = rng.uniform(0.5, 2.0, shape[1])
    bn.bias.data[...] = rng.standard_normal(shape[1])
    running_mean, running_var = np.zeros(shape[1]), np.ones(shape[1])
    for step in range(3):
        x = 3 * random_input(shape, seed=step) + 1
        y, dx, grads, u = run_with_gradient(bn, x, seed=step)
        expected, mu, var = batch_norm_formula(x, bn.weight.data, bn.bias.data, bn.eps)
        np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-12)
        m = x.size // shape[1]
        running_mean = 0.8 * running_mean + 0.2 * mu
        running_var = 0.8 * running_var + 0.2 * var * m / (m - 1)  # unbiased
        np.testing.assert_allclose(bn.running_mean, running_mean, rtol=1e-12)
        np.testing.assert_allclose(bn.running_var, running_var, rtol=1e-12)
        assert int(bn.num_batches_tracked) == step + 1
        dx_expected, dgamma, dbeta = batch_norm_backward_formula(x, bn.weight.data, bn.eps, u)
        np.testing.assert_allclose(dx, dx_expected, rtol=1e-8, atol=1e-11)
        np.testing.assert_allclose(grads["weight"], dgamma, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(grads["bias"], dbeta, rtol=1e-9, atol=1e-12)


def test_batch_norm_eval_uses_running_statistics():
    bn = nn.BatchNorm2d(2).double()
    bn.running_mean[...] = [1.0, -2.0]
    bn.running_var[...] = [4.0, 0.25]
    bn.weight.data[...] = [2.0, 3.0]
    bn.bias.data[...] = [0.5, 0.0]
    bn.eval()
    x = random_input((3, 2, 2, 2))
    y, dx, _, u = run_with_gradient(bn, x)
    scale = np.array([2.0, 3.0]) / np.sqrt(np.array([4.0, 0.25]) + bn.eps)
    expected = (x - np.array([1.0, -2.0]).reshape(1, 2, 1, 1)) * scale.reshape(1, 2, 1, 1)
    np.testing.assert_allclose(y, expected + np.array([0.5, 0.0]).reshape(1, 2, 1, 1), rtol=1e-12)
    np.testing.assert_allclose(dx, u * scale.reshape(1, 2, 1, 1), rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean, [1.0, -2.0])  # not updated in eval
    assert int(bn.num_batches_tracked) == 0


def test_batch_norm_input_gradient_by_finite_differences():
    bn = nn.BatchNorm2d(3, track_running_stats=False).double()
    bn.weight.data[...] = [0.5, 2.0, -1.0]
    assert gradcheck(bn, (Tensor(random_input((2, 3, 2, 3)), requires_grad=True),))


def test_batch_norm_options():
    bn = nn.BatchNorm1d(2, affine=False, track_running_stats=False)
    assert list(bn.state_dict()) == [] and list(bn.parameters()) == []
    x = random_input((5, 2))
    expected, _, _ = batch_norm_formula(x, np.ones(2), np.zeros(2), 1e-5)
    # no running statistics: batch statistics even in eval mode
    np.testing.assert_allclose(bn.eval()(Tensor(x)).data, expected, rtol=1e-9)
    cumulative = nn.BatchNorm1d(2, momentum=None).double()
    batches = [random_input((4, 2), seed) for seed in range(3)]
    for x in batches:
        cumulative(Tensor(x))
    mean_of_means = np.mean([b.mean(axis=0) for b in batches], axis=0)
    np.testing.assert_allclose(cumulative.running_mean, mean_of_means)
    # each batch's unbiased variance (divided by m - 1, as torch), averaged over the batches
    mean_of_variances = np.mean([b.var(axis=0, ddof=1) for b in batches], axis=0)
    np.testing.assert_allclose(cumulative.running_var, mean_of_variances)


def test_batch_norm_refuses_wrong_inputs():
    layout = (r"BatchNorm2d\(3\) expects input \(N, C, H, W\) with C = num_features = 3, "
              r"got shape \(2, 3, 4\)")
    with pytest.raises(ValueError, match=layout):
        nn.BatchNorm2d(3)(Tensor(np.zeros((2, 3, 4))))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(Tensor(np.zeros((1, 3))))


def test_batch_norm_counts_only_the_batches_it_accepted():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(Tensor(np.zeros((1, 3))))
    assert int(bn.num_batches_tracked) == 0
    np.testing.assert_array_equal(bn.running_mean, np.zeros(3))


@pytest.mark.parametrize("layer_class, shape", BN_INPUTS)
@pytest.mark.parametrize("options", [{}, {"momentum": None}, {"affine": False}])
def test_batch_norm_train_and_eval_against_torch(layer_class, shape, options):
    torch = pytest.importorskip("torch")
    ours = layer_class(shape[1], **options)
    if ours.affine:
        rng = np.random.default_rng(1)
        ours.weight.data[...] = rng.uniform(0.5, 2.0, shape[1])
        ours.bias.data[...] = rng.standard_normal(shape[1])
    theirs = getattr(torch.nn, layer_class.__name__)(shape[1], **options)
    theirs = assert_matches_torch_module(ours, theirs, 2 * random_input(shape) + 1, rtol=1e-9)
    for step in range(1, 4):  # each training step moves both models' running statistics
        for name, buffer in ours.named_buffers():
            np.testing.assert_allclose(buffer, theirs.state_dict()[name].numpy(), rtol=1e-12,
                                       err_msg=name)
        x = random_input(shape, step) + step
        assert_matches_torch_module(ours, theirs, x, rtol=1e-9, copy_state=False)
    ours.eval(), theirs.eval()
    assert_matches_torch_module(ours, theirs, random_input(shape, 9), rtol=1e-9, copy_state=False)


# ======================================================= losses

def test_cross_entropy_against_the_formula():
    logits = random_input((5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    loss = nn.CrossEntropyLoss()
    z = Tensor(logits, requires_grad=True)
    value = loss(z, labels)
    value.backward()
    log_p = log_softmax_rows(logits)
    np.testing.assert_allclose(value.item(), -log_p[np.arange(5), labels].mean(), rtol=RTOL)
    onehot = np.eye(4)[labels]
    np.testing.assert_allclose(z.grad, (np.exp(log_p) - onehot) / 5, rtol=1e-9, atol=ATOL)
    summed = nn.CrossEntropyLoss(reduction="sum")(Tensor(logits), labels).item()
    np.testing.assert_allclose(summed, 5 * value.item(), rtol=RTOL)
    assert nn.CrossEntropyLoss(reduction="none")(Tensor(logits), labels).shape == (5,)


def test_cross_entropy_and_mse_against_torch():
    torch = pytest.importorskip("torch")
    logits, labels = random_input((6, 3)), np.array([2, 0, 1, 1, 0, 2])
    for reduction in ("mean", "sum"):
        ours = nn.CrossEntropyLoss(reduction=reduction)(Tensor(logits), labels).item()
        theirs = torch.nn.CrossEntropyLoss(reduction=reduction)(
            torch.tensor(logits), torch.tensor(labels)
        ).item()
        np.testing.assert_allclose(ours, theirs, rtol=RTOL)
    a, b = random_input((3, 4), 1), random_input((3, 4), 2)
    np.testing.assert_allclose(
        nn.MSELoss()(Tensor(a), Tensor(b)).item(),
        torch.nn.MSELoss()(torch.tensor(a), torch.tensor(b)).item(), rtol=RTOL,
    )


def test_cross_entropy_refuses_bad_labels():
    loss, logits = nn.CrossEntropyLoss(), Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"target labels must be in \[0, 3\), got 0..3"):
        loss(logits, np.array([0, 3]))
    with pytest.raises(TypeError, match="integer class labels"):
        loss(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"target must have shape \(2,\)"):
        loss(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.CrossEntropyLoss(reduction="average")


# ======================================================= initialisation

@pytest.mark.parametrize("shape, fans", [((8, 4), (4, 8)), ((16, 3, 5), (15, 80)),
                                          ((32, 16, 5, 5), (400, 800)),
                                          ((4, 2, 3, 3, 3), (54, 108))])
def test_fans_by_hand(shape, fans):
    assert init.compute_fans(shape) == fans


def test_fans_and_gains_against_torch():
    torch = pytest.importorskip("torch")
    for shape in [(8, 4), (16, 3, 5), (32, 16, 5, 5), (4, 2, 3, 3, 3)]:
        assert init.compute_fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(
            torch.empty(shape)
        )
    for nonlinearity, param in [("linear", None), ("conv2d", None), ("sigmoid", None),
                                ("tanh", None), ("relu", None), ("leaky_relu", None),
                                ("leaky_relu", 0.2)]:
        assert init.calculate_gain(nonlinearity, param) == pytest.approx(
            torch.nn.init.calculate_gain(nonlinearity, param)
        )


def test_initialisers_have_the_he_and_glorot_spreads():
    shape = (128, 64, 3, 3)
    fan_in, fan_out = 64 * 9, 128 * 9  # by hand: receptive field 3 x 3
    w = nn.Parameter(np.empty(shape))
    rng = np.random.default_rng(0)
    init.kaiming_normal_(w, nonlinearity="relu", generator=rng)
    assert w.data.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.02)
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", generator=rng)
    assert w.data.std() == pytest.approx(np.sqrt(2 / fan_out), rel=0.02)
    init.xavier_normal_(w, generator=rng)
    assert w.data.std() == pytest.approx(np.sqrt(2 / (fan_in + fan_out)), rel=0.02)
    for fill, bound in [(init.kaiming_uniform_, np.sqrt(6 / fan_in)),
                        (init.xavier_uniform_, np.sqrt(6 / (fan_in + fan_out)))]:
        fill(w, generator=rng)
        assert np.abs(w.data).max() <= bound
        assert np.abs(w.data).max() > 0.99 * bound
        assert w.data.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)  # std of U(-a, a)


def test_default_layer_init_is_uniform_in_one_over_sqrt_fan_in():
    nn.manual_seed(0)
    layer = nn.Conv2d(16, 32, 5)
    bound = 1 / np.sqrt(16 * 5 * 5)
    for array in (layer.weight.data, layer.bias.data):
        assert np.abs(array).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.99 * bound
    assert layer.weight.dtype == np.float32


def test_fill_keeps_the_tensor_and_its_dtype():
    w = nn.Parameter(np.empty((3, 2), dtype=np.float32))
    assert init.zeros_(w) is w and not w.data.any() and w.dtype == np.float32
    np.testing.assert_array_equal(init.ones_(w).data, np.ones((3, 2)))
    np.testing.assert_array_equal(init.constant_(w, 0.5).data, np.full((3, 2), 0.5))


def test_manual_seed_makes_models_reproducible():
    nn.manual_seed(7)
    first = Block().state_dict()
    nn.manual_seed(7)
    second = Block().state_dict()
    nn.manual_seed(8)
    third = Block().state_dict()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert not np.array_equal(first["head.weight"], third["head.weight"])


def test_init_refuses_bad_arguments():
    w = nn.Parameter(np.empty((3, 2)))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_normal_(w, mode="fan_avg")
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.xavier_uniform_(nn.Parameter(np.empty(3)))


# ======================================================= docstring examples

# the modules with examples (the package scratchnet.nn itself has none)
NN_MODULES = ["module", "init", "rng", "conv", "linear", "pool", "norm", "activation",
              "flatten", "pixel_shuffle", "dropout", "loss"]


@pytest.mark.parametrize("name", [f"scratchnet.nn.{n}" for n in NN_MODULES]
                         + ["scratchnet.serialize"])
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0       # the examples were found, not skipped
    assert result.failed == 0
