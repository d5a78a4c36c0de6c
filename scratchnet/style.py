"""The costs of neural style transfer, in the course's notation, made of autograd ops.

C is the content image, S the style image, G the generated one; a^[l](X) is
the activation of layer l of a pretrained ConvNet for input X, here
channels-first, (N, n_C, n_H, n_W), with N = 1 in practice.

Content cost (slide):          J_content(C, G) = 1/2 || a^[l](C) - a^[l](G) ||^2
  (assignment, selectable):    J_content(C, G) = 1/(4 n_H n_W n_C) sum (a^[l](C) - a^[l](G))^2

Style matrix (slide):          G^[l]_{kk'} = sum_i sum_j a^[l]_{ijk} a^[l]_{ijk'}
  the Gram matrix of the unrolled activations A (n_C, n_H n_W): G = A A^T.

Style cost of a layer (slide): J_style^[l](S, G) =
                                 1/(2 n_H n_W n_C)^2 sum_k sum_k' (G^[l](S)_{kk'} - G^[l](G)_{kk'})^2
Style cost over layers:        J_style(S, G) = sum_l lambda^[l] J_style^[l](S, G)
Total cost:                    J(G) = alpha J_content(C, G) + beta J_style(S, G)
Total variation (optional):    TV(G) = sum (G_{c,i+1,j} - G_{c,i,j})^2 + (G_{c,i,j+1} - G_{c,i,j})^2

Every cost is composed of differentiable ops (subtraction, products, sums,
`F.gram_matrix`), so each gradient dJ/dG comes from the backward passes of
those ops: nothing here is differentiated by hand.

Style and content images of different sizes. The slide's style cost divides
both Gram matrices by the same (2 n_H n_W n_C)^2, since on the slide S and
G have the same size. Written as

    J_style^[l] = sum_k sum_k' (G^[l](S)_{kk'} / (2 n_H^S n_W^S n_C)
                                - G^[l](G)_{kk'} / (2 n_H^G n_W^G n_C))^2

each Gram matrix is divided by its own number of positions n_H n_W, which
is the slide's formula when the sizes agree and compares per-position
averages, which do not grow with the image, when they do not. That is what
`layer_style_cost` computes, so a style image of any size can be used.
`scaled_gram` is the divided matrix G^[l] / (2 n_H n_W n_C).

The assignment's names are here as aliases: `compute_content_cost` (with
its 1/(4 n_H n_W n_C) normalisation, and taking the last entry of a list of
outputs as the assignment does), `gram_matrix`, `compute_layer_style_cost`,
`compute_style_cost` (STYLE_LAYERS as a list of (layer, lambda) pairs) and
`total_cost`. One difference: the assignment's TensorFlow activations are
channels-last, (1, n_H, n_W, n_C); scratchnet's are channels-first,
(1, n_C, n_H, n_W). A channels-last Tensor `a` becomes channels-first with
`a.permute(0, 3, 1, 2)`; for the assignment's unrolled (n_C, n_H n_W)
matrix `gram_matrix` takes it as it is.

>>> import numpy as np
>>> from scratchnet import Tensor
>>> a_C = Tensor(np.ones((1, 2, 2, 2)))
>>> a_G = Tensor(np.zeros((1, 2, 2, 2)))
>>> content_cost(a_C, a_G).item()                        # 1/2 * 8 ones
4.0
>>> content_cost(a_C, a_G, normalization="assignment").item()   # 8 / (4 * 2 * 2 * 2)
0.25
>>> gram_matrix(Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))).data   # A A^T
array([[ 5., 11.],
       [11., 25.]])
"""

from . import functional as F
from .tensor import Tensor

CONTENT_NORMALIZATIONS = ("slide", "assignment")
DEFAULT_STYLE_LAYERS = (
    ("conv1_1", 0.2), ("conv2_1", 0.2), ("conv3_1", 0.2), ("conv4_1", 0.2), ("conv5_1", 0.2),
)


