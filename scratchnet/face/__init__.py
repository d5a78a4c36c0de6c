"""scratchnet.face: face verification and recognition, and the face data they learn from.

Verification (1:1) asks whether two pictures show one person, d(img1, img2) <= tau;
recognition (1:K) looks a picture up among K enrolled persons, or answers "not
recognized".

- Data: `synthetic_faces` draws the slide's "10k pictures of 1k persons" from a
  seed; `load_image_folder` and `load_lfw_pairs` read real pictures.
- The encoder f: `scratchnet.models.FaceEncoder`, trained by `train` with the
  triplet loss; `Encoder` / `load_encoder` hold a trained f with its tau.
- Verification metrics (`metrics`): ROC, AUC, TAR at FAR, tau by best accuracy or
  equal error rate, LFW's 10-fold accuracy; `PairClassifier` is verification as
  binary classification on |f(x_i) - f(x_j)|.
- Recognition: `FaceDatabase`, one-shot enrolment and identification.
"""

from .database import DatabaseError, FaceDatabase, NotEnrolledError
from .datasets import (
    contact_sheet,
    count_single_picture_identities,
    fit_threshold,
    load_face_image,
    load_image_folder,
    load_lfw_pairs,
    pair_distances,
    pixel_baseline_accuracy,
    read_lfw_pairs,
    sample_pairs,
)
from .encoder import Encoder, load_encoder
from .metrics import (
    auc,
    equal_error_rate,
    fit_tau,
    roc_curve,
    roc_picture,
    tar_at_far,
    ten_fold_accuracy,
    verification_report,
)
from .pair_classifier import PairClassifier, pair_features
from .synthetic import synthetic_faces
from .training import StepReport, TrainingSettings, train

__all__ = [
    "DatabaseError", "Encoder", "FaceDatabase", "NotEnrolledError", "PairClassifier",
    "StepReport", "TrainingSettings",
    "auc", "contact_sheet", "count_single_picture_identities", "equal_error_rate", "fit_tau",
    "fit_threshold", "load_encoder", "load_face_image", "load_image_folder", "load_lfw_pairs",
    "pair_distances", "pair_features", "pixel_baseline_accuracy", "read_lfw_pairs",
    "roc_curve", "roc_picture", "sample_pairs", "synthetic_faces", "tar_at_far",
    "ten_fold_accuracy", "train", "verification_report",
]
