"""The sweep's work list, checked before anything runs."""

from __future__ import annotations

import backbones

from .config import RunConfig


def plan(config: RunConfig) -> list[tuple[backbones.BackboneSpec, int]]:
    """`(spec, img_size)` pairs in the order given, without repeats; raises on an unknown name or bad size."""
    pairs, seen = [], set()
    for name in config.backbones:
        spec = backbones.get(name)
        for img_size in config.img_sizes:
            pair = (spec.name, backbones.resolve_img_size(spec, img_size))
            if pair not in seen:
                seen.add(pair)
                pairs.append((spec, pair[1]))
    return pairs


FULL_IMAGES = 60_000  # --full: 45,000 train + 5,000 validation + 10,000 test images per backbone


def estimate_sweep(frame, n_workers: int, startup_s: float = 4.0,
                   n_images: int = FULL_IMAGES) -> tuple[list[dict], float, list[str]]:
    """Wall time of `--all --full` at native sizes on `n_workers` workers like the one that measured `frame`.

    Assumptions: every registry backbone extracts `n_images` images (CIFAR-10's 60,000 by default) at its
    native size; its throughput there is the best one measured in `frame`
    scaled by (measured size / native size)^2, the ratio of their FLOPs; each
    job adds `startup_s` of worker start-up; head training is ignored (seconds);
    jobs are packed longest first onto the least-loaded worker (LPT).

    Returns:
        `(jobs, makespan_s, unmeasured)`: one dict per job (model, img_size,
        est_s, worker), the estimated wall time, and backbones without a measurement.
    """
    frozen = frame[frame["regime"] == "frozen"] if "regime" in frame else frame  # finetune rows time only the bottom
    measured = frozen.dropna(subset=["samples_per_sec"]).sort_values("samples_per_sec", ascending=False)
    jobs, unmeasured = [], []
    for name in backbones.names():
        spec, rows = backbones.get(name), measured[measured["model"] == name]
        if rows.empty:
            unmeasured.append(name)
            continue
        row = rows.iloc[0]
        native_sps = float(row["samples_per_sec"]) * (int(row["img_size"]) / spec.native_size) ** 2
        jobs.append({"model": name, "img_size": spec.native_size, "est_s": n_images / native_sps + startup_s})
    loads = [0.0] * max(1, n_workers)
    for job in sorted(jobs, key=lambda j: -j["est_s"]):
        worker = loads.index(min(loads))
        loads[worker] += job["est_s"]
        job["worker"] = worker
    return jobs, max(loads), unmeasured
