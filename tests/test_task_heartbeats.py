"""The heartbeat task: the signal generator, the heart-rate baseline, a quick training run.

The rhythm classes are checked on the signals themselves, with an R-peak
detector written here (band-pass 5-30 Hz, then scipy's find_peaks at least
0.25 s apart), independent of the generator's beat times: the measured rate
of each sinus rhythm falls in its class's range, sinus rhythms are regular,
atrial fibrillation is not, and every PVC signal has a beat that comes early.
"""

import argparse
import doctest
import json

import numpy as np
import pytest
from scipy.signal import butter, filtfilt, find_peaks

from scratchnet import cli
from scratchnet.commands import tasks as task_command
from scratchnet.tasks import classify, heartbeats
from scratchnet.tasks.heartbeats import (BRADYCARDIA, CLASS_NAMES, FIBRILLATION, NORMAL, PVC,
                                         RATE, TACHYCARDIA)

RANGES_BPM = {NORMAL: (60, 100), BRADYCARDIA: (35, 55), TACHYCARDIA: (110, 170)}
# 2 % beat-to-beat jitter, and R peaks found to the nearest 8 ms sample
RATE_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def data():
    return heartbeats.generate(per_class=30, seed=5)


def r_peak_intervals(signal):
    """RR intervals in seconds between the R peaks found in one signal (L,)."""
    b, a = butter(2, [5, 30], btype="band", fs=RATE)
    steep = np.abs(filtfilt(b, a, signal))       # the QRS has the fastest slopes of a beat
    peaks, _ = find_peaks(steep, height=0.4 * steep.max(), distance=int(0.25 * RATE))
    return np.diff(peaks) / RATE


def intervals_of(data, rhythm):
    signals, labels = data
    return [r_peak_intervals(signal[0]) for signal in signals[labels == rhythm]]


# ---------------------------------------------------------------- the generator's contract

def test_shapes_dtypes_and_balanced_shuffled_classes(data):
    signals, labels = data
    assert signals.shape == (150, 1, 625) and signals.dtype == np.float32
    assert labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [30] * 5
    assert labels[:10].tolist() != sorted(labels[:10].tolist())   # not grouped by class
    assert np.all(np.isfinite(signals))


def test_length_follows_seconds_and_rate():
    signals, _ = heartbeats.generate(1, seed=0, seconds=3, rate=200)
    assert signals.shape == (5, 1, 600)


def test_same_seed_same_signals_other_seed_other_signals():
    first, second = heartbeats.generate(3, seed=11), heartbeats.generate(3, seed=11)
    other = heartbeats.generate(3, seed=12)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("arguments, name", [
    ({"per_class": 0}, "per_class"), ({"per_class": 2.5}, "per_class"),
    ({"per_class": 2, "seed": -1}, "seed"), ({"per_class": 2, "seed": "a"}, "seed"),
    ({"per_class": 2, "seconds": 1}, "seconds"), ({"per_class": 2, "rate": 100}, "rate"),
])
def test_bad_arguments_name_themselves(arguments, name):
    with pytest.raises(ValueError, match=name):
        heartbeats.generate(**arguments)


# ---------------------------------------------------------------- the classes, measured

@pytest.mark.parametrize("rhythm", [NORMAL, BRADYCARDIA, TACHYCARDIA])
def test_sinus_rhythms_beat_regularly_at_their_class_rate(data, rhythm):
    low, high = RANGES_BPM[rhythm]
    for rr in intervals_of(data, rhythm):
        assert len(rr) >= 2
        bpm = 60 / np.median(rr)
        assert low * (1 - RATE_TOLERANCE) <= bpm <= high * (1 + RATE_TOLERANCE)
        assert rr.std() / rr.mean() < 0.06                 # regular
        assert rr.min() > 0.8 * np.median(rr)              # no early beat


def test_atrial_fibrillation_is_irregular(data):
    spread = np.array([rr.std() / rr.mean() for rr in intervals_of(data, FIBRILLATION)])
    assert np.median(spread) > 0.12                        # sinus rhythms: below 0.06
    assert np.mean(spread > 0.06) >= 0.9


