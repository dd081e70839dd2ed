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
      -> base (trainable=False, include_top=False, average pooling)
      -> head: Normalization -> Dense(hidden, relu) -> Dropout -> Dense(10, softmax)

Training, for a backbone with a fine-tuning cut in the registry (DenseNet,
ResNet): the base below the cut stays frozen and its output maps are computed
once and cached; the head is trained on the pooled features of the frozen
base, then the last block and the head are fine-tuned together on the cached
maps (mirrored at random). For other backbones, or with --no-fine-tune, only
the head is trained, on features of the training images and of their mirror
images. By default (DEFAULT_ENSEMBLE, `--ensemble`) Xception and MobileNet branches,
each a frozen base with an MLP head on its cached features, share the
Resizing layer, and their probabilities are added to the main model's with
weights chosen on the validation split. The finished model file is cached
too, so a rerun with the same settings only repeats the end-to-end check.
"""

from __future__ import annotations

import numpy as np

N_CLASSES = 10
# Measured here on 3,000 training images at 224 px with the MLP head:
# DenseNet121 0.773 validation accuracy against Xception's 0.749, at 1.7x
# Xception's extraction speed; it also has a fine-tuning cut.
DEFAULT_BACKBONE = "DenseNet121"
DEFAULT_SIZE = 224
# Members added by default (see --ensemble). Measured here at 224 px:
# fine-tuned DenseNet121 alone 0.8485 test accuracy; with these two head-only
# members (validation-chosen weights 0.5 and 0.75) 0.8819.
DEFAULT_ENSEMBLE = ("Xception", "MobileNet")


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
    native = backbones.get(best["model"]).native_size
    # The benchmark's quick default scores at reduced sizes; accuracy grows with
    # the size, so the final model never goes below the native size.
    chosen = max(int(best["img_size"]), native) if size in (None, "native") else int(size)
    echo(f"Backbone {best['model']} at {chosen} px: the top scorer in {results_dir}/results.csv "
         f"(validation accuracy {best['val_acc']:.4f} with the {best['head']} head at {int(best['img_size'])} px, "
         f"best of {len(scored)} rows with pretrained weights)"
         f"{f'; trained at its native {native} px, not below' if chosen > int(best['img_size']) else ''}.")
    return str(best["model"]), chosen


def build_model(spec, size: int, base, head):
    """The deliverable: 32x32 float input -> upscaling -> preprocessing -> frozen base -> head."""
    import keras

    import backbones

    model = backbones.upscaling_model(spec, size, base, head, name=f"cifar10_{spec.name.lower()}_{size}")
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


def train_and_save(args, spec, size, weights, cache, train, val, cut, flip_features, head_config, ft_config) -> float:
    """Extracts (or loads) features, trains, and saves the model to `args.output`; returns validation accuracy."""
    import backbones
    from benchmark.atomic import atomic_path
    from benchmark.cache import feature_key_parts
    from benchmark.data import Split
    from benchmark.extract import Extractor, make_extractor
    from benchmark.finetune import fine_tune, pooled_features, split_base
    from benchmark.heads import fit_head
    from benchmark.progress import Progress

    parts = {"train": train, "val": val}
    if flip_features:  # mirrored training images: a free augmentation, cached like the rest
        parts["train-flip"] = Split("train-flip", np.ascontiguousarray(train.x[:, :, ::-1]), train.y)
    base = backbones.build_base(spec.name, size, weights)
    bottom, top = split_base(base, cut) if cut else (base, None)
    entries = {k: cache.features(spec.name, size, k if not cut else f"{k}@{cut}",
                                 feature_key_parts(spec, weights, s, cut=cut))
               for k, s in parts.items()}
    feats = {}
    for k in parts:  # each cache entry is read and verified once
        found = entries[k].load()
        if found is not None:
            feats[k] = found[0]
            print(f"  {k}: {len(parts[k])} {'maps at ' + cut if cut else 'features'} from the cache")
    todo = sum(len(parts[k]) for k in parts if k not in feats)
    progress = Progress(f"{spec.name} @{size}px{' up to ' + cut if cut else ''}", max(todo, 1))
    extractor = Extractor(make_extractor(bottom, spec, size), args.batch_size, on_batch=progress.update)
    for k in parts:
        if k not in feats:
            feats[k] = extract(entries[k], extractor, parts[k], args.chunk_size, print)

    if cut:
        print(f"Pooling the frozen {spec.name} features above {cut} ...")
        maps = feats
        feats = {k: pooled_features(top, maps[k]) for k in parts}
    x_train = np.concatenate([feats[k] for k in parts if k.startswith("train")])
    y_train = np.concatenate([parts[k].y for k in parts if k.startswith("train")])
    print(f"Training the head ({head_config.kind}, {head_config.hidden} hidden, dropout {head_config.dropout}, "
          f"label smoothing {args.label_smoothing}) on {len(y_train)} frozen feature vectors ...")
    head, epochs, head_s = fit_head(head_config, (x_train, y_train), (feats["val"], val.y), seed=args.seed,
                                    label_smoothing=args.label_smoothing)
    val_acc = float((head.predict(feats["val"].astype(np.float32), verbose=0).argmax(1) == val.y).mean())
    print(f"  head: {epochs} epochs in {head_s:.0f}s, validation accuracy {val_acc:.4f} (frozen base)")
    if cut:
        print(f"Fine-tuning {spec.name} above {cut} with the head (lr {ft_config.learning_rate}, at most "
              f"{ft_config.epochs} epochs, {'random mirroring, ' if ft_config.flip else ''}"
              f"BatchNorm frozen) on {len(train)} cached maps ...")
        ft_epochs, ft_s, ft_val = fine_tune(top, head, (maps["train"], train.y), (maps["val"], val.y),
                                            ft_config, seed=args.seed)
        print(f"  fine-tune: {ft_epochs} epochs in {ft_s:.0f}s, validation accuracy {ft_val:.4f} "
              f"({ft_val - val_acc:+.4f} over the frozen base)")
        val_acc = ft_val
    model = build_model(spec, size, base, head)
    with atomic_path(args.output) as tmp:
        model.save(tmp)
    return val_acc


def parse_member(text: str, size: int) -> str:
    """`Name` or `Name@size` -> a registry name; the size must match the main model's."""
    import backbones

    name, _, at = text.partition("@")
    spec = backbones.get(name)
    if at and int(at) != size:
        raise ValueError(f"--ensemble {text}: members share the model's first Resizing layer, so they run at "
                         f"{size} px like the main backbone; pass {spec.name} or {spec.name}@{size}")
    return spec.name


