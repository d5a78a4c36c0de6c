"""benchmarks/face_step.py compares like with like: its PyTorch network is the default face
encoder, weights and all, and its step trains it."""

import numpy as np
import pytest

face_step = pytest.importorskip("benchmarks.face_step")

from scratchnet import Tensor, no_grad  # noqa: E402
from scratchnet.face.training import TrainingSettings  # noqa: E402
from scratchnet.models.face_encoder import FaceEncoder  # noqa: E402


def small_settings():
    return TrainingSettings(width=4, identities_per_batch=4, pictures_per_identity=2)


def test_the_torch_network_computes_the_default_encoder():
    torch = pytest.importorskip("torch")
    settings = small_settings()
    ours = FaceEncoder(width=settings.width, convs_per_block=settings.convs_per_block,
                       neck=settings.neck, seed=3)
    with no_grad():          # a training-mode pass moves the batch-norm statistics off zero
        ours(Tensor(np.random.default_rng(4).random((8, 3, 64, 64), dtype=np.float32)))
    network, forward = face_step.torch_network(torch, settings, ours.state_dict())
    ours.eval(), network.eval()
    x = np.random.default_rng(5).random((6, 3, 64, 64), dtype=np.float32)
    with no_grad(), torch.no_grad():
        expected = ours(Tensor(x)).data
        got = forward(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_the_torch_step_lowers_its_loss():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    settings = small_settings()
    from scratchnet.face.synthetic import synthetic_faces
    images, labels = synthetic_faces(6, 3, seed=0)
    state = FaceEncoder(width=settings.width, convs_per_block=settings.convs_per_block,
                        neck=settings.neck, seed=3).state_dict()
    step = face_step.torch_step(torch, images, labels, settings, state)
    losses = [step() for _ in range(40)]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def test_the_timed_steps_use_a_full_cross_batch_memory():
    settings = face_step.timed_settings()
    assert settings.memory_batches > 0
    assert face_step.WARM_UP_STEPS == settings.memory_from_step >= settings.memory_batches


def test_the_torch_step_adds_the_remembered_triplets(monkeypatch):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    settings = TrainingSettings(width=4, identities_per_batch=4, pictures_per_identity=2,
                                memory_batches=2, memory_from_step=2)
    from scratchnet.face.synthetic import synthetic_faces
    images, labels = synthetic_faces(6, 3, seed=0)
    state = FaceEncoder(width=settings.width, convs_per_block=settings.convs_per_block,
                        neck=settings.neck, seed=3).state_dict()
    calls = []
    real = face_step.torch_memory_loss

    def spy(torch_, memory, *args):
        loss = real(torch_, memory, *args)
        calls.append((args[-1], len(memory.labels),
                      float(loss.detach()) if hasattr(loss, "detach") else loss))
        return loss

    monkeypatch.setattr(face_step, "torch_memory_loss", spy)
    step = face_step.torch_step(torch, images, labels, settings, state)
    for _ in range(6):
        step()
    assert [in_use for in_use, _, _ in calls] == [False, False, True, True, True, True]
    assert [held for _, held, _ in calls] == [1, 2, 2, 2, 2, 2]
    assert any(loss > 0 for in_use, _, loss in calls if in_use)


def test_persons_fewer_than_a_batch_are_refused(capsys):
    with pytest.raises(SystemExit):
        face_step.main(["--persons", "10"])
    assert "expected an integer >= 32 (the persons of one batch)" in capsys.readouterr().err
