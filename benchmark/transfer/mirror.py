"""Test-time mirroring inside the saved model, with built-in layers only.

The mirrored model averages the probabilities of an image and of its mirror
image. Keras has no deterministic flip layer (`RandomFlip` is the identity
at inference, and `Lambda` does not load in safe mode), so the width axis is
reversed by a frozen `Dense` layer whose kernel is the 32x32 anti-identity,
applied between two `Permute`s. Each output is one input times 1.0 plus
zeros, so the flip is exact (also under a GPU's TF32 or bfloat16 matmuls for
whole-number pixel values up to 255, which is what `preprocess_data` gives).
The model runs the network twice per image:
twice the inference time for whatever the validation split says it gains.
"""

from __future__ import annotations

import numpy as np

from ..core.data import flip_left_right
from ..core.metrics import accuracy
from .train import compiled

WIDTH = 32  # CIFAR-10 images are 32x32


mirror_images = flip_left_right  # the reference the model's flip is tested against


def mirrored_model(model):
    """`model` (32x32x3 images -> probabilities) wrapped to average it over the image and its mirror image.

    Returns:
        A compiled `keras.Model` with the same input and output shapes, holding
        `model` once (called twice), that loads with `safe_mode=True`.
    """
    import keras

    inputs = keras.Input((WIDTH, WIDTH, 3), name="cifar10_image")
    flip = keras.layers.Dense(WIDTH, use_bias=False, trainable=False, name="reverse_width")
    x = keras.layers.Permute((1, 3, 2), name="width_last")(inputs)  # (32 rows, 3 channels, 32 columns)
    x = keras.layers.Permute((1, 3, 2), name="width_back")(flip(x))
    flip.set_weights([np.eye(WIDTH, dtype=np.float32)[::-1]])
    outputs = keras.layers.Average(name="mirror_average")([model(inputs), model(x)])
    return compiled(keras.Model(inputs, outputs, name=f"{model.name}_mirrored"))


def mirror_gain(model, x_val: np.ndarray, y_val: np.ndarray, batch_size: int = 128) -> tuple[float, float]:
    """`(plain, mirrored)` validation accuracy of `model` on `x_val` (N, 32, 32, 3) in 0..255."""
    x = x_val.astype(np.float32)
    plain = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    flipped = np.asarray(model.predict(mirror_images(x), batch_size=batch_size, verbose=0))
    return accuracy(plain, y_val), accuracy(plain + flipped, y_val)
