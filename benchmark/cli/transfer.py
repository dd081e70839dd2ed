"""`python 0-transfer.py`: train the final CIFAR-10 model and save `cifar10.h5`.

A thin command line over `benchmark.transfer.final`: the flags become a
`FinalRun` (their defaults are its defaults, the shipped model's), and the
library does the rest. The script passes its own `preprocess_data` in, so
the closing check runs exactly the grader's steps: load the file (safe
mode), preprocess, evaluate.
"""

from __future__ import annotations

import argparse

from ..transfer import config
from ..transfer.config import FinalRun, TransferConfig
from . import exit_code, start

RUN, TRAINING = FinalRun(), TransferConfig()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python 0-transfer.py",
        description="Train a CIFAR-10 classifier on a frozen ImageNet backbone and save cifar10.h5.")
    p.add_argument("--backbone", help="override the benchmark's choice (any registry name)")
    p.add_argument("--size", help="input size in pixels or 'native' (default: the chosen row's size, at least "
                                      f"{config.FINAL_IMG_SIZE})")
    p.add_argument("--results", default=RUN.results, help="benchmark results folder (default: %(default)s)")
    p.add_argument("--data-dir", help="local cifar-10-batches-py folder (default $CIFAR10_DIR, else download)")
    p.add_argument("--weights-dir", help="folder of <Name>_notop_imagenet.weights.h5 "
                                         "(default $BACKBONE_WEIGHTS_DIR, else the Keras download)")
    p.add_argument("--cache-dir", help="feature cache shared with the benchmark")
    p.add_argument("--output", default=RUN.output, help="where to save the model, .h5 or .keras (default: %(default)s)")
    p.add_argument("--train-size", type=int, help="stratified training subset (default: all 45,000)")
    p.add_argument("--test-size", type=int, help="test images for the final check (default: all 10,000)")
    p.add_argument("--val-holdout", type=int, default=RUN.n_val_holdout,
                   help="validation images held out (default %(default)s)")
    p.add_argument("--no-flip", action="store_true",
                   help="no mirroring: neither features of mirrored images nor random mirroring of maps")
    p.add_argument("--fine-tune", dest="fine_tune", action="store_true", default=None,
                   help="fine-tune the part above the cut on cached maps (default: when the benchmark's top scorer "
                        "is a finetune row, and for --backbone or without results)")
    p.add_argument("--no-fine-tune", dest="fine_tune", action="store_false",
                   help="train only the head on frozen features")
    p.add_argument("--ft-epochs", type=int, default=TRAINING.ft_epochs,
                   help="maximum fine-tuning epochs (default %(default)s)")
    p.add_argument("--ft-lr", type=float, default=TRAINING.ft_lr, help="fine-tuning learning rate (default %(default)s)")
    p.add_argument("--ft-shift", type=int, default=TRAINING.ft_shift, metavar="CELLS",
                   help="shift the cached maps at random by up to this many cells each way while fine-tuning "
                        "(default %(default)s; 0: no shifts)")
    p.add_argument("--ft-schedule", choices=config.SCHEDULES, default=TRAINING.ft_schedule,
                   help="the fine-tuning learning rate: constant, or cosine (down to 0 over --ft-epochs, step by "
                        "step) (default %(default)s)")
    p.add_argument("--ft-precision", choices=list(config.PRECISIONS), default=TRAINING.ft_precision,
                   help="compute precision of the fine-tuned part while it trains: fp32, or bf16 (Keras "
                        "mixed_bfloat16, float32 weights; measured 1.34x faster epochs, same accuracy, on a CPU with "
                        "AVX512-BF16: see README); the saved model is float32 either way (default %(default)s)")
    p.add_argument("--train-jpeg", type=int, nargs=2, default=TRAINING.train_jpeg, metavar=("LOW", "HIGH"),
                   help="also train on the training images re-encoded as JPEG, each at a quality drawn from LOW..HIGH "
                        "(1-95), extracted once and cached (as much room again as the training maps): the head "
                        "trains on both, fine-tuning draws each image "
                        "from either at random each epoch (default: off)")
    p.add_argument("--cut", metavar="LAYER",
                   help="fine-tune everything above this layer of the base (a layer name, '<layer>.input', or "
                        "'a+b' for two tensors; default: the measured cut where there is one ("
                        + ", ".join(f"{name} {cut}" for name, cut in config.FINAL_CUTS.items()) + "; for "
                        "other backbones the registry's cut at the input of the last stage)")
    p.add_argument("--hidden", type=int, default=TRAINING.hidden,
                   help="hidden units of the MLP head (default %(default)s)")
    p.add_argument("--dropout", type=float, default=TRAINING.dropout, help="of the MLP head (default %(default)s)")
    p.add_argument("--label-smoothing", type=float, default=TRAINING.label_smoothing,
                   help="of both stages' cross-entropy (default %(default)s)")
    p.add_argument("--epochs", type=int, default=TRAINING.epochs,
                   help="maximum head epochs, early-stopped on validation (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=TRAINING.batch_size,
                   help="extraction batch size (default %(default)s)")
    p.add_argument("--chunk-size", type=int, default=TRAINING.chunk_size,
                   help="images per saved chunk of an extraction (default %(default)s)")
    p.add_argument("--ensemble", nargs="+", default=list(RUN.ensemble), metavar="NAME",
                   help="backbones added as head-only members on cached frozen features, their probabilities "
                        "weighted on the validation split; the ensemble is saved only when it beats the single "
                        "network by at least %(gain)s point of validation accuracy (default: none, the single "
                        "network)" % {"gain": f"{config.ENSEMBLE_MIN_GAIN * 100:g}"})
    p.add_argument("--mirror", choices=config.MIRROR_MODES, default=RUN.mirror,
                   help="test-time mirroring inside the saved model: average each image's and its mirror image's "
                        "probabilities, at twice the inference time. auto (default): keep it when it gains at "
                        "least %(gain)s points of validation accuracy" % {"gain": f"{config.MIRROR_MIN_GAIN * 100:g}"})
    p.add_argument("--seed", type=int, default=TRAINING.seed, help="of the split, the training and the bootstrap "
                                                                   "(default %(default)s)")
    p.add_argument("--recheck", action="store_true",
                   help="evaluate the saved model again even when this exact file (sha256) was already evaluated "
                        "on these test images")
    p.add_argument("--jpeg-qualities", nargs="*", type=int, default=list(RUN.jpeg_qualities), metavar="Q",
                   help="also evaluate on the test images re-encoded as JPEG at these qualities, to show whether "
                        "the model leans on compression artefacts (default: %(default)s; none to skip)")
    p.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's and Keras's own log lines")
    return p


