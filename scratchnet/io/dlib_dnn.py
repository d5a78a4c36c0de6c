"""A dlib dnn file (a network saved by dlib's `serialize(net, out)`) parsed into layer records.

dlib builds a network as nested C++ templates, the loss on the outside and
the input at the centre: loss<fc<relu<con<input>>>>. Serialising it writes
each wrapper's version and then its inside, so the bytes of a file read

    loss wrapper version, loss layer (its tag string and fields)
    one version integer per wrapper, outermost first:
        2  add_layer         (a computational layer: con, relu, affine ...)
        1  tag or skip        (add_tag_layer, add_skip_layer; no id is written)
        3  the add_layer that holds the input layer (2 in older files)
    input layer (tag string, per-channel means, ...)
    for the layer on the input, then each add_layer from the input outwards:
        its fields (a tag string such as "con_4", then the layer's values),
        three bools (setup called, gradient stale, getters disabled),
        three tensors (x_grad, cached_output, params_grad; empty in a
        saved model), and after the input's layer its sample expansion
        factor (version 3 only).

Tags and skips write only their version, so the wiring of residual blocks
(which tag a skip or an add_prev goes back to) is not in the file: it comes
from the C++ definition of the network, which the model code states. The
records keep a `tag_or_skip` marker where one stood so that the model code
can check the file has its markers in the places it expects.

Every value is read with the primitives of `dlib_format` (integers, floats,
bools, strings, tensors: see there), and weights come out as NumPy arrays
in dlib's own layout:

    con        weight (n_C, n_C_prev, f_h, f_w), bias (n_C,) or None,
               stride (s_y, s_x), padding (p_y, p_x)
    affine     gamma (n_C,), beta (n_C,): y = gamma * x + beta per channel
    bn_con     gamma, beta, running_mean, running_var, eps (batch norm,
               kept as stored; the detector folds it into an affine)
    fc         weight (n_in, n_out) -- dlib computes y = x W -- bias or None
    max_pool / avg_pool   size (f_h, f_w) (0 means the whole map), stride, padding
    relu, add_prev        no fields

Only these layer, input and loss types are understood; any other tag stops
the parse with a DlibFormatError that names it and its byte offset.
"""

from dataclasses import dataclass, field

import numpy as np

from .dlib_format import DlibFormatError, DlibReader

FLAG_NAMES = ("this_layer_setup_called", "gradient_input_is_stale", "output_getters_disabled")
TAG_OR_SKIP = "tag_or_skip"


@dataclass
class Layer:
    """One layer record: kind ("con", "relu", ...), dlib's tag ("con_4"), values, byte offset."""

    kind: str
    tag: str = ""
    values: dict = field(default_factory=dict)
    offset: int = 0


@dataclass
class DlibNetwork:
    """A parsed network: loss, input, and the layers from the input outwards."""

    loss: Layer
    input: Layer
    layers: list

    def kinds(self):
        """The layer kinds from the input outwards, e.g. ['con', 'affine', 'relu', ...]."""
        return [layer.kind for layer in self.layers]


def read_dlib_network(data, source="<bytes>"):
    """Parse the bytes of a dlib dnn file into a DlibNetwork."""
    reader = DlibReader(data, source)
    reader.expect_int(1, "loss wrapper version")
    loss = _read_loss(reader)
    wrappers = _read_wrapper_versions(reader)
    input_version = wrappers.pop()
    input_layer = _read_input(reader)
    layers = [_read_layer(reader)]
    _skip_trailer(reader, "layer on the input", with_expansion_factor=input_version >= 3)
    for version in reversed(wrappers):  # innermost first, i.e. from the input outwards
        if version == 1:
            layers.append(Layer(TAG_OR_SKIP, offset=reader.offset))
            continue
        layers.append(_read_layer(reader))
        _skip_trailer(reader, f"{layers[-1].tag} layer")
    if not reader.at_end():
        raise reader.error("end of network", reader.offset,
                           f"{reader.remaining} bytes follow the last layer")
    return DlibNetwork(loss, input_layer, layers)


def read_dlib_network_file(path):
    """read_dlib_network on the contents of the file at `path`."""
    with open(path, "rb") as handle:
        return read_dlib_network(handle.read(), source=str(path))


# ---- the wrapper versions ----

def _read_wrapper_versions(reader):
    """The version integers from the outermost wrapper in to (and including) the input's."""
    versions = []
    while True:
        start = reader.offset
        version = reader.read_int("layer wrapper version")
        if version not in (1, 2, 3):
            raise reader.error("layer wrapper version", start,
                               f"expected 1 (tag/skip), 2 (layer) or 3 (input), got {version}")
        versions.append(version)
        if _input_tag_follows(reader):
            if version == 1:
                raise reader.error("layer wrapper version", start,
                                   "a tag or skip cannot hold the input layer directly")
            return versions


