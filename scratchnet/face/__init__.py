"""scratchnet.face: face verification and recognition, and the face data they learn from.

Verification (1:1) asks whether two pictures show one person, d(img1, img2) <= tau;
recognition (1:K) looks a picture up among K enrolled persons. The data:
`synthetic_faces` draws the slide's "10k pictures of 1k persons" from a seed;
`load_image_folder` and `load_lfw_pairs` read real pictures.
"""

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
from .synthetic import synthetic_faces

__all__ = [
    "contact_sheet",
    "count_single_picture_identities",
    "fit_threshold",
    "load_face_image",
    "load_image_folder",
    "load_lfw_pairs",
    "pair_distances",
    "pixel_baseline_accuracy",
    "read_lfw_pairs",
    "sample_pairs",
    "synthetic_faces",
]
