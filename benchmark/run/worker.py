"""One `BackboneJob` in a fresh process: `python -m benchmark.run.worker JOB_JSON REPORT_PATH`.

TensorFlow does not hand a finished model's memory back to the OS, so in one
long `--all` process every backbone's peak RSS would include the leftovers of
the ones before it (measured: from 1.9 GB for the first to 4.9 GB for the
last). The runner therefore gives each (backbone, img_size) with features to
make to a fresh worker. The worker does only its job's setup: it rebuilds
the job's images from the recipe and checks them against the planned
fingerprint, checks its weights file, measures the matmul peak when the job
carries none for this host, and calls `ensure_features`, which writes the
cache (and, for a fine-tuned-regime job, `ensure_finetuned`, which leaves its
scores in the cache's head store). It then writes a small JSON report (keys, timing, peak RSS, host)
and exits. It imports nothing but `benchmark.core` and the registry.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import replace

from ..core.atomic import write_json
from ..core.data import DataError, Split, splits_fingerprint
from ..core.features import BackboneJob, ensure_features, summed_timing
from ..core.networks import ensure_finetuned
from ..core.progress import quiet_framework


def run_job(job: BackboneJob, splits: dict[str, Split] | None = None, echo=print) -> dict:
    """Does `job` and returns its report (plain data).

    Args:
        job: the work.
        splits: the images, when the caller holds them (in-process runs); None
            rebuilds them from `job.data` and checks them and the weights file.

    Raises:
        DataError, FileNotFoundError, ValueError: naming this host and the path
            that resolves differently from the planner's.
        WeightsUnavailable: when the ImageNet download failed.
    """
    host, t0 = socket.gethostname(), time.perf_counter()
    if splits is None:
        splits = _load_splits(job, host)
        _check_weights(job, host)
    if job.peak_host != host:  # another machine: its own peak, for its own pct_of_peak
        from ..core.flops import machine_peak_gflops

        job = replace(job, matmul_peak_gflops=machine_peak_gflops(), peak_host=host)
    # a fine-tuning job's maps stay on disk: its memory must not grow with the images (45,000 maps can be GBs)
    sets = ensure_features(job, splits, echo=echo, on_disk=job.finetune is not None)
    finetuned = ensure_finetuned(job, sets, seed=job.data.seed, echo=echo) if job.finetune is not None else None
    return {"ok": True, "backbone": job.backbone, "img_size": job.img_size, "host": host,
            "keys": {name: found.key for name, found in sets.items()},
            "timing": summed_timing(sets).as_dict(),
            "peak_rss_mb": max((found.meta.get("peak_rss_mb") or 0) for found in sets.values()) or None,
            "matmul_peak_gflops": job.matmul_peak_gflops,
            "from_cache": all(found.from_cache for found in sets.values()),
            "finetuned_val_acc": finetuned and finetuned["val_acc"],
            "wall_s": round(time.perf_counter() - t0, 3)}


def _load_splits(job: BackboneJob, host: str) -> dict[str, Split]:
    splits = job.data.make()
    if job.data_fingerprint and splits_fingerprint(splits) != job.data_fingerprint:
        where = (job.data.data if job.data.data != "cifar10" else
                 f"CIFAR-10 at {job.data.data_dir or 'the keras.datasets download'}")
        raise DataError(f"on {host}, the data {where} gives other images than the run was planned with "
                        f"(fingerprint mismatch: a changed folder, or another copy); "
                        f"point every worker at the same data folder")
    return splits


def _check_weights(job: BackboneJob, host: str) -> None:
    from backbones import sha256_file

    weights = job.weights
    if weights.kind != "file":
        return
    if not os.path.isfile(weights.path):
        raise FileNotFoundError(f"on {host}, the weights file {weights.path} does not exist; the weights folder "
                                f"must be at the same path on every worker")
    if sha256_file(weights.path) != weights.identity:
        raise ValueError(f"on {host}, {weights.path} is not the file the run was planned with (sha256 differs)")


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the runner dies, even by SIGKILL."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv=None) -> int:
    """Runs the job in `argv[0]` (JSON) and writes its report to `argv[1]`; exit 0 when it succeeded."""
    _die_with_parent()
    quiet_framework(os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0")  # the runner's -v reaches here as level 0
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    job_json, report_path = sys.argv[1:] if argv is None else argv
    job = BackboneJob.from_dict(json.loads(job_json))
    try:
        report = run_job(job)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the runner reports it once
        return 130
    except Exception as err:  # one line here; the runner reports it with the job's name (--no-isolate: traceback)
        print(f"worker error: {type(err).__name__}: {err}", file=sys.stderr)
        report = {"ok": False, "backbone": job.backbone, "img_size": job.img_size, "host": socket.gethostname(),
                  "error_type": type(err).__name__, "error": str(err)}
    write_json(report_path, report)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
