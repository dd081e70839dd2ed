"""Classifier heads trained on cached frozen features.

Two heads, both trained with Adam and early stopping on the validation split
(best weights restored):

* "linear": one softmax layer on standardised features (the standardisation
  is the head's first layer, with the training features' mean and variance);
* "mlp": Dense(512, relu) -> Dropout(0.5) -> softmax.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np


HEADS = ("linear", "mlp")
# Bump when training changes, so cached head results are retrained.
HEAD_VERSION = 2


@dataclass(frozen=True)
class HeadConfig:
    """Hyperparameters of a head; all of them go into the head cache key."""

    kind: str = "linear"
    hidden: int = 512
    dropout: float = 0.5
    learning_rate: float = 3e-3
    batch_size: int = 128
    max_epochs: int = 100
    patience: int = 8

    def as_dict(self) -> dict:
        return asdict(self)


def build_head(config: HeadConfig, feature_dim: int, n_classes: int = 10, mean=None, variance=None,
               label_smoothing: float = 0.0):
    """A compiled Keras head: features (batch, feature_dim) -> softmax (batch, n_classes).

    With `mean`/`variance` the head starts with a fixed Normalization layer,
    so it takes raw features. Labels are one-hot (categorical cross-entropy).
    """
    import keras

    if config.kind not in HEADS:
        raise ValueError(f"unknown head {config.kind!r}; choose from {', '.join(HEADS)}")
    inputs = keras.Input((feature_dim,), name="features")
    x = inputs
    if mean is not None:
        x = keras.layers.Normalization(mean=mean, variance=variance, name="standardize")(x)
    if config.kind == "mlp":
        x = keras.layers.Dense(config.hidden, activation="relu", name="hidden")(x)
        x = keras.layers.Dropout(config.dropout, name="dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="classifier")(x)
    model = keras.Model(inputs, outputs, name=f"{config.kind}_head")
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                  metrics=["accuracy"])
    return model


def n_classes_of(*labels: np.ndarray) -> int:
    """Classes a head predicts: one past the largest label (the splits hold every class; CIFAR-10: 10)."""
    return int(max(np.max(y) for y in labels)) + 1


def one_hot(y: np.ndarray, n_classes: int = 10) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float32)[np.asarray(y).reshape(-1)]


def fit_head(config: HeadConfig, train: tuple, val: tuple, seed: int = 0, label_smoothing: float = 0.0,
             verbose: int = 0):
    """Fits a head on raw features with early stopping on `val`.

    Returns:
        `(model, epochs, seconds)`: the model takes raw float features
        (standardisation is its first layer) and has the best validation
        weights restored.
    """
    import keras

    keras.utils.set_random_seed(seed)
    x_train = np.asarray(train[0], dtype=np.float32)
    mean, variance = x_train.mean(axis=0), x_train.var(axis=0) + 1e-6
    n_classes = n_classes_of(train[1], val[1])
    model = build_head(config, x_train.shape[1], n_classes, mean=mean, variance=variance,
                       label_smoothing=label_smoothing)
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience,
                                         restore_best_weights=True)
    t0 = time.perf_counter()
    history = model.fit(x_train, one_hot(train[1], n_classes),
                        validation_data=(np.asarray(val[0], np.float32), one_hot(val[1], n_classes)),
                        epochs=config.max_epochs, batch_size=config.batch_size, callbacks=[stop],
                        verbose=verbose, shuffle=True)
    return model, len(history.history["loss"]), time.perf_counter() - t0