def content_cost(a_C, a_G, normalization="slide"):
    """J_content = 1/2 ||a_C - a_G||^2 ("slide") or 1/(4 n_H n_W n_C) sum (a_C - a_G)^2.

    a_C, a_G: the activations a^[l](C) and a^[l](G), (N, n_C, n_H, n_W),
    Tensors or arrays. For N > 1 the cost is summed over the images.
    """
    a_C, a_G = _as_tensor("a_C", a_C), _as_tensor("a_G", a_G)
    if a_C.shape != a_G.shape:
        raise ValueError(f"a_C and a_G must have the same shape, got {a_C.shape} and {a_G.shape}")
    if normalization not in CONTENT_NORMALIZATIONS:
        raise ValueError(
            f"normalization: expected 'slide' or 'assignment', got {normalization!r}")
    difference = a_C - a_G
    squared_sum = (difference * difference).sum()
    if normalization == "slide":
        return squared_sum * 0.5
    return squared_sum * (1.0 / (4 * _positions(a_G) * a_G.shape[1]))


def gram_matrix(A):
    """The style matrix G = A A^T, unnormalised, as on the slide.

    A is the assignment's unrolled (n_C, n_H n_W) matrix, giving (n_C, n_C),
    or activations (N, n_C, n_H, n_W), giving (N, n_C, n_C) with
    G_{kk'} = sum over positions of a_k a_k'.
    """
    A = _as_tensor("A", A)
    if A.ndim == 2:
        n_C = A.shape[0]
        G = F.gram_matrix(A.reshape(1, n_C, A.shape[1]))  # (n_C, P) -> (1, n_C, P)
        return G.reshape(n_C, n_C)  # (1, n_C, n_C) -> (n_C, n_C)
    if A.ndim != 4:
        raise ValueError(f"A: expected (n_C, n_H n_W) or (N, n_C, n_H, n_W), got shape {A.shape}")
    return F.gram_matrix(A)


def scaled_gram(a):
    """G^[l] / (2 n_H n_W n_C) for activations a of shape (N, n_C, n_H, n_W): (N, n_C, n_C)."""
    a = _checked_activation("a", a)
    return gram_matrix(a) * (1.0 / (2 * _positions(a) * a.shape[1]))


def layer_style_cost(a_S, a_G):
    """J_style^[l] = 1/(2 n_H n_W n_C)^2 sum_k sum_k' (G^[l](S)_{kk'} - G^[l](G)_{kk'})^2.

    a_S, a_G: the activations a^[l](S) and a^[l](G), (N, n_C, n_H, n_W). They
    may differ in n_H and n_W: each Gram matrix is then divided by its own
    image's 2 n_H n_W n_C (see the module docstring).
    """
    return layer_style_cost_from_gram(scaled_gram(a_S), a_G)


def layer_style_cost_from_gram(scaled_G_S, a_G):
    """J_style^[l] given the style image's scaled_gram, computed once: sum (G_S/k_S - G_G/k_G)^2."""
    a_G = _checked_activation("a_G", a_G)
    scaled_G_S = _as_tensor("scaled_G_S", scaled_G_S)
    if scaled_G_S.shape[-1] != a_G.shape[1]:
        raise ValueError(
            f"a_S and a_G must have the same number of channels n_C, got "
            f"{scaled_G_S.shape[-1]} and {a_G.shape[1]}")
    difference = scaled_G_S - scaled_gram(a_G)
    return (difference * difference).sum()


def style_cost(style_activations, generated_activations, layer_weights=DEFAULT_STYLE_LAYERS):
    """J_style = sum_l lambda^[l] J_style^[l](S, G).

    style_activations, generated_activations: dicts from layer name to
    a^[l](S) and a^[l](G). layer_weights: the lambda^[l], as a dict from
    layer name to weight or a list of (layer name, weight) pairs.
    """
    layer_weights = dict(layer_weights)
    for layer in layer_weights:
        if layer not in style_activations:
            raise ValueError(f"style_activations has no activation for layer {layer!r}")
    style_grams = {layer: scaled_gram(style_activations[layer]) for layer in layer_weights}
    return style_cost_from_grams(style_grams, generated_activations, layer_weights)


