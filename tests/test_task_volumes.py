"""The volume task: the CT-like generator, its lesions, the helpers, a quick training run.

The lesions are checked on the volumes themselves: only nodule and cyst
volumes have one, it lies fully inside the volume, its size fits the
documented radii, and its voxels are brighter (nodule) or darker (cyst)
than the shell of voxels around it. The intensity-statistics baseline that
the data is designed to defeat stays near chance.
"""

import doctest
import math

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from scratchnet.tasks import classify, volumes
from scratchnet.tasks.volumes import CLASS_NAMES, HEALTHY, NODULE


@pytest.fixture(scope="module")
def data():
    return volumes.generate(per_class=40, seed=2)


# ---------------------------------------------------------------- the generator's contract

def test_shapes_dtypes_and_balanced_shuffled_classes(data):
    assert data.volumes.shape == (120, 1, 24, 24, 24) and data.volumes.dtype == np.float32
    assert data.labels.dtype == np.int64 and data.lesions.dtype == bool
    assert data.lesions.shape == (120, 24, 24, 24)
    assert np.bincount(data.labels).tolist() == [40, 40, 40]
    assert data.labels[:9].tolist() != sorted(data.labels[:9].tolist())
    assert np.all(np.isfinite(data.volumes))


def test_size_sets_the_volume():
    assert volumes.generate(1, seed=0, size=18).volumes.shape == (3, 1, 18, 18, 18)


def test_same_seed_same_volumes_other_seed_other_volumes():
    first, second = volumes.generate(2, seed=9, size=16), volumes.generate(2, seed=9, size=16)
    other = volumes.generate(2, seed=10, size=16)
    for a, b in zip(first, second):
        assert np.array_equal(a, b)
    assert not np.array_equal(first.volumes, other.volumes)


@pytest.mark.parametrize("arguments, name", [
    ({"per_class": 0}, "per_class"), ({"per_class": 1, "seed": -2}, "seed"),
    ({"per_class": 1, "size": 12}, "size"), ({"per_class": 1, "size": 20.0}, "size"),
])
def test_bad_arguments_name_themselves(arguments, name):
    with pytest.raises(ValueError, match=name):
        volumes.generate(**arguments)


# ---------------------------------------------------------------- the lesions, measured

def test_only_nodules_and_cysts_have_lesion_voxels(data):
    has_lesion = data.lesions.reshape(len(data.labels), -1).any(axis=1)
    assert not has_lesion[data.labels == HEALTHY].any()
    assert has_lesion[data.labels != HEALTHY].all()


def test_lesions_lie_inside_and_fit_the_documented_radii(data):
    smallest = 4 / 3 * math.pi * (3 * 0.8 - 0.5) ** 3     # radius 3 shrunk by 0.8, half a voxel
    largest = 4 / 3 * math.pi * (4.5 * 1.2 + 0.5) ** 3    # radius 4.5 grown by 1.2, half a voxel
    for mask in data.lesions[data.labels != HEALTHY]:
        faces = [mask[0], mask[-1], mask[:, 0], mask[:, -1], mask[:, :, 0], mask[:, :, -1]]
        assert not any(face.any() for face in faces)
        assert smallest <= mask.sum() <= largest


def test_nodules_are_brighter_and_cysts_darker_than_around_them(data):
    for volume, mask, label in zip(data.volumes[:, 0], data.lesions, data.labels):
        if label == HEALTHY:
            continue
        shell = binary_dilation(mask, iterations=3) & ~binary_dilation(mask, iterations=1)
        difference = volume[mask].mean() - volume[shell].mean()
        assert difference > 0.5 if label == NODULE else difference < -0.5


def test_intensity_statistics_say_little(data):
    stats = volumes.intensity_statistics(data.volumes)
    assert stats.shape == (120, 4)
    np.testing.assert_allclose(stats[:, 3], data.volumes.reshape(120, -1).max(axis=1))
    is_test = classify.test_mask(data.labels, 20)
    accuracy = classify.nearest_centroid_accuracy(stats[~is_test], data.labels[~is_test],
                                                  stats[is_test], data.labels[is_test])
    assert accuracy < 0.55                                    # chance: 1/3


# ---------------------------------------------------------------- helpers

def test_lesion_centres_by_hand():
    masks = np.zeros((2, 8, 8, 8), dtype=bool)
    masks[0, 1:4, 2:5, 5:8] = True                             # a 3x3x3 block around (2, 3, 6)
    assert volumes.lesion_centres(masks).tolist() == [[2, 3, 6], [3, 3, 3]]
    with pytest.raises(ValueError, match="lesions"):
        volumes.lesion_centres(masks.astype(np.float32))


def test_docstring_examples_run():
    assert doctest.testmod(volumes).failed == 0


# ---------------------------------------------------------------- a training run

def test_quick_run_learns_well_above_chance_and_the_baselines():
    lines = []
    result = volumes.run(quick=True, progress=lines.append)
    settings = volumes.QUICK
    assert result.class_names == CLASS_NAMES
    assert result.baselines["majority class"] == pytest.approx(1 / 3)   # balanced test set
    assert result.accuracy >= 0.7
    assert all(result.accuracy > value + 0.2 for value in result.baselines.values())
    assert result.confusion.sum(axis=1).tolist() == [settings.test_per_class] * 3
    assert len(result.history) == settings.training.epochs
    assert set(result.pictures) == {"examples", "filters", "confusion"}
    for picture in result.pictures.values():
        assert picture.shape[0] == 3 and 0 <= picture.min() and picture.max() <= 1
    weight = result.model.conv1.weight
    assert weight.shape == (settings.widths[0], 1) + (settings.kernel_size,) * 3
    assert "training and" in lines[0] and sum(line.startswith("epoch ") for line in lines) \
        == settings.training.epochs
