"""The "cuda" device: CudaArray against NumPy, tensors and modules on the GPU against the CPU.

Oracles: NumPy itself for every CudaArray operation (the same call on the
host array must give the same values, shape and dtype), and the CPU run of
the same computation for tensors and for the two applications, run through
their own code (scratchnet.style_transfer's StyleTransfer, scratchnet.face's
train): J, dJ/dG, the image after an Adam step, the training loss, the
weights and tau must be the same on either device, to rounding. docs/gpu.md's examples run
here too (test_docs.py skips them: they need a GPU or the simulator).
See cuda_support.py for how this module runs when there is no GPU.
"""

import dataclasses
import pathlib

import numpy as np
import pytest
from cuda_support import cuda_runs_here, skip_reason

if not cuda_runs_here():
    pytest.skip(skip_reason(), allow_module_level=True)

from test_docs import python_blocks  # noqa: E402

import kernels  # noqa: E402
import kernels.cuda.reduce as reduce_module  # noqa: E402
from scratchnet import Tensor, nn  # noqa: E402
from scratchnet import functional as F  # noqa: E402
from scratchnet.device import CUDA_KERNELS, CudaArray, kernels_for, to_device  # noqa: E402
from scratchnet.face import load_encoder  # noqa: E402
from scratchnet.face.training import TrainingSettings, train  # noqa: E402
from scratchnet.models import vgg19  # noqa: E402
from scratchnet.style_transfer import Settings, StyleTransfer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
rng = np.random.default_rng(0)


def assert_same(got, want, exact=False):
    """A CudaArray (or number) equal to NumPy's result: values, shape and dtype."""
    got = got.get() if isinstance(got, CudaArray) else np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if exact or want.dtype == bool or np.issubdtype(want.dtype, np.integer):
        np.testing.assert_array_equal(got, want)
    else:
        tol = 1e-6 if want.dtype == np.float32 else 1e-13
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


A = rng.standard_normal((3, 4)).astype(np.float32)
B = rng.standard_normal(4).astype(np.float32)


# ------------------------------------------------------------- CudaArray: ufuncs

@pytest.mark.parametrize("ufunc", [np.negative, np.absolute, np.exp, np.tanh, np.sign,
                                   np.square, np.isnan, np.isfinite])
def test_unary_ufuncs_match_numpy(ufunc):
    assert_same(ufunc(to_device(A, "cuda")), ufunc(A))


def test_unary_ufuncs_on_positive_input_match_numpy():
    x = np.abs(A) + 0.5
    for ufunc in (np.log, np.sqrt, np.log1p):
        assert_same(ufunc(to_device(x, "cuda")), ufunc(x))


@pytest.mark.parametrize("ufunc", [np.add, np.subtract, np.multiply, np.divide, np.maximum,
                                   np.minimum, np.greater, np.less_equal, np.equal])
def test_binary_ufuncs_broadcast_as_numpy(ufunc):
    a, b = to_device(A, "cuda"), to_device(B, "cuda")
    assert_same(ufunc(a, b), ufunc(A, B))               # (3, 4) with (4,)
    assert_same(ufunc(b[:, None], a[:1]), ufunc(B[:, None], A[:1]))  # (4, 1) with (1, 4)


def test_numbers_are_weak_and_arrays_promote_as_in_numpy():
    a = to_device(A, "cuda")
    assert_same(a * 0.5, A * 0.5)                        # stays float32
    assert_same(2 - a, 2 - A)
    assert_same(a ** 2, A ** 2)
    assert_same(a + to_device(B.astype(np.float64), "cuda"), A + B.astype(np.float64))
    assert_same(a * (a > 0), A * (A > 0))                # float32 times bool
    assert_same(np.heaviside(a, 0.0), np.heaviside(A, 0.0))