def _input_tag_follows(reader):
    """Whether the bytes at the cursor are a string starting with 'input' (nothing is consumed)."""
    start = reader.offset
    try:
        length = reader.read_uint()
        head = reader.data[reader.offset:reader.offset + 5]
        return 5 <= length <= reader.remaining and head == b"input"
    except DlibFormatError:
        return False
    finally:
        reader.offset = start


def _skip_trailer(reader, what, with_expansion_factor=False):
    """The three bools and three (empty) tensors that follow each layer's fields."""
    for name in FLAG_NAMES:
        reader.read_bool(f"{what}: {name}")
    for name in ("x_grad", "cached_output", "params_grad"):
        reader.read_tensor(f"{what}: {name}")
    if with_expansion_factor:
        reader.read_uint(f"{what}: sample_expansion_factor")


# ---- loss and input layers ----

def _read_loss(reader):
    start = reader.offset
    tag = reader.expect_string(("loss_metric_2", "loss_mmod_"), "loss layer tag")
    if tag == "loss_metric_2":
        values = {"margin": reader.read_float("margin"),
                  "distance_threshold": reader.read_float("dist_thresh")}
        return Layer("loss_metric", tag, values, start)
    return Layer("loss_mmod", tag, _read_mmod_options(reader), start)


def _read_mmod_options(reader):
    """mmod_options version 1: one detector window and the two overlap testers."""
    reader.expect_int(1, "mmod_options version (only version 1 is supported)")
    width = reader.read_uint("detector_width")
    height = reader.read_uint("detector_height")
    return {
        "detector_windows": [(width, height)],
        "loss_per_false_alarm": reader.read_float("loss_per_false_alarm"),
        "loss_per_missed_target": reader.read_float("loss_per_missed_target"),
        "truth_match_iou_threshold": reader.read_float("truth_match_iou_threshold"),
        "overlaps_nms": _read_overlap_tester(reader, "overlaps_nms"),
        "overlaps_ignore": _read_overlap_tester(reader, "overlaps_ignore"),
    }


def _read_overlap_tester(reader, what):
    """test_box_overlap: (iou_thresh, percent_covered_thresh)."""
    return (reader.read_float(f"{what} iou_thresh"),
            reader.read_float(f"{what} percent_covered_thresh"))


def _read_input(reader):
    start = reader.offset
    tag = reader.expect_string(
        ("input_rgb_image_sized", "input_rgb_image_pyramid", "input_rgb_image_pyramid2"),
        "input layer tag")
    values = {"mean_rgb": tuple(reader.read_float(f"avg_{c}") for c in ("red", "green", "blue"))}
    if tag == "input_rgb_image_sized":
        values["size"] = (reader.read_uint("NR"), reader.read_uint("NC"))
        return Layer("input_rgb_image_sized", tag, values, start)
    if tag == "input_rgb_image_pyramid2":
        values["padding"] = reader.read_uint("pyramid_padding")
        values["outer_padding"] = reader.read_uint("pyramid_outer_padding")
    return Layer("input_rgb_image_pyramid", tag, values, start)


# ---- computational layers ----

def _read_layer(reader):
    start = reader.offset
    tag = reader.read_string("layer tag")
    read_fields = _LAYER_READERS.get(tag)
    if read_fields is None:
        raise reader.error("layer tag", start, f"unsupported layer type {tag!r} "
                                               f"(known: {', '.join(sorted(_LAYER_READERS))})")
    kind, values = read_fields(reader, tag)
    return Layer(kind, tag, values, start)


def _read_alias_shape(reader, what):
    """An alias_tensor: version 1 then its four dimensions (it holds no values)."""
    reader.expect_int(1, f"{what} alias version")
    return tuple(reader.read_uint(f"{what} {dim}") for dim in ("num_samples", "k", "nr", "nc"))


def _read_multipliers(reader):
    """learning-rate and weight-decay multipliers (training only; read and dropped)."""
    for name in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        reader.read_float(f"{name}_multiplier")


def _split_params(reader, params, shapes, start, what):
    """Cut the flat params tensor into consecutive arrays of the given alias shapes."""
    flat = params.reshape(-1)  # (n, k, nr, nc) -> (n*k*nr*nc,)
    sizes = [int(np.prod(shape)) for shape in shapes]
    if sum(sizes) != flat.size:
        raise reader.error(what, start, f"params hold {flat.size} values but the parts "
                                        f"{shapes} need {sum(sizes)}")
    bounds = np.cumsum([0] + sizes)
    return [flat[a:b].reshape(shape)
            for a, b, shape in zip(bounds[:-1], bounds[1:], shapes, strict=True)]


