"""`python 0-transfer.py`: train the final CIFAR-10 model and save `cifar10.h5`.

The script passes its own `preprocess_data` in, so the closing check runs
exactly the grader's steps: load the file (safe mode), preprocess, evaluate.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

from . import exit_code, start

# An ensemble is saved only when it beats its main network alone by this much validation accuracy.
# It is part of the ensemble's cache key: changing it trains the member heads again (on cached features).
ENSEMBLE_MIN_GAIN = 0.01
# --mirror auto keeps test-time mirroring when it gains this much validation accuracy. Mirroring
# doubles the passes per image; the ensemble's bar prices two more passes (the earlier two-member
# default) at 1 point, so this is the same price per pass for a single network.
MIRROR_MIN_GAIN = 0.005


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python 0-transfer.py",
        description="Train a CIFAR-10 classifier on a frozen ImageNet backbone and save cifar10.h5.")
    p.add_argument("--backbone", help="override the benchmark's choice (any registry name)")
    p.add_argument("--size", help="input size in pixels or 'native' (default: the chosen row's size, at least 160)")
    p.add_argument("--results", default="results", help="benchmark results folder (default: results)")
    p.add_argument("--data-dir", help="local cifar-10-batches-py folder (default $CIFAR10_DIR, else download)")
    p.add_argument("--weights-dir", help="folder of <Name>_notop_imagenet.weights.h5 "
                                         "(default $BACKBONE_WEIGHTS_DIR, else the Keras download)")
    p.add_argument("--cache-dir", help="feature cache shared with the benchmark")
    p.add_argument("--output", default="cifar10.h5", help="where to save the model (default: cifar10.h5)")
    p.add_argument("--train-size", type=int, help="stratified training subset (default: all 45,000)")
    p.add_argument("--test-size", type=int, help="test images for the final check (default: all 10,000)")
    p.add_argument("--val-holdout", type=int, default=5000, help="validation images held out (default 5000)")
    p.add_argument("--no-flip", action="store_true",
                   help="no mirroring: neither features of mirrored images nor random mirroring of maps")
    p.add_argument("--fine-tune", dest="fine_tune", action="store_true", default=None,
                   help="fine-tune the part above the cut on cached maps (default: when the benchmark's top scorer is a "
                        "finetune row, and for --backbone or without results)")
    p.add_argument("--no-fine-tune", dest="fine_tune", action="store_false",
                   help="train only the head on frozen features")
    p.add_argument("--ft-epochs", type=int, default=5, help="maximum fine-tuning epochs (default 5)")
    p.add_argument("--ft-lr", type=float, default=1e-4, help="fine-tuning learning rate (default 1e-4)")
    p.add_argument("--ft-shift", type=int, default=1, metavar="CELLS",
                   help="shift the cached maps at random by up to this many cells each way while fine-tuning "
                        "(default 1; 0: no shifts)")
    p.add_argument("--cut", metavar="LAYER",
                   help="fine-tune everything above this layer of the base (a layer name, '<layer>.input', or "
                        "'a+b' for two tensors; default: DenseNet121's pool3_pool, which trains conv4 and conv5; for "
                        "other backbones the registry's cut at the input of the last stage)")
    p.add_argument("--hidden", type=int, default=1024, help="hidden units of the MLP head (default 1024)")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=100, help="maximum head epochs (early stopping on val)")
    p.add_argument("--batch-size", type=int, default=32, help="extraction batch size")
    p.add_argument("--chunk-size", type=int, default=2048)
    p.add_argument("--ensemble", nargs="+", default=[], metavar="NAME",
                   help="backbones added as head-only members on cached frozen features, their probabilities "
                        "weighted on the validation split; the ensemble is saved only when it beats the single "
                        "network by at least %(gain)s point of validation accuracy (default: none, the single "
                        "network)" % {"gain": f"{ENSEMBLE_MIN_GAIN * 100:g}"})
    p.add_argument("--mirror", choices=("auto", "on", "off"), default="auto",
                   help="test-time mirroring inside the saved model: average each image's and its mirror image's "
                        "probabilities, at twice the inference time. auto (default): keep it when it gains at "
                        "least %(gain)s points of validation accuracy" % {"gain": f"{MIRROR_MIN_GAIN * 100:g}"})
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recheck", action="store_true",
                   help="evaluate the saved model again even when this exact file (sha256) was already evaluated "
                        "on these test images")
    p.add_argument("--jpeg-qualities", nargs="*", type=int, default=[50, 95], metavar="Q",
                   help="also evaluate on the test images re-encoded as JPEG at these qualities, to show whether "
                        "the model leans on compression artefacts (default: 50 95; none to skip)")
    p.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's and Keras's own log lines")
    return p


def main(preprocess_data, argv=None) -> int:
    """Trains, saves and checks the model; `preprocess_data` is the script's own (the grader's) function."""
    args = build_parser().parse_args(argv)
    start(args.verbose)
    return exit_code(lambda: _run(args, preprocess_data))


def _setup(args, echo=print):
    """`(transfer, members, test split)`, every user error raised before the data is read."""
    import backbones

    from ..core.data import load_cifar10, make_splits
    from ..core.finetune import cut_tensors
    from ..core.store import Store
    from ..core.weights import weights_problem
    from ..transfer.ensemble import parse_member
    from ..transfer.select import choose_backbone, final_cut
    from ..transfer.train import Transfer, TransferConfig

    if args.ft_shift < 0:
        raise ValueError(f"--ft-shift is a number of map cells, 0 or more; got {args.ft_shift}")
    name, img_size, regime = choose_backbone(args.results, args.backbone, args.size, echo)
    spec = backbones.get(name)
    tune = args.fine_tune if args.fine_tune is not None else regime == "finetune"
    if args.cut and not tune:
        raise ValueError(f"--cut {args.cut} needs fine-tuning, and "
                         + ("--no-fine-tune turns it off: drop one of the two" if args.fine_tune is False else
                            f"the chosen {spec.name} row is in the frozen regime: add --fine-tune"))
    cut = (args.cut or final_cut(spec)) if tune else None
    if args.cut:  # a wrong layer name: one line now, not after the data load (the architecture alone, no weights;
        # the registry's and FINAL_CUTS' cuts are tested, so a run without --cut skips this build)
        cut_tensors(backbones.build_base(spec.name, max(spec.min_size, 32)), args.cut)
    weights = backbones.resolve_weights(spec.name, args.weights_dir)
    if not weights.pretrained:
        raise ValueError(f"no pretrained weights for {spec.name}: put {spec.weights_filename} in the weights "
                         f"folder or pass --backbone with one that has weights")
    members = [] if [m.lower() for m in args.ensemble] == ["none"] else \
        [parse_member(m, img_size) for m in args.ensemble]
    store = Store(args.cache_dir)
    store.check_writable()
    for name in [spec.name, *members]:  # a bad weights file: one line now, not a traceback after the data load
        problem = weights_problem(backbones.get(name), backbones.resolve_weights(name, args.weights_dir), store)
        if problem:
            raise ValueError(problem)
    data = load_cifar10(args.data_dir)
    splits = make_splits(data, n_val_holdout=args.val_holdout, n_train=args.train_size, n_test=args.test_size,
                         seed=args.seed)
    echo(f"Data: train {len(splits['train'])}, val {len(splits['val'])}, test {len(splits['test'])}"
         f"{'  [lossy JPEG copy of CIFAR-10]' if data.lossy_jpeg else ''}")
    config = TransferConfig(hidden=args.hidden, dropout=args.dropout, label_smoothing=args.label_smoothing,
                            epochs=args.epochs, ft_epochs=args.ft_epochs, ft_lr=args.ft_lr, ft_shift=args.ft_shift,
                            flip=not args.no_flip,
                            batch_size=args.batch_size, chunk_size=args.chunk_size, seed=args.seed)
    transfer = Transfer(spec, img_size, weights, cut, splits["train"], splits["val"], store.root, config,
                        test=splits["test"])
    return transfer, members, splits["test"], store


def _make_model_file(t, members, store, args, echo=print) -> dict:
    """Leaves the finished model at `args.output`: from the model cache, or trained now (and cached).
    Returns the training record (stages, curves) stored with the cached file."""
    import backbones

    from ..core.atomic import copy_file

    key = t.model_key()
    ensemble_key = {**key, "ensemble": members, "ensemble_min_gain": ENSEMBLE_MIN_GAIN,
                    "member_weights": [backbones.resolve_weights(m, args.weights_dir).identity for m in members]}
    mirror_key = {**(ensemble_key if members else key), "mirror": args.mirror,
                  **({"mirror_min_gain": MIRROR_MIN_GAIN} if args.mirror == "auto" else {})}
    if args.mirror != "off":
        cached = store.load_model_file(mirror_key)
        if cached is not None:
            copy_file(cached[0], args.output)
            echo(f"Model taken from the cache (trained with the same data and settings, test-time mirroring "
                 f"{args.mirror}; validation accuracy {cached[1].get('val_acc', float('nan')):.4f}): {args.output}")
            return cached[1]
    info = _make_unmirrored(t, members, store, args, key, ensemble_key, echo)
    if args.mirror != "off":
        info = _add_mirroring(t, args, info, echo)
        store.save_model_file(mirror_key, args.output, info)
    return info


def _add_mirroring(t, args, info: dict, echo=print) -> dict:
    """Wraps the file at `args.output` in test-time mirroring when `args.mirror` is "on", or when "auto" and
    it gains at least MIRROR_MIN_GAIN on the validation split; adds the stage to `info`'s record."""
    import keras

    from ..core.atomic import atomic_path
    from ..transfer.mirror import mirror_gain, mirrored_model

    t0 = time.perf_counter()
    echo(f"Test-time mirroring: scoring {len(t.val)} validation images and their mirror images end to end ...")
    keras.backend.clear_session()
    model = keras.models.load_model(args.output, safe_mode=True)
    plain, mirrored = mirror_gain(model, t.val.x, t.val.y)
    keep = args.mirror == "on" or mirrored - plain >= MIRROR_MIN_GAIN
    echo(f"  validation accuracy {plain:.4f} alone, {mirrored:.4f} averaged with the mirror image "
         f"({mirrored - plain:+.4f}): " + ("kept (--mirror on)" if args.mirror == "on" else
                                           f"kept, at least {MIRROR_MIN_GAIN * 100:g} points" if keep else
                                           f"not kept, under {MIRROR_MIN_GAIN * 100:g} points for twice the "
                                           f"inference time"))
    if keep:
        with atomic_path(args.output) as tmp:
            mirrored_model(model).save(tmp)
    stage = {"stage": "test-time mirroring", "val_acc": mirrored, "main_val_acc": plain, "kept": keep,
             "wall_s": round(time.perf_counter() - t0, 1)}
    return {**info, "val_acc": mirrored if keep else info.get("val_acc"), "test_mirroring": keep,
            "stages": [*info.get("stages", []), stage]}


