"""The ConvNet classifier both tasks train, its training loop, and what a run reports.

THE MODEL (`ConvClassifier`) is one piece of code for signals (n_spatial = 1,
input (N, 1, L)) and volumes (n_spatial = 3, input (N, 1, D, H, W)): only the
layer classes change. Each block l applies

    a^[l] = maxpool(relu(batchnorm(conv(a^[l-1]))))       f = kernel_size, pool 2

and after the last block a global pooling over all positions leaves one
number per channel, g = (N, n_C^[L]): the mean ("mean": how much of a
feature there is) or the maximum ("max": whether it is anywhere). A Linear
layer turns g into class scores (logits) z = W g + b, (N, classes).

TRAINING (`fit`) minimises the cross-entropy J = (1/m) sum_i -log softmax(z_i)[y_i]
over minibatches of m examples, drawn without replacement (a new shuffle every
epoch; an incomplete last minibatch is dropped, so BatchNorm always has m
examples), with Adam, the learning rate decaying along half a cosine,
lr_t = lr (1 + cos(pi t / T)) / 2 over the T steps. After each epoch the
test accuracy is measured in evaluation mode (BatchNorm on its running
statistics). The initial weights and the shuffles come from `seed`, so a
run repeats exactly.

BASELINES say what the ConvNet adds: `majority_accuracy` (always answer
the commonest training class) and `nearest_centroid_accuracy` (answer the
class whose mean feature vector, over the training examples, is nearest).

>>> model = ConvClassifier(1, 1, widths=(16, 32), classes=5, kernel_size=5)
>>> model(Tensor(np.zeros((2, 1, 40), np.float32))).shape
(2, 5)
>>> confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), classes=2)
array([[1, 1],
       [0, 1]])
"""

import dataclasses
import math
import time

import numpy as np

from .. import nn
from .._threads import one_blas_thread
from ..optim import Adam
from ..tensor import Tensor, no_grad

LAYERS = {  # n_spatial -> (convolution, batch norm, max pool)
    1: (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d),
    2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d),
    3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d),
}
PREDICT_BATCH = 128         # examples per forward pass when predicting
CROSS_ENTROPY = nn.CrossEntropyLoss()


# ---------------------------------------------------------------- the model

class ConvClassifier(nn.Sequential):
    """conv -> batch norm -> ReLU -> max pool blocks, a global pooling, a Linear layer.

    A Sequential whose layers are named conv1, norm1, relu1, pool1, conv2, ...,
    global_pool, classifier, so that `model.summary(input_shape)` lists them.
    """

    def __init__(self, n_spatial, in_channels, widths, classes, kernel_size=5, pooling="mean"):
        if n_spatial not in LAYERS:
            raise ValueError(f"n_spatial: expected 1, 2 or 3, got {n_spatial!r}")
        if not widths:
            raise ValueError("widths: expected the channels of at least one block, got none")
        conv, batch_norm, max_pool = LAYERS[n_spatial]
        layers, channels = {}, in_channels
        for l, width in enumerate(widths, start=1):
            layers[f"conv{l}"] = conv(channels, width, kernel_size)
            layers[f"norm{l}"] = batch_norm(width)
            layers[f"relu{l}"] = nn.ReLU()
            layers[f"pool{l}"] = max_pool(2)
            channels = width
        layers["global_pool"] = GlobalPool(pooling)
        layers["classifier"] = nn.Linear(channels, classes)     # the logits z = W g + b
        super().__init__(layers)


class GlobalPool(nn.Module):
    """The mean or the maximum of each channel over all positions: (N, n_C, *positions) -> (N, n_C).

    "mean" says how much of a feature there is, "max" whether it is anywhere.
    """

    def __init__(self, pooling="mean"):
        super().__init__()
        if pooling not in ("mean", "max"):
            raise ValueError(f"pooling: expected 'mean' or 'max', got {pooling!r}")
        self.pooling = pooling

    def forward(self, a):
        positions = tuple(range(2, a.ndim))
        return a.mean(axis=positions) if self.pooling == "mean" else a.max(axis=positions)

    def extra_repr(self):
        return repr(self.pooling)


# ---------------------------------------------------------------- training

