"""Classifier heads trained on cached frozen features.

Two heads, both trained with Adam and early stopping on the validation split
(best weights restored):

* "linear": one softmax layer on standardised features;
* "mlp": Dense(512, relu) -> Dropout(0.5) -> softmax.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from .metrics import classification_report

HEADS = ("linear", "mlp")


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


def build_head(config: HeadConfig, feature_dim: int, n_classes: int = 10):
    """A compiled Keras head: float32 (batch, feature_dim) -> softmax (batch, n_classes)."""
    import keras

    if config.kind not in HEADS:
        raise ValueError(f"unknown head {config.kind!r}; choose from {', '.join(HEADS)}")
    inputs = keras.Input((feature_dim,), name="features")
    x = inputs
    if config.kind == "mlp":
        x = keras.layers.Dense(config.hidden, activation="relu", name="hidden")(x)
        x = keras.layers.Dropout(config.dropout, name="dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="classifier")(x)
    model = keras.Model(inputs, outputs, name=f"{config.kind}_head")
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scales every array with the training features' per-column mean and std."""
    train = train.astype(np.float32)
    mean = train.mean(axis=0)
    std = train.std(axis=0) + 1e-6
    return [(a.astype(np.float32) - mean) / std for a in (train, *others)]


def train_head(config: HeadConfig, train: tuple, val: tuple, test: tuple, seed: int = 0) -> dict:
    """Trains one head and measures it.

    Args:
        config: the head's settings.
        train, val, test: `(features (N, D), labels (N,))` pairs.
        seed: seeds Keras, numpy and Python, and the bootstrap.

    Returns:
        A dict with `val_acc`, `test_acc`, `test_ci_low`, `test_ci_high`,
        `per_class_acc`, `confusion`, `epochs`, `head_train_s`.
    """
    import keras

    keras.utils.set_random_seed(seed)
    x_train, x_val, x_test = standardize(train[0], val[0], test[0])
    model = build_head(config, x_train.shape[1])
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience,
                                         restore_best_weights=True)
    t0 = time.perf_counter()
    history = model.fit(x_train, train[1], validation_data=(x_val, val[1]), epochs=config.max_epochs,
                        batch_size=config.batch_size, callbacks=[stop], verbose=0, shuffle=True)
    train_s = time.perf_counter() - t0
    val_pred = model.predict(x_val, batch_size=1024, verbose=0).argmax(axis=1)
    test_pred = model.predict(x_test, batch_size=1024, verbose=0).argmax(axis=1)
    report = classification_report(test[1], test_pred, seed=seed)
    return {
        "val_acc": float((val_pred == val[1]).mean()),
        "test_acc": report["accuracy"],
        "test_ci_low": report["ci_low"],
        "test_ci_high": report["ci_high"],
        "per_class_acc": report["per_class"],
        "confusion": report["confusion"],
        "test_pred": test_pred.astype(int).tolist(),
        "epochs": len(history.history["loss"]),
        "head_train_s": train_s,
    }
