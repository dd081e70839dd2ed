"""What a benchmark run depends on."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.extract import CHUNK_SIZE
from ..core.heads import HEADS

DEFAULT_IMG_SIZE = 128  # the quick default: accuracy grows with size, but so does the time
WORKER_JOBS = 8  # jobs a worker process runs before a fresh one takes over (1: a fresh process per job)
WORKER_MAX_RSS_MB = 3072  # a worker holding more than this after a job is recycled
QUICK = {"n_train": 2000, "n_val": 500, "n_test": 2000}  # image counts of the quick protocol


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on.

    Attributes:
        backbones: registry names.
        img_sizes: input sizes, pixels or "native".
        n_train, n_val, n_test: stratified subsets of the training pool, of the
            held-out validation images and of the test images (None: all).
        n_val_holdout: training images held out as the validation split (None: a tenth, 5,000 of CIFAR-10's).
        data: "cifar10", "folder:PATH" or "npz:PATH" (`benchmark.core.datasets.parse_data`).
        data_size: storage size in pixels of a folder's decoded images (None: the median, capped).
        bad_images: "skip" or "stop" at a folder image that cannot be decoded.
        weights_from: a weights folder, "imagenet", "random", or None for
            `$BACKBONE_WEIGHTS_DIR` (else "imagenet").
        n_time_images, time_budget_s: images and seconds for timing-only rows.
        isolate: extract each (backbone, img_size) in a worker process, not
            in this one (the command line's default).
        worker_jobs, worker_max_rss_mb: a worker process is recycled after
            this many jobs, or when it holds more than this after a job.
        regimes: "frozen" (heads on the frozen base's features) and/or
            "finetune" (the last stage and a head trained on cached maps).
    """

    backbones: tuple
    img_sizes: tuple = (DEFAULT_IMG_SIZE,)
    n_train: int | None = QUICK["n_train"]
    n_val: int | None = QUICK["n_val"]
    n_test: int | None = QUICK["n_test"]
    n_val_holdout: int | None = None
    data_dir: str | None = None
    data: str = "cifar10"
    data_size: int | None = None
    bad_images: str = "skip"
    weights_from: str | None = None
    cache_dir: str | None = None
    out: str = "results"
    batch_size: int = 32
    seed: int = 0
    time_only: bool = False
    heads: tuple = HEADS
    n_time_images: int = 64
    time_budget_s: float = 10.0
    chunk_size: int = CHUNK_SIZE
    precision: str = "fp32"  # "bf16": Keras mixed_bfloat16 for the base
    isolate: bool = False
    worker_jobs: int = WORKER_JOBS
    worker_max_rss_mb: float = WORKER_MAX_RSS_MB
    executor: str = "local"  # see parse_executor
    regimes: tuple = ("frozen",)  # and/or "finetune" (benchmark.core.results.REGIMES)


EXECUTOR_FORMS = "local, dask-local:N, dask-local:gpus, dask://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT"


def parse_executor(text: str) -> dict:
    """`--executor` as plain data: `{"kind": "local"}`, `{"kind": "dask-local", "n_workers": N}`,
    `{"kind": "dask-local", "gpus": True}` or `{"kind": "dask", "address": "tcp://HOST:PORT"}`.

    Raises:
        ValueError: naming the flag and the accepted forms.
    """
    value = str(text).strip()
    if value == "local":
        return {"kind": "local"}
    if value.startswith("dask-local:"):
        count = value.split(":", 1)[1]
        if count == "gpus":
            return {"kind": "dask-local", "gpus": True}
        if count.isdigit() and int(count) > 0:
            return {"kind": "dask-local", "n_workers": int(count)}
    elif value.startswith("dask://") and len(value) > len("dask://"):
        return {"kind": "dask", "address": "tcp://" + value[len("dask://"):]}
    elif value.startswith(("tcp://", "tls://")) and len(value) > len("tcp://"):
        return {"kind": "dask", "address": value}
    raise ValueError(f"--executor {text!r} is not one of: {EXECUTOR_FORMS}")
