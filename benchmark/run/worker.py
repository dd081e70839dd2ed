"""The worker: `BackboneJob`s in a process of their own, `python -m benchmark.run.worker --serve REPLY_FD`.

The worker imports TensorFlow once, reads one job (JSON) per line on stdin,
runs it, clears the Keras session and writes its report (JSON) as one line to
the file descriptor REPLY_FD, then waits for the next job; it exits at the end
of its input. TensorFlow does not hand all of a finished model's memory back
to the OS (measured in one long `--all` process: from 1.9 GB for the first
backbone to 4.9 GB for the last), so the runner's `WorkerPool` recycles a
worker after a few jobs or above an RSS bound, and the report gives each job's
own high-water mark above what the process held when it began
(`job_rss_mb`). For each job the worker does only its setup: it rebuilds
the job's images from the recipe and checks them against the planned
fingerprint, checks its weights file, measures the matmul peak when the job
carries none for this host, and calls `ensure_features`, which writes the
cache (and, for a fine-tuned-regime job, `ensure_finetuned`, which leaves its
scores in the cache's head store). Its report holds the keys, timing, peak RSS, host and the seconds of
each phase (`benchmark.core.phases`). It imports nothing but `benchmark.core` and the registry.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import replace

from ..core import sysinfo
from ..core.data import DataError, Split, splits_fingerprint
from ..core.features import BackboneJob, ensure_features, splits_peak_rss_mb, summed_timing
from ..core.networks import ensure_finetuned
from ..core.phases import CLOCK
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
    outer = CLOCK.take()  # in process (--no-isolate), the runner's own phases so far: handed back below
    try:
        if splits is None:
            with CLOCK.phase("worker_data"):
                splits = _load_splits(job, host)
            with CLOCK.phase("weights_check"):
                _check_weights(job, host)
        if job.peak_host != host:  # another machine: its own peak, for its own pct_of_peak
            from ..core.flops import machine_peak_gflops

            with CLOCK.phase("matmul_peak"):
                job = replace(job, matmul_peak_gflops=machine_peak_gflops(), peak_host=host)
        # a fine-tuning job's maps stay on disk: its memory must not grow with the images (45,000 maps can be GBs)
        sets = ensure_features(job, splits, echo=echo, on_disk=job.finetune is not None)
        finetuned = None
        if job.finetune is not None:
            with CLOCK.phase("finetune"):
                finetuned = ensure_finetuned(job, sets, seed=job.data.seed, echo=echo)
    finally:
        phases = CLOCK.take()
        CLOCK.merge(outer)
    return {"ok": True, "backbone": job.backbone, "img_size": job.img_size, "host": host,
            "keys": {name: found.key for name, found in sets.items()},
            "timing": summed_timing(sets).as_dict(),
            "peak_rss_mb": splits_peak_rss_mb(sets),
            "matmul_peak_gflops": job.matmul_peak_gflops,
            "from_cache": all(found.from_cache for found in sets.values()),
            "finetuned_val_acc": finetuned and finetuned["val_acc"],
            "phases": phases, "wall_s": round(time.perf_counter() - t0, 3)}


_held: dict = {}  # a reused worker's last images, by (recipe, fingerprint): the run's next job needs the same


def _load_splits(job: BackboneJob, host: str) -> dict[str, Split]:
    """The job's images, rebuilt from its recipe and checked against the planned fingerprint. A reused worker
    keeps the last ones: a job with the same recipe and the same planned fingerprint gets them again."""
    token = (repr(job.data), job.data_fingerprint)
    if job.data_fingerprint and _held.get("token") == token:
        return _held["splits"]
    _held.clear()  # the old images go before the new ones are loaded
    splits = job.data.make()
    if job.data_fingerprint and splits_fingerprint(splits) != job.data_fingerprint:
        where = (job.data.data if job.data.data != "cifar10" else
                 f"CIFAR-10 at {job.data.data_dir or 'the keras.datasets download'}")
        raise DataError(f"on {host}, the data {where} gives other images than the run was planned with "
                        f"(fingerprint mismatch: a changed folder, or another copy); "
                        f"point every worker at the same data folder")
    _held.update(token=token, splits=splits)
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


def failure_report(job: BackboneJob, err: BaseException) -> dict:
    """The report of a job that raised: its error's class and message, and this host."""
    return {"ok": False, "backbone": job.backbone, "img_size": job.img_size, "host": socket.gethostname(),
            "error_type": type(err).__name__, "error": str(err)}


def serve(jobs, reply) -> int:
    """Runs each job (one JSON line of `jobs`), and writes its report as one JSON line to `reply`.

    The Keras session is cleared after each job (`release_keras`: by the job
    itself, or here after a failure), and each report carries the process's resident memory after that (`rss_mb`), which
    the runner's pool compares with its recycling bound. Returns 0 at the end
    of `jobs`, 130 on Ctrl-C.
    """
    from ..core.features import release_keras

    for line in iter(jobs.readline, ""):
        if not line.strip():
            continue
        job = BackboneJob.from_dict(json.loads(line))
        try:
            report = run_job(job)
        except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the runner reports it once
            return 130
        except Exception as err:  # one line here; the runner reports it with the job's name
            print(f"worker error: {type(err).__name__}: {err}", file=sys.stderr)
            report = failure_report(job, err)
        if not report["ok"]:  # a job that went well has released its models itself (features, networks)
            with CLOCK.phase("release"):
                release_keras()
        CLOCK.merge(report.get("phases"))
        report["phases"] = CLOCK.take()
        report["rss_mb"] = sysinfo.rss_mb()
        reply.write(json.dumps(report, default=str) + "\n")
        reply.flush()
    return 0


def main(argv=None) -> int:
    """`--serve REPLY_FD`: jobs from stdin, reports to REPLY_FD, until stdin ends."""
    _die_with_parent()
    quiet_framework(os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0")  # the runner's -v reaches here as level 0
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "--serve" or not args[1].isdigit():
        print("usage: python -m benchmark.run.worker --serve REPLY_FD (jobs as JSON lines on stdin)", file=sys.stderr)
        return 2
    import keras  # noqa: F401  (TensorFlow's import is part of the worker's start, not of its first job)

    os.set_inheritable(int(args[1]), False)  # a process this one starts must not hold the runner's reply pipe open
    with os.fdopen(int(args[1]), "w") as reply:
        reply.write(json.dumps({"ready": True}) + "\n")
        reply.flush()
        try:
            return serve(sys.stdin, reply)
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    sys.exit(main())
