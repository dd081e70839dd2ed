"""Training the final model's main network on cached features and maps.

When fine-tuning, the base below the cut (`transfer.select.final_cut`, or
`--cut`) stays frozen and its output maps are computed once and cached; the
head is trained on the pooled features of the frozen base, then everything
above the cut and the head are fine-tuned together on the cached maps
(mirrored and shifted at random). Without fine-tuning only the head is
trained, on features of the training images and of their mirror images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import backbones

from ..core.data import Split
from ..core.features import FLIP, ExtractJob, FeatureSet, ensure_features
from ..core.finetune import (FINETUNE_VERSION, FineTuneConfig, fine_tune, pooled_features, split_base,
                             trainable_params)
from ..core.heads import HEAD_VERSION, HeadConfig, fit_head
from ..core.metrics import accuracy
from ..core.store import PIPELINE_VERSION


@dataclass(frozen=True)
class TransferConfig:
    """The final model's training settings (the command line's flags)."""

    hidden: int = 1024
    dropout: float = 0.5
    label_smoothing: float = 0.1
    epochs: int = 100  # head epochs, early-stopped on validation
    ft_epochs: int = 5
    ft_lr: float = 1e-4
    ft_shift: int = 0  # random translation of the maps, in cells (FineTuneConfig.shift)
    flip: bool = True  # mirrored features (head only) or random mirroring of maps (fine-tuning)
    batch_size: int = 32  # extraction batch
    chunk_size: int = 2048
    seed: int = 0

    def head(self) -> HeadConfig:
        return HeadConfig(kind="mlp", hidden=self.hidden, dropout=self.dropout, max_epochs=self.epochs,
                          batch_size=256, learning_rate=1e-3, patience=10)

    def fine_tune(self) -> FineTuneConfig:
        return FineTuneConfig(learning_rate=self.ft_lr, epochs=self.ft_epochs, flip=self.flip,
                              label_smoothing=self.label_smoothing, shift=self.ft_shift)


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
            splits: tuple = ("train", "val")) -> ExtractJob:
        """The feature job of this backbone (or of member `name` with its `weights`) on `splits`."""
        return ExtractJob(name or self.spec.name, self.img_size, weights or self.weights, splits=splits,
                          cache_dir=self.cache_dir, cut=cut, batch_size=self.config.batch_size,
                          chunk_size=self.config.chunk_size)

    def features(self, job: ExtractJob, base, echo=print) -> dict[str, FeatureSet]:
        """`ensure_features` on this training's images, saying which splits came from the cache."""
        images = {"train": self.train, "val": self.val, **({"test": self.test} if self.test is not None else {})}
        sets = ensure_features(job, images, base=base, echo=echo)
        what = f"maps at {job.cut}" if job.cut else "features"
        for name, found in sets.items():
            if found.from_cache:
                echo(f"  {job.backbone} {name}: {len(found.labels)} {what} from the cache")
        return sets

    def model_key(self) -> dict:
        """Everything the finished main network depends on: the model cache's key (unchanged since v1)."""
        import keras

        ft = self.config.fine_tune() if self.cut else None
        return {"backbone": self.spec.name, "size": self.img_size, "weights": self.weights.identity,
                "cut": self.cut, "train": self.train.fingerprint, "val": self.val.fingerprint,
                "flip_features": self.flip_features, "head": self.config.head().as_dict(),
                "label_smoothing": self.config.label_smoothing, "fine_tune": ft.as_dict() if ft else None,
                "seed": self.config.seed,
                "versions": [PIPELINE_VERSION, HEAD_VERSION, FINETUNE_VERSION, keras.__version__]}


def _curves(history: dict) -> dict:
    return {k: [round(float(v), 5) for v in values] for k, values in history.items()}