def test_every_pvc_signal_has_an_early_beat(data):
    for rr in intervals_of(data, PVC):
        assert rr.min() < 0.8 * np.median(rr)


def test_the_detector_here_finds_hand_placed_peaks():
    t = np.arange(5 * RATE) / RATE
    beats = np.arange(0.3, 5, 0.8)                          # 75 bpm
    signal = np.exp(-(t[:, None] - beats) ** 2 / (2 * 0.01 ** 2)).sum(axis=1)
    np.testing.assert_allclose(r_peak_intervals(signal), 0.8, atol=1 / RATE)


# ---------------------------------------------------------------- the heart-rate baseline

@pytest.mark.parametrize("period_samples", [50, 100, 150, 240])
def test_heart_rate_of_hand_made_spike_trains(period_samples):
    signal = np.zeros(5 * RATE)
    signal[7::period_samples] = 1.0                         # one spike per beat
    spikes = np.convolve(signal, np.exp(-np.arange(-3, 4) ** 2 / 2), mode="same")
    bpm = heartbeats.heart_rate(spikes[None, None, :])
    assert bpm.tolist() == [60 * RATE / period_samples]


def test_heart_rate_separates_the_three_sinus_rates(data):
    signals, labels = data
    bpm = heartbeats.heart_rate(signals)
    assert np.median(bpm[labels == BRADYCARDIA]) < np.median(bpm[labels == NORMAL]) \
        < np.median(bpm[labels == TACHYCARDIA])


def test_heart_rate_checks_its_input():
    with pytest.raises(ValueError, match="signals"):
        heartbeats.heart_rate(np.zeros((3, 625)))


def test_docstring_examples_run():
    assert doctest.testmod(heartbeats).failed == 0


# ---------------------------------------------------------------- a training run

def test_quick_run_learns_well_above_chance_and_the_baselines():
    lines = []
    result = heartbeats.run(quick=True, progress=lines.append)
    settings = heartbeats.QUICK
    assert result.class_names == CLASS_NAMES
    assert result.baselines["majority class"] == pytest.approx(1 / 5)  # balanced test set
    assert result.accuracy >= 0.85
    assert all(result.accuracy > value + 0.2 for value in result.baselines.values())
    assert result.confusion.sum(axis=1).tolist() == [settings.test_per_class] * 5
    assert np.trace(result.confusion) / result.confusion.sum() == pytest.approx(result.accuracy)
    assert len(result.history) == settings.training.epochs
    assert set(result.pictures) == {"examples", "confusion"}
    for picture in result.pictures.values():
        assert picture.shape[0] == 3 and 0 <= picture.min() and picture.max() <= 1
    assert "training and" in lines[0] and sum(line.startswith("epoch ") for line in lines) \
        == settings.training.epochs


def test_settings_and_quick_are_not_both_given():
    with pytest.raises(ValueError, match="quick"):
        heartbeats.run(heartbeats.QUICK, quick=True)


def test_the_command_prints_the_table_and_writes_pictures_and_numbers(tmp_path, monkeypatch,
                                                                      capsys):
    tiny = heartbeats.Settings(train_per_class=8, test_per_class=4, widths=(4,),
                               training=classify.Training(epochs=1, batch_size=8))
    monkeypatch.setattr(heartbeats, "QUICK", tiny)
    parser = argparse.ArgumentParser()
    task_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["task", "heartbeats", "--quick", "--seed", "3",
                              "--out", str(tmp_path)])
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "heartbeats: epoch 1/1" in out and "confusion matrix" in out
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["task-heartbeats-confusion.png", "task-heartbeats-examples.png",
                     "task-heartbeats.json"]
    numbers = json.loads((tmp_path / "task-heartbeats.json").read_text())
    assert numbers["name"] == "heartbeats" and sum(map(sum, numbers["confusion"])) == 20


def test_the_command_refuses_an_out_that_is_a_file_before_training(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    assert cli.main(["task", "heartbeats", "--quick", "--out", str(taken)]) == 2
    captured = capsys.readouterr()
    assert "scratchnet task: error: --out: expected a folder, got the file" in captured.err
    assert "epoch" not in captured.out
