"""The shared part of the tasks: the ConvClassifier, the training loop, baselines, pictures.

Measurements are checked on cases worked by hand; the model's global pooling
against NumPy applied to its feature maps; the training loop on a small
problem that a ConvNet solves and raw pixels do not (a bump up or down at a
random place), for learning, for its bookkeeping and for exact repetition.
"""

import argparse
import doctest
import json

import numpy as np
import pytest

from scratchnet import Tensor
from scratchnet.commands import tasks as task_command
from scratchnet.tasks import classify, pictures


# ---------------------------------------------------------------- measurements, by hand

def test_confusion_matrix_counts_true_rows_against_predicted_columns():
    labels = np.array([0, 0, 0, 1, 2, 2])
    predicted = np.array([0, 1, 0, 1, 0, 2])
    assert classify.confusion_matrix(labels, predicted, 3).tolist() == [[2, 1, 0],
                                                                       [0, 1, 0],
                                                                       [1, 0, 1]]


def test_accuracy_and_majority_baseline():
    assert classify.accuracy([1, 2, 3, 4], [1, 0, 3, 0]) == 0.5
    # training: class 2 is commonest; the test labels hold it twice out of five
    assert classify.majority_accuracy(np.array([2, 2, 1, 0, 2]), np.array([2, 1, 2, 0, 0])) == 0.4


def test_nearest_centroid_on_hand_made_features():
    train = np.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 2.0]])
    train_labels = np.array([0, 0, 1, 1])                 # centroids (0, 1) and (10, 1)
    test = np.array([[1.0, 5.0], [9.0, -3.0], [6.0, 1.0]])
    # standardised: x by 5, y by 1 around (5, 1); the third point is nearer (10, 1)
    assert classify.nearest_centroid_accuracy(train, train_labels, test, np.array([0, 1, 1])) == 1
    assert classify.nearest_centroid_accuracy(train, train_labels, test, np.array([1, 1, 1])) \
        == pytest.approx(2 / 3)


def test_test_mask_takes_the_first_of_each_class():
    labels = np.array([1, 0, 1, 1, 0, 2, 0, 2])
    assert classify.test_mask(labels, 2).tolist() == [True, True, True, False, True, True,
                                                      False, True]


# ---------------------------------------------------------------- the model

@pytest.mark.parametrize("n_spatial, size", [(1, 30), (2, 14), (3, 14)])
def test_classifier_shapes_in_one_two_and_three_dimensions(n_spatial, size):
    model = classify.ConvClassifier(n_spatial, 2, widths=(4, 6), classes=3, kernel_size=3)
    x = Tensor(np.random.default_rng(0).standard_normal((5, 2) + (size,) * n_spatial)
               .astype(np.float32))
    assert model(x).shape == (5, 3)
    assert model.conv1.weight.shape == (4, 2) + (3,) * n_spatial


@pytest.mark.parametrize("pooling, reduce", [("mean", np.mean), ("max", np.max)])
def test_global_pooling_is_the_mean_or_max_over_positions(pooling, reduce):
    model = classify.ConvClassifier(1, 1, widths=(4,), classes=2, kernel_size=3, pooling=pooling)
    model.eval()
    x = Tensor(np.random.default_rng(1).standard_normal((3, 1, 20)).astype(np.float32))
    features = model[:-2](x).data                                   # the blocks: (3, 4, 9)
    w, b = model.classifier.weight.data, model.classifier.bias.data
    expected = reduce(features, axis=2) @ w.T + b
    np.testing.assert_allclose(model(x).data, expected, rtol=1e-5, atol=1e-6)


def test_classifier_bad_arguments():
    with pytest.raises(ValueError, match="n_spatial"):
        classify.ConvClassifier(4, 1, (4,), 2)
    with pytest.raises(ValueError, match="widths"):
        classify.ConvClassifier(1, 1, (), 2)
    with pytest.raises(ValueError, match="pooling"):
        classify.ConvClassifier(1, 1, (4,), 2, pooling="median")


