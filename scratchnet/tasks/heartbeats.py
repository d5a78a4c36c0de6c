"""A 1D ConvNet at work: telling heart rhythms apart from a few seconds of ECG.

THE DATA. `generate` draws ECG-like signals from a seed, five rhythm classes
in equal numbers (CLASS_NAMES):

    normal                sinus rhythm, 60-100 beats per minute (bpm), regular
    bradycardia           sinus rhythm, 35-55 bpm
    tachycardia           sinus rhythm, 110-170 bpm
    atrial fibrillation   70-150 bpm on average but irregularly irregular
                          (RR intervals drawn independently, spread 15-30 %),
                          no P waves, a fibrillatory baseline (f waves, 4-9 Hz)
    PVC                   sinus rhythm, 60-100 bpm, with premature ventricular
                          contractions: a beat comes early (55-70 % of the
                          interval), without P wave, with a wide QRS and an
                          inverted T, followed by a compensatory pause

A beat is a sum of Gaussian bumps, one per wave w in P, Q, R, S, T, each
with an offset theta_w from the R peak, a width sigma_w and a height h_w
(in mV; BEAT_WAVES lists them). With the beats b at times t_b the signal is

    x(t) = g sum_b sum_w h_w exp(-(t - t_b - theta_w)^2 / (2 sigma_w^2))
           + g f(t) + wander(t) + hum(t) + noise(t)

where g is the amplitude (0.6-1.4), f the f waves of atrial fibrillation
(0 otherwise), wander a slow sine (0.1-0.5 Hz) of up to 0.3 mV, hum
powerline interference (50 or 60 Hz, up to 0.05 mV) and noise white
(sigma 0.01-0.05 mV). The T wave comes later at slow rates, as the QT
interval does (theta_T = 0.3 sqrt(RR), RR in seconds), and the first beat
falls at a random time, so no class can be told by where its beats are.
Signals are RATE = 125 samples per second over SECONDS = 5 s: an array
(N, 1, L) with L = 625, channels first as Conv1d takes it.

The bumps of all beats are evaluated at once for a chunk of signals, an
array (signals, bumps, L), with NumPy: no loop over samples or beats.

THE MODEL (`model`): four blocks of Conv1d (f = 5) -> BatchNorm1d -> ReLU ->
MaxPool1d(2), widths 16, 32, 32, 32 (625 -> 621 x16 -> 310 -> 306 x32 ->
153 -> 149 x32 -> 74 -> 70 x32 -> 35), the mean over the remaining
positions (global average pooling), and a Linear layer to the five class
scores. The mean of a
"QRS here" feature is the number of beats per second: global average
pooling turns a beat detector into a heart-rate meter.

BASELINES: the majority class; the nearest class centroid on the raw
signal (fails: beats fall at random times); the nearest class centroid on
the heart rate measured by `heart_rate` (tells the three rates apart,
not normal from PVC or atrial fibrillation).

`run(settings=None, quick=False, progress=None)` generates the data,
trains the model with scratchnet.tasks.classify and returns a TaskResult.

>>> signals, labels = generate(per_class=2, seed=0)
>>> signals.shape, signals.dtype, sorted(labels.tolist())
((10, 1, 625), dtype('float32'), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
>>> bool(np.array_equal(signals, generate(per_class=2, seed=0)[0]))
True
"""

import dataclasses
import math
import time

import numpy as np
from scipy.ndimage import uniform_filter1d

from . import classify, pictures

CLASS_NAMES = ("normal", "bradycardia", "tachycardia", "atrial fibrillation", "PVC")
NORMAL, BRADYCARDIA, TACHYCARDIA, FIBRILLATION, PVC = range(5)
HEART_RATES = np.array([[60, 100], [35, 55], [110, 170], [70, 150], [60, 100]])  # bpm, per class
RATE = 125                  # samples per second (Hz)
SECONDS = 5.0               # length of a signal

