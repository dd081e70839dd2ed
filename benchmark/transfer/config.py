"""The final model's settings as data, with their measured defaults: the one place they live.

`python 0-transfer.py` parses its flags into a `FinalRun`; the flags'
defaults are these fields' defaults, so the library called with
`FinalRun()` builds the shipped model. Each measured default says where
its number comes from (`docs/measured`, README "Final model").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backbones import PRECISIONS

from ..core.finetune import SCHEDULES, FineTuneConfig
from ..core.heads import HeadConfig

# Without benchmark results: measured here on 3,000 training images at 224 px
# with the MLP head, DenseNet121 reached 0.773 validation accuracy against
# Xception's 0.749, at 1.7x Xception's extraction speed; it is also the top
# scorer of docs/measured in both regimes.
FALLBACK_BACKBONE = "DenseNet121"
FALLBACK_REGIME = "finetune"
# The final model's smallest input size. Measured for DenseNet121 on all 45,000
# training images (docs/measured): at 160 px the frozen head reached 0.8498
# validation accuracy against 0.8460 at 224 px, and the fine-tuned network
# 0.8724 against 0.8618, at half the extraction time. Not measured for others.
FINAL_IMG_SIZE = 160
# Deeper fine-tuning cuts than the registry's (the input of the last stage),
# measured for the final model. DenseNet121 at 160 px: above pool3_pool
# (conv4 and conv5 on 10x10 maps) 0.9066 validation accuracy after 2 epochs,
# against 0.8724 above pool4_pool after 5.
FINAL_CUTS = {"DenseNet121": "pool3_pool"}
# An ensemble is saved only when it beats its main network alone by this much validation accuracy.
# It is part of the ensemble's cache key: changing it trains the member heads again (on cached features).
# Measured at 224 px: fine-tuned DenseNet121 alone 0.8485 test accuracy, with head-only Xception and
# MobileNet members 0.8819; at 160 px the deeper-cut single network beats that, so members are opt-in.
ENSEMBLE_MIN_GAIN = 0.01
# --mirror auto keeps test-time mirroring when it gains this much validation accuracy. Mirroring
# doubles the passes per image; the ensemble's bar prices two more passes (the earlier two-member
# default) at 1 point, so this is the same price per pass for a single network (measured: +0.28 points).
MIRROR_MIN_GAIN = 0.005
MIRROR_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class TransferConfig:
    """How the main network is trained (all of it is in the model cache's key, see `Transfer.model_key`).

    Attributes:
        hidden, dropout: the MLP head.
        label_smoothing: of both stages' cross-entropy.
        epochs: maximum head epochs, early-stopped on validation.
        ft_epochs, ft_lr: the fine-tuning stage's maximum epochs and Adam learning rate.
        ft_shift: random translation of the cached maps while fine-tuning, in cells (0: none).
        ft_schedule: the fine-tuning learning rate's schedule (`FineTuneConfig.schedule`).
        ft_precision: the fine-tuned part's compute while it trains, "fp32" or "bf16"
            (`FineTuneConfig.precision`); the saved model is float32 either way.
        train_jpeg: None, or a band of JPEG qualities (low, high): the training images are also
            re-encoded, each at a quality drawn from the band, and extracted once (cached); the head
            trains on both sets of features, and fine-tuning draws each image's maps from either at random.
        flip: mirrored features (head only) or random mirroring of maps (fine-tuning).
        batch_size, chunk_size: the extraction batch and resumable chunk, in images.
        seed: of the split, both stages and the bootstrap.
    """

    hidden: int = 1024
    dropout: float = 0.5
    label_smoothing: float = 0.1
    epochs: int = 100
    # 5 epochs with a cosine decay, measured with DenseNet121 at 160 px above pool3_pool (README "Final
    # model"): validation 0.9228 after 5 epochs, against 0.9202 after 4, 0.9158 after 3 and 0.9116 at the
    # best of 5 at a constant rate.
    ft_epochs: int = 5
    ft_lr: float = 1e-4
    ft_shift: int = 1  # measured with DenseNet121 at 160 px above pool3_pool (README "Final model")
    ft_schedule: str = "cosine"
    ft_precision: str = "fp32"
    train_jpeg: tuple | None = None
    flip: bool = True
    batch_size: int = 32
    chunk_size: int = 2048
    seed: int = 0

    def head(self) -> HeadConfig:
        return HeadConfig(kind="mlp", hidden=self.hidden, dropout=self.dropout, max_epochs=self.epochs,
                          batch_size=256, learning_rate=1e-3, patience=10)

    def fine_tune(self) -> FineTuneConfig:
        return FineTuneConfig(learning_rate=self.ft_lr, epochs=self.ft_epochs, flip=self.flip,
                              label_smoothing=self.label_smoothing, shift=self.ft_shift,
                              schedule=self.ft_schedule, precision=self.ft_precision)

    def check(self) -> None:
        """Raises ValueError naming the setting and its range (the command line's exit 2)."""
        counts = {"--hidden": self.hidden, "--epochs": self.epochs, "--ft-epochs": self.ft_epochs,
                  "--batch-size": self.batch_size, "--chunk-size": self.chunk_size}
        for flag, value in counts.items():
            if value < 1:
                raise ValueError(f"{flag} is a count, 1 or more; got {value}")
        if self.ft_shift < 0:
            raise ValueError(f"--ft-shift is a number of map cells, 0 or more; got {self.ft_shift}")
        if not 0 <= self.dropout < 1 or not 0 <= self.label_smoothing < 1:
            raise ValueError(f"--dropout and --label-smoothing are fractions in [0, 1); got {self.dropout} and "
                             f"{self.label_smoothing}")
        if self.ft_schedule not in SCHEDULES:  # argparse's choices catch it first; this is for library callers
            raise ValueError(f"--ft-schedule is one of {', '.join(SCHEDULES)}; got {self.ft_schedule!r}")
        if self.ft_precision not in PRECISIONS:  # argparse's choices catch it first, as above
            raise ValueError(f"--ft-precision is one of {', '.join(PRECISIONS)}; got {self.ft_precision!r}")
        if self.train_jpeg is not None:
            low, high = self.train_jpeg
            if not 1 <= low <= high <= 95:
                raise ValueError(f"--train-jpeg is a band of JPEG qualities LOW HIGH with 1 <= LOW <= HIGH <= 95; "
                                 f"got {low} {high}")
        if self.ft_lr <= 0:
            raise ValueError(f"--ft-lr is a positive learning rate; got {self.ft_lr}")


@dataclass(frozen=True)
class FinalRun:
    """One `python 0-transfer.py` run: what to train, on which images, where it goes and how it is checked.

    Attributes:
        backbone, img_size: overrides of the benchmark's choice (`select.choose_backbone`).
        results: the benchmark's results folder the choice is read from.
        data_dir, weights_dir, cache_dir: local folders (None: the environment's, else downloads).
        output: the saved model (.h5 or .keras).
        n_train, n_test: stratified subsets (None: all 45,000 and 10,000); n_val_holdout: validation images.
        fine_tune: None follows the chosen row's regime; True/False force it.
        cut: fine-tune above this layer (None: `FINAL_CUTS`, else the registry's cut).
        ensemble: head-only member backbones (kept above `ENSEMBLE_MIN_GAIN`).
        mirror: test-time mirroring, one of `MIRROR_MODES` (auto: kept above `MIRROR_MIN_GAIN`).
        recheck: evaluate the saved file again even when this exact file was evaluated.
        jpeg_qualities: also evaluate on the test images re-encoded at these JPEG qualities.
        training: the main network's settings.
    """

    backbone: str | None = None
    img_size: int | str | None = None
    results: str = "results"
    data_dir: str | None = None
    weights_dir: str | None = None
    cache_dir: str | None = None
    output: str = "cifar10.h5"
    n_train: int | None = None
    n_test: int | None = None
    n_val_holdout: int = 5000
    fine_tune: bool | None = None
    cut: str | None = None
    ensemble: tuple = ()
    mirror: str = "auto"
    recheck: bool = False
    jpeg_qualities: tuple = (50, 95)
    training: TransferConfig = field(default_factory=TransferConfig)
