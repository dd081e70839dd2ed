"""Graph rewrites that keep a base's outputs and make it faster on CPU.

Keras writes ConvNeXt's 7x7 depthwise convolutions as `Conv2D(groups=C)`.
On CPU, the TensorFlow backend sends every grouped convolution through its
own XLA-compiled function (`keras.src.backend.tensorflow.nn.conv`: "grouped
convolutions are broken on CPU without XLA"), which is far slower than the
native depthwise kernel. A grouped convolution with one input channel per
group and one filter per group *is* a depthwise convolution, so it can be
swapped for `DepthwiseConv2D` with the same weights, transposed.
"""

from __future__ import annotations

import numpy as np


def _is_grouped_depthwise(layer) -> bool:
    """A plain Conv2D whose groups each see one input channel and make one output channel."""
    import keras

    if type(layer) is not keras.layers.Conv2D or layer.groups <= 1:
        return False
    in_channels = layer.kernel.shape[-2] * layer.groups
    return layer.groups == layer.filters == in_channels and layer.data_format == "channels_last"


def count_grouped_depthwise(model) -> int:
    """How many layers `grouped_to_depthwise` would replace."""
    return sum(_is_grouped_depthwise(layer) for layer in model._flatten_layers(include_self=False, recursive=True))


def grouped_to_depthwise(model):
    """A copy of the functional `model` with depthwise-shaped grouped Conv2D layers
    replaced by DepthwiseConv2D layers carrying the same weights.

    Returns `model` itself when it has no such layer. Every other layer is
    shared with `model`, not copied; the new layers keep the old ones' names,
    dtype policy and `trainable` flag. The outputs match the original's up to
    float round-off.
    """
    import keras

    if not count_grouped_depthwise(model):
        return model

    def clone(layer):
        if not _is_grouped_depthwise(layer):
            return layer  # shared, weights and all: no second copy of a 350M-parameter ConvNeXtXLarge
        return keras.layers.DepthwiseConv2D(
            kernel_size=layer.kernel_size, strides=layer.strides, padding=layer.padding,
            dilation_rate=layer.dilation_rate, depth_multiplier=1, use_bias=layer.use_bias,
            activation=layer.activation, name=layer.name, dtype=layer.dtype_policy)

    copy = keras.models.clone_model(model, clone_function=clone)
    for new in copy.layers:
        if not isinstance(new, keras.layers.DepthwiseConv2D):
            continue
        old = model.get_layer(new.name)
        if not _is_grouped_depthwise(old):
            continue
        kernel, *rest = old.get_weights()
        # Conv2D(groups=C) kernel (kh, kw, 1, C) -> DepthwiseConv2D kernel (kh, kw, C, 1)
        new.set_weights([np.transpose(kernel, (0, 1, 3, 2)), *rest])
        new.trainable = old.trainable
    copy.trainable = model.trainable
    return copy