def test_ieee_special_values_match_numpy():
    x = np.array([0.0, -1.0, 1e3, np.nan, np.inf, -0.0])
    d = to_device(x, "cuda")
    with np.errstate(all="ignore"):
        for ufunc in (np.log, np.sqrt, np.exp, np.sign):
            assert_same(ufunc(d), ufunc(x), exact=True)
        assert_same(d / to_device(np.zeros(6), "cuda"), x / 0.0, exact=True)
        assert_same(np.maximum(d, 1.0), np.maximum(x, 1.0), exact=True)
        assert_same(to_device(np.array([-8.0, 0.0]), "cuda") ** 0.5,
                    np.array([-8.0, 0.0]) ** 0.5, exact=True)


def test_in_place_operators_write_into_the_array():
    a = to_device(A, "cuda")
    buffer = a.view.buffer
    a *= 2.0
    a += to_device(B, "cuda")
    assert a.view.buffer is buffer
    assert_same(a, A * 2 + B)
    c = to_device(np.arange(4.0).reshape(2, 2), "cuda")
    c += c.T                                             # reads what it overwrites: a copy first
    assert_same(c, np.arange(4.0).reshape(2, 2) + np.arange(4.0).reshape(2, 2).T)


def test_where_and_clip_match_numpy():
    a = to_device(A, "cuda")
    assert_same(np.where(a > 0, a, 0), np.where(A > 0, A, 0))
    assert_same(np.clip(a, -0.5, 0.5), np.clip(A, -0.5, 0.5))


# --------------------------------------------------------- CudaArray: reductions

@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, True), (1, False)])
def test_reductions_match_numpy(axis, keepdims):
    a = to_device(A, "cuda")
    for name in ("sum", "max", "min", "mean"):
        assert_same(getattr(a, name)(axis=axis, keepdims=keepdims),
                    getattr(A, name)(axis=axis, keepdims=keepdims))
    assert_same((a > 0).sum(axis=axis), (A > 0).sum(axis=axis))       # bools sum to int64
    assert_same((a > 0).any(axis=axis), (A > 0).any(axis=axis))
    assert_same((a > 0).all(axis=axis), (A > 0).all(axis=axis))


def test_long_reductions_go_through_chunks(monkeypatch):
    monkeypatch.setattr(reduce_module, "CHUNK", 8)        # 100 entries: 13 chunks, then 2, then 1
    x = rng.standard_normal(100)
    assert_same(to_device(x, "cuda").sum(), x.sum())
    x[37] = np.nan
    assert np.isnan(to_device(x, "cuda").max().item())


def test_max_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="zero-size array"):
        to_device(np.zeros((2, 0)), "cuda").max(axis=1)


# ------------------------------------------------------------- CudaArray: views

def test_views_match_numpy_and_share_memory():
    x = np.arange(24.0).reshape(2, 3, 4)
    d = to_device(x, "cuda")
    indexes = [(1,), (slice(None), 1), (Ellipsis, slice(1, None, 2)),
               (None, 0, slice(None, None, -1))]
    for index in indexes:
        assert_same(d[index], x[index])
        assert d[index].view.buffer is d.view.buffer
    assert_same(d.transpose(2, 0, 1), x.transpose(2, 0, 1))
    assert_same(d.T.reshape(4, 6), x.T.reshape(4, 6))    # not contiguous: copied, then viewed
    assert_same(d.reshape(-1, 4), x.reshape(-1, 4))
    assert_same(np.broadcast_to(d[:, :1], (2, 3, 4)), np.broadcast_to(x[:, :1], (2, 3, 4)))
    assert_same(np.expand_dims(d, (0, 2)), np.expand_dims(x, (0, 2)))
    assert_same(np.squeeze(d[:1]), np.squeeze(x[:1]))
    assert_same(np.moveaxis(d, 2, 0), np.moveaxis(x, 2, 0))