def test_layers_are_named_blocks():
    model = classify.ConvClassifier(3, 1, widths=(8, 16), classes=3)
    assert list(model._modules) == ["conv1", "norm1", "relu1", "pool1", "conv2", "norm2",
                                    "relu2", "pool2", "global_pool", "classifier"]


# ---------------------------------------------------------------- the training loop

def bumps(n, seed):
    """Signals of length 40 holding a wiggle anywhere: up then down (class 1) or down then up.

    The wiggle is the derivative of a Gaussian, placed anywhere on a circle
    (it wraps around the ends), so each class's mean signal is flat: raw
    signals say little.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    centre = rng.uniform(0, 40, (n, 1))
    offset = (np.arange(40) - centre + 20) % 40 - 20              # t - centre, around the circle
    wiggle = -offset / 2 * np.exp(-offset ** 2 / 8)              # up before centre, down after
    signals = wiggle * np.where(labels == 1, 1.0, -1.0)[:, None] \
        + 0.3 * rng.standard_normal((n, 40))
    return signals[:, None, :].astype(np.float32), labels


def small_fit(seed=0, epochs=8):
    make = lambda: classify.ConvClassifier(1, 1, (8, 16), 2, kernel_size=5)  # noqa: E731
    training = classify.Training(epochs=epochs, batch_size=16, lr=1e-2)
    return classify.fit(make, bumps(400, seed=10), bumps(100, seed=11), training, seed)


def test_fit_learns_what_raw_signals_do_not_show():
    result = small_fit()
    (train_x, train_y), (test_x, test_y) = bumps(400, seed=10), bumps(100, seed=11)
    raw = classify.nearest_centroid_accuracy(train_x[:, 0], train_y, test_x[:, 0], test_y)
    assert raw < 0.7
    assert result.accuracy >= 0.85 and result.accuracy > raw + 0.15
    assert result.train_accuracy >= 0.85


def test_fit_bookkeeping():
    lines = []
    make = lambda: classify.ConvClassifier(1, 1, (4,), 2, kernel_size=5)  # noqa: E731
    result = classify.fit(make, bumps(50, 1), bumps(30, 2), classify.Training(3, 16, 1e-2), 0,
                          say=lines.append)
    assert [epoch.epoch for epoch in result.history] == [1, 2, 3]
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3")
    assert result.confusion.sum() == 30
    # the confusion matrix's diagonal is the test accuracy's numerator
    assert np.trace(result.confusion) / 30 == pytest.approx(result.accuracy)
    assert result.history[-1].test_accuracy == pytest.approx(result.accuracy)
    seconds = [epoch.seconds for epoch in result.history]
    assert seconds == sorted(seconds)


def test_fit_repeats_exactly_with_its_seed_and_not_with_another():
    first, second, other = small_fit(seed=3, epochs=2), small_fit(seed=3, epochs=2), \
        small_fit(seed=4, epochs=2)
    assert first.history[-1].loss == second.history[-1].loss
    for a, b in zip(first.model.parameters(), second.model.parameters()):
        assert np.array_equal(a.data, b.data)
    assert first.history[-1].loss != other.history[-1].loss


def test_fit_refuses_fewer_examples_than_a_minibatch():
    make = lambda: classify.ConvClassifier(1, 1, (4,), 2)  # noqa: E731
    with pytest.raises(ValueError, match="batch_size"):
        classify.fit(make, bumps(10, 1), bumps(10, 2), classify.Training(1, 16, 1e-2), 0)


# ---------------------------------------------------------------- run() plumbing

def test_choose_settings():
    full, quick = classify.Training(10), classify.Training(2)
    assert classify.choose_settings(None, False, full, quick) is full
    assert classify.choose_settings(None, True, full, quick) is quick
    mine = classify.Training(5)
    assert classify.choose_settings(mine, False, full, quick) is mine
    with pytest.raises(ValueError, match="quick"):
        classify.choose_settings(mine, True, full, quick)
    with pytest.raises(TypeError, match="settings"):
        classify.choose_settings({"epochs": 5}, False, full, quick)


def test_reporter_forwards_lines_or_drops_them():
    lines = []
    classify.reporter(lines.append)("epoch 1")
    classify.reporter(None)("dropped")
    assert lines == ["epoch 1"]
    with pytest.raises(TypeError, match="progress"):
        classify.reporter("print")


def test_check_arguments_name_them():
    with pytest.raises(ValueError, match="per_class: expected a positive int, got 0"):
        classify.check_positive_int("per_class", 0)
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="seed"):
            classify.check_seed(bad)


def test_task_result_table_and_numbers():
    fit = small_fit(epochs=1)
    result = classify.TaskResult.from_fit("bumps", ["down", "up"], fit, {"majority class": 0.5},
                                          {}, started=0.0, settings=None)
    table = result.table()
    assert table.startswith(f"bumps: test accuracy {fit.accuracy:.3f}")
    assert "majority class" in table and "down" in table and "up" in table
    numbers = json.loads(json.dumps(result.numbers()))
    assert numbers["confusion"] == fit.confusion.tolist()
    assert numbers["history"][0]["epoch"] == 1


# ---------------------------------------------------------------- pictures

def test_pictures_are_rgb_in_the_unit_range():
    signals, labels = bumps(8, 0)
    volumes = np.random.default_rng(0).standard_normal((4, 1, 8, 8, 8)).astype(np.float32)
    weight = np.random.default_rng(1).standard_normal((3, 1, 5, 5, 5))
    drawn = [pictures.signal_rows(signals, labels, ["down", "up"], rate=10),
             pictures.volume_slices(volumes, np.array([0, 1, 0, 1]), ["a", "b"],
                                    np.full((4, 3), 4)),
             pictures.filter_slices(weight),
             pictures.confusion_picture(np.array([[3, 1], [0, 4]]), ["down", "up"])]
    for picture in drawn:
        assert picture.ndim == 3 and picture.shape[0] == 3 and picture.dtype == np.float32
        assert 0 <= picture.min() and picture.max() <= 1 and picture.std() > 0.05


def test_filter_colours_follow_the_sign_of_the_weight():
    weight = np.zeros((1, 1, 3, 3, 3))
    weight[0, 0, 1, 1, 1], weight[0, 0, 1, 0, 0] = 2.0, -1.0   # centre > 0, a corner < 0
    rgb = pictures._diverging(weight[0, 0, 1] / 2.0)
    assert rgb[1, 1].tolist() == [1.0, 0.0, 0.0]              # full red
    assert rgb[0, 0].tolist() == [0.5, 0.5, 1.0]              # half blue
    assert rgb[2, 2].tolist() == [1.0, 1.0, 1.0]              # white


def test_picture_arguments_are_checked():
    with pytest.raises(ValueError, match="signals"):
        pictures.signal_rows(np.zeros((3, 40)), np.zeros(3), ["a"], rate=10)
    with pytest.raises(ValueError, match="weight"):
        pictures.filter_slices(np.zeros((4, 2, 3, 3, 3)))
    with pytest.raises(ValueError, match="matrix"):
        pictures.confusion_picture(np.zeros((2, 3)), ["a", "b"])


def test_docstring_examples_run():
    for module in (classify, pictures):
        assert doctest.testmod(module).failed == 0


# ---------------------------------------------------------------- the command

def test_task_command_has_help(capsys):
    parser = argparse.ArgumentParser(prog="scratchnet")
    task_command.add_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["task", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "heartbeats" in out and "volumes" in out and "--quick" in out
    with pytest.raises(SystemExit):
        parser.parse_args(["task", "faces"])
