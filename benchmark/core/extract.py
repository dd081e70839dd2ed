"""Feature extraction through a frozen base, timed, in resumable chunks.

Images travel as uint8 batches at their storage size (32x32 for CIFAR-10); the upscaling to the backbone's input
size and its `preprocess_input` run inside the same `tf.function` as the
base, one batch at a time, so the upscaled dataset never exists in memory
(50,000 images at 224 px in float32 would be 30 GB).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from backbones import BackboneSpec

from .phases import CLOCK
from .store import FeatureEntry

# Features are written in chunks of this many images, so an interrupted
# extraction redoes at most one chunk.
CHUNK_SIZE = 2048


def make_extractor(base, spec: BackboneSpec, size: int) -> Callable[[np.ndarray], np.ndarray]:
    """Wraps a frozen base into uint8 (B, S, S, 3) (any storage size S) -> float32 (B, feature_dim).

    The input is resized with `spec.interpolation` to (size, size), passed
    through `spec.preprocess_input` (which expects float RGB in 0..255), then
    through the base with `training=False`.
    """
    import tensorflow as tf

    preprocess = spec.preprocess_input
    method = spec.interpolation

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def step(images):
        x = tf.image.resize(tf.cast(images, tf.float32), (size, size), method=method)
        return tf.cast(base(preprocess(x), training=False), tf.float32)  # bf16 bases give bfloat16

    return lambda images: step(tf.convert_to_tensor(images)).numpy()


@dataclass
class Timing:
    """Extraction timing: the warm-up batch (graph tracing) is excluded from the rate."""

    images_timed: int = 0
    seconds_timed: float = 0.0
    wall_s: float = 0.0
    batch_size: int = 0

    def add(self, other: dict | "Timing") -> None:
        other = other if isinstance(other, dict) else other.as_dict()
        self.images_timed += int(other.get("images_timed", 0))
        self.seconds_timed += float(other.get("seconds_timed", 0.0))
        self.wall_s += float(other.get("wall_s", 0.0))
        bs = int(other.get("batch_size", 0))
        self.batch_size = min(self.batch_size, bs) if self.batch_size and bs else (self.batch_size or bs)

    @property
    def samples_per_sec(self) -> float | None:
        return self.images_timed / self.seconds_timed if self.seconds_timed > 0 else None

    def as_dict(self) -> dict:
        return {"images_timed": self.images_timed, "seconds_timed": self.seconds_timed,
                "wall_s": self.wall_s, "batch_size": self.batch_size}


def _is_oom(err: BaseException) -> bool:
    if isinstance(err, MemoryError):
        return True
    try:
        import tensorflow as tf

        return isinstance(err, tf.errors.ResourceExhaustedError)
    except ImportError:  # pragma: no cover
        return False


@dataclass
class Extractor:
    """Runs `fn` over image arrays batch by batch, timing every batch but the first.

    On an out-of-memory error the batch size is halved and the batch retried,
    as timm's benchmark does; `batch_size` then holds the size actually used.
    """

    fn: Callable[[np.ndarray], np.ndarray]
    batch_size: int = 32
    warmed_up: bool = False
    on_batch: Callable[[int], None] | None = field(default=None, repr=False)

    def _call(self, batch: np.ndarray) -> np.ndarray:
        try:
            return self.fn(batch)
        except Exception as err:
            if not _is_oom(err) or self.batch_size <= 1:
                raise
            self.batch_size = max(1, self.batch_size // 2)
            raise _Retry from err

    def run(self, images: np.ndarray, budget_s: float | None = None) -> tuple[np.ndarray, Timing]:
        """Features of `images`, uint8 (N, S, S, 3) -> float32 (N, D), and their timing.

        With `budget_s`, stops early once that many timed seconds are spent
        (for timing-only runs of slow models); the features are then partial.
        """
        timing = Timing()
        out, start, t_wall = [], 0, time.perf_counter()
        while start < len(images):
            batch = images[start:start + self.batch_size]
            t0 = time.perf_counter()
            try:
                feats = self._call(batch)
            except _Retry:
                continue  # same start, smaller batch
            dt = time.perf_counter() - t0
            if self.warmed_up:
                timing.images_timed += len(batch)
                timing.seconds_timed += dt
            CLOCK.add("forward" if self.warmed_up else "warmup", dt)
            self.warmed_up = True
            out.append(np.asarray(feats, dtype=np.float32))
            start += len(batch)
            if self.on_batch:
                self.on_batch(len(batch))
            if budget_s is not None and timing.images_timed and timing.seconds_timed >= budget_s:
                break
        timing.wall_s = time.perf_counter() - t_wall
        timing.batch_size = self.batch_size
        return (np.concatenate(out) if out else np.zeros((0, 0), np.float32)), timing

    def time_only(self, images: np.ndarray, budget_s: float | None = None) -> Timing:
        """Timing without keeping features: the first batch warms up (when not
        done yet), the rest is timed for at most `budget_s` seconds."""
        warm_wall = 0.0
        if not self.warmed_up:
            warm_wall = self.run(images[: self.batch_size])[1].wall_s
            rest = images[self.batch_size:]
            images = rest if len(rest) else images[: self.batch_size]
        timing = self.run(images, budget_s)[1]
        timing.wall_s += warm_wall
        return timing


class _Retry(Exception):
    pass


def extract_split(entry: FeatureEntry, extractor: Extractor, images: np.ndarray,
                  chunk_size: int = CHUNK_SIZE, keep: bool = True) -> tuple[np.ndarray | None, Timing, int]:
    """Features for one split, reusing finished chunks of an interrupted run.

    Each chunk of `chunk_size` images is saved to the cache as soon as it is
    done. Returns `(features float16 (N, D), timing, chunks_reused)`; timing
    sums the fresh chunks and the reused ones as they were measured. Features
    beyond float16's range stay float32, so the cache never turns them into inf.
    `keep` False holds no chunk after saving it and returns None for the
    features (maps larger than memory: `FeatureEntry.save_chunks` joins them on disk).

    Raises:
        ValueError: naming the backbone and the images, when the base gives NaN or infinite features.
    """
    n = len(images)
    total, pieces, reused = Timing(), [], 0
    for index in range(math.ceil(n / chunk_size)):
        lo, hi = index * chunk_size, min(n, (index + 1) * chunk_size)
        found = entry.load_chunk(index, hi - lo) if keep else entry.chunk_timing(index, hi - lo)
        if found is not None:
            feats, timing = found
            reused += 1
            if extractor.on_batch:
                extractor.on_batch(hi - lo)
        else:
            feats32, t = extractor.run(images[lo:hi])
            feats, timing = _stored(feats32, entry, lo, hi), t.as_dict()
            entry.save_chunk(index, feats, timing)
        if keep:
            pieces.append(feats)
        total.add(timing)
    return (np.concatenate(pieces) if keep else None), total, reused


FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504


def _stored(feats32: np.ndarray, entry: FeatureEntry, lo: int, hi: int) -> np.ndarray:
    """One chunk's features as cached: float16, or float32 where float16 would overflow to inf."""
    finite = np.isfinite(feats32)
    if not finite.all():
        raise ValueError(f"{entry.backbone} @{entry.img_size}px gave {int(finite.size - finite.sum())} NaN or "
                         f"infinite feature values on {entry.split} images {lo}-{hi - 1}: its base does not compute "
                         f"finite outputs (check its weights file, or --precision fp32)")
    return feats32 if feats32.size and np.abs(feats32).max() > FLOAT16_MAX else feats32.astype(np.float16)
