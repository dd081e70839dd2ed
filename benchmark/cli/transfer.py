"""`python 0-transfer.py`: train the final CIFAR-10 model and save `cifar10.h5`.

The script passes its own `preprocess_data` in, so the closing check runs
exactly the grader's steps: load the file (safe mode), preprocess, evaluate.
"""

from __future__ import annotations

import argparse
import os
import time

from . import exit_code, start


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python 0-transfer.py",
        description="Train a CIFAR-10 classifier on a frozen ImageNet backbone and save cifar10.h5.")
    p.add_argument("--backbone", help="override the benchmark's choice (any registry name)")
    p.add_argument("--size", help="input size in pixels or 'native' (default: the chosen row's size)")
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
                   help="fine-tune the last stage on cached maps (default: when the benchmark's top scorer is a "
                        "finetune row, and for --backbone or without results)")
    p.add_argument("--no-fine-tune", dest="fine_tune", action="store_false",
                   help="train only the head on frozen features")
    p.add_argument("--ft-epochs", type=int, default=5, help="maximum fine-tuning epochs (default 5)")
    p.add_argument("--ft-lr", type=float, default=1e-4, help="fine-tuning learning rate (default 1e-4)")
    p.add_argument("--hidden", type=int, default=1024, help="hidden units of the MLP head (default 1024)")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=100, help="maximum head epochs (early stopping on val)")
    p.add_argument("--batch-size", type=int, default=32, help="extraction batch size")
    p.add_argument("--chunk-size", type=int, default=2048)
    p.add_argument("--ensemble", nargs="+", default=[], metavar="NAME",
                   help="backbones added as head-only members on cached frozen features, their probabilities "
                        "weighted on the validation split (default: Xception MobileNet where weights exist; "
                        "'none': the single model)")
    p.add_argument("--seed", type=int, default=0)
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
    from ..core.store import Store
    from ..core.weights import weights_problem
    from ..transfer.ensemble import default_members, parse_member
    from ..transfer.select import choose_backbone
    from ..transfer.train import Transfer, TransferConfig

    name, img_size, regime = choose_backbone(args.results, args.backbone, args.size, echo)
    spec = backbones.get(name)
    weights = backbones.resolve_weights(spec.name, args.weights_dir)
    if not weights.pretrained:
        raise ValueError(f"no pretrained weights for {spec.name}: put {spec.weights_filename} in the weights "
                         f"folder or pass --backbone with one that has weights")
    tune = args.fine_tune if args.fine_tune is not None else regime == "finetune"
    cut = spec.finetune_cut if tune else None
    if [m.lower() for m in args.ensemble] == ["none"]:
        members = []
    elif args.ensemble:
        members = [parse_member(m, img_size) for m in args.ensemble]
    else:
        members = default_members(spec.name, args.weights_dir, echo)
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
                            epochs=args.epochs, ft_epochs=args.ft_epochs, ft_lr=args.ft_lr, flip=not args.no_flip,
                            batch_size=args.batch_size, chunk_size=args.chunk_size, seed=args.seed)
    transfer = Transfer(spec, img_size, weights, cut, splits["train"], splits["val"], store.root, config)
    return transfer, members, splits["test"], store


def _make_model_file(t, members, store, args, echo=print) -> None:
    """Leaves the finished model at `args.output`: from the model cache, or trained now (and cached)."""
    import keras

    import backbones

    from ..core.atomic import atomic_path, copy_file
    from ..transfer.ensemble import add_members
    from ..transfer.train import train_main

    key = t.model_key()
    ensemble_key = {**key, "ensemble": members,
                    "member_weights": [backbones.resolve_weights(m, args.weights_dir).identity for m in members]}
    cached = store.load_model_file(ensemble_key if members else key)
    if cached is not None:
        copy_file(cached[0], args.output)
        echo(f"Model taken from the cache (trained with the same data and settings; "
             f"validation accuracy {cached[1].get('val_acc', float('nan')):.4f}): {args.output}")
        return
    cached = store.load_model_file(key) if members else None
    if cached is not None:
        copy_file(cached[0], args.output)
        echo(f"{t.spec.name} model taken from the cache (validation accuracy {cached[1].get('val_acc'):.4f}).")
    else:
        model, val_acc = train_main(t, echo)
        with atomic_path(args.output) as tmp:
            model.save(tmp)
        store.save_model_file(key, args.output, {"val_acc": val_acc})
    if members:
        single = keras.models.load_model(args.output, safe_mode=True)
        ensemble, val_acc = add_members(t, single, members, args.weights_dir, echo)
        with atomic_path(args.output) as tmp:
            ensemble.save(tmp)
        store.save_model_file(ensemble_key, args.output, {"val_acc": val_acc})


def _check(output: str, test, preprocess_data, echo=print) -> float:
    """The grader's steps: load from disk (safe_mode), preprocess, evaluate end to end; returns test accuracy."""
    import keras

    from ..core.progress import format_duration

    echo(f"Checking: load {output} and evaluate on {len(test)} test images end to end ...")
    keras.backend.clear_session()
    loaded = keras.models.load_model(output, safe_mode=True)
    X_p, Y_p = preprocess_data(test.x, test.y)
    t0 = time.perf_counter()
    loss, acc = loaded.evaluate(X_p, Y_p, batch_size=128, verbose=0)
    echo(f"Test accuracy of {output}: {acc:.4f} (loss {loss:.4f}; {len(test)} images, "
         f"{format_duration(time.perf_counter() - t0)}).")
    return acc


def _run(args, preprocess_data) -> int:
    from ..core.progress import format_duration

    t_start = time.perf_counter()
    transfer, members, test, store = _setup(args)
    _make_model_file(transfer, members, store, args)
    print(f"Saved {args.output} ({os.path.getsize(args.output) / 2**20:.1f} MiB).")
    _check(args.output, test, preprocess_data)
    print(f"Total {format_duration(time.perf_counter() - t_start)}.")
    return 0