def style_cost_from_grams(style_grams, generated_activations, layer_weights=DEFAULT_STYLE_LAYERS):
    """J_style given the style image's scaled_gram per layer, computed once before the
    iterations (the Gram matrices of S do not change while G is optimised)."""
    J_style = None
    for layer, weight in dict(layer_weights).items():
        if layer not in generated_activations:
            raise ValueError(f"generated_activations has no activation for layer {layer!r}")
        term = layer_style_cost_from_gram(style_grams[layer], generated_activations[layer]) * weight
        J_style = term if J_style is None else J_style + term
    if J_style is None:
        raise ValueError("layer_weights: expected at least one layer, got none")
    return J_style


def total_cost(J_content, J_style, alpha=10, beta=40):
    """J(G) = alpha J_content(C, G) + beta J_style(S, G)."""
    return J_content * alpha + J_style * beta


def total_variation(G):
    """TV(G) = sum (G_{c,i+1,j} - G_{c,i,j})^2 + (G_{c,i,j+1} - G_{c,i,j})^2, G (N, 3, n_H, n_W).

    Squared differences of neighbouring pixels: small for smooth images, so
    adding it to J removes high-frequency noise.
    """
    G = _checked_activation("G", G)
    down = G[:, :, 1:, :] - G[:, :, :-1, :]
    right = G[:, :, :, 1:] - G[:, :, :, :-1]
    return (down * down).sum() + (right * right).sum()


# ------------------------------------------------------- the assignment's names

def compute_content_cost(a_C, a_G):
    """The assignment's J_content = 1/(4 n_H n_W n_C) sum (a_C - a_G)^2.

    Lists of outputs are accepted as the assignment passes them: their last
    entry is the content layer's activation.
    """
    if isinstance(a_C, (list, tuple)):
        a_C = a_C[-1]
    if isinstance(a_G, (list, tuple)):
        a_G = a_G[-1]
    return content_cost(a_C, a_G, normalization="assignment")


compute_layer_style_cost = layer_style_cost


def compute_style_cost(style_image_output, generated_image_output,
                       STYLE_LAYERS=DEFAULT_STYLE_LAYERS):
    """The assignment's J_style = sum_l lambda^[l] J_style^[l] over STYLE_LAYERS.

    The outputs are dicts from layer name to activation, or lists in the
    order of STYLE_LAYERS, (layer name, lambda) pairs; as in the assignment,
    list entries beyond the style layers (the content layer's) are ignored.
    """
    if isinstance(style_image_output, dict) or isinstance(generated_image_output, dict):
        return style_cost(style_image_output, generated_image_output, STYLE_LAYERS)
    pairs = list(zip(style_image_output, generated_image_output, STYLE_LAYERS))
    if len(pairs) < len(STYLE_LAYERS):
        raise ValueError(
            f"expected at least {len(STYLE_LAYERS)} outputs (one per style layer), "
            f"got {len(style_image_output)} and {len(generated_image_output)}")
    terms = [layer_style_cost(a_S, a_G) * weight for a_S, a_G, (_, weight) in pairs]
    J_style = terms[0]
    for term in terms[1:]:
        J_style = J_style + term
    return J_style


# ------------------------------------------------------------------- helpers

def _as_tensor(argument, value):
    if isinstance(value, Tensor):
        return value
    try:
        return Tensor(value)
    except TypeError as error:
        raise TypeError(f"{argument}: expected a Tensor or an array, got {type(value).__name__}") \
            from error


def _checked_activation(argument, a):
    """`a` as a Tensor of shape (N, n_C, n_H, n_W), or a ValueError naming `argument`."""
    a = _as_tensor(argument, a)
    if a.ndim != 4:
        raise ValueError(f"{argument}: expected shape (N, n_C, n_H, n_W), got {a.shape}")
    return a


def _positions(a):
    """n_H n_W of activations (N, n_C, n_H, n_W)."""
    return a.shape[2] * a.shape[3]
