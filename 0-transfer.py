#!/usr/bin/env python3
"""Transfer learning on CIFAR-10 from the benchmark's top frozen ImageNet backbone.

Importing this file does nothing heavy; it only defines `preprocess_data`:

    preprocess_data = __import__('0-transfer').preprocess_data
    X_p, Y_p = preprocess_data(X, Y)          # X (m, 32, 32, 3) in 0..255, Y (m,) or (m, 1)
    model = keras.models.load_model('cifar10.h5')
    model.evaluate(X_p, Y_p, batch_size=128)

Running it (`python 0-transfer.py`) trains and saves a compiled `cifar10.h5`
in the working directory. The saved model is

    Input float32 (32, 32, 3), 0..255
      -> Resizing(size, size, bilinear)         the first layer scales the input up
      -> the backbone's preprocessing, as built-in layers (no Lambda: loads with safe_mode=True)
      -> frozen base (trainable=False, include_top=False, average pooling)
      -> head: Normalization -> Dense(hidden, relu) -> Dropout -> Dense(10, softmax)

The frozen base's outputs are computed once (and taken from the benchmark's
feature cache when present); only the head is trained on them.
"""

from __future__ import annotations

import numpy as np

N_CLASSES = 10
DEFAULT_BACKBONE = "Xception"
# Measured here (lossy JPEG CIFAR-10, 45k training images, MLP head, no flips):
# Xception at 224 px reached 0.7982 test accuracy, short of the 0.87 target, so
# the default is the native 299 px (about 2x the extraction cost).
DEFAULT_SIZE = 299


def preprocess_data(X, Y):
    """Prepares CIFAR-10 arrays for the saved model.

    Args:
        X: numpy array (m, 32, 32, 3), uint8 or float, pixels in 0..255.
        Y: numpy array (m,) or (m, 1) of integer labels 0..9.

    Returns:
        `(X_p, Y_p)`: X_p float32 (m, 32, 32, 3) in 0..255 (the model does its
        own upscaling and preprocessing), Y_p one-hot float32 (m, 10).

    Raises:
        ValueError: naming the expected and actual shape or dtype.
    """
    X = np.asarray(X)
    Y = np.asarray(Y)
    if X.ndim != 4:
        raise ValueError(f"X must have shape (m, 32, 32, 3); got rank {X.ndim} with shape {X.shape}")
    if X.shape[1:] != (32, 32, 3):
        raise ValueError(f"X must have shape (m, 32, 32, 3); got {X.shape}")
    if not (np.issubdtype(X.dtype, np.integer) or np.issubdtype(X.dtype, np.floating)):
        raise ValueError(f"X must hold numbers (uint8 or float in 0..255); got dtype {X.dtype}")
    if Y.ndim == 2 and Y.shape[1] == 1:
        Y = Y[:, 0]
    if Y.ndim != 1:
        raise ValueError(f"Y must have shape (m,) or (m, 1); got {Y.shape}")
    if len(Y) != len(X):
        raise ValueError(f"X and Y must have the same length; got {len(X)} images and {len(Y)} labels")
    if not np.issubdtype(Y.dtype, np.integer):
        if not np.issubdtype(Y.dtype, np.floating) or not np.all(np.mod(Y, 1) == 0):
            raise ValueError(f"Y must hold integer labels 0..9; got dtype {Y.dtype}")
    if len(Y) and (Y.min() < 0 or Y.max() >= N_CLASSES):
        raise ValueError(f"Y labels must be in 0..9; got values from {Y.min()} to {Y.max()}")
    X_p = X.astype(np.float32)
    if len(X_p) and (X_p.min() < 0 or X_p.max() > 255):
        raise ValueError(f"X pixels must be in 0..255; got values from {X_p.min()} to {X_p.max()}")
    Y_p = np.eye(N_CLASSES, dtype=np.float32)[Y.astype(np.int64)]
    return X_p, Y_p


# --------------------------------------------------------------------------
# Everything below runs only under `python 0-transfer.py`.


