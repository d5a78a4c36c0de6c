"""scratchnet.models: networks built from scratchnet.nn, with the weights people have.

- `vgg19(weights=None, pooling="max")`: VGG19's 16 convolutional layers, the
  pretrained ConvNet of the course's neural style transfer ("Use pre-trained
  ConvNet (e.g. VGG)"), with `features(x, layers)` returning the activations
  a^[l] of any layers in one forward pass.
- `FaceEncoder`: the Siamese encoder f(x) of face verification, a small
  ConvNet from a picture to a 128-d unit vector (scratchnet.face trains it).
"""

from .face_encoder import FaceEncoder
from .vgg import IMAGENET_MEAN, IMAGENET_STD, RANDOM_WEIGHTS_SEED, VGG19, vgg19

__all__ = ["FaceEncoder", "IMAGENET_MEAN", "IMAGENET_STD", "RANDOM_WEIGHTS_SEED", "VGG19", "vgg19"]