def _make_unmirrored(t, members, store, args, key: dict, ensemble_key: dict, echo=print) -> dict:
    """The single network or the ensemble at `args.output`, from the model cache or trained now (and cached)."""
    import keras

    from ..core.atomic import atomic_path, copy_file
    from ..transfer.ensemble import add_members
    from ..transfer.train import train_main

    cached = store.load_model_file(ensemble_key if members else key)
    if cached is not None:
        copy_file(cached[0], args.output)
        echo(f"Model taken from the cache (trained with the same data and settings; "
             f"validation accuracy {cached[1].get('val_acc', float('nan')):.4f}): {args.output}")
        return cached[1]
    cached = store.load_model_file(key) if members else None
    if cached is not None:
        copy_file(cached[0], args.output)
        echo(f"{t.spec.name} model taken from the cache (validation accuracy {cached[1].get('val_acc'):.4f}).")
        info = cached[1]
    else:
        model, val_acc, record = train_main(t, echo)
        with atomic_path(args.output) as tmp:
            model.save(tmp)
        info = {"val_acc": val_acc, **record}
        store.save_model_file(key, args.output, info)
    if members:
        single = keras.models.load_model(args.output, safe_mode=True)
        ensemble, val_acc, stage = add_members(t, single, members, args.weights_dir, echo)
        gain = val_acc - stage["main_val_acc"]
        stage["kept"] = keep = gain >= ENSEMBLE_MIN_GAIN
        echo(f"  ensemble {'kept' if keep else 'not kept'}: {gain * 100:+.2f} points of validation accuracy over "
             f"{t.spec.name} alone (the bar is {ENSEMBLE_MIN_GAIN * 100:g}, since every prediction pays for all "
             f"its networks){'' if keep else '; saving the single network'}")
        if keep:
            with atomic_path(args.output) as tmp:
                ensemble.save(tmp)
        info = {**info, "val_acc": val_acc if keep else info.get("val_acc"), "stages": [*info.get("stages", []), stage]}
        store.save_model_file(ensemble_key, args.output, info)
    return info


