"""scratchnet.io: files in and out -- pretrained VGG19 weights in the formats people have.

>>> from scratchnet.io import VGG19_CONV_LAYERS, expected_shapes
>>> len(VGG19_CONV_LAYERS), VGG19_CONV_LAYERS[:3]
(16, ('conv1_1', 'conv1_2', 'conv2_1'))
>>> expected_shapes()["conv2_1.weight"]
(128, 64, 3, 3)
"""

from .layout import (
    VGG19_CONV_LAYERS,
    VGG19_PARAM_NAMES,
    VGG19_WIDTHS,
    Preprocess,
    ReaderNotInstalled,
    VGGWeights,
    WeightsFormatError,
    WeightsNotFound,
    expected_shapes,
)
from .torch_pickle import UnsafePickleError, read_state_dict
from .weights import (
    convert_weights,
    detect_format,
    find_vgg19_weights,
    load_vgg19_weights,
    save_vgg19_weights,
    scratchnet_cache_dir,
    weights_search_paths,
)

__all__ = [
    "load_vgg19_weights", "save_vgg19_weights", "convert_weights", "find_vgg19_weights",
    "weights_search_paths", "scratchnet_cache_dir", "detect_format", "read_state_dict",
    "VGGWeights", "Preprocess", "WeightsFormatError", "WeightsNotFound", "ReaderNotInstalled",
    "UnsafePickleError",
    "VGG19_CONV_LAYERS", "VGG19_PARAM_NAMES", "VGG19_WIDTHS", "expected_shapes",
]
