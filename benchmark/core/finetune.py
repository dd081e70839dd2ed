"""Fine-tuning the last block of a base on cached activations.

The base is cut at a layer (the spec's `finetune_cut`): everything below the
cut stays frozen, and its output maps are extracted once and cached like
pooled features. Only the part above the cut (for DenseNet121 at 224 px, the
conv5 block on 7x7x512 maps) is trained, together with the head. That costs a
few percent of a pass through the whole network per image, so several
epochs fit on a CPU.

BatchNormalization layers above the cut stay in inference mode (Keras runs a
non-trainable BatchNormalization with its moving statistics), which keeps the
ImageNet statistics instead of re-estimating them from small batches.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from backbones import PRECISIONS, check_precision

from .heads import one_hot
from .metrics import accuracy

# Bump when fine-tuning changes, so cached fine-tuned weights are not reused.
FINETUNE_VERSION = 1
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class FineTuneConfig:
    """Hyperparameters of the fine-tuning stage.

    Attributes:
        learning_rate: Adam learning rate for the unfrozen block and the head.
        epochs: maximum epochs; the best epoch on the validation split is kept.
        patience: epochs without a better validation accuracy before stopping.
        batch_size: maps per step.
        flip: mirror the cached maps left-right at random as augmentation.
        label_smoothing: of the categorical cross-entropy.
        shift: translate the cached maps at random by up to this many cells
            each way (edge cells repeated), as augmentation; 0: none. One
            cell of DenseNet121's 10x10 `pool3_pool` maps at 160 px is 16
            input pixels, 3.2 pixels of the 32x32 image.
        schedule: of the learning rate, one of `SCHEDULES`: "constant", or
            "cosine": from `learning_rate` down to 0 along a half cosine over
            `epochs` epochs, step by step (with `epochs` set to where the
            validation accuracy peaks, the last epochs take smaller steps).
        precision: of the trained part's compute while it trains, one of
            `backbones.PRECISIONS`: "fp32", or "bf16" (Keras's
            `mixed_bfloat16`: bfloat16 compute, float32 weights, head in
            float32). The part is back in float32 afterwards, so the saved
            model is float32 either way.
    """

    learning_rate: float = 1e-4
    epochs: int = 6
    patience: int = 2
    batch_size: int = 64
    flip: bool = True
    label_smoothing: float = 0.1
    shift: int = 0
    schedule: str = "constant"
    precision: str = "fp32"

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"the fine-tuning schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        check_precision(self.precision)

    def as_dict(self) -> dict:
        settings = asdict(self)
        # Settings from before `shift`, `schedule` and `precision` existed keep their cache keys.
        if not self.shift:
            del settings["shift"]
        if self.schedule == "constant":
            del settings["schedule"]
        if self.precision == "fp32":
            del settings["precision"]
        return settings

    def rate(self, steps_per_epoch: int):
        """The stage's learning rate for Adam: a number, or a Keras schedule of the step."""
        import keras

        if self.schedule == "cosine":
            return keras.optimizers.schedules.CosineDecay(self.learning_rate, self.epochs * steps_per_epoch)
        return self.learning_rate


def _own_nodes(model) -> dict:
    """`{layer name: the node where `model`'s own graph calls it}`.

    A layer can belong to two graphs (ConvNeXt's depthwise rewrite calls the
    original layers again), and `layer.output` is always its first call's.
    """
    nodes, todo, seen = {}, list(model.outputs), set()
    while todo:
        tensor = todo.pop()
        operation, node_index, _ = tensor._keras_history
        node = operation._inbound_nodes[node_index]
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes.setdefault(operation.name, node)
        todo.extend(node.input_tensors)
    return nodes


def cut_tensors(base, cut: str) -> list:
    """The tensors of `base`'s own graph that `cut` names (forms: see `backbones.registry._FINETUNE_CUTS`).

    Raises:
        ValueError: when a named layer is not in `base`.
    """
    nodes, tensors = _own_nodes(base), []
    for part in cut.split("+"):
        name, _, which = part.partition(".")
        if which not in ("", "input"):
            raise ValueError(f"cut {cut!r}: {part!r} must be a layer name or '<layer>.input'")
        if name not in nodes:
            raise ValueError(f"{base.name} has no layer {name!r} to cut at (cut {cut!r})")
        node = nodes[name]
        tensors.append(node.input_tensors[0] if which == "input" else node.output_tensors[0])
    return tensors