def _read_con(reader, tag):
    start = reader.offset
    params = reader.read_tensor("con params")
    n_filters = reader.read_uint("num_filters")
    size = (reader.read_uint("nr"), reader.read_uint("nc"))
    stride = (reader.read_uint("stride_y"), reader.read_uint("stride_x"))
    padding = (reader.read_uint("padding_y"), reader.read_uint("padding_x"))
    filters = _read_alias_shape(reader, "filters")
    biases = _read_alias_shape(reader, "biases")
    _read_multipliers(reader)
    use_bias = reader.read_bool("use_bias") if tag in ("con_5", "con_6") else True
    if tag == "con_6" and reader.read_bool("use_relu"):
        raise reader.error("con_6 layer", start, "a convolution with a fused relu is not supported")
    if filters[0] != n_filters or filters[2:] != size:
        raise reader.error("con layer", start, f"filters alias {filters} does not match "
                                               f"{n_filters} filters of size {size}")
    has_bias = use_bias and np.prod(biases) > 0
    shapes = [filters, (n_filters,)] if has_bias else [filters]
    parts = _split_params(reader, params, shapes, start, "con params")
    values = {"weight": parts[0], "bias": parts[1] if has_bias else None,
              "stride": stride, "padding": padding}
    return "con", values


def _read_fc(reader, tag):
    start = reader.offset
    n_out = reader.read_uint("num_outputs")
    n_in = reader.read_uint("num_inputs")
    params = reader.read_tensor("fc params")
    weights = _read_alias_shape(reader, "weights")
    biases = _read_alias_shape(reader, "biases")
    bias_mode = reader.read_int("bias_mode")
    _read_multipliers(reader)
    use_bias = reader.read_bool("use_bias") if tag == "fc_3" else True
    has_bias = bias_mode == 0 and use_bias
    if weights[:2] != (n_in, n_out):
        raise reader.error("fc layer", start, f"weights alias {weights} does not match "
                                              f"{n_in} inputs x {n_out} outputs")
    shapes = [(n_in, n_out), (n_out,)] if has_bias else [(n_in, n_out)]
    if not has_bias and np.prod(biases) > 0:
        shapes.append((int(np.prod(biases)),))  # stored but unused
    parts = _split_params(reader, params, shapes, start, "fc params")
    return "fc", {"weight": parts[0], "bias": parts[1] if has_bias else None}


def _read_affine(reader, tag):
    start = reader.offset
    params = reader.read_tensor("affine params")
    gamma = _read_alias_shape(reader, "gamma")
    beta = _read_alias_shape(reader, "beta")
    reader.read_int("layer mode")
    gamma_values, beta_values = _split_params(reader, params, [gamma, beta], start, "affine params")
    return "affine", {"gamma": gamma_values.reshape(-1), "beta": beta_values.reshape(-1)}


def _read_bn(reader, tag):
    start = reader.offset
    params = reader.read_tensor("bn params")
    gamma = _read_alias_shape(reader, "gamma")
    beta = _read_alias_shape(reader, "beta")
    for name in ("means", "invstds"):
        reader.read_tensor(name)  # the last training batch's statistics, unused at test time
    running_mean = reader.read_tensor("running_means").reshape(-1)
    running_var = reader.read_tensor("running_variances").reshape(-1)
    reader.read_uint("num_updates")
    reader.read_uint("running_stats_window_size")
    _read_multipliers(reader)
    eps = reader.read_float("eps")
    gamma_values, beta_values = _split_params(reader, params, [gamma, beta], start, "bn params")
    values = {"gamma": gamma_values.reshape(-1), "beta": beta_values.reshape(-1),
              "running_mean": running_mean, "running_var": running_var, "eps": eps}
    return "bn_con" if tag == "bn_con2" else "bn_fc", values


def _read_pool(reader, tag):
    size = (reader.read_uint("nr"), reader.read_uint("nc"))
    stride = (reader.read_uint("stride_y"), reader.read_uint("stride_x"))
    padding = (reader.read_uint("padding_y"), reader.read_uint("padding_x"))
    kind = "max_pool" if tag.startswith("max") else "avg_pool"
    return kind, {"size": size, "stride": stride, "padding": padding}


def _read_no_fields(reader, tag):
    return tag.rstrip("_"), {}


_LAYER_READERS = {
    "con_4": _read_con, "con_5": _read_con, "con_6": _read_con,
    "fc_2": _read_fc, "fc_3": _read_fc,
    "affine_": _read_affine,
    "bn_con2": _read_bn, "bn_fc2": _read_bn,
    "max_pool_2": _read_pool, "avg_pool_2": _read_pool,
    "relu_": _read_no_fields, "add_prev_": _read_no_fields,
}