def default_members(main: str, weights_dir: str | None, echo=print) -> list[str]:
    """DEFAULT_ENSEMBLE without the main backbone and without members whose weights are missing."""
    import backbones

    members, missing = [], []
    for name in DEFAULT_ENSEMBLE:
        if name != main:
            (members if backbones.resolve_weights(name, weights_dir).pretrained else missing).append(name)
    if missing:
        echo(f"Ensemble: leaving out {', '.join(missing)} (no pretrained weights at hand).")
    if members:
        echo(f"Ensemble: adding {', '.join(members)} by default (--ensemble none for the single model).")
    return members


def frozen_features(spec, size, weights, cache, split, base, batch_size, chunk_size):
    """Pooled features of `split` through a frozen base, from the cache or extracted now."""
    from benchmark.cache import feature_key_parts
    from benchmark.extract import Extractor, make_extractor
    from benchmark.progress import Progress

    entry = cache.features(spec.name, size, split.name, feature_key_parts(spec, weights, split))
    found = entry.load()
    if found is not None:
        print(f"  {spec.name} {split.name}: {len(split)} features from the cache")
        return found[0]
    progress = Progress(f"{spec.name} @{size}px {split.name}", len(split))
    return extract(entry, Extractor(make_extractor(base, spec, size), batch_size, on_batch=progress.update),
                   split, chunk_size, print)


def train_member(name, size, args, cache, train, val, head_config):
    """An ensemble member: a frozen base and an MLP head trained on its cached features.

    Returns `(branch, val_probs)`: `branch` maps upscaled images (size, size, 3)
    in 0..255 to class probabilities.
    """
    import keras

    import backbones
    from benchmark.heads import fit_head

    spec = backbones.get(name)
    weights = backbones.resolve_weights(spec.name, args.weights_dir)
    if not weights.pretrained:
        raise ValueError(f"no pretrained weights for ensemble member {spec.name}: put {spec.weights_filename} "
                         f"in the weights folder")
    base = backbones.build_base(spec.name, size, weights)
    feats = {s.name: frozen_features(spec, size, weights, cache, s, base, args.batch_size, args.chunk_size)
             for s in (train, val)}
    head, epochs, head_s = fit_head(head_config, (feats["train"], train.y), (feats["val"], val.y), seed=args.seed,
                                    label_smoothing=args.label_smoothing)
    probs = head.predict(feats["val"].astype(np.float32), verbose=0)
    print(f"  member {spec.name}: head {epochs} epochs in {head_s:.0f}s, "
          f"validation accuracy {(probs.argmax(1) == val.y).mean():.4f}")
    inputs = keras.Input((size, size, 3), name=f"{spec.name.lower()}_input")
    x = inputs
    for layer in backbones.preprocessing_layers(spec):
        x = layer(x)
    branch = keras.Model(inputs, head(base(x, training=False)), name=f"member_{spec.name.lower()}")
    return branch, probs