def test_setitem_and_the_shape_functions_match_numpy():
    x = np.zeros((3, 4))
    d = to_device(x, "cuda")
    d[1, 1:3] = 5.0
    x[1, 1:3] = 5.0
    d[2] = to_device(np.arange(4.0), "cuda")
    x[2] = np.arange(4.0)
    assert_same(d, x)
    assert_same(np.concatenate([d, d[:1]], axis=0), np.concatenate([x, x[:1]], axis=0))
    assert_same(np.stack([d, d], axis=1), np.stack([x, x], axis=1))
    for got, want in zip(np.split(d, [1, 3], axis=1), np.split(x, [1, 3], axis=1)):
        assert_same(got, want)
    assert_same(np.pad(d, ((1, 0), (0, 2)), constant_values=7.0),
                np.pad(x, ((1, 0), (0, 2)), constant_values=7.0))
    assert_same(np.zeros_like(d, shape=(2,)), np.zeros_like(x, shape=(2,)))


def test_integer_array_indexing_and_add_at_match_numpy():
    x = np.arange(12.0).reshape(4, 3)
    d = to_device(x, "cuda")
    rows = np.array([3, 0, 3, -1])
    assert_same(d[rows], x[rows])
    assert_same(d[:, np.array([2, 0])], x[:, np.array([2, 0])])
    assert_same(d[to_device(rows, "cuda")], x[rows])
    target, expected = np.zeros_like(d), np.zeros_like(x)
    np.add.at(target, rows, to_device(np.ones((4, 3)), "cuda"))
    np.add.at(expected, rows, np.ones((4, 3)))
    assert_same(target, expected)                        # row 3 gets three ones
    with pytest.raises(IndexError, match="index 4 is out of bounds for axis 0 with size 4"):
        d[np.array([4])]
    with pytest.raises(TypeError, match="one 1-D integer array"):
        d[np.array([True, False, True, False])]


@pytest.mark.parametrize("a_shape, b_shape", [((3, 4), (4, 2)), ((2, 3, 4), (4, 5)),
                                              ((2, 3, 4), (2, 4, 1)), ((4,), (4, 2)),
                                              ((3, 4), (4,)), ((4,), (4,))])
def test_matmul_follows_numpy(a_shape, b_shape):
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    assert_same(to_device(a, "cuda") @ to_device(b, "cuda"), a @ b)


def test_host_transfers_are_explicit():
    d = to_device(A, "cuda")
    np.testing.assert_array_equal(d.get(), A)
    assert to_device(d, "cpu").dtype == np.float32
    with pytest.raises(TypeError, match="not converted to a NumPy array implicitly"):
        np.asarray(d)
    with pytest.raises(ValueError, match="an array on 'cpu'.*met an array on 'cuda'"):
        d + A
    with pytest.raises(TypeError, match="np.cumsum is not supported"):
        np.cumsum(d)
    assert float(d[0, 0]) == float(A[0, 0]) and bool(d[0, 0] == d[0, 0])


# ------------------------------------------------------------------- tensors

def test_tensors_move_and_gradients_come_back():
    x = Tensor(A, requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda" and x.device == "cpu" and y.to("cuda") is y
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, 2 * A, rtol=1e-6)
    assert "device='cuda'" in repr(y)
    leaf = Tensor(A, requires_grad=True, device="cuda")
    (leaf * 3.0).sum().backward()
    assert isinstance(leaf.grad, CudaArray)
    assert_same(leaf.grad, np.full_like(A, 3.0))


def test_an_in_place_relu_on_the_gpu_is_checked_as_on_the_cpu():
    x = Tensor(A, requires_grad=True, device="cuda")
    h = x + 1.0
    view = h.reshape(-1)                          # shares h's GPU memory, so its counter
    product = h * x                               # reads h in its backward pass
    F.relu(view, inplace=True)
    assert h._version == view._version == 1
    with pytest.raises(RuntimeError, match="Mul.backward needs an array that an in-place op"):
        product.sum().backward()
    fresh = Tensor(A, requires_grad=True, device="cuda")
    F.relu(fresh * 3.0, inplace=True).sum().backward()    # nothing reads the product
    assert_same(fresh.grad, np.where(A > 0, 3.0, 0.0).astype(A.dtype))