def jpeg_copy(x, quality: int):
    """`x` (N, 32, 32, 3) uint8 re-encoded as JPEG at `quality` and decoded again."""
    import io

    import numpy as np
    from PIL import Image

    out = np.empty_like(x)
    for i, image in enumerate(x):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        out[i] = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return out


def _evaluate(output: str, test, preprocess_data, store, recheck: bool, quality: int | None = None, echo=print):
    """The grader's steps on `output` (load with safe_mode, preprocess, then the model's predictions)
    on the test images, or on them re-encoded as JPEG at `quality`. Accuracy is the share of argmax
    predictions equal to the label, which is what `evaluate`'s "accuracy" computes for this model (a
    test checks it); predicting instead keeps the predictions for the report at no extra cost. The
    result is remembered under the file's sha256 and the images' fingerprint, so an unchanged file is
    not evaluated twice (`recheck` evaluates anyway)."""
    import keras
    import numpy as np

    import backbones

    from ..core.progress import format_duration

    what = "the test images" if quality is None else f"the test images re-encoded as JPEG quality {quality}"
    parts = {"model_sha256": backbones.sha256_file(output), "test": test.fingerprint, "jpeg_quality": quality}
    found = None if recheck else store.load_record("evaluations", parts)
    if found is not None and "predictions" in found:
        echo(f"Evaluation of this exact file on {what} from the cache: accuracy {found['accuracy']:.4f} "
             f"(--recheck evaluates again).")
        return found
    echo(f"Checking: load {output} and evaluate on {len(test)} of {what} end to end ...")
    keras.backend.clear_session()
    loaded = keras.models.load_model(output, safe_mode=True)
    x = test.x if quality is None else jpeg_copy(test.x, quality)
    X_p, Y_p = preprocess_data(x, test.y)
    t0 = time.perf_counter()
    probs = np.asarray(loaded.predict(X_p, batch_size=128, verbose=0), np.float64)
    seconds = time.perf_counter() - t0
    predicted = probs.argmax(axis=1)
    acc = float(np.mean(predicted == np.asarray(Y_p).argmax(axis=1)))
    loss = float(-np.mean(np.sum(np.asarray(Y_p) * np.log(np.clip(probs, 1e-7, 1.0)), axis=1)))
    echo(f"  accuracy {acc:.4f} (loss {loss:.4f}; {len(test)} images in {format_duration(seconds)})")
    found = {"accuracy": acc, "loss": loss, "n_images": len(test), "seconds": round(seconds, 2),
             "predictions": predicted.astype(int).tolist()}
    store.save_record("evaluations", parts, found)
    return found


