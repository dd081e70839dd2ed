"""The one path to features: read them from the cache, else extract and save them.

A `BackboneJob` names one unit of work as plain data: a backbone at one input
size and precision, its weights' identity, which images (a `SplitRecipe` and
split names), the fine-tuning cut if any, and the cache root. It pickles and
round-trips through JSON, so it can go to a worker process or another
machine. `ensure_features(job, splits)` is the only code that writes
feature entries: the runner (in process or through its worker),
`0-transfer.py` and `epoch_ratio` all call it, so every entry carries the
same metadata.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import socket
import time
from dataclasses import dataclass, field

import numpy as np

import backbones
from backbones import WeightsSource

from . import sysinfo
from .data import Split, SplitRecipe, jpeg_recoded, mirrored, parse_jpeg_split, timing_split
from .extract import CHUNK_SIZE, Extractor, Timing, extract_split, make_extractor
from .finetune import FineTuneConfig, split_base
from .flops import count_flops
from .phases import CLOCK
from .progress import Progress, format_duration
from .room import check_room, fine_tune_needs
from .keys import feature_parts
from .store import FeatureEntry, Store

TIMING = "timing"  # the split name of timing-only entries (no features kept)
FLIP = "-flip"  # suffix of a mirrored split, e.g. "train-flip"


class WeightsUnavailable(RuntimeError):
    """The ImageNet weights could not be downloaded (offline, or the server failed)."""


@dataclass(frozen=True)
class BackboneJob:
    """One unit of a worker's work, as plain data: a backbone's features (or its maps below a cut) at one
    img_size, extracted or read from the cache, and, with `finetune`, the network fine-tuned above the cut.

    Attributes:
        backbone: registry name.
        img_size: square input size in pixels.
        weights: where the base's weights come from (its `identity` is in the key).
        splits: split names to produce, in order: "train", "val", "test",
            "timing" (the first `n_time_images + batch_size` training images,
            timed only), or "<name>-flip" (that split mirrored).
        data: how to rebuild the images, when the caller does not hand them over.
        cache_dir: the cache root, the same path on every machine.
        data_fingerprint: sha256 of the recipe's splits as the planner saw them;
            a worker whose data differs refuses the job.
        precision: "fp32" or "bf16".
        cut: a registry `finetune_cut`: extract the maps below it instead of pooled features.
        finetune: `FineTuneConfig` settings as a dict: after extracting, fine-tune
            above the cut and store the scores (`benchmark.core.networks.ensure_finetuned`); None: features only.
        batch_size, chunk_size: extraction batch and resumable chunk, in images.
        n_time_images, time_budget_s: the timing-only split's size and time cap.
        matmul_peak_gflops, peak_host: the fp32 matmul peak measured on `peak_host`;
            a worker on another host measures its own.
        label: the progress lines' prefix.
    """

    backbone: str
    img_size: int
    weights: WeightsSource
    splits: tuple[str, ...]
    data: SplitRecipe = field(default_factory=SplitRecipe)
    cache_dir: str | None = None
    data_fingerprint: str | None = None
    precision: str = "fp32"
    cut: str | None = None
    finetune: dict | None = None
    batch_size: int = 32
    chunk_size: int = CHUNK_SIZE
    n_time_images: int = 64
    time_budget_s: float = 10.0
    matmul_peak_gflops: float | None = None
    peak_host: str | None = None
    label: str = ""

    @property
    def spec(self) -> backbones.BackboneSpec:
        return backbones.get(self.backbone)

    def entry_name(self, split: str) -> str:
        """The split's name in the cache: maps below a cut are stored as `<split>@<cut>`."""
        return f"{split}@{self.cut}" if self.cut else split

    def entry(self, store: Store, split: Split) -> FeatureEntry:
        parts = feature_parts(self.spec, self.weights, split,
                              self.batch_size if split.name == TIMING else None, self.precision, self.cut)
        return store.features(self.spec.name, self.img_size, self.entry_name(split.name), parts)

    def as_dict(self) -> dict:
        """JSON-ready; `BackboneJob.from_dict` inverts it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "BackboneJob":
        return cls(**{**d, "weights": WeightsSource(**d["weights"]), "data": SplitRecipe(**d["data"]),
                      "splits": tuple(d["splits"])})


@dataclass
class FeatureSet:
    """One split's features (N, D) float16 (maps (N, h, w, c) below a cut), labels (N,), and metadata.

    `meta` holds `timing` (see `Timing.as_dict`), `peak_rss_mb`,
    `flops_per_img`, `matmul_peak_gflops`, `host` and `device`; `key` is the cache key.
    """

    features: np.ndarray
    labels: np.ndarray
    meta: dict
    key: str
    from_cache: bool


def select_splits(job: BackboneJob, splits: dict[str, Split]) -> dict[str, Split]:
    """The job's splits, derived from train/val/test where needed (timing, mirrored)."""
    out = {}
    for name in job.splits:
        if name in splits:
            out[name] = splits[name]
        elif name == TIMING:
            out[name] = timing_split(splits["train"], job.n_time_images + job.batch_size)
        elif name.endswith(FLIP) and name[: -len(FLIP)] in splits:
            out[name] = mirrored(splits[name[: -len(FLIP)]])
        elif (recoded := parse_jpeg_split(name)) and recoded[0] in splits:
            out[name] = jpeg_recoded(splits[recoded[0]], recoded[1])
        else:
            raise ValueError(f"job for {job.backbone} asks for split {name!r}, which is not among "
                             f"{', '.join(splits)} nor derived from them")
    return out