def test_mixing_devices_is_an_error_naming_both():
    with pytest.raises(ValueError, match="Add: all tensors must be on one device, got input 0 "
                                         "on 'cpu' and input 1 on 'cuda'"):
        Tensor(A) + Tensor(A, device="cuda")
    with pytest.raises(TypeError, match="a tensor on 'cuda' has no NumPy array"):
        Tensor(A, device="cuda").numpy()
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda', got 'gpu'"):
        Tensor(A).to("gpu")


def test_constants_follow_the_tensor_they_meet():
    t = Tensor(A, device="cuda")
    assert_same(((t - np.float32(1.0)) * B).data, (A - np.float32(1.0)) * B)
    assert (t * 2).device == "cuda"


def test_kernels_for_picks_by_device():
    assert kernels_for(A) is kernels
    assert kernels_for(to_device(A, "cuda")) is CUDA_KERNELS


def test_modules_move_and_state_dicts_stay_numpy():
    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.BatchNorm1d(3))
    before = model.state_dict()
    model.to("cuda")
    assert all(p.device == "cuda" for p in model.parameters())
    assert isinstance(model[2].running_mean, CudaArray)
    state = model.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())
    for name in before:
        np.testing.assert_array_equal(state[name], before[name])
    model.load_state_dict({name: value + 1 for name, value in state.items()})
    np.testing.assert_array_equal(to_device(model[0].bias.data, "cpu"), before["0.bias"] + 1)
    model.to("cpu")
    assert all(p.device == "cpu" for p in model.parameters())


def batch_norm_step(device):
    nn.manual_seed(0)
    layer = nn.BatchNorm2d(2).to(device)
    x = Tensor(np.random.default_rng(3).random((2, 2, 2, 2), dtype=np.float32),
               requires_grad=True, device=device)
    (layer(x) ** 2).sum().backward()
    return to_device(x.grad, "cpu"), layer.state_dict()


def test_batch_norm_on_the_gpu_matches_the_cpu():
    grad_cpu, state_cpu = batch_norm_step("cpu")
    grad_gpu, state_gpu = batch_norm_step("cuda")
    np.testing.assert_allclose(grad_gpu, grad_cpu, atol=1e-5)
    for name, value in state_cpu.items():             # the running estimates moved alike
        np.testing.assert_allclose(state_gpu[name], value, rtol=1e-6)


def test_batch_norm_without_affine_parameters_runs_on_the_gpu():
    """gamma = 1 and beta = 0 are made on the input's device."""
    x = np.random.default_rng(4).random((3, 2, 4), dtype=np.float32)
    outputs = []
    for device in ("cpu", "cuda"):
        y = F.batch_norm(Tensor(x, device=device), None, None, training=True)
        assert y.device == device
        outputs.append(to_device(y.data, "cpu"))
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-5)


# ------------------------------------------------- the two applications, end to end

def tiny_style_problem(device):
    """StyleTransfer with a VGG19 of widths 2-3 on 4 x 4 pictures, on `device`."""
    model = vgg19(weights="random", widths=(2, 2, 3, 3, 3), note=None)
    content, style_image = np.random.default_rng(1).random((2, 3, 4, 4), dtype=np.float32)
    settings = Settings(content_layer="conv2_1", style_layers=(("conv1_1", 0.5), ("conv2_1", 0.5)),
                        tv_weight=0.1, iterations=1, print_every=0, device=device)
    return StyleTransfer(model, content, [style_image], settings)


def recording(cost, seen):
    """`cost` that also keeps each G it is given in the list `seen`."""
    def cost_and_record(G):
        seen.append(G)
        return cost(G)
    return cost_and_record