def _ensemble_kept(info: dict) -> bool:
    return any(s["stage"] == "ensemble" and s.get("kept") for s in info.get("stages", []))


def _run(args, preprocess_data) -> int:
    import numpy as np

    import backbones

    from ..core.atomic import write_json, write_npz
    from ..core.data import CLASSES
    from ..core.metrics import prediction_shift
    from ..core.results import N_EXAMPLES, TRANSFER_JSON, TRANSFER_NPZ
    from ..core.progress import format_duration

    t_start = time.perf_counter()
    transfer, members, test, store = _setup(args)
    info = _make_model_file(transfer, members, store, args)
    size_mib = os.path.getsize(args.output) / 2**20
    print(f"Saved {args.output} ({size_mib:.1f} MiB).")
    plain = _evaluate(args.output, test, preprocess_data, store, args.recheck)
    print(f"Test accuracy of {args.output}: {plain['accuracy']:.4f} (loss {plain['loss']:.4f}; "
          f"{plain['n_images']} images, {plain['seconds']:.0f}s).")
    jpeg, shift = {"plain": plain["accuracy"]}, None
    for quality in sorted(args.jpeg_qualities):
        found = _evaluate(args.output, test, preprocess_data, store, args.recheck, quality)
        jpeg[f"quality_{quality}"] = found["accuracy"]
        if shift is None:  # the strongest compression: where do the images it breaks go?
            shift = {"quality": quality, **prediction_shift(test.y, plain["predictions"], found["predictions"])}
    if len(jpeg) > 1:
        spread = max(jpeg.values()) - min(jpeg.values())
        print(f"JPEG robustness: " + ", ".join(f"{k} {v:.4f}" for k, v in jpeg.items())
              + f"; spread {spread:.4f}" + (" (over a point: the model may lean on compression artefacts)"
                                            if spread > 0.01 else ""))
    if shift and shift["to_class"] is not None:
        name = CLASSES[shift["to_class"]]
        print(f"  at quality {shift['quality']}: {shift['n_lost']} test images go from right to wrong "
              f"({shift['n_gained']} the other way); {shift['to_class_share']:.0%} of them are called {name} "
              f"({name}: {shift['class_share_before']:.1%} of all predictions on the plain images, "
              f"{shift['class_share_after']:.1%} at quality {shift['quality']})")
    # every setting, shift=0 included (as_dict leaves it out of cache keys only)
    ft_settings = dataclasses.asdict(transfer.config.fine_tune()) if transfer.cut else None
    saved_members = members if _ensemble_kept(info) else []
    if shift is not None:
        shift["to_class_name"] = CLASSES[shift["to_class"]] if shift["to_class"] is not None else None
    record = {
        "model_file": os.path.basename(args.output), "backbone": transfer.spec.name, "img_size": transfer.img_size,
        "regime": "finetune" if transfer.cut else "frozen", "cut": transfer.cut, "fine_tune_settings": ft_settings,
        "members": saved_members, "test_mirroring": bool(info.get("test_mirroring")),
        "n_train": len(transfer.train), "n_val": len(transfer.val), "n_test": len(test),
        "val_acc": info.get("val_acc"), "test_acc": plain["accuracy"], "test_loss": plain["loss"],
        "file_size_mib": round(size_mib, 2), "inference_s": plain["seconds"], "inference_images": plain["n_images"],
        "inference_s_per_10000": round(plain["seconds"] * 10000 / plain["n_images"], 1),
        "jpeg_robustness": jpeg, "jpeg_shift": shift,
        "stages": info.get("stages", []), "curves": info.get("curves", {}),
        "wall_s_this_run": round(time.perf_counter() - t_start, 1),
        "sha256": backbones.sha256_file(args.output),
    }
    kept = [stage for stage in record["stages"] if stage.get("kept")]
    if kept:
        kept[-1]["test_acc"] = plain["accuracy"]  # the last kept stage's model is the saved file
    folder = os.path.dirname(os.path.abspath(args.output))
    report = os.path.join(folder, TRANSFER_JSON)
    write_json(report, record)
    write_npz(os.path.join(folder, TRANSFER_NPZ), images=test.x[:N_EXAMPLES], labels=test.y.astype("uint8"),
              predictions=np.asarray(plain["predictions"], "uint8"))
    print(f"Wrote {report}. Total {format_duration(time.perf_counter() - t_start)}.")
    return 0
