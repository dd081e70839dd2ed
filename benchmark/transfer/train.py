"""Training the final model's main network on cached features and maps.

The recipe is the benchmark's (`benchmark.core.networks.train_network`) with
the final model's settings (`config.TransferConfig`). When fine-tuning, the
base below the cut (`select.final_cut`, or `--cut`) stays frozen and its
output maps are computed once and cached; the head is trained on the pooled
features of the frozen base, then everything above the cut and the head are
fine-tuned together on the cached maps (mirrored and shifted at random).
Without fine-tuning only the head is trained, on features of the training
images and of their mirror images.
"""

from __future__ import annotations

from dataclasses import dataclass

import backbones

from ..core.data import Split, jpeg_split_name
from ..core.features import FLIP, BackboneJob, FeatureSet, build_job_base, ensure_features
from ..core.finetune import split_base
from ..core.keys import model_parts
from ..core.networks import Recipe, train_network
from .config import TransferConfig


@dataclass(frozen=True)
class Transfer:
    """One final-model training: backbone, img_size, weights, cut, the images and the settings."""

    spec: backbones.BackboneSpec
    img_size: int
    weights: backbones.WeightsSource
    cut: str | None
    train: Split
    val: Split
    cache_dir: str
    config: TransferConfig
    test: Split | None = None  # when given, each stage is also scored on it (never used to choose)

    @property
    def flip_features(self) -> bool:
        """Head-only training adds features of mirrored training images; fine-tuning mirrors maps instead."""
        return self.cut is None and self.config.flip

    def job(self, name: str | None = None, weights=None, cut: str | None = None,
            splits: tuple = ("train", "val")) -> BackboneJob:
        """The feature job of this backbone (or of member `name` with its `weights`) on `splits`."""
        return BackboneJob(name or self.spec.name, self.img_size, weights or self.weights, splits=splits,
                          cache_dir=self.cache_dir, cut=cut, batch_size=self.config.batch_size,
                          chunk_size=self.config.chunk_size)

    def features(self, job: BackboneJob, base, echo=print) -> dict[str, FeatureSet]:
        """`ensure_features` on this training's images, saying which splits came from the cache."""
        images = {"train": self.train, "val": self.val, **({"test": self.test} if self.test is not None else {})}
        sets = ensure_features(job, images, base=base, echo=echo)
        what = f"maps at {job.cut}" if job.cut else "features"
        for name, found in sets.items():
            if found.from_cache:
                echo(f"  {job.backbone} {name}: {len(found.labels)} {what} from the cache")
        return sets

    def recipe(self) -> Recipe:
        """The main network's recipe: the benchmark's pipeline with the final model's settings."""
        c = self.config
        return Recipe(head=c.head(), fine_tune=c.fine_tune() if self.cut else None,
                      label_smoothing=c.label_smoothing, seed=c.seed, score_every_stage=True)

    def model_key(self) -> dict:
        """Everything the finished main network depends on: the model cache's key (unchanged since v1)."""
        ft = self.config.fine_tune() if self.cut else None
        return model_parts(self.spec.name, self.img_size, self.weights.identity, self.cut, self.train.fingerprint,
                           self.val.fingerprint, self.flip_features, self.config.head().as_dict(),
                           self.config.label_smoothing, ft.as_dict() if ft else None, self.config.seed,
                           self.config.train_jpeg)

    @property
    def train_splits(self) -> tuple:
        """The training images' splits: the images, and their mirror images' or re-encoded copies."""
        mirrored = ("train" + FLIP,) if self.flip_features else ()
        band = self.config.train_jpeg
        return ("train", *mirrored, *((jpeg_split_name("train", band),) if band else ()))


def train_main(t: Transfer, echo=print):
    """Trains the main network through `benchmark.core.networks.train_network`.

    Returns:
        `(model, val_acc, record)`: the model compiled and ready to save, its
        validation accuracy, and `{"stages": [...], "curves": {...}}` for
        transfer.json: each stage's validation (and, with `t.test`, test)
        accuracy, epochs, wall seconds and trainable parameters, and the
        per-epoch training and validation curves.
    """
    job = t.job(cut=t.cut, splits=t.train_splits + ("val",) + (("test",) if t.test is not None else ()))
    base = build_job_base(job)  # WeightsUnavailable when an ImageNet download fails
    top = split_base(base, t.cut)[1] if t.cut else None
    sets = t.features(job, base, echo)
    trained = train_network(t.recipe(), {name: (found.features, found.labels) for name, found in sets.items()},
                            top, echo, label=f"{t.spec.name} above {t.cut}")
    record = {"stages": trained.stages, "curves": trained.curves}
    return build_model(t.spec, t.img_size, base, trained.head), trained.val_acc, record


def compiled(model):
    """`model` compiled as the deliverable is: Adam, categorical cross-entropy, accuracy (what the grader's
    `evaluate` reports)."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def build_model(spec: backbones.BackboneSpec, img_size: int, base, head):
    """The deliverable, compiled: 32x32 float input -> upscaling -> preprocessing -> frozen base -> head."""
    return compiled(backbones.upscaling_model(spec, img_size, base, head,
                                              name=f"cifar10_{spec.name.lower()}_{img_size}"))