def test_style_transfer_on_the_gpu_matches_the_cpu():
    """One Adam iteration: J and its parts, dJ/dG, and G after the step, on either device."""
    runs = {}
    for device in ("cpu", "cuda"):
        problem, seen = tiny_style_problem(device), []
        problem.cost = recording(problem.cost, seen)
        result = problem.run()
        (G,) = seen                     # the one G evaluated; its grad is dJ/dG at iteration 0
        runs[device] = result, G, to_device(G.grad, "cpu")
    assert isinstance(problem.a_C.data, CudaArray)           # the targets live on the GPU
    assert all(isinstance(t.data, CudaArray) for t in problem.style_targets.values())
    assert all(p.device == "cuda" for p in problem.model.parameters())
    (run_cpu, _, grad_cpu), (run_gpu, G_gpu, grad_gpu) = runs["cpu"], runs["cuda"]
    assert G_gpu.device == "cuda"
    assert run_cpu.history[0]["J_tv"] > 0
    for name in ("J", "J_content", "J_style", "J_tv"):
        np.testing.assert_allclose(run_gpu.history[0][name], run_cpu.history[0][name],
                                   rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(grad_gpu, grad_cpu, rtol=1e-4, atol=1e-5 * np.abs(grad_cpu).max())
    # G after the Adam step and the clipping, handed back as NumPy
    assert type(run_gpu.image) is np.ndarray and run_gpu.image.dtype == np.float32
    assert all(type(image) is np.ndarray for _, image in run_gpu.snapshots)
    np.testing.assert_allclose(run_gpu.image, run_cpu.image, atol=1e-6)
    assert not np.array_equal(run_cpu.image, run_cpu.snapshots[0][1])     # the step moved G


class StopTraining(Exception):
    pass


def stop_after_step_1(report):
    if report.step == 1:
        raise StopTraining


def test_face_training_resumed_on_the_gpu_matches_the_cpu(tmp_path):
    """Step 1 on the CPU, checkpoint, step 2 on the GPU: the same as both steps on the CPU
    (the cross-batch memory, saved with step 1's batch, gives step 2 more triplets)."""
    pictures = np.random.default_rng(4).random((14, 3, 2, 2), dtype=np.float32)
    training = pictures[:8], np.repeat(np.arange(4), 2)
    validation = pictures[8:], np.repeat(np.arange(3), 2)
    settings = TrainingSettings(steps=2, identities_per_batch=2, pictures_per_identity=2,
                                width=2, blocks=1, downsample=1, embedding_size=4,
                                validation_pairs=12, validate_every=2, checkpoint_every=1,
                                neck=False, memory_from_step=1)   # step 2 uses the memory
    # no neck: in a network this small the neck leaves a parameter with a gradient that is
    # round-off alone (the beta of the block's second batch norm: a shift the neck takes
    # away again), and Adam turns round-off of either sign into a step of about lr, so the
    # two devices would part by that much
    whole, whole_history = train(*training, validation, settings, note=None)
    checkpoint = tmp_path / "run.checkpoint.npz"
    with pytest.raises(StopTraining):
        train(*training, validation, settings, checkpoint=checkpoint, report=stop_after_step_1,
              note=None)
    on_gpu = dataclasses.replace(settings, device="cuda")   # the device may change on resume
    resumed, resumed_history = train(*training, validation, on_gpu, checkpoint=checkpoint,
                                     resume=True, note=None)
    assert resumed.device == "cuda"
    (cpu_step,), (gpu_step,) = whole_history, resumed_history
    assert gpu_step.step == 2 and gpu_step.active == cpu_step.active > 0
    np.testing.assert_allclose(gpu_step.loss, cpu_step.loss, rtol=1e-5)
    # the validation embeddings (made on the GPU, returned as NumPy) give the same accuracy and tau
    assert gpu_step.validation_accuracy == cpu_step.validation_accuracy
    np.testing.assert_allclose(resumed.tau, whole.tau, rtol=1e-4)
    # the checkpoint written from the GPU after step 2 holds NumPy arrays, the CPU run's weights
    saved = load_encoder(checkpoint).network.state_dict()
    for name, value in whole.network.state_dict().items():
        np.testing.assert_allclose(saved[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_the_gpu_page_examples_run():
    namespace = {"__name__": "docs_gpu"}
    path = ROOT / "docs" / "gpu.md"
    for first_line, code, _ in python_blocks(path.read_text(encoding="utf-8")):
        exec(compile("\n" * (first_line - 1) + code, str(path), "exec"), namespace)
