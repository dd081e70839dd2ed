"""The fine-tuned regime's measurement: a job's cached maps -> a fine-tuned network's scores.

Kornblith, Shlens & Le (CVPR 2019) rank ImageNet networks twice, as fixed
feature extractors and fine-tuned, and the rankings differ. The benchmark's
fine-tuned regime is the CPU-sized version of the second: the base below its
registry cut stays frozen (its maps are extracted once, by `ensure_features`),
an MLP head is trained on the pooled frozen features, and then the last stage
and the head are trained together on the cached maps (mirrored at random,
BatchNorm statistics frozen, early-stopped on the validation split).

`ensure_finetuned` runs where the job runs (a worker process, a Dask worker,
a GPU), and leaves its result in the cache's head store, which is how the
runner collects it: the same way features travel.
"""

from __future__ import annotations

import numpy as np

from .data import Split
from .features import ExtractJob, FeatureSet, build_job_base, release_keras, select_splits
from .finetune import FINETUNE_VERSION, FineTuneConfig, fine_tune, pooled_features, split_base
from .heads import HEAD_VERSION, HeadConfig, fit_head
from .metrics import accuracy, classification_report
from .store import Store

SCORED = ("train", "val", "test")
FINETUNE_HEAD = HeadConfig(kind="mlp")


def finetune_key(job: ExtractJob, map_keys: dict[str, str], seed: int) -> dict:
    """The head-store key of a fine-tuned result: the maps' cache keys, the settings, the seed and the versions."""
    return {"maps": {name: map_keys[name] for name in SCORED}, "finetune": job.finetune,
            "head": FINETUNE_HEAD.as_dict(), "seed": seed, "version": [FINETUNE_VERSION, HEAD_VERSION]}


def load_finetuned(job: ExtractJob, splits: dict[str, Split], store: Store, seed: int) -> dict | None:
    """The stored result for the job on these images, or None (reads no maps)."""
    keys = {name: job.entry(store, split).key for name, split in select_splits(job, splits).items()}
    return store.load_head(finetune_key(job, keys, seed))


def ensure_finetuned(job: ExtractJob, sets: dict[str, FeatureSet], store: Store | None = None, seed: int = 0,
                     echo=print) -> dict:
    """The fine-tuned network's scores on the job's maps, from the store or trained now.

    Args:
        job: a job with a `cut` and `finetune` settings (a `FineTuneConfig` as a dict).
        sets: its maps, `{"train", "val", "test": FeatureSet}` (N, h, w, c).

    Returns:
        The head fields (`val_acc`, `test_acc`, its interval, per-class
        accuracy, confusion, test predictions, `epochs`, `head_train_s`)
        plus `ft_epochs`, `ft_train_s`, `trainable_params` and
        `frozen_val_acc` (the head before fine-tuning).
    """
    if not job.cut or job.finetune is None:
        raise ValueError(f"the job for {job.backbone} has no cut or no fine-tuning settings")
    store = store or Store(job.cache_dir)
    key = finetune_key(job, {name: found.key for name, found in sets.items()}, seed)
    cached = store.load_head(key)
    if cached is not None:
        return cached
    config = FineTuneConfig(**job.finetune)
    labels = {name: sets[name].labels for name in SCORED}
    try:
        base = build_job_base(job)
        top = split_base(base, job.cut)[1]
        pooled = {name: pooled_features(top, sets[name].features) for name in ("train", "val")}  # frozen top
        head, epochs, head_s = fit_head(FINETUNE_HEAD, (pooled["train"], labels["train"]),
                                        (pooled["val"], labels["val"]), seed=seed,
                                        label_smoothing=config.label_smoothing)
        frozen_val = accuracy(head.predict(pooled["val"], verbose=0), labels["val"])
        echo(f"{job.label}  fine-tuning above {job.cut} (head on frozen maps: val acc {frozen_val:.4f})")
        ft_epochs, ft_s, val_acc, trainable, _ = fine_tune(
            top, head, (sets["train"].features, labels["train"]), (sets["val"].features, labels["val"]),
            config, seed=seed, echo=lambda line: echo(f"{job.label}{line}"))
        test_pred = head.predict(pooled_features(top, sets["test"].features), verbose=0).argmax(axis=1)
    finally:
        base = top = head = None
        release_keras()
    report = classification_report(labels["test"], test_pred, seed=seed)
    result = {"val_acc": val_acc, "test_acc": report["accuracy"], "test_ci_low": report["ci_low"],
              "test_ci_high": report["ci_high"], "per_class_acc": report["per_class"],
              "confusion": report["confusion"], "test_pred": np.asarray(test_pred).astype(int).tolist(),
              "epochs": epochs, "head_train_s": head_s, "ft_epochs": ft_epochs, "ft_train_s": ft_s,
              "trainable_params": trainable, "frozen_val_acc": frozen_val}
    store.save_head(key, result)
    return result
