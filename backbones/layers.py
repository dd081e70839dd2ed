"""`preprocess_input` as built-in Keras layers, for models saved to disk.

A saved `Lambda` is arbitrary Python and will not load under
`keras.models.load_model(..., safe_mode=True)`. These layers reproduce each
preprocessing mode with stock layers whose config is plain data.
"""

from __future__ import annotations

import numpy as np

from .registry import BackboneSpec

IMAGENET_MEAN_RGB = np.array([0.485, 0.456, 0.406])
IMAGENET_STD_RGB = np.array([0.229, 0.224, 0.225])
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])

# The name `upscaling_model` gives its `Resizing` layer, for code that finds that layer in a built or saved model.
UPSCALE_LAYER = "upscale"


def preprocessing_layers(spec: BackboneSpec) -> list:
    """Layers mapping float RGB in 0..255, shape (..., 3), to the backbone's input.

    Equivalent to `spec.preprocess_input` (tests check each mode).
    """
    import keras

    mode = spec.preprocessing
    if mode == "builtin":  # the model rescales inside its own graph
        return []
    if mode == "tf":
        return [keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_minus1_1")]
    if mode == "torch":
        return [keras.layers.Rescaling(1 / 255.0, name="to_0_1"),
                keras.layers.Normalization(mean=IMAGENET_MEAN_RGB, variance=IMAGENET_STD_RGB ** 2,
                                           name="imagenet_normalize")]
    if mode == "caffe":
        # RGB -> BGR and mean subtraction as one frozen 3x3 channel mix plus bias.
        flip = keras.layers.Dense(3, name="rgb_to_bgr_minus_mean", trainable=False)
        flip.build((None, 3))
        flip.set_weights([np.eye(3)[::-1].astype("float32"), (-CAFFE_MEAN_BGR).astype("float32")])
        return [flip]
    raise ValueError(f"unknown preprocessing mode {mode!r} for {spec.name}")


def upscaling_model(spec: BackboneSpec, size: int, base, head, name: str | None = None):
    """The end-to-end classifier, uncompiled: `Input(32, 32, 3)` float RGB in 0..255
    -> `Resizing` to (size, size) -> `preprocessing_layers(spec)` -> frozen `base`
    -> `head`. Only built-in layers, so a saved copy loads with `safe_mode=True`.
    """
    import keras

    inputs = keras.Input((32, 32, 3), name="cifar10_image")
    x = keras.layers.Resizing(size, size, interpolation=spec.interpolation, name=UPSCALE_LAYER)(inputs)
    for layer in preprocessing_layers(spec):
        x = layer(x)
    base.trainable = False
    return keras.Model(inputs, head(base(x, training=False)), name=name)
