"""Result rows from one (backbone, img_size): the measurement columns, then one row per head."""

from __future__ import annotations

import json

import backbones

from ..core.features import FeatureSet, splits_peak_rss_mb, summed_timing
from ..core.heads import HeadConfig
from .config import RunConfig


def _round(value, digits):
    return round(value, digits) if value else None


def measurement_row(spec: backbones.BackboneSpec, img_size: int, weights: backbones.WeightsSource,
                    sets: dict[str, FeatureSet], config: RunConfig, n_images: dict, data_fingerprint: str,
                    from_cache: bool, dataset: str = "cifar10") -> dict:
    """The columns every row of this (backbone, img_size) shares: speed, memory, FLOPs, data."""
    timing = summed_timing(sets)
    meta = next(iter(sets.values())).meta
    sps, flops, peak = timing.samples_per_sec, meta.get("flops_per_img"), meta.get("matmul_peak_gflops")
    gflops = flops * sps / 1e9 if flops and sps else None
    peak_rss = splits_peak_rss_mb(sets)
    # each split's peak against its own start: a partly cached job's splits were made by different processes
    grown = [found.meta["peak_rss_mb"] - found.meta["start_rss_mb"] for found in sets.values()
             if found.meta.get("peak_rss_mb") is not None and found.meta.get("start_rss_mb") is not None]
    job_rss = max(grown) if grown else None
    return {
        "model": spec.name, "img_size": img_size, "precision": config.precision, "weights": weights.label,
        "family": spec.family, "param_count": spec.param_count, "feature_dim": spec.feature_dim,
        "imagenet_top1": spec.imagenet_top1,
        "samples_per_sec": _round(sps, 3), "ms_per_img": _round(1000 / sps if sps else None, 3),
        "images_timed": timing.images_timed, "extract_wall_s": round(timing.wall_s, 3),
        "batch_size": timing.batch_size, "peak_rss_mb": _round(peak_rss, 1),
        "job_rss_mb": None if job_rss is None else round(job_rss, 1),
        "gflops_per_img": _round(flops / 1e9 if flops else None, 4), "gflops_per_sec": _round(gflops, 2),
        "matmul_peak_gflops": _round(peak, 1),
        "pct_of_peak": _round(100 * gflops / peak if gflops and peak else None, 1),
        "train_size": n_images["train"], "val_size": n_images["val"], "test_size": n_images["test"],
        "from_cache": from_cache, "seed": config.seed, "weights_id": weights.identity,
        "dataset": dataset, "data_fingerprint": data_fingerprint, "host": meta.get("host"),
        "device": meta.get("device"),
    }


def timing_only_row(shared: dict) -> dict:
    """A row without a head: no images were scored."""
    return {**shared, "head": "none", "regime": "frozen", "train_size": None, "val_size": None, "test_size": None}


def head_params(kind: str, feature_dim: int, n_classes: int = 10) -> int:
    """Trainable parameters of a head of `kind` on `feature_dim` features (the standardisation is fixed)."""
    hidden = HeadConfig(kind=kind).hidden
    return (feature_dim * hidden + hidden + hidden * n_classes + n_classes if kind == "mlp"
            else feature_dim * n_classes + n_classes)


def finetuned_row(shared: dict, result: dict) -> dict:
    """The fine-tuned regime's row (`benchmark.core.networks.ensure_finetuned`'s result): an mlp head."""
    return {**head_row(shared, "mlp", result), "regime": "finetune", "ft_epochs": result["ft_epochs"],
            "ft_train_s": round(result["ft_train_s"], 3), "trainable_params": result["trainable_params"]}


def head_row(shared: dict, kind: str, result: dict, feature_dim: int | None = None) -> dict:
    """A row for one trained head (`benchmark.core.networks.ensure_head`'s result)."""
    return {**shared, "head": kind, "regime": "frozen",
            "trainable_params": head_params(kind, feature_dim, len(result["per_class_acc"])) if feature_dim else None,
            "val_acc": round(result["val_acc"], 4), "test_acc": round(result["test_acc"], 4),
            "test_ci_low": round(result["test_ci_low"], 4), "test_ci_high": round(result["test_ci_high"], 4),
            "head_epochs": result["epochs"], "head_train_s": round(result["head_train_s"], 3),
            "per_class_acc": _json(result["per_class_acc"]), "confusion": _json(result["confusion"])}


def _json(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))
