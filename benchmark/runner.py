"""The benchmark runner: for each (backbone, size) extract features, train heads, write rows.

Every expensive result is cached (features per split, head metrics), and
the results table is rewritten atomically after each backbone, so a rerun
of the same command rebuilds the same table without building any model.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

import backbones

from . import sysinfo
from .atomic import probe_writable
from .cache import FeatureCache, feature_key_parts
from .data import Split, fingerprint, load_cifar10, make_splits
from .flops import count_flops, matmul_peak_gflops
from .extract import CHUNK_SIZE, Extractor, Timing, extract_split, make_extractor
from .heads import HEAD_VERSION, HEADS, HeadConfig, train_head
from .progress import Progress, format_duration
from .results import N_EXAMPLES, write_examples, write_results
from .worker import extract_in_worker

log = logging.getLogger("benchmark")

DEFAULT_SIZE = 128
QUICK_SIZES = {"train": 2000, "val": 500, "test": 2000}


@dataclass
class RunConfig:
    """Everything a run depends on. Sizes are ints or "native"."""

    backbones: list[str]
    sizes: list = field(default_factory=lambda: [DEFAULT_SIZE])
    train_size: int | None = QUICK_SIZES["train"]
    val_size: int | None = QUICK_SIZES["val"]
    test_size: int | None = QUICK_SIZES["test"]
    val_holdout: int = 5000
    data_dir: str | None = None
    weights: str | None = None  # a folder, "imagenet", "random", or None for $BACKBONE_WEIGHTS_DIR
    cache_dir: str | None = None
    out: str = "results"
    batch_size: int = 32
    seed: int = 0
    time_only: bool = False
    heads: tuple = HEADS
    time_images: int = 64
    time_budget_s: float = 10.0
    chunk_size: int = CHUNK_SIZE
    precision: str = "fp32"  # "bf16": Keras mixed_bfloat16 for the base
    isolate: bool = False  # extract each backbone in its own process (the CLI's default)


def resolve_size(spec: backbones.BackboneSpec, size) -> int:
    value = spec.native_size if str(size).lower() == "native" else int(size)
    backbones.check_size(spec, value)
    return value


def plan(config: RunConfig) -> list[tuple[backbones.BackboneSpec, int]]:
    """(spec, size) pairs to run, validated before any work starts."""
    pairs, seen = [], set()
    for name in config.backbones:
        spec = backbones.get(name)
        for size in config.sizes:
            pair = (spec.name, resolve_size(spec, size))
            if pair not in seen:
                seen.add(pair)
                pairs.append((spec, pair[1]))
    return pairs


def _row_base(spec, size, weights, timing: Timing, peak_mb, config, splits, from_cache, data_fp,
              hw: dict) -> dict:
    sps = timing.samples_per_sec
    flops, peak = hw.get("flops_per_img"), hw.get("matmul_peak_gflops")
    gflops = flops * sps / 1e9 if flops and sps else None
    return {
        "model": spec.name, "img_size": size, "precision": config.precision, "weights": weights.label,
        "family": spec.family,
        "param_count": spec.param_count, "feature_dim": spec.feature_dim, "imagenet_top1": spec.imagenet_top1,
        "samples_per_sec": round(sps, 3) if sps else None,
        "ms_per_img": round(1000 / sps, 3) if sps else None,
        "images_timed": timing.images_timed, "extract_wall_s": round(timing.wall_s, 3),
        "batch_size": timing.batch_size, "peak_rss_mb": round(peak_mb, 1) if peak_mb else None,
        "gflops_per_img": round(flops / 1e9, 4) if flops else None,
        "gflops_per_sec": round(gflops, 2) if gflops else None,
        "matmul_peak_gflops": round(peak, 1) if peak else None,
        "pct_of_peak": round(100 * gflops / peak, 1) if gflops and peak else None,
        "train_size": len(splits["train"]), "val_size": len(splits["val"]), "test_size": len(splits["test"]),
        "from_cache": from_cache, "seed": config.seed, "weights_id": weights.identity,
        "data_fingerprint": data_fp,
    }


class Runner:
    """Runs a `RunConfig`; `run()` returns the results DataFrame."""

    def __init__(self, config: RunConfig, echo=print):
        self.config = config
        self.echo = echo
        self.cache = FeatureCache(config.cache_dir)
        self.rows: list[dict] = []
        self.predictions: dict[str, np.ndarray] = {}
        self._matmul_peak: float | None = None

    def matmul_peak(self) -> float:
        """fp32 matmul GFLOP/s of this machine, measured once per run when first needed."""
        if self._matmul_peak is None:
            self._matmul_peak = matmul_peak_gflops()
            self.echo(f"Measured fp32 matmul peak: {self._matmul_peak:.1f} GFLOP/s")
        return self._matmul_peak

    # -- setup --

    def _prepare(self):
        cfg = self.config
        backbones.check_precision(cfg.precision)
        self.pairs = plan(cfg)
        self.cache.check_writable()
        _check_writable_dir(cfg.out, "--out")
        self.echo(f"Loading CIFAR-10 from {cfg.data_dir or os.environ.get('CIFAR10_DIR') or 'keras.datasets'} ...")
        self.data = load_cifar10(cfg.data_dir)
        self.splits = make_splits(self.data, val_size=cfg.val_holdout, train_size=cfg.train_size,
                                  val_subset=cfg.val_size, test_size=cfg.test_size, seed=cfg.seed)
        self.data_fp = fingerprint(*(a for s in self.splits.values() for a in (s.x, s.y)))
        n = {k: len(v) for k, v in self.splits.items()}
        self.echo(f"Splits: train {n['train']}, val {n['val']}, test {n['test']} (seed {cfg.seed})"
                  + ("  [lossy JPEG copy of CIFAR-10]" if self.data.lossy_jpeg else ""))
        self.environment = {
            **sysinfo.environment(),
            "data_source": self.data.source,
            "data_lossy_jpeg": self.data.lossy_jpeg,
            "config": {k: v for k, v in vars(cfg).items()},
            "heads": {kind: HeadConfig(kind=kind).as_dict() for kind in HEADS},
            "schema": "one row per (model, img_size, head); see benchmark/results.py COLUMNS",
        }
        weights = {spec.name: backbones.resolve_weights(spec.name, cfg.weights) for spec, _ in self.pairs}
        self.weights = weights
        random = sorted({n for n, w in weights.items() if not w.pretrained})
        if random and not cfg.time_only:
            where = cfg.weights or os.environ.get(backbones.WEIGHTS_ENV) or "the request"
            self.echo(f"No pretrained weights for {len(random)} of {len(weights)} backbones in {where}: "
                      f"they are timed with random weights and their accuracy is left empty.")

    # -- one backbone --

    def _timing_split(self) -> Split:
        cfg = self.config
        train = self.splits["train"]
        n = min(len(train), cfg.time_images + cfg.batch_size)
        return Split("timing", train.x[:n], train.y[:n])

    def _run_pair(self, spec, size, progress_prefix, features_only: bool = False):
        cfg = self.config
        weights = self.weights[spec.name]
        measure_accuracy = weights.pretrained and not cfg.time_only
        parts = ["train", "val", "test"] if measure_accuracy else ["timing"]
        splits = {p: (self.splits[p] if p != "timing" else self._timing_split()) for p in parts}
        entries = {p: self.cache.features(spec.name, size, p, feature_key_parts(
            spec, weights, splits[p], cfg.batch_size if p == "timing" else None, cfg.precision)) for p in parts}
        found = {p: entries[p].load() for p in parts}
        missing = [p for p in parts if found[p] is None]
        from_cache, in_worker = not missing, bool(missing) and cfg.isolate
        if in_worker:
            code = extract_in_worker(asdict(cfg), spec.name, size, progress_prefix, self.matmul_peak())
            found = {p: entries[p].load() for p in parts}
            missing = [p for p in parts if found[p] is None]
            if missing and weights.kind != "imagenet":  # imagenet: the download fallback below handles it
                raise RuntimeError(f"extracting {spec.name} @{size}px failed in its worker process (exit code "
                                   f"{code}; its output is above). Rerun with --no-isolate to run it in this process.")
        sysinfo.reset_peak_rss()
        feats, timing = {}, Timing()
        for p in parts:
            if found[p] is not None:
                feats[p] = found[p][0]
                timing.add(found[p][2]["timing"])
        peak = None
        if missing:
            total = sum(len(splits[p]) for p in missing)
            progress = Progress(progress_prefix, total, self.echo)
            t0 = time.perf_counter()
            try:
                base = backbones.build_base(spec.name, size, weights, precision=cfg.precision)
            except Exception as err:  # offline download failures come in many types
                if weights.kind != "imagenet":
                    raise
                log.warning("could not download ImageNet weights for %s (%s: %s); timing it with random "
                            "weights, accuracy left empty. Offline, use --weights-dir.",
                            spec.name, type(err).__name__, str(err)[:200])
                self.weights[spec.name] = backbones.WeightsSource("random")
                return self._run_pair(spec, size, progress_prefix, features_only)
            hw = {"flops_per_img": count_flops(base), "matmul_peak_gflops": self.matmul_peak()}
            fn = make_extractor(base, spec, size)
            extractor = Extractor(fn, cfg.batch_size, on_batch=progress.update)
            resumed = 0
            for p in missing:
                entry = entries[p]
                if p == "timing":
                    t = extractor.time_only(splits[p].x[: cfg.batch_size + cfg.time_images],
                                            budget_s=cfg.time_budget_s)
                    dummy = np.zeros((0, spec.feature_dim), np.float16)
                    entry.save(dummy, np.zeros(0, np.int64), {"timing": t.as_dict(), "peak_rss_mb": sysinfo.peak_rss_mb(),
                                                              **hw})
                    timing.add(t)
                    continue
                features, t, reused = extract_split(entry, extractor, splits[p].x, cfg.chunk_size)
                resumed += reused
                entry.save(features, splits[p].y, {"timing": t.as_dict(), "peak_rss_mb": sysinfo.peak_rss_mb(), **hw})
                feats[p] = features
                timing.add(t)
            peak = sysinfo.peak_rss_mb()
            progress.finish(f"built and extracted in {format_duration(time.perf_counter() - t0)}"
                            + (f" (resumed {resumed} finished chunks of an interrupted run)" if resumed else ""))
            del base, fn, extractor
            _release_keras()
        else:
            peak = max((found[p][2].get("peak_rss_mb") or 0) for p in parts) or None
            meta = found[parts[0]][2]
            hw = {k: meta.get(k) for k in ("flops_per_img", "matmul_peak_gflops")}
            if not in_worker:
                self.echo(f"{progress_prefix}  features from cache")
        if features_only:
            return []
        base_row = _row_base(spec, size, weights, timing, peak, cfg, self.splits, from_cache, self.data_fp, hw)
        if not measure_accuracy:
            return [{**base_row, "head": "none", "train_size": None, "val_size": None, "test_size": None}]
        rows = []
        for kind in cfg.heads:
            result = self._head(kind, spec, size, entries, feats, splits)
            self.predictions[f"{spec.name}|{size}|{kind}"] = np.asarray(result["test_pred"][:N_EXAMPLES], np.int64)
            rows.append({**base_row, "head": kind, "val_acc": round(result["val_acc"], 4),
                         "test_acc": round(result["test_acc"], 4), "test_ci_low": round(result["test_ci_low"], 4),
                         "test_ci_high": round(result["test_ci_high"], 4), "head_epochs": result["epochs"],
                         "head_train_s": round(result["head_train_s"], 3),
                         "per_class_acc": _json(result["per_class_acc"]), "confusion": _json(result["confusion"])})
        return rows

    def _head(self, kind, spec, size, entries, feats, splits) -> dict:
        config = HeadConfig(kind=kind)
        key = {"features": {p: entries[p].key for p in ("train", "val", "test")}, "head": config.as_dict(),
               "seed": self.config.seed, "version": HEAD_VERSION}
        cached = self.cache.load_head(key)
        if cached is not None:
            return cached
        result = train_head(config, (feats["train"], splits["train"].y), (feats["val"], splits["val"].y),
                            (feats["test"], splits["test"].y), seed=self.config.seed)
        self.cache.save_head(key, result)
        return result

    # -- the whole run --

    def run(self):
        self._prepare()
        cfg = self.config
        t_start = time.perf_counter()
        frame = None
        for i, (spec, size) in enumerate(self.pairs, 1):
            prefix = f"[{i}/{len(self.pairs)}] {spec.name} @{size}px" + (
                f" {cfg.precision}" if cfg.precision != "fp32" else "")
            t0 = time.perf_counter()
            rows = self._run_pair(spec, size, prefix)
            self.rows.extend(rows)
            frame = write_results(self.rows, cfg.out, self.environment)
            write_examples(cfg.out, self.splits["test"], self.predictions)
            accs = ", ".join(f"{r['head']} {r['test_acc']:.1%}" for r in rows if r.get("test_acc") is not None)
            sps = rows[0]["samples_per_sec"]
            self.echo(f"{prefix}  {sps or float('nan'):.1f} img/s"
                      + (f"  test acc: {accs}" if accs else "  (timing only)")
                      + f"  [{format_duration(time.perf_counter() - t0)}]")
        self.echo(f"Finished {len(self.pairs)} backbone/size pairs in {format_duration(time.perf_counter() - t_start)}."
                  f" Results: {os.path.join(cfg.out, 'results.csv')}")
        return frame


def _json(obj) -> str:
    import json

    return json.dumps(obj, separators=(",", ":"))


def _release_keras():
    """Drops the finished model and hands freed heap back to the OS, so the
    next backbone's peak RSS is not inflated by this one's leftovers."""
    import ctypes

    import keras

    keras.backend.clear_session()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _check_writable_dir(path: str, flag: str) -> None:
    try:
        probe_writable(path)
    except OSError as err:
        raise PermissionError(f"{flag} folder {path!r} is not writable ({err.strerror or err}); "
                              f"pass a writable folder to {flag}.") from err