@dataclasses.dataclass(frozen=True)
class Training:
    """The training loop's settings."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-3            # Adam's learning rate at the first step


@dataclasses.dataclass
class Epoch:
    """One epoch of `fit`, as the history records it."""

    epoch: int                  # 1, 2, ...
    loss: float                 # mean J over the epoch's minibatches
    train_accuracy: float       # on those minibatches, as the model saw them (training mode)
    test_accuracy: float        # on the test set after the epoch (evaluation mode)
    seconds: float              # since training started


@dataclasses.dataclass
class Fit:
    """What `fit` returns: the trained model and how well it does."""

    model: nn.Module
    history: list               # one Epoch per epoch
    accuracy: float             # on the test set
    train_accuracy: float       # on the whole training set, evaluation mode
    confusion: np.ndarray       # (classes, classes) on the test set: row true, column predicted


def fit(make_model, train, test, training, seed, say=None):
    """Build a model with make_model() after seeding scratchnet.nn, train it, evaluate it.

    train and test are (inputs, labels) pairs of arrays; say (optional)
    receives one line of text per epoch. Returns a Fit.
    """
    (train_x, train_y), (test_x, test_y) = train, test
    if len(train_y) < training.batch_size:
        raise ValueError(f"train: expected at least batch_size = {training.batch_size} "
                         f"examples, got {len(train_y)}")
    nn.manual_seed(seed)
    model = make_model()
    optimizer = Adam(list(model.parameters()), lr=training.lr)
    shuffles = np.random.default_rng(seed)
    steps_per_epoch = len(train_y) // training.batch_size
    history, started = [], time.perf_counter()
    with one_blas_thread():
        for epoch in range(1, training.epochs + 1):
            loss, train_accuracy = _train_epoch(
                model, optimizer, train, shuffles.permutation(len(train_y)), training,
                first_step=(epoch - 1) * steps_per_epoch,
                total_steps=training.epochs * steps_per_epoch)
            history.append(Epoch(epoch, loss, train_accuracy,
                                 accuracy(predict(model, test_x), test_y),
                                 time.perf_counter() - started))
            if say is not None:
                say(f"epoch {epoch}/{training.epochs}  loss {loss:.3f}  train "
                    f"{train_accuracy:.3f}  test {history[-1].test_accuracy:.3f}  "
                    f"({history[-1].seconds:.1f} s)")
        test_predicted = predict(model, test_x)
        train_accuracy = accuracy(predict(model, train_x), train_y)
    confusion = confusion_matrix(test_y, test_predicted, model.classifier.out_features)
    return Fit(model, history, accuracy(test_predicted, test_y), train_accuracy, confusion)


def _train_epoch(model, optimizer, train, order, training, first_step, total_steps):
    """One Adam step per minibatch of `order`: (mean J, accuracy on the minibatches).

    Step t (counted over the whole run) has the learning rate
    lr (1 + cos(pi t / total_steps)) / 2.
    """
    inputs, labels = train
    model.train()
    losses, correct = [], 0
    steps = len(order) // training.batch_size
    for step in range(steps):
        batch = order[step * training.batch_size:(step + 1) * training.batch_size]
        t = first_step + step
        optimizer.lr = training.lr * (1 + math.cos(math.pi * t / total_steps)) / 2
        optimizer.zero_grad()
        logits = model(Tensor(inputs[batch]))                # (m, classes)
        loss = CROSS_ENTROPY(logits, labels[batch])
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
        correct += int(np.sum(logits.data.argmax(axis=1) == labels[batch]))
    return float(np.mean(losses)), correct / (steps * training.batch_size)


def predict(model, inputs, batch_size=PREDICT_BATCH):
    """The class each input gets (the largest logit), (N,) int64; evaluation mode, no tape."""
    was_training = model.training
    model.eval()
    with no_grad():
        predicted = [model(Tensor(inputs[start:start + batch_size])).data.argmax(axis=1)
                     for start in range(0, len(inputs), batch_size)]
    model.train(was_training)
    return np.concatenate(predicted).astype(np.int64)


# ---------------------------------------------------------------- measuring

def accuracy(predicted, labels):
    """The fraction of predicted labels equal to the true ones."""
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


def confusion_matrix(labels, predicted, classes):
    """M[i, j] = how many examples of true class i were predicted as class j, (classes, classes)."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predicted)), 1)
    return matrix


def majority_accuracy(train_labels, test_labels):
    """Test accuracy of always answering the commonest class of the training labels."""
    majority = np.argmax(np.bincount(train_labels))
    return accuracy(np.full(len(test_labels), majority), test_labels)