# Beat kinds, and their waves P, Q, R, S, T as (offset from R in s, width sigma in s, height in mV).
SINUS_BEAT, VENTRICULAR_BEAT, FIBRILLATION_BEAT = range(3)
BEAT_WAVES = np.array([
    # sinus: a P wave, a narrow QRS, an upright T
    [[-0.17, 0.025, 0.15], [-0.035, 0.010, -0.1], [0.0, 0.011, 1.0], [0.035, 0.012, -0.25],
     [0.0, 0.045, 0.3]],
    # ventricular: no P wave, a wide and tall QRS, an inverted T
    [[0.0, 0.025, 0.0], [-0.035, 0.010, 0.0], [0.0, 0.032, 1.3], [0.07, 0.030, -0.5],
     [0.05, 0.060, -0.4]],
    # conducted atrial fibrillation: a sinus beat without its P wave
    [[0.0, 0.025, 0.0], [-0.035, 0.010, -0.1], [0.0, 0.011, 1.0], [0.035, 0.012, -0.25],
     [0.0, 0.045, 0.3]],
])
T_WAVE = 4                  # index of T in BEAT_WAVES; its offset adds 0.3 sqrt(RR)
SHORTEST_RR = 0.28          # s: no two beats closer (the heart's refractory period)
CHUNK = 64                  # signals whose bumps are evaluated together


# ---------------------------------------------------------------- the data