def _lookup(job: BackboneJob, images: dict[str, Split], store: Store, on_disk: bool = False) -> dict:
    """`{split: (entry, FeatureSet or None)}`, each entry read and verified once (`on_disk`: left on disk)."""
    entries = {name: job.entry(store, split) for name, split in images.items()}
    found = {name: entry.load_on_disk() if on_disk else entry.load() for name, entry in entries.items()}
    return {name: (entries[name], FeatureSet(*hit, key=entries[name].key, from_cache=True) if hit is not None else None)
            for name, hit in found.items()}


def in_cache(job: BackboneJob, splits: dict[str, Split], store: Store | None = None) -> bool:
    """True when every split of the job has a finished entry, without reading (or verifying) it."""
    store = store or Store(job.cache_dir)
    return all(os.path.exists(job.entry(store, split).meta_path) for split in select_splits(job, splits).values())


def cached_meta(job: BackboneJob, splits: dict[str, Split], store: Store | None = None) -> dict:
    """`{split: FeatureSet with empty arrays, or None}`: the cached entries' metadata only. The runner
    needs no more for a fine-tuned job (its scores are in the head store), and the maps can be GBs."""
    store = store or Store(job.cache_dir)
    out = {}
    for name, split in select_splits(job, splits).items():
        entry = job.entry(store, split)
        meta = entry.load_meta()
        out[name] = None if meta is None else FeatureSet(np.zeros((0,), np.float16), np.zeros(0, np.int64), meta,
                                                         entry.key, from_cache=True)
    return out


def cached_features(job: BackboneJob, splits: dict[str, Split], store: Store | None = None) -> dict:
    """`{split: FeatureSet or None}`: what the cache holds for the job, verified, without building anything."""
    looked_up = _lookup(job, select_splits(job, splits), store or Store(job.cache_dir))
    return {name: found for name, (_, found) in looked_up.items()}


def ensure_features(job: BackboneJob, splits: dict[str, Split] | None = None, base=None, echo=print,
                    store: Store | None = None, on_disk: bool = False) -> dict[str, FeatureSet]:
    """The job's features: from the cache where present, the rest extracted now and saved.

    Args:
        job: what to make.
        splits: the images, `{"train": Split, ...}`; None rebuilds them from `job.data`.
        base: an already built base for the job (callers that keep it); None
            builds one when anything is missing, and releases it afterwards.
        echo: where progress lines go.
        on_disk: leave the features on disk (`DiskArray`s), for maps that may not fit in memory: a cached
            entry is not loaded, and a new one is joined from its chunks on disk, so the memory the job
            takes does not grow with its images.

    Returns:
        `{split: FeatureSet}` in `job.splits` order.

    Raises:
        WeightsUnavailable: when ImageNet weights had to be downloaded and could not be.
    """
    images = select_splits(job, job.data.make() if splits is None else splits)
    with CLOCK.phase("cache_lookup"):
        looked_up = _lookup(job, images, store or Store(job.cache_dir), on_disk)
    out = {name: found for name, (_, found) in looked_up.items()}
    missing = {name: (images[name], entry) for name, (entry, found) in looked_up.items() if found is None}
    if missing:
        out.update(_extract(job, missing, base, echo, on_disk))
    return out


def build_job_base(job: BackboneJob):
    """The job's base, built; `WeightsUnavailable` when its ImageNet weights cannot be downloaded."""
    try:
        return backbones.build_base(job.backbone, job.img_size, job.weights, precision=job.precision)
    except Exception as err:  # offline download failures come in many types
        if job.weights.kind != "imagenet":
            raise
        raise WeightsUnavailable(f"could not download ImageNet weights for {job.backbone} "
                                 f"({type(err).__name__}: {str(err)[:200]})") from err