def split_base(base, cut: str):
    """Splits a built base at `cut`.

    Args:
        base: a `keras.Model` from `backbones.build_base`.
        cut: a registry `finetune_cut`: a layer name, "<layer>.input", or
            several of those joined by "+".

    Returns:
        `(bottom, top)`: `bottom` maps the base's input to the cut's maps
        (N, h, w, c), `top` maps those maps to the base's pooled features.
        A cut of several tensors of the same h x w is one map, concatenated
        along channels, which `top` splits again. Both share their layers
        (and weights) with `base`, so training `top` changes `base`.

    Raises:
        ValueError: when `base` has no layer the cut names.
    """
    import keras

    tensors = cut_tensors(base, cut)
    if len(tensors) == 1:
        bottom = keras.Model(base.input, tensors[0], name=f"{base.name}_below_cut")
        return bottom, keras.Model(tensors[0], base.output, name=f"{base.name}_above_cut")
    above = keras.Model(tensors, base.output, name=f"{base.name}_above_cut_parts")
    bottom = keras.Model(base.input, keras.layers.Concatenate(name="cut_maps")(tensors), name=f"{base.name}_below_cut")
    maps = keras.Input(bottom.output.shape[1:], name="cut_maps")
    widths = np.cumsum([0] + [t.shape[-1] for t in tensors])
    parts = [maps[..., int(a):int(b)] for a, b in zip(widths[:-1], widths[1:])]
    return bottom, keras.Model(maps, above(parts), name=f"{base.name}_above_cut")


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):  # a nested model (a multi-tensor cut's top)
            yield from _all_layers(layer)


def trainable_params(*models) -> int:
    """Trainable parameters of `models` together (the project's one count of them)."""
    return int(sum(np.prod(w.shape) for model in models for w in model.trainable_weights))


def unfreeze(top) -> int:
    """Makes `top` trainable except its BatchNormalization layers; returns trainable parameters."""
    import keras

    top.trainable = True
    # Set per layer: `top` shares its layers with a frozen base, and setting
    # `top.trainable` alone leaves them frozen.
    for layer in _all_layers(top):
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    return trainable_params(top)


def freeze(top) -> None:
    for layer in _all_layers(top):
        layer.trainable = False


@contextmanager
def computing_in(top, precision: str):
    """`top`'s layers compute in `precision`'s Keras dtype policy inside the block, and in their own after.

    Only the compute dtype changes: variables stay float32 under "mixed_bfloat16", so the trained weights
    are the float32 model's own. A function traced inside the block keeps the policy it was traced with.
    """
    if precision == "fp32":  # the layers' own policies (float32): nothing to switch
        yield top
        return
    layers = list(_all_layers(top))
    own = [layer.dtype_policy for layer in layers]
    for layer in layers:
        layer.dtype_policy = PRECISIONS[precision]
    try:
        yield top
    finally:
        for layer, policy in zip(layers, own):
            layer.dtype_policy = policy


