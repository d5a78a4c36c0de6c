"""scratchnet.visualize: what the units of a ConvNet respond to, and the shapes a model makes.

The course's "What are deep ConvNets learning?", for any scratchnet model
that can be seen as a chain of layers (VGG19, the face encoder, dlib's face
ResNet, any Sequential; see `layers`):

- receptive fields (`receptive`): for each layer, the window of the input a
  unit sees, from the kernel sizes, strides, paddings and dilations below:
  r_l = r_{l-1} + (k_l - 1) d_l j_{l-1}, j_l = j_{l-1} s_l,
  start_l = start_{l-1} - p_l j_{l-1};
- nine patches (`patches`, `figures`): the nine input patches that excite a
  unit most, over a set of images, as a 3x3 grid; several units of a layer
  side by side, and five layers one under another, as on the slides;
- activation maximisation (`maximize`): gradient ascent on the input image
  to excite one unit, with jitter, blur and decay to keep it natural;
- `summary(model, input_shape)` (also `model.summary(input_shape)`): output
  shape, parameters and receptive field of every layer, and the chain of
  shapes in the slides' notation, 14 -> 10x16 -> 6x32.

docs/visualize.md works through the arithmetic and shows the pictures.
"""

from .figures import default_layers, layer_figure, maximized_figure, unit_grid, units_strip
from .layers import layer_shapes, layer_names, named_layers, network_input
from .maximize import maximize_activation, mean_activation
from .patches import NinePatches, TopActivations, UnitPatches, cut_window, nine_patches, scan
from .receptive import ReceptiveField, receptive_field, receptive_fields
from .samples import photo_crops
from .model_summary import shape_chain, summary

__all__ = [
    "named_layers", "layer_names", "layer_shapes", "network_input",
    "ReceptiveField", "receptive_field", "receptive_fields",
    "nine_patches", "NinePatches", "UnitPatches", "TopActivations", "scan", "cut_window",
    "layer_figure", "maximized_figure", "units_strip", "unit_grid", "default_layers",
    "maximize_activation", "mean_activation",
    "summary", "shape_chain", "photo_crops",
]