def run_from_args(args) -> FinalRun:
    """The parsed flags as the library's settings."""
    training = TransferConfig(hidden=args.hidden, dropout=args.dropout, label_smoothing=args.label_smoothing,
                              epochs=args.epochs, ft_epochs=args.ft_epochs, ft_lr=args.ft_lr, ft_shift=args.ft_shift,
                              ft_schedule=args.ft_schedule, ft_precision=args.ft_precision,
                              train_jpeg=tuple(args.train_jpeg) if args.train_jpeg else None,
                              flip=not args.no_flip, batch_size=args.batch_size, chunk_size=args.chunk_size,
                              seed=args.seed)
    return FinalRun(backbone=args.backbone, img_size=args.size, results=args.results, data_dir=args.data_dir,
                    weights_dir=args.weights_dir, cache_dir=args.cache_dir, output=args.output,
                    n_train=args.train_size, n_test=args.test_size, n_val_holdout=args.val_holdout,
                    fine_tune=args.fine_tune, cut=args.cut, ensemble=tuple(args.ensemble), mirror=args.mirror,
                    recheck=args.recheck, jpeg_qualities=tuple(args.jpeg_qualities), training=training)


def main(preprocess_data, argv=None) -> int:
    """Trains, saves and checks the model; `preprocess_data` is the script's own (the grader's) function."""
    args = build_parser().parse_args(argv)
    start(args.verbose)

    def work() -> int:
        from ..transfer.final import make_final_model

        make_final_model(run_from_args(args), preprocess_data)
        return 0

    return exit_code(work)
