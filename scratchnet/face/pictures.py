"""Pictures to look at: hard triplets and one-shot identifications, as (3, H, W) images.

`hard_triplets` shows, for a few anchors A, the picture of the same person
farthest from A (the hardest positive P) and the picture of another person
nearest to A (the hardest negative N), with d(A, P) and d(A, N): the
triplets that still teach the encoder something are those with
d(A, P) - d(A, N) + alpha > 0.

`identifications` shows queries (labelled with who they really are) next to
the enrolled picture of the person they were recognised as, or a grey
square for "not recognized" (answer "nobody"), with d.
Save either with scratchnet.io.images.save_image.

`draw_roc` and `write_evaluation_pictures` draw what `scratchnet face evaluate
--roc / --pictures` writes: the ROC of d and of the pair classifiers, hard
triplets, and identifications among K enrolled persons. Each takes the
pictures' embeddings encoder(images) when the caller has them already.
"""

import os
import tempfile

import numpy as np

from ..io.images import image_strip, save_image, stack_rows
from . import evaluation
from .database import FaceDatabase
from .metrics import roc_curve, roc_picture

ROW_GAP = 6          # white pixels between rows
PICTURE_HEIGHT = 128


def hard_triplets(encoder, images, labels, n_anchors=6, seed=0, embeddings=None):
    """Rows "A | hardest P | hardest N" with their distances, for n_anchors random anchors."""
    images, labels = np.asarray(images), np.asarray(labels)
    if embeddings is None:
        embeddings = encoder(images)
    rng = np.random.default_rng(seed)
    has_positive = np.bincount(labels)[labels] >= 2
    anchors = rng.choice(np.flatnonzero(has_positive), size=min(n_anchors, has_positive.sum()),
                         replace=False)
    rows = []
    for a in anchors:
        d = np.sum((embeddings - embeddings[a]) ** 2, axis=1)     # d(A, x) for every picture
        same = labels == labels[a]
        same[a] = False
        p = np.flatnonzero(same)[np.argmax(d[same])]
        n = np.flatnonzero(labels != labels[a])[np.argmin(d[labels != labels[a]])]
        rows.append(image_strip([images[a], images[p], images[n]],
                                labels=["anchor A", f"P: d = {d[p]:.3f}", f"N: d = {d[n]:.3f}"],
                                height=PICTURE_HEIGHT))
    return stack_rows(rows, gap=ROW_GAP)


def identifications(database, enrolled_pictures, queries, truths=None):
    """Rows "query | answer's enrolled picture" with the answer and d.

    database: a FaceDatabase; enrolled_pictures: {name: (3, S, S) picture};
    queries: (n, 3, S, S); truths: the right answers (None = not enrolled),
    to mark each row right or wrong.
    """
    names, distances = database.identify_many(queries)
    rows = []
    for index, (query, name, d) in enumerate(zip(queries, names, distances)):
        shown = enrolled_pictures[name] if name is not None else np.full_like(query, 0.6)
        answer = f"{name if name is not None else 'nobody'} (d={d:.3f})"
        if truths is None:
            asked = "query"
        else:
            asked = f"is {truths[index]}" if truths[index] is not None else "not enrolled"
        rows.append(image_strip([query, shown], labels=[asked, answer], height=PICTURE_HEIGHT))
    return stack_rows(rows, gap=ROW_GAP)


def draw_roc(encoder, images, labels, n_pairs, seed, classifiers, path, embeddings=None):
    """The ROC of d = ||f(x1) - f(x2)||^2 and of each pair classifier, to a PNG at `path`."""
    embeddings, (first, second, same) = evaluation.pair_embeddings(
        encoder, images, labels, n_pairs, seed, embeddings)
    distances = evaluation.squared_distances(embeddings, first, second)
    curves = {"d = ||f(x1) - f(x2)||^2": roc_curve(distances, same)[:2]}
    for kind, classifier in (classifiers or {}).items():
        probability = classifier.predict_proba(embeddings[first], embeddings[second])
        curves[f"classifier ({kind})"] = roc_curve(1 - probability, same)[:2]
    roc_picture(curves, path, log_far=True)


def write_evaluation_pictures(encoder, images, labels, folder, n_pairs, enrolled, seed,
                              classifiers=None, embeddings=None):
    """roc.png, triplets.png and identifications.png (4 enrolled persons, 2 others) in `folder`."""
    os.makedirs(folder, exist_ok=True)
    if embeddings is None:
        embeddings = encoder(images)
    draw_roc(encoder, images, labels, n_pairs, seed, classifiers,
             os.path.join(folder, "roc.png"), embeddings)
    save_image(hard_triplets(encoder, images, labels, seed=seed, embeddings=embeddings),
               os.path.join(folder, "triplets.png"))
    members, strangers = evaluation.split_persons(labels, enrolled, seed)
    first_pictures = [np.flatnonzero(labels == person)[0] for person in members]
    shown = {str(person): images[i] for person, i in zip(members, first_pictures)}
    with tempfile.TemporaryDirectory() as scratch:
        database = FaceDatabase(os.path.join(scratch, "enrolled.npz"), encoder)
        database.enroll_embeddings(list(shown), embeddings[first_pictures])
        queries = [np.flatnonzero(labels == person)[1] for person in members[:4]]
        queries += [np.flatnonzero(labels == person)[0] for person in strangers[:2]]
        truths = [str(person) for person in members[:4]] + [None, None]
        sheet = identifications(database, shown, images[queries], truths)
    save_image(sheet, os.path.join(folder, "identifications.png"))
