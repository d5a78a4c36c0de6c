"""The cross-batch memory (scratchnet.face.memory) and its use in training.

The triplets it chooses are checked against the definition, pair by pair in
plain loops: the negative is another person's remembered encoding m with
d(A, P) < ||f(A) - m||^2 < d(A, P) + alpha.
"""

import dataclasses

import numpy as np
import pytest

from scratchnet.face import synthetic_faces
from scratchnet.face.memory import CrossBatchMemory
from scratchnet.face.training import Trainer, TrainingSettings, train

ALPHA = 0.5


def unit_rows(rng, n, d=8):
    rows = rng.normal(size=(n, d)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def filled_memory(rng, batches=3, size=12, persons=9):
    memory = CrossBatchMemory(batches)
    for _ in range(batches):
        memory.add(unit_rows(rng, size), rng.integers(0, persons, size))
    return memory


def semi_hard_candidates(encodings, labels, memory, memory_labels, a, p):
    """Indices of the remembered encodings in (a, p)'s semi-hard zone, by the definition."""
    d_ap = float(np.sum((encodings[a] - encodings[p]) ** 2))
    return [j for j in range(len(memory)) if memory_labels[j] != labels[a]
            and d_ap < float(np.sum((encodings[a] - memory[j]) ** 2)) < d_ap + ALPHA]


@pytest.mark.parametrize("k", [1, 3, 50])
def test_each_pair_draws_up_to_k_distinct_negatives_from_its_semi_hard_zone(k):
    rng = np.random.default_rng(0)
    memory = filled_memory(rng)
    remembered, remembered_labels = np.concatenate(memory.encodings), np.concatenate(memory.labels)
    encodings, labels = unit_rows(rng, 12), np.repeat(np.arange(100, 104), 3)
    labels[:3] = remembered_labels[0]          # one person of the batch is also remembered
    anchors, positives, negatives = memory.semi_hard_triplets(encodings, labels, ALPHA,
                                                              np.random.default_rng(1), k)
    assert len(anchors) == len(positives) == len(negatives) > 0
    for a in range(12):
        for p in range(12):
            if p == a or labels[p] != labels[a]:
                assert not np.any((anchors == a) & (positives == p))
                continue
            drawn = negatives[(anchors == a) & (positives == p)]
            rows = [int(np.flatnonzero(np.all(remembered == m, axis=1))[0]) for m in drawn]
            candidates = semi_hard_candidates(encodings, labels, remembered, remembered_labels,
                                              a, p)
            assert set(rows) <= set(candidates) and len(set(rows)) == len(rows)
            assert len(rows) == min(k, len(candidates))


def test_the_draws_come_from_the_generator_and_reach_every_candidate():
    rng = np.random.default_rng(2)
    memory = filled_memory(rng, batches=4)
    encodings, labels = unit_rows(rng, 8), np.repeat(np.arange(100, 104), 2)
    first = memory.semi_hard_triplets(encodings, labels, ALPHA, np.random.default_rng(7), 1)
    again = memory.semi_hard_triplets(encodings, labels, ALPHA, np.random.default_rng(7), 1)
    for one, other in zip(first, again):
        np.testing.assert_array_equal(one, other)
    remembered = np.concatenate(memory.encodings)
    candidates = semi_hard_candidates(encodings, labels, remembered,
                                      np.concatenate(memory.labels), first[0][0], first[1][0])
    seen = set()
    for seed in range(200):
        anchors, positives, negatives = memory.semi_hard_triplets(
            encodings, labels, ALPHA, np.random.default_rng(seed), 1)
        ours = negatives[(anchors == first[0][0]) & (positives == first[1][0])]
        seen.add(int(np.flatnonzero(np.all(remembered == ours[0], axis=1))[0]))
    assert len(candidates) > 1 and seen == set(candidates)


def test_an_empty_memory_gives_no_triplets():
    encodings = unit_rows(np.random.default_rng(5), 4)
    anchors, positives, negatives = CrossBatchMemory(2).semi_hard_triplets(
        encodings, np.array([0, 0, 1, 1]), ALPHA, np.random.default_rng(0), 3)
    assert len(anchors) == len(positives) == 0 and negatives.shape == (0, 8)


def test_the_memory_forgets_the_oldest_batch():
    memory = CrossBatchMemory(2)
    for value in range(3):
        memory.add(np.full((value + 2, 4), value, np.float32), np.full(value + 2, value))
    assert len(memory) == 3 + 4
    assert [batch[0, 0] for batch in memory.encodings] == [1, 2]
    assert [labels[0] for labels in memory.labels] == [1, 2]


def test_the_memory_keeps_copies_of_what_it_is_given():
    memory, encodings, labels = CrossBatchMemory(1), np.zeros((2, 3), np.float32), np.arange(2)
    memory.add(encodings, labels)
    encodings[:] = 1
    labels[:] = 5
    assert memory.encodings[0].max() == 0 and memory.labels[0].tolist() == [0, 1]


def test_its_arrays_bring_it_back():
    memory = filled_memory(np.random.default_rng(3), batches=3)
    memory.add(np.ones((5, 8), np.float32), np.arange(5))           # batches of other sizes
    again = CrossBatchMemory(3)
    again.load_arrays(memory.arrays())
    for mine, theirs in zip(memory.encodings + memory.labels, again.encodings + again.labels):
        np.testing.assert_array_equal(mine, theirs)
    empty = CrossBatchMemory(3)
    empty.load_arrays(CrossBatchMemory(3).arrays())
    assert len(empty) == 0
    with pytest.raises(ValueError, match="no cross-batch memory of at most 2 batches"):
        CrossBatchMemory(2).load_arrays(memory.arrays())


@pytest.mark.parametrize("batches", [0, -1, 1.5, True])
def test_a_memory_holds_a_positive_number_of_batches(batches):
    with pytest.raises(ValueError, match=f"batches: expected a positive int, got {batches!r}"):
        CrossBatchMemory(batches)


# ------------------------------------------------------------------ in training

TINY = {"identities_per_batch": 4, "pictures_per_identity": 3, "width": 4, "blocks": 2,
        "downsample": 2, "embedding_size": 16, "validation_pairs": 100, "validate_every": 2,
        "checkpoint_every": 3, "memory_batches": 2, "memory_from_step": 1}
TINY_ALPHA = TrainingSettings().alpha


@pytest.fixture(scope="module")
def faces():
    return synthetic_faces(40, 6, seed=0, size=32), synthetic_faces(20, 6, seed=1, size=32)


def trainer(faces, **changes):
    (images, labels), validation = faces
    return Trainer(images, labels, validation, TrainingSettings(**{**TINY, **changes}),
                   note=None)


@pytest.mark.parametrize("changes, message", [
    ({"memory_batches": -1}, "memory_batches: expected an int >= 0, got -1"),
    ({"memory_from_step": 0.5}, "memory_from_step: expected an int >= 0, got 0.5"),
    ({"memory_weight": float("inf")}, "memory_weight: expected a finite number >= 0, got inf"),
])
def test_bad_memory_settings_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainingSettings(**{**TINY, **changes}).check()


def test_the_memory_adds_its_weighted_triplet_losses_to_j(faces):
    """Two trainers alike but for the memory's weight draw the same batches and triplets;
    their losses differ by the weight times the remembered triplets' L, summed by hand."""
    weighted, unweighted = trainer(faces, memory_weight=0.25), trainer(faces, memory_weight=0.0)
    chosen = []

    def spy(encodings, labels, alpha, rng, k):
        triplets = CrossBatchMemory.semi_hard_triplets(weighted.memory, encodings, labels,
                                                       alpha, rng, k)
        chosen.append((encodings, *triplets))
        return triplets

    weighted.memory.semi_hard_triplets = spy
    for step in range(2):                                 # step 0 only remembers its batch
        loss, _ = weighted.train_step()
        plain, _ = unweighted.train_step()
        assert len(weighted.memory) == len(unweighted.memory) == 12 * (step + 1)
    encodings, a, p, negatives = chosen[0]
    by_hand = np.sum(np.maximum(np.sum((encodings[a] - encodings[p]) ** 2, axis=1)
                                - np.sum((encodings[a] - negatives) ** 2, axis=1)
                                + TINY_ALPHA, 0))
    assert len(chosen) == 1 and len(a) > 0 and by_hand > 0
    assert loss == pytest.approx(plain + 0.25 * by_hand, rel=1e-5)


def test_without_memory_nothing_is_remembered_or_saved(faces):
    t = trainer(faces, memory_batches=0)
    t.train_step()
    assert t.memory is None and not any(key.startswith("memory.") for key in t.checkpoint_arrays())


def test_a_run_resumed_with_its_memory_equals_the_uninterrupted_run(faces, tmp_path):
    (images, labels), validation = faces
    chosen = TrainingSettings(**{**TINY, "steps": 6, "seed": 3})
    whole, _ = train(images, labels, validation, chosen, note=None)
    checkpoint = tmp_path / "run.checkpoint.npz"

    def stop_at_4(report):
        if report.step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(images, labels, validation, chosen, checkpoint=checkpoint, report=stop_at_4,
              note=None)                                  # the checkpoint of step 3 survives
    resumed, _ = train(images, labels, validation, chosen, checkpoint=checkpoint, resume=True,
                       note=None)
    for name, value in whole.network.state_dict().items():
        np.testing.assert_array_equal(resumed.network.state_dict()[name], value, err_msg=name)
    unremembered = dataclasses.replace(chosen, memory_batches=0)
    different, _ = train(images, labels, validation, unremembered, note=None)
    assert not np.array_equal(different.network.state_dict()["embedding.weight"],
                              whole.network.state_dict()["embedding.weight"])