def _extract(job: BackboneJob, missing: dict, base, echo, on_disk: bool = False) -> dict[str, FeatureSet]:
    """Extracts and saves `missing` (split name -> (images, entry)), resuming finished chunks."""
    # what the process held before this job (a reused worker's leftovers); unknown where the kernel keeps the
    # lifetime peak, which would then include earlier jobs' peaks
    start_rss_mb = sysinfo.rss_mb() if sysinfo.reset_peak_rss() else None
    t0 = time.perf_counter()
    progress = Progress(job.label or f"{job.backbone} @{job.img_size}px",
                        sum(len(split) for split, _ in missing.values()), echo)
    built_here = base is None
    try:
        if built_here:
            with CLOCK.phase("build"):
                base = build_job_base(job)
        out, resumed = _extract_with(job, base, missing, progress, on_disk, start_rss_mb)
    finally:
        if built_here:  # also after a failure: --no-isolate and reused workers go on with the next job
            base = None
            with CLOCK.phase("release"):
                release_keras()
    progress.finish(f"built and extracted in {format_duration(time.perf_counter() - t0)}"
                    + (f" (resumed {resumed} finished chunks of an interrupted run)" if resumed else ""))
    return out


def _extract_with(job: BackboneJob, base, missing: dict, progress: Progress, on_disk: bool = False,
                  start_rss_mb: float | None = None) -> tuple[dict[str, FeatureSet], int]:
    bottom = split_base(base, job.cut)[0] if job.cut else base
    if on_disk and job.finetune is not None:  # before extracting anything: would the maps and the job fit?
        root = next(iter(missing.values()))[1].root
        needs = fine_tune_needs(tuple(bottom.output.shape[1:]), sum(len(split) for split, _ in missing.values()),
                                job.chunk_size, FineTuneConfig(**job.finetune).batch_size, base.count_params(),
                                job.spec.feature_dim)
        check_room(needs, root, f"fine-tuning {job.backbone} @{job.img_size}px")
    with CLOCK.phase("flops"):
        flops = count_flops(bottom)
    hw = {"flops_per_img": flops, "matmul_peak_gflops": job.matmul_peak_gflops,
          "host": socket.gethostname(), "device": sysinfo.device_name()}
    extractor = Extractor(make_extractor(bottom, job.spec, job.img_size), job.batch_size, on_batch=progress.update)
    out, resumed = {}, 0
    for name, (split, entry) in missing.items():
        t0, timed_before = time.perf_counter(), _timed(CLOCK.seconds)
        if name == TIMING:  # timed for at most time_budget_s; no features kept
            timing = extractor.time_only(split.x, budget_s=job.time_budget_s)
            features, labels = np.zeros((0, job.spec.feature_dim), np.float16), np.zeros(0, np.int64)
        else:
            features, timing, reused = extract_split(entry, extractor, split.x, job.chunk_size, keep=not on_disk)
            labels, resumed = split.y, resumed + reused
        meta = {"timing": timing.as_dict(), "peak_rss_mb": sysinfo.peak_rss_mb(), "start_rss_mb": start_rss_mb,
                **hw}
        if features is None:  # on disk: joined from the saved chunks, one at a time
            features = entry.save_chunks(len(split.x), job.chunk_size, labels, meta)
        else:
            entry.save(features, labels, meta)
        CLOCK.add("extract_rest", time.perf_counter() - t0 - (_timed(CLOCK.seconds) - timed_before))
        out[name] = FeatureSet(features, labels, meta, entry.key, from_cache=False)
    return out, resumed


def _timed(seconds: dict) -> float:
    return seconds.get("warmup", 0.0) + seconds.get("forward", 0.0)


def summed_timing(sets: dict[str, FeatureSet]) -> Timing:
    """The extraction timing over all of a job's splits."""
    total = Timing()
    for found in sets.values():
        total.add(found.meta["timing"])
    return total


def splits_peak_rss_mb(sets: dict[str, FeatureSet]) -> float | None:
    """The highest peak RSS (MiB) over a job's splits: its process's peak while it made them (None: not recorded)."""
    return max((found.meta.get("peak_rss_mb") or 0) for found in sets.values()) or None


def release_keras() -> None:
    """Drops finished models and hands freed heap back to the OS, so the next
    backbone's peak RSS is not inflated by this one's leftovers."""
    import ctypes

    import keras

    keras.backend.clear_session()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