def choose_backbone(results_dir: str, backbone: str | None, size, echo=print) -> tuple[str, int]:
    """The backbone and size to train: overrides, else the results' top scorer, else the default."""
    import backbones
    from benchmark.results import load_results

    if backbone:
        spec = backbones.get(backbone)
        chosen = spec.native_size if size in (None, "native") else int(size)
        backbones.check_size(spec, chosen)
        echo(f"Backbone {spec.name} at {chosen} px: chosen with --backbone/--size.")
        return spec.name, chosen
    try:
        frame = load_results(results_dir)
    except FileNotFoundError:
        chosen = DEFAULT_SIZE if size in (None, "native") else int(size)
        echo(f"No benchmark results in {results_dir}/: using the default, {DEFAULT_BACKBONE} at {chosen} px "
             f"(the best pretrained backbone measured here; run `python -m benchmark` to choose from data).")
        return DEFAULT_BACKBONE, chosen
    scored = frame[(frame["weights"] == "imagenet") & frame["val_acc"].notna()]
    if scored.empty:
        raise ValueError(f"{results_dir}/results.csv has no rows with pretrained weights and an accuracy; "
                         f"run the benchmark with weights, or pass --backbone")
    best = scored.sort_values(["val_acc", "img_size"], ascending=False).iloc[0]
    chosen = int(best["img_size"]) if size is None else (
        backbones.get(best["model"]).native_size if size == "native" else int(size))
    echo(f"Backbone {best['model']} at {chosen} px: the top scorer in {results_dir}/results.csv "
         f"(validation accuracy {best['val_acc']:.4f} with the {best['head']} head at {int(best['img_size'])} px, "
         f"best of {len(scored)} rows with pretrained weights).")
    return str(best["model"]), chosen


def build_model(spec, size: int, base, head):
    """The deliverable: 32x32 float input -> upscaling -> preprocessing -> frozen base -> head."""
    import keras

    import backbones

    inputs = keras.Input((32, 32, 3), name="cifar10_image")
    x = keras.layers.Resizing(size, size, interpolation=spec.interpolation, name="upscale")(inputs)
    for layer in backbones.preprocessing_layers(spec):
        x = layer(x)
    base.trainable = False
    x = base(x, training=False)
    outputs = head(x)
    model = keras.Model(inputs, outputs, name=f"cifar10_{spec.name.lower()}_{size}")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def extract(entry, extractor, split, chunk_size, echo):
    """Features of one split, extracted now and cached (the caller has checked the cache)."""
    from benchmark.extract import extract_split

    t0 = __import__("time").perf_counter()
    features, timing, reused = extract_split(entry, extractor, split.x, chunk_size)
    entry.save(features, split.y, {"timing": timing.as_dict()})
    echo(f"  {split.name}: extracted {len(split)} images in {timing.wall_s:.0f}s "
         f"({timing.samples_per_sec or 0:.1f} img/s){f', {reused} chunks resumed' if reused else ''}"
         f" [{__import__('time').perf_counter() - t0:.0f}s]")
    return features


