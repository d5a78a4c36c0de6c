"""End to end: a small ConvNet learns to tell bar orientations apart.

The task is made here: 16 x 16 grey images holding one bar two pixels
wide, horizontal, vertical or diagonal (the 3 classes), at a random
offset, under Gaussian noise. A ConvNet (Conv2d -> ReLU -> MaxPool ->
Conv2d -> ReLU -> MaxPool -> Linear) trained with Adam and softmax
cross-entropy must classify held-out images far better than chance (1/3).
"""

import numpy as np

from scratchnet import Tensor, nn, no_grad, optim

SIZE, CLASSES = 16, 3


def bar_images(n, seed, noise=0.4):
    """(images (n, 1, 16, 16) float32, labels (n,)): 0 horizontal, 1 vertical, 2 diagonal."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    kind = labels.reshape(n, 1, 1)  # (n,) -> (n, 1, 1), to broadcast against (16, 16)
    offset = rng.integers(2, SIZE - 3, n).reshape(n, 1, 1)  # (n,) -> (n, 1, 1)
    row, col = np.indices((SIZE, SIZE))
    # how far each pixel is from the bar's first line, per image: (n, 16, 16)
    distance = np.select(
        [kind == 0, kind == 1],
        [row - offset, col - offset],
        default=col - row - (offset - SIZE // 2),
    )
    bars = ((distance == 0) | (distance == 1)).astype(np.float32)
    images = bars + noise * rng.standard_normal((n, SIZE, SIZE)).astype(np.float32)
    return images.reshape(n, 1, SIZE, SIZE), labels  # (n, 16, 16) -> (n, 1, 16, 16)


def test_bar_images_by_hand():
    images, labels = bar_images(30, seed=0, noise=0.0)
    assert set(labels.tolist()) == {0, 1, 2}
    for image, label in zip(images[:, 0], labels):
        rows, cols = np.nonzero(image)
        if label == 0:  # two whole adjacent rows
            assert set(rows.tolist()) == {rows.min(), rows.min() + 1} and image.sum() == 2 * SIZE
        elif label == 1:  # two whole adjacent columns
            assert set(cols.tolist()) == {cols.min(), cols.min() + 1} and image.sum() == 2 * SIZE
        else:  # two whole adjacent diagonals col - row = k, k + 1; diagonal k has 16 - |k| pixels
            k = (cols - rows).min()
            assert set((cols - rows).tolist()) == {k, k + 1}
            assert image.sum() == 2 * SIZE - abs(k) - abs(k + 1)


def small_convnet():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (N, 8, 8, 8)
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 16, 4, 4)
        nn.Flatten(), nn.Linear(16 * 4 * 4, CLASSES),
    )


def accuracy(model, images, labels):
    model.eval()
    with no_grad():
        predicted = model(Tensor(images)).data.argmax(axis=1)
    return float((predicted == labels).mean())


def test_convnet_learns_bar_orientation():
    nn.manual_seed(0)
    model = small_convnet()
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    train_images, train_labels = bar_images(480, seed=1)
    test_images, test_labels = bar_images(300, seed=2)
    assert accuracy(model, test_images, test_labels) < 0.6  # not solved before training

    batches = np.random.default_rng(3)
    losses = []
    for epoch in range(4):
        model.train()
        order = batches.permutation(len(train_labels))
        for start in range(0, len(order), 32):
            batch = order[start:start + 32]
            optimizer.zero_grad()
            loss = loss_fn(model(Tensor(train_images[batch])), train_labels[batch])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())

    assert np.mean(losses[-15:]) < 0.5 * np.mean(losses[:15])
    assert accuracy(model, test_images, test_labels) >= 0.9