def single_val_probs(single, spec, size, weights, cache, val, cut, args):
    """Validation probabilities of the saved single model, from cached features or maps."""
    import keras

    from benchmark.cache import feature_key_parts
    from benchmark.extract import Extractor, make_extractor
    from benchmark.finetune import pooled_features, split_base

    base = next(layer for layer in single.layers if isinstance(layer, keras.Model))
    head = single.layers[-1]
    if cut:
        bottom, top = split_base(base, cut)
        entry = cache.features(spec.name, size, f"val@{cut}", feature_key_parts(spec, weights, val, cut=cut))
        found = entry.load()
        maps = found[0] if found is not None else extract(
            entry, Extractor(make_extractor(bottom, spec, size), args.batch_size), val, args.chunk_size, print)
        return head.predict(pooled_features(top, maps), verbose=0)
    feats = frozen_features(spec, size, weights, cache, val, base, args.batch_size, args.chunk_size)
    return head.predict(feats.astype(np.float32), verbose=0)


def choose_weights(main_probs, member_probs, y, grid=(0.0, 0.25, 0.5, 0.75, 1.0)) -> list[float]:
    """Greedy per-member weights for `main + sum(w_i * member_i)`, best validation accuracy first."""
    total, weights = main_probs.copy(), []
    for probs in member_probs:
        scores = [((total + w * probs).argmax(1) == y).mean() for w in grid]
        w = grid[int(np.argmax(scores))]  # ties go to the smaller weight
        weights.append(float(w))
        total = total + w * probs
    return weights