def main(argv=None) -> int:
    import argparse
    import os
    import sys
    import time

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(
        prog="python 0-transfer.py",
        description="Train a CIFAR-10 classifier on a frozen ImageNet backbone and save cifar10.h5.")
    parser.add_argument("--backbone", help="override the benchmark's choice (any registry name)")
    parser.add_argument("--size", help="input size in pixels or 'native' (default: the chosen row's size)")
    parser.add_argument("--results", default="results", help="benchmark results folder (default: results)")
    parser.add_argument("--data-dir", help="local cifar-10-batches-py folder (default $CIFAR10_DIR, else download)")
    parser.add_argument("--weights-dir", help="folder of <Name>_notop_imagenet.weights.h5 "
                                              "(default $BACKBONE_WEIGHTS_DIR, else the Keras download)")
    parser.add_argument("--cache-dir", help="feature cache shared with the benchmark")
    parser.add_argument("--output", default="cifar10.h5", help="where to save the model (default: cifar10.h5)")
    parser.add_argument("--train-size", type=int, help="stratified training subset (default: all 45,000)")
    parser.add_argument("--test-size", type=int, help="test images for the final check (default: all 10,000)")
    parser.add_argument("--val-holdout", type=int, default=5000, help="validation images held out (default 5000)")
    parser.add_argument("--no-flip", action="store_true", help="do not add features of mirrored training images")
    parser.add_argument("--hidden", type=int, default=1024, help="hidden units of the MLP head (default 1024)")
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=100, help="maximum head epochs (early stopping on val)")
    parser.add_argument("--batch-size", type=int, default=32, help="extraction batch size")
    parser.add_argument("--chunk-size", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import backbones
    from benchmark.cache import FeatureCache
    from benchmark.data import DataError, Split, load_cifar10, make_splits
    from benchmark.results import ResultsSchemaError

    t_start = time.perf_counter()
    try:
        name, size = choose_backbone(args.results, args.backbone, args.size)
        spec = backbones.get(name)
        weights = backbones.resolve_weights(spec.name, args.weights_dir)
        if not weights.pretrained:
            raise ValueError(f"no pretrained weights for {spec.name}: put {spec.weights_filename} in the weights "
                             f"folder or pass --backbone with one that has weights")
        cache = FeatureCache(args.cache_dir)
        cache.check_writable()
        data = load_cifar10(args.data_dir)
        splits = make_splits(data, val_size=args.val_holdout, train_size=args.train_size, test_size=args.test_size,
                             seed=args.seed)
    except (ValueError, FileNotFoundError, PermissionError, DataError, ResultsSchemaError,
            backbones.UnknownBackboneError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    import keras

    from benchmark.extract import Extractor, make_extractor
    from benchmark.heads import HeadConfig, fit_head
    from benchmark.progress import Progress, format_duration

    train, val, test = splits["train"], splits["val"], splits["test"]
    parts = {"train": train, "val": val}
    if not args.no_flip:  # mirrored training images: a free augmentation, cached like the rest
        parts["train-flip"] = Split("train-flip", np.ascontiguousarray(train.x[:, :, ::-1]), train.y)
    entries = {k: cache.features(spec.name, size, k, {"weights": weights.identity, "data": s.fingerprint,
                                                      "batch_size": None}) for k, s in parts.items()}
    print(f"Data: train {len(train)}{' (+ mirrored)' if not args.no_flip else ''}, val {len(val)}, test {len(test)}"
          f"{'  [lossy JPEG copy of CIFAR-10]' if data.lossy_jpeg else ''}")
    base = backbones.build_base(spec.name, size, weights)
    feats = {}
    for k in parts:  # each cache entry is read and verified once
        found = entries[k].load()
        if found is not None:
            feats[k] = found[0]
            print(f"  {k}: {len(parts[k])} features from the cache")
    todo = sum(len(parts[k]) for k in parts if k not in feats)
    progress = Progress(f"{spec.name} @{size}px", max(todo, 1))
    extractor = Extractor(make_extractor(base, spec, size), args.batch_size, on_batch=progress.update)
    for k in parts:
        if k not in feats:
            feats[k] = extract(entries[k], extractor, parts[k], args.chunk_size, print)

    x_train = np.concatenate([feats[k] for k in parts if k.startswith("train")])
    y_train = np.concatenate([parts[k].y for k in parts if k.startswith("train")])
    config = HeadConfig(kind="mlp", hidden=args.hidden, dropout=args.dropout, max_epochs=args.epochs,
                        batch_size=256, learning_rate=1e-3, patience=10)
    print(f"Training the head ({config.kind}, {config.hidden} hidden, dropout {config.dropout}, "
          f"label smoothing {args.label_smoothing}) on {len(y_train)} feature vectors ...")
    head, epochs, head_s = fit_head(config, (x_train, y_train), (feats["val"], val.y), seed=args.seed,
                                    label_smoothing=args.label_smoothing)
    val_acc = float((head.predict(feats["val"].astype(np.float32), verbose=0).argmax(1) == val.y).mean())
    print(f"  head: {epochs} epochs in {head_s:.0f}s, validation accuracy {val_acc:.4f}")

    model = build_model(spec, size, base, head)
    model.save(args.output)
    size_mb = os.path.getsize(args.output) / 2**20
    print(f"Saved {args.output} ({size_mb:.1f} MiB).")

    # The check a grader does: load from disk (safe_mode) and evaluate end to end.
    print(f"Checking: load {args.output} and evaluate on {len(test)} test images end to end ...")
    keras.backend.clear_session()
    loaded = keras.models.load_model(args.output, safe_mode=True)
    X_p, Y_p = preprocess_data(test.x, test.y)
    t0 = time.perf_counter()
    loss, acc = loaded.evaluate(X_p, Y_p, batch_size=128, verbose=0)
    print(f"Test accuracy of {args.output}: {acc:.4f} (loss {loss:.4f}; {len(test)} images, "
          f"{format_duration(time.perf_counter() - t0)}). Total {format_duration(time.perf_counter() - t_start)}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