class _EpochLog:
    """Keras callback printing one line per epoch (these epochs take minutes)."""

    def __new__(cls, echo):
        import keras

        class Log(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                echo(f"  fine-tune epoch {epoch + 1}: loss {logs.get('loss', float('nan')):.4f}, "
                     f"train acc {logs.get('accuracy', float('nan')):.4f}, "
                     f"val acc {logs.get('val_accuracy', float('nan')):.4f} "
                     f"[{time.perf_counter() - self.t0:.0f}s]")

        return Log()


def pooled_features(top, maps: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Frozen `top` over cached maps, in batches (a float32 copy of all maps would not fit)."""
    out = [np.asarray(top.predict_on_batch(maps[i:i + batch_size].astype(np.float32)))
           for i in range(0, len(maps), batch_size)]
    return np.concatenate(out).astype(np.float32)


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int, n_classes: int = 10,
             views: tuple = ()):
    """A `keras.utils.PyDataset` of float32 batches cut from float16 maps on the fly.

    Passing the float16 arrays to `fit` directly would make Keras copy them
    all to float32 first: 4.5 GB for 45,000 7x7x512 maps. `views` are maps
    of other versions of the same images (e.g. JPEG re-encoded), in the same
    order: each epoch takes each image's maps from `x` or one of the views,
    drawn at random, so an epoch costs the same with or without them.
    """
    import keras

    for view in views:
        if view.shape != x.shape:
            raise ValueError(f"each view must hold maps of the same images as the training maps, shape {x.shape}; "
                             f"got {view.shape}")
    sources = (x, *views)

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = np.arange(len(x))
            self.source = np.zeros(len(x), np.int64)
            self.on_epoch_end()

        def __len__(self):
            return -(-len(x) // batch_size)

        def __getitem__(self, i):
            idx = np.sort(self.order[i * batch_size:(i + 1) * batch_size])
            if not views:
                return x[idx].astype(np.float32), one_hot(y[idx], n_classes)
            out = np.empty((len(idx), *x.shape[1:]), np.float32)
            for k, maps in enumerate(sources):
                take = self.source[idx] == k
                if take.any():
                    out[take] = maps[idx[take]]  # sorted indices: sequential reads of memory-mapped maps
            return out, one_hot(y[idx], n_classes)

        def on_epoch_end(self):
            if shuffle:
                self.rng.shuffle(self.order)
            if len(sources) > 1:
                self.source = self.rng.integers(0, len(sources), size=len(x))

    return Batches()


class FineTuneResult(NamedTuple):
    epochs: int
    seconds: float
    val_acc: float  # of the kept (best) epoch, in float32
    trainable_params: int  # the block above the cut and the head
    history: dict  # per-epoch loss, accuracy, val_loss, val_accuracy


def fine_tune(top, head, train: tuple, val: tuple, config: FineTuneConfig, seed: int = 0,
              echo=print, views: tuple = ()) -> FineTuneResult:
    """Trains `top` and `head` together on cached maps.

    Args:
        top: the part of the base above the cut (from `split_base`).
        head: a head from `benchmark.core.heads.fit_head`, already trained on
            the frozen features (a good start keeps the block from drifting).
        train, val: `(maps (N, h, w, c) float16/float32, labels (N,))`.
        config: the stage's settings.
        views: maps of other versions of the training images (same order and shape as `train`'s):
            each epoch draws each image's maps from `train` or a view at random.

    Returns:
        A `FineTuneResult`: epochs run, wall time, the validation accuracy
        of the kept (best) weights, the parameters trained (block and head)
        and the per-epoch curves. `top` and `head` hold the kept weights
        afterwards.
    """
    import keras

    keras.utils.set_random_seed(seed)
    trainable = unfreeze(top) + trainable_params(head)
    inputs = keras.Input(train[0].shape[1:], name="cut_maps")
    x = keras.layers.RandomFlip("horizontal", seed=seed, name="flip")(inputs) if config.flip else inputs
    if config.shift:
        h, w = train[0].shape[1:3]
        x = keras.layers.RandomTranslation(config.shift / h, config.shift / w, fill_mode="nearest",
                                           interpolation="nearest", seed=seed, name="shift")(x)
    model = keras.Model(inputs, head(top(x)), name="fine_tune")
    n_classes = int(head.outputs[0].shape[-1])
    batches = _batches(train[0], train[1], config.batch_size, True, seed, n_classes, views)
    model.compile(optimizer=keras.optimizers.Adam(config.rate(len(batches))),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                  metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience,
                                         restore_best_weights=True)
    t0 = time.perf_counter()
    # The head keeps its float32 policy: it casts the part's bfloat16 features up, and the loss is float32.
    with computing_in(top, config.precision):
        history = model.fit(batches,
                            validation_data=_batches(val[0], val[1], 256, False, seed, n_classes),
                            epochs=config.epochs, callbacks=[stop, _EpochLog(echo)], verbose=0)
    freeze(top)
    curves = {k: [float(v) for v in values] for k, values in history.history.items()}
    val_acc = float(max(curves["val_accuracy"]))
    if config.precision != "fp32":  # the kept weights scored as they are saved, in float32 (curves: as trained)
        val_acc = accuracy(head.predict(pooled_features(top, val[0]), batch_size=1024, verbose=0), val[1])
    return FineTuneResult(len(curves["loss"]), time.perf_counter() - t0, val_acc, trainable, curves)