def build_ensemble(single, branches, weights):
    """`single`'s layers plus weighted member branches on the same upscaled input, renormalised."""
    import keras

    inputs = keras.Input((32, 32, 3), name="cifar10_image")
    upscaled = x = single.layers[1](inputs)  # the Resizing layer stays first
    for layer in single.layers[2:]:
        x = layer(x)
    terms = [x] + [keras.layers.Rescaling(w, name=f"weight_{b.name}")(b(upscaled))
                   for b, w in zip(branches, weights) if w > 0]
    total = 1.0 + sum(w for w in weights if w > 0)
    outputs = keras.layers.Rescaling(1.0 / total, name="average")(keras.layers.Add(name="sum")(terms)) \
        if len(terms) > 1 else x
    model = keras.Model(inputs, outputs, name=f"{single.name}_ensemble")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def add_members(args, spec, size, weights, cache, train, val, cut, head_config, members) -> float:
    """Turns the single model saved at `args.output` into a weighted ensemble; returns validation accuracy."""
    import keras

    from benchmark.atomic import atomic_path

    print(f"Ensemble: adding {', '.join(members)} at {size} px ...")
    single = keras.models.load_model(args.output, safe_mode=True)
    main_probs = single_val_probs(single, spec, size, weights, cache, val, cut, args)
    trained = [train_member(m, size, args, cache, train, val, head_config) for m in members]
    member_weights = choose_weights(main_probs, [p for _, p in trained], val.y)
    combined = main_probs + sum(w * p for w, (_, p) in zip(member_weights, trained))
    val_acc = float((combined.argmax(1) == val.y).mean())
    print(f"  weights (chosen on the validation split): {spec.name} 1.0, "
          + ", ".join(f"{m} {w:g}" for m, w in zip(members, member_weights))
          + f"; validation accuracy {val_acc:.4f} (main model alone {(main_probs.argmax(1) == val.y).mean():.4f})")
    ensemble = build_ensemble(single, [b for b, _ in trained], member_weights)
    with atomic_path(args.output) as tmp:
        ensemble.save(tmp)
    return val_acc


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
    parser.add_argument("--no-flip", action="store_true",
                        help="no mirroring: neither features of mirrored images nor random mirroring of maps")
    parser.add_argument("--fine-tune", dest="fine_tune", action="store_true", default=None,
                        help="fine-tune the last block on cached maps (default: on where the registry has a cut)")
    parser.add_argument("--no-fine-tune", dest="fine_tune", action="store_false",
                        help="train only the head on frozen features")
    parser.add_argument("--ft-epochs", type=int, default=5, help="maximum fine-tuning epochs (default 5)")
    parser.add_argument("--ft-lr", type=float, default=1e-4, help="fine-tuning learning rate (default 1e-4)")
    parser.add_argument("--hidden", type=int, default=1024, help="hidden units of the MLP head (default 1024)")
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=100, help="maximum head epochs (early stopping on val)")
    parser.add_argument("--batch-size", type=int, default=32, help="extraction batch size")
    parser.add_argument("--chunk-size", type=int, default=2048)
    parser.add_argument("--ensemble", nargs="+", default=[], metavar="NAME",
                        help="backbones added as head-only members on cached frozen features, their "
                             "probabilities weighted on the validation split (default: "
                             f"{' '.join(DEFAULT_ENSEMBLE)} where weights exist; 'none': the single model)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import backbones
    from benchmark.atomic import copy_file
    from benchmark.cache import FeatureCache
    from benchmark.data import DataError, load_cifar10, make_splits
    from benchmark.results import ResultsSchemaError

    t_start = time.perf_counter()
    try:
        name, size = choose_backbone(args.results, args.backbone, args.size)
        spec = backbones.get(name)
        weights = backbones.resolve_weights(spec.name, args.weights_dir)
        if not weights.pretrained:
            raise ValueError(f"no pretrained weights for {spec.name}: put {spec.weights_filename} in the weights "
                             f"folder or pass --backbone with one that has weights")
        if [m.lower() for m in args.ensemble] == ["none"]:
            members = []
        elif args.ensemble:
            members = [parse_member(m, size) for m in args.ensemble]
        else:
            members = default_members(spec.name, args.weights_dir)
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

    from benchmark.cache import PIPELINE_VERSION
    from benchmark.finetune import FINETUNE_VERSION, FineTuneConfig
    from benchmark.heads import HEAD_VERSION, HeadConfig
    from benchmark.progress import format_duration

    train, val, test = splits["train"], splits["val"], splits["test"]
    cut = spec.finetune_cut if args.fine_tune in (None, True) else None
    if args.fine_tune and cut is None:
        print(f"error: {spec.name} has no fine-tuning cut in the registry; pass --no-fine-tune or a backbone "
              f"that has one ({', '.join(n for n in backbones.names() if backbones.get(n).finetune_cut)})",
              file=sys.stderr)
        return 2
    flip_features = cut is None and not args.no_flip
    head_config = HeadConfig(kind="mlp", hidden=args.hidden, dropout=args.dropout, max_epochs=args.epochs,
                             batch_size=256, learning_rate=1e-3, patience=10)
    ft_config = FineTuneConfig(learning_rate=args.ft_lr, epochs=args.ft_epochs, flip=not args.no_flip,
                               label_smoothing=args.label_smoothing) if cut else None
    model_key = {"backbone": spec.name, "size": size, "weights": weights.identity, "cut": cut,
                 "train": train.fingerprint, "val": val.fingerprint, "flip_features": flip_features,
                 "head": head_config.as_dict(), "label_smoothing": args.label_smoothing,
                 "fine_tune": ft_config.as_dict() if ft_config else None, "seed": args.seed,
                 "versions": [PIPELINE_VERSION, HEAD_VERSION, FINETUNE_VERSION, keras.__version__]}
    print(f"Data: train {len(train)}, val {len(val)}, test {len(test)}"
          f"{'  [lossy JPEG copy of CIFAR-10]' if data.lossy_jpeg else ''}")
    ensemble_key = {**model_key, "ensemble": members,
                    "member_weights": [backbones.resolve_weights(m, args.weights_dir).identity for m in members]}
    cached = cache.load_model_file(ensemble_key if members else model_key)
    if cached is not None:
        path, info = cached
        copy_file(path, args.output)
        print(f"Model taken from the cache (trained with the same data and settings; "
              f"validation accuracy {info.get('val_acc', float('nan')):.4f}): {args.output}")
    else:
        cached = cache.load_model_file(model_key) if members else None
        if cached is not None:
            copy_file(cached[0], args.output)
            print(f"{spec.name} model taken from the cache (validation accuracy {cached[1].get('val_acc'):.4f}).")
        else:
            val_acc = train_and_save(args, spec, size, weights, cache, train, val, cut, flip_features,
                                     head_config, ft_config)
            cache.save_model_file(model_key, args.output, {"val_acc": val_acc})
        if members:
            val_acc = add_members(args, spec, size, weights, cache, train, val, cut, head_config, members)
            cache.save_model_file(ensemble_key, args.output, {"val_acc": val_acc})
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