def nearest_centroid_accuracy(train_features, train_labels, test_features, test_labels):
    """Test accuracy of answering the class with the nearest mean feature vector.

    Features (N, F) are first standardised with the training set's mean and
    standard deviation, so that no feature counts more for its units.
    """
    train_features = np.asarray(train_features, dtype=np.float64)
    test_features = np.asarray(test_features, dtype=np.float64)
    mean, scale = train_features.mean(axis=0), train_features.std(axis=0) + 1e-12
    train_features, test_features = (train_features - mean) / scale, (test_features - mean) / scale
    classes = np.unique(train_labels)
    centroids = np.stack([train_features[train_labels == c].mean(axis=0) for c in classes])
    # (N, 1, F) - (1, C, F) -> (N, C) squared distances
    distances = ((test_features[:, None, :] - centroids[None]) ** 2).sum(axis=2)
    return accuracy(classes[np.argmin(distances, axis=1)], test_labels)


# ---------------------------------------------------------------- a task's result

@dataclasses.dataclass
class TaskResult:
    """What a task's run() returns."""

    name: str
    class_names: tuple
    accuracy: float             # test accuracy of the trained ConvNet
    train_accuracy: float       # its accuracy on the training set
    baselines: dict             # baseline name -> test accuracy
    history: list               # one Epoch per epoch
    confusion: np.ndarray       # (classes, classes) test counts: row true, column predicted
    pictures: dict              # name -> (3, H, W) float32 image in [0, 1]
    seconds: float              # the whole run: data, baselines, training, pictures
    model: nn.Module
    settings: object

    @classmethod
    def from_fit(cls, name, class_names, fit, baselines, pictures, started, settings):
        """The result of a run that started at time.perf_counter() = `started`."""
        return cls(name, tuple(class_names), fit.accuracy, fit.train_accuracy, dict(baselines),
                   fit.history, fit.confusion, pictures, time.perf_counter() - started,
                   fit.model, settings)

    def numbers(self):
        """The measurements as plain numbers, lists and dicts (for JSON)."""
        return {"name": self.name, "class_names": list(self.class_names),
                "accuracy": self.accuracy, "train_accuracy": self.train_accuracy,
                "baselines": dict(self.baselines),
                "history": [dataclasses.asdict(epoch) for epoch in self.history],
                "confusion": self.confusion.tolist(), "seconds": self.seconds}

    def table(self):
        """The result as lines of text: accuracies, baselines, confusion matrix."""
        width = max(len(name) for name in list(self.class_names) + list(self.baselines))
        lines = [f"{self.name}: test accuracy {self.accuracy:.3f} (train "
                 f"{self.train_accuracy:.3f}), {len(self.history)} epochs, {self.seconds:.1f} s",
                 f"  {'ConvNet':{width}s}  {self.accuracy:.3f}"]
        lines += [f"  {name:{width}s}  {value:.3f}" for name, value in self.baselines.items()]
        lines.append("  confusion matrix on the test set (rows: true class, columns: predicted)")
        lines.append(f"  {'':{width}s}" + "".join(f"{name[:6]:>8s}" for name in self.class_names))
        for name, row in zip(self.class_names, self.confusion):
            lines.append(f"  {name:{width}s}" + "".join(f"{count:8d}" for count in row))
        return "\n".join(lines)


# ---------------------------------------------------------------- plumbing for run()

def choose_settings(settings, quick, full, quick_preset):
    """`settings` if given, else the quick or the full preset; errors name the argument."""
    if settings is None:
        return quick_preset if quick else full
    if quick:
        raise ValueError("quick: give either settings or quick=True, not both")
    if type(settings) is not type(full):
        raise TypeError(f"settings: expected a {type(full).__name__}, "
                        f"got {type(settings).__name__}")
    return settings


def reporter(progress):
    """A function of one line of text that hands it to `progress`, or drops it if that is None."""
    if progress is not None and not callable(progress):
        raise TypeError(f"progress: expected None or a callable, got {type(progress).__name__}")
    return progress if progress is not None else (lambda line: None)


def test_mask(labels, test_per_class):
    """(N,) bool: True for the first test_per_class examples of each class, the test set."""
    rank = np.zeros(len(labels), dtype=np.int64)      # i-th example of its class, from 0
    for c in np.unique(labels):
        rank[labels == c] = np.arange(np.sum(labels == c))
    return rank < test_per_class


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    return int(seed)