def generate(per_class, seed=0, seconds=SECONDS, rate=RATE):
    """(signals (N, 1, L) float32 in mV, labels (N,) int64) with N = 5 per_class.

    Every class has `per_class` signals; their order is shuffled. L =
    round(seconds * rate). The same arguments give bit-identical arrays.
    """
    per_class = classify.check_positive_int("per_class", per_class)
    seed = classify.check_seed(seed)
    if not isinstance(seconds, (int, float)) or not 2 <= seconds <= 60:
        raise ValueError(f"seconds: expected a number of seconds in [2, 60], got {seconds!r}")
    rate = classify.check_positive_int("rate", rate)
    if rate < 125:
        raise ValueError(f"rate: expected at least 125 samples per second (to sample a QRS "
                         f"of 0.1 s and 60 Hz hum), got {rate}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(CLASS_NAMES)), per_class))
    t = np.arange(round(seconds * rate)) / rate                     # (L,) sample times in s
    beat_times, beat_kinds, rr = _beats(labels, seconds, rng)
    waves = _wave_parameters(beat_times, beat_kinds, rr, len(labels), rng)
    ecg = _sum_of_bumps(t, *waves)
    gain = rng.uniform(0.6, 1.4, (len(labels), 1))
    signals = gain * (ecg + _fibrillatory_waves(t, labels, rng)) + _interference(t, rng,
                                                                                 len(labels))
    return signals[:, None, :].astype(np.float32), labels.astype(np.int64)  # (N, L) -> (N, 1, L)


def _beats(labels, seconds, rng):
    """Beat times t_b (N, B) in s, beat kinds (N, B), and the RR interval before each beat.

    B is enough beats to cover the signal at the highest rate; beats past
    its end are harmless (their bumps are zero there).
    """
    n, slots = len(labels), math.ceil((seconds + 1) / SHORTEST_RR) + 1
    low, high = HEART_RATES[labels, 0], HEART_RATES[labels, 1]
    mean_rr = 60 / rng.uniform(low, high)[:, None]                       # (N, 1) s
    regular = mean_rr * (1 + 0.02 * rng.standard_normal((n, slots)))     # 2 % beat-to-beat jitter
    spread = rng.uniform(0.15, 0.3, (n, 1))                              # AF: lognormal RR
    irregular = mean_rr * np.exp(spread * rng.standard_normal((n, slots)) - spread ** 2 / 2)
    is_af = (labels == FIBRILLATION)[:, None]
    rr = np.maximum(np.where(is_af, irregular, regular), SHORTEST_RR)   # (N, B)
    first = -rng.uniform(0, 1, (n, 1)) * mean_rr                        # random phase
    times = first + np.cumsum(rr, axis=1) - rr[:, :1]                    # (N, B), t_0 = first
    kinds = np.repeat(np.where(is_af, FIBRILLATION_BEAT, SINUS_BEAT), slots, axis=1)  # (N, B)
    premature = _premature_beats(labels, times, rr, seconds, rng)
    coupling = rng.uniform(0.55, 0.7, (n, slots))                       # early by (1 - c) RR
    times = np.where(premature, times - (1 - coupling) * rr, times)      # next beat stays: a pause
    kinds = np.where(premature, VENTRICULAR_BEAT, kinds)
    return times, kinds, rr


def _premature_beats(labels, times, rr, seconds, rng):
    """(N, B) bool: the PVC beats. Each PVC signal has one, sometimes more, whose normal
    neighbours are both inside the window, so that its early beat and pause can be seen."""
    following = np.concatenate([times[:, 1:], np.full((len(times), 1), np.inf)], axis=1)
    inside = (times - rr > 0.2) & (following < seconds - 0.3) & (labels == PVC)[:, None]
    forced = np.argmax(rng.uniform(size=times.shape) * inside, axis=1)  # a random beat inside
    premature = rng.uniform(size=times.shape) < 0.15
    premature[np.arange(len(labels)), forced] = True
    return premature & inside


def _wave_parameters(beat_times, beat_kinds, rr, n, rng):
    """Centres, widths and heights of every bump: three arrays (N, B * 5)."""
    shape_jitter = rng.uniform(0.8, 1.2, (n, 1, 5))                      # each signal's morphology
    width_jitter = rng.uniform(0.85, 1.15, (n, 1, 1))
    waves = BEAT_WAVES[beat_kinds]                                       # (N, B, 5 waves, 3)
    offsets = waves[..., 0].copy()
    offsets[..., T_WAVE] += 0.3 * np.sqrt(rr)                            # T later when slower
    centres = beat_times[..., None] + offsets                            # (N, B, 5)
    widths = waves[..., 1] * width_jitter
    heights = waves[..., 2] * shape_jitter
    return [a.reshape(n, -1) for a in (centres, widths, heights)]        # (N, B, 5) -> (N, B*5)


def _sum_of_bumps(t, centres, widths, heights):
    """sum_k h_k exp(-(t - c_k)^2 / (2 sigma_k^2)) for each signal: (N, L), in chunks.

    In float32, four times faster than float64 here and as precise as the result.
    """
    t, centres, widths, heights = (a.astype(np.float32) for a in (t, centres, widths, heights))
    out = np.empty((len(centres), len(t)), dtype=np.float32)
    for start in range(0, len(centres), CHUNK):
        part = slice(start, start + CHUNK)
        # (n, K, 1) against (L,) -> (n, K, L) -> sum over the K bumps -> (n, L)
        z = (t - centres[part, :, None]) / widths[part, :, None]
        out[part] = np.einsum("nk,nkl->nl", heights[part], np.exp(-0.5 * z * z))
    return out


def _fibrillatory_waves(t, labels, rng):
    """f waves: two 4-9 Hz sines with wandering phase, for atrial fibrillation only. (N, L)"""
    n = len(labels)
    frequency = rng.uniform(4, 9, (n, 2, 1))
    amplitude = rng.uniform(0.03, 0.08, (n, 2, 1))
    phase, wobble_phase = rng.uniform(0, 2 * np.pi, (2, n, 2, 1))
    wobble = 3 * np.sin(2 * np.pi * 0.4 * t + wobble_phase)             # frequency modulation
    waves = amplitude * np.sin(2 * np.pi * frequency * t + phase + wobble)  # (N, 2, L)
    return waves.sum(axis=1) * (labels == FIBRILLATION)[:, None]


def _interference(t, rng, n):
    """Baseline wander + powerline hum + white noise: (N, L) in mV."""
    wander = rng.uniform(0, 0.3, (n, 1)) * np.sin(
        2 * np.pi * rng.uniform(0.1, 0.5, (n, 1)) * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    mains = np.where(rng.uniform(size=(n, 1)) < 0.5, 50.0, 60.0)
    hum = rng.uniform(0, 0.05, (n, 1)) * np.sin(
        2 * np.pi * mains * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    noise = rng.uniform(0.01, 0.05, (n, 1)) * rng.standard_normal((n, len(t)))
    return wander + hum + noise


# ---------------------------------------------------------------- a baseline

def heart_rate(signals, rate=RATE):
    """Each signal's heart rate in bpm, (N,), from the autocorrelation of its QRS energy.

    The squared slope e = (dx/dt)^2, smoothed over 40 ms, peaks at every QRS;
    its autocorrelation r(k) = sum_t (e_t - mean)(e_(t+k) - mean) peaks at the
    lag k of one RR interval. The highest r(k) for k between 0.3 s and 2 s
    gives RR = k / rate, and the rate 60 / RR.
    """
    x = _as_signals(signals, rate)[:, 0].astype(np.float64)             # (N, 1, L) -> (N, L)
    energy = uniform_filter1d(np.diff(x, axis=1) ** 2, size=max(1, round(0.04 * rate)), axis=1)
    energy -= energy.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(energy, n=2 * energy.shape[1], axis=1)       # zero-padded: no wrap
    autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)
    lags = np.arange(round(0.3 * rate), round(2.0 * rate) + 1)
    best = lags[np.argmax(autocorrelation[:, lags], axis=1)]
    return 60 * rate / best


def _as_signals(signals, rate):
    """signals as an array (N, 1, L) of more than 2 s (the longest RR looked for); else raise."""
    signals = np.asarray(signals)
    if signals.ndim != 3 or signals.shape[1] != 1 or signals.shape[2] <= 2 * rate:
        raise ValueError(f"signals: expected shape (N, 1, L) with L > {2 * rate} (2 s at "
                         f"{rate} Hz), got {signals.shape}")
    return signals


# ---------------------------------------------------------------- the task

@dataclasses.dataclass(frozen=True)
class Settings:
    """How `run` makes the data and trains the model."""

    train_per_class: int = 400
    test_per_class: int = 100
    widths: tuple = (16, 32, 32, 32)    # channels of the conv blocks
    kernel_size: int = 5
    training: classify.Training = classify.Training(epochs=12, batch_size=32, lr=3e-3)
    seed: int = 0


FULL = Settings()
QUICK = Settings(train_per_class=160, test_per_class=60,
                 training=classify.Training(epochs=6, batch_size=32, lr=3e-3))


def model(settings=FULL):
    """The Conv1d classifier of `settings` (weights drawn from scratchnet.nn's generator)."""
    return classify.ConvClassifier(1, 1, settings.widths, len(CLASS_NAMES),
                                   kernel_size=settings.kernel_size)


def run(settings=None, quick=False, progress=None):
    """Generate the signals, train the Conv1d model, measure it and the baselines.

    settings: a Settings (None: QUICK if `quick`, else FULL); progress: None
    or a callable given one line of text at each stage and epoch.
    Returns a classify.TaskResult.
    """
    started = time.perf_counter()
    settings = classify.choose_settings(settings, quick, FULL, QUICK)
    say = classify.reporter(progress)
    signals, labels = generate(settings.train_per_class + settings.test_per_class,
                               seed=settings.seed)
    is_test = classify.test_mask(labels, settings.test_per_class)
    train_x, train_y = signals[~is_test], labels[~is_test]
    test_x, test_y = signals[is_test], labels[is_test]
    say(f"{len(train_y)} training and {len(test_y)} test signals of {signals.shape[2]} "
        f"samples ({SECONDS:g} s at {RATE} Hz)")
    baselines = {
        "majority class": classify.majority_accuracy(train_y, test_y),
        "nearest centroid, raw signal": classify.nearest_centroid_accuracy(
            train_x[:, 0], train_y, test_x[:, 0], test_y),
        "nearest centroid, heart rate": classify.nearest_centroid_accuracy(
            heart_rate(train_x)[:, None], train_y, heart_rate(test_x)[:, None], test_y),
    }
    fit = classify.fit(lambda: model(settings), (train_x, train_y), (test_x, test_y),
                       settings.training, settings.seed, say)
    drawn = {"examples": pictures.signal_rows(test_x, test_y, CLASS_NAMES, RATE),
             "confusion": pictures.confusion_picture(fit.confusion, CLASS_NAMES)}
    return classify.TaskResult.from_fit("heartbeats", CLASS_NAMES, fit, baselines, drawn,
                                        started, settings)