def train_main(t: Transfer, echo=print):
    """Trains the main network.

    Returns:
        `(model, val_acc, record)`: the model compiled and ready to save, its
        validation accuracy, and `{"stages": [...], "curves": {...}}` for
        transfer.json: each stage's validation (and, with `t.test`, test)
        accuracy, epochs, wall seconds and trainable parameters, and the
        per-epoch training and validation curves.
    """
    base = backbones.build_base(t.spec.name, t.img_size, t.weights)
    top = split_base(base, t.cut)[1] if t.cut else None
    splits = ("train", "train" + FLIP, "val") if t.flip_features else ("train", "val")
    splits += ("test",) if t.test is not None else ()
    sets = t.features(t.job(cut=t.cut, splits=splits), base, echo)
    if t.cut:
        echo(f"Pooling the frozen {t.spec.name} features above {t.cut} ...")
        feats = {name: pooled_features(top, found.features) for name, found in sets.items()}
    else:
        feats = {name: found.features for name, found in sets.items()}
    c = t.config
    x_train = np.concatenate([feats[name] for name in sets if name.startswith("train")])
    y_train = np.concatenate([sets[name].labels for name in sets if name.startswith("train")])
    echo(f"Training the head ({c.head().kind}, {c.hidden} hidden, dropout {c.dropout}, label smoothing "
         f"{c.label_smoothing}) on {len(y_train)} frozen feature vectors ...")
    head, epochs, head_s = fit_head(c.head(), (x_train, y_train), (feats["val"], t.val.y), seed=c.seed,
                                    label_smoothing=c.label_smoothing)
    val_acc = accuracy(head.predict(feats["val"].astype(np.float32), verbose=0), t.val.y)
    echo(f"  head: {epochs} epochs in {head_s:.0f}s, validation accuracy {val_acc:.4f} (frozen base)")
    stage = {"stage": "frozen head", "val_acc": val_acc, "epochs": epochs, "wall_s": round(head_s, 1),
             "trainable_params": trainable_params(head)}
    if t.test is not None:
        stage["test_acc"] = accuracy(head.predict(feats["test"].astype(np.float32), verbose=0), t.test.y)
    record = {"stages": [stage], "curves": {"head": _curves(head.history.history)}}
    if t.cut:
        val_acc = _fine_tune(t, top, head, sets, val_acc, record, echo)
    return build_model(t.spec, t.img_size, base, head), val_acc, record


def _fine_tune(t: Transfer, top, head, maps: dict[str, FeatureSet], frozen_acc: float, record: dict, echo) -> float:
    ft = t.config.fine_tune()
    echo(f"Fine-tuning {t.spec.name} above {t.cut} with the head (lr {ft.learning_rate}, at most {ft.epochs} "
         f"epochs, {'random mirroring, ' if ft.flip else ''}"
         f"{f'random shifts of up to {ft.shift} cells, ' if ft.shift else ''}BatchNorm frozen) on {len(t.train)} "
         f"cached maps ...")
    result = fine_tune(top, head, (maps["train"].features, t.train.y), (maps["val"].features, t.val.y), ft,
                       seed=t.config.seed, echo=echo)
    echo(f"  fine-tune: {result.epochs} epochs in {result.seconds:.0f}s, validation accuracy {result.val_acc:.4f} "
         f"({result.val_acc - frozen_acc:+.4f} over the frozen base)")
    stage = {"stage": "fine-tuned", "val_acc": result.val_acc, "epochs": result.epochs,
             "wall_s": round(result.seconds, 1), "trainable_params": result.trainable_params}
    if t.test is not None:
        stage["test_acc"] = accuracy(head.predict(pooled_features(top, maps["test"].features), verbose=0), t.test.y)
    record["stages"].append(stage)
    record["curves"]["fine_tune"] = _curves(result.history)
    return result.val_acc


def build_model(spec: backbones.BackboneSpec, img_size: int, base, head):
    """The deliverable, compiled: 32x32 float input -> upscaling -> preprocessing -> frozen base -> head."""
    import keras

    model = backbones.upscaling_model(spec, img_size, base, head, name=f"cifar10_{spec.name.lower()}_{img_size}")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    return model
