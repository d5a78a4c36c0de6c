"""One BLAS thread for the small matrix products of small models.

The convolutions spread their work over the cores themselves (kernels.conv
runs its tiles on one worker thread per core). What is left in a small
model's step (the fully connected layer, the distances between a batch's
embeddings) are products of a few million numbers, which OpenBLAS would
split over every core: for products this small the split costs more than it
saves, and on a busy machine far more (a step of the face encoder measured
0.7-1.1 s with OpenBLAS's default threads and 0.4-0.5 s with one).
"""

from threadpoolctl import ThreadpoolController

_CONTROLLER = ThreadpoolController()


def one_blas_thread():
    """A context manager inside which BLAS uses a single thread."""
    return _CONTROLLER.limit(limits=1, user_api="blas")
