"""The on-disk cache: frozen-base features, trained heads' results and finished model files.

Layout under the cache root:

    features/<Backbone>/<size>px-<split>-<key>.npz    float16 features (N, D), int64 labels (N,)
    features/<Backbone>/<size>px-<split>-<key>.json   sidecar: full key, sha256 of the .npz, shape, timing
    features/<Backbone>/<size>px-<split>-<key>.partial/chunk-NNNNNN.{npz,json}
                                                       finished chunks of an interrupted extraction
    heads/<key>.json                                   a trained head's metrics
    models/<key>.h5, models/<key>.json                 a finished model file (0-transfer.py) and its sidecar

Feature entries have one writer, `benchmark.core.features.ensure_features`.
The key is a sha256 over everything the features depend on: backbone, input
size, weights identity (file sha256, "imagenet" or "random"), the data
fingerprint of exactly the images extracted, and the pipeline version.
The .npz is written first and the sidecar last, both atomically, so an entry
exists only once it is complete. On load the sidecar's key, the file's
sha256 and the array shapes are all checked; anything that does not match is
reported in one warning line, deleted and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass

import numpy as np

from .atomic import copy_file, probe_writable, sha256_file, write_json, write_npz

log = logging.getLogger("benchmark")

# Bump when extraction changes in a way that alters the features.
PIPELINE_VERSION = 1
CACHE_ENV = "BACKBONE_BENCH_CACHE"


def default_cache_dir() -> str:
    """`$BACKBONE_BENCH_CACHE`, else `~/.cache/backbone-bench`."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "backbone-bench")


def feature_key_parts(spec, weights, split, batch_size: int | None = None, precision: str = "fp32",
                      cut: str | None = None) -> dict:
    """What one split's cached features depend on, beyond backbone, img_size and split name.

    `batch_size` only for timing entries; optional parts are left out at
    their defaults, so older entries keep their keys (tests pin them).
    """
    parts = {"weights": weights.identity, "data": split.fingerprint, "batch_size": batch_size}
    if precision != "fp32":
        parts["precision"] = precision
    if spec.depthwise_rewrite:  # timings from before the rewrite are not reused
        parts["graph"] = "depthwise_rewrite"
    if cut:
        parts["cut"] = cut
    return parts


def make_key(parts: dict) -> str:
    """A stable sha256 of a dict of JSON-serialisable key parts."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


TIMING_FIELDS = ("images_timed", "seconds_timed", "wall_s", "batch_size")
HEAD_FIELDS = ("val_acc", "test_acc", "test_ci_low", "test_ci_high", "per_class_acc", "confusion", "test_pred",
               "epochs", "head_train_s")
STALE_TEMP_S = 24 * 3600  # temp files older than this are leftovers of killed writers


def seal(meta: dict) -> dict:
    """`meta` with `meta_sha256`, a checksum of the rest of it: an edited sidecar is detected like an edited array."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return {**body, "meta_sha256": make_key(body)}


def check_seal(meta: dict) -> None:
    """Raises ValueError when a sealed sidecar was modified (entries written before sealing carry no seal)."""
    if "meta_sha256" in meta and seal(meta)["meta_sha256"] != meta["meta_sha256"]:
        raise ValueError("sidecar metadata modified (checksum mismatch)")


def check_timing(meta: dict) -> None:
    """Raises ValueError unless `meta["timing"]` holds the four numeric timing fields."""
    timing = meta.get("timing")
    if not isinstance(timing, dict) or not all(isinstance(timing.get(k), (int, float)) and not
                                               isinstance(timing.get(k), bool) for k in TIMING_FIELDS):
        raise ValueError(f"sidecar lacks a valid timing ({', '.join(TIMING_FIELDS)})")


def _read_verified(npz_path: str, meta_path: str, key: str) -> tuple[dict, dict] | None:
    """Loads an .npz + sidecar pair; None when absent (or gone while reading); raises ValueError when corrupt."""
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"unreadable sidecar ({err})") from err
    if not isinstance(meta, dict) or meta.get("key") != key:
        raise ValueError("sidecar key does not match (different data, weights or settings)")
    check_seal(meta)
    check_timing(meta)
    try:
        if sha256_file(npz_path) != meta.get("sha256"):
            raise ValueError("checksum mismatch (truncated or modified file)")
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise ValueError("feature file missing") from None
    except ValueError:
        raise
    except Exception as err:  # zipfile/format errors of many kinds
        raise ValueError(f"unreadable feature file ({err})") from err
    feats = arrays.get("features")
    if feats is None or list(feats.shape) != list(meta.get("shape", [])):
        raise ValueError(f"features have shape {None if feats is None else feats.shape}, "
                         f"sidecar says {meta.get('shape')}")
    return arrays, meta


def _sealed_problem(record, key: str, fields: tuple) -> str | None:
    """Why a sealed `{"key", "parts", "result", "meta_sha256"}` record cannot be used, or None."""
    if not isinstance(record, dict) or record.get("key") != key:
        return "key mismatch"
    try:
        check_seal(record)
    except ValueError as err:
        return str(err)
    result = record.get("result")
    bad = [f for f in fields if not isinstance(result, dict) or f not in result]
    if bad:
        return f"result lacks {', '.join(bad)}"
    return None if isinstance(result, dict) else "no result"


def _unlink_all(paths) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:  # another run discarded it first
            pass


@dataclass
class FeatureEntry:
    """One cache entry: the features of one split through one base at one size."""

    root: str
    backbone: str
    img_size: int
    split: str
    key: str

    @property
    def stem(self) -> str:
        return os.path.join(self.root, "features", self.backbone, f"{self.img_size}px-{self.split}-{self.key[:16]}")

    @property
    def npz_path(self) -> str:
        return self.stem + ".npz"

    @property
    def meta_path(self) -> str:
        return self.stem + ".json"

    @property
    def partial_dir(self) -> str:
        return self.stem + ".partial"

    def _discard(self, paths, reason: str) -> None:
        log.warning("cache: discarding %s (%s); recomputing", os.path.basename(paths[0]), reason)
        _unlink_all(paths)

    def load(self) -> tuple[np.ndarray, np.ndarray, dict] | None:
        """Returns `(features, labels, meta)`, or None when absent or corrupt."""
        try:
            found = _read_verified(self.npz_path, self.meta_path, self.key)
        except ValueError as err:
            self._discard([self.npz_path, self.meta_path], str(err))
            return None
        if found is None:
            return None
        arrays, meta = found
        return arrays["features"], arrays["labels"], meta

    def load_meta(self) -> dict | None:
        """The sidecar alone (key, seal and timing checked; the array file must exist but is not read),
        for callers that need an entry's metadata but not its arrays. None when absent or corrupt."""
        try:
            with open(self.meta_path) as f:
                meta = json.load(f)
            if not isinstance(meta, dict) or meta.get("key") != self.key:
                raise ValueError("sidecar key does not match")
            check_seal(meta)
            check_timing(meta)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:  # json.JSONDecodeError is a ValueError
            self._discard([self.npz_path, self.meta_path], str(err))
            return None
        return meta if os.path.exists(self.npz_path) else None

    def save(self, features: np.ndarray, labels: np.ndarray, meta: dict) -> None:
        """Stores the entry atomically and drops any partial chunks."""
        sha = write_npz(self.npz_path, features=features, labels=labels)
        write_json(self.meta_path, seal({**meta, "key": self.key, "sha256": sha, "shape": list(features.shape)}))
        shutil.rmtree(self.partial_dir, ignore_errors=True)

    # -- chunks of an extraction in progress, for resuming after a crash --

    def _chunk_paths(self, index: int) -> tuple[str, str]:
        stem = os.path.join(self.partial_dir, f"chunk-{index:06d}")
        return stem + ".npz", stem + ".json"

    def save_chunk(self, index: int, features: np.ndarray, timing: dict) -> None:
        npz_path, meta_path = self._chunk_paths(index)
        sha = write_npz(npz_path, features=features)
        write_json(meta_path, seal({"key": self.key, "sha256": sha, "shape": list(features.shape), "timing": timing}))

    def load_chunk(self, index: int, rows: int) -> tuple[np.ndarray, dict] | None:
        """A finished chunk of `rows` features, or None when absent or corrupt."""
        npz_path, meta_path = self._chunk_paths(index)
        try:
            found = _read_verified(npz_path, meta_path, self.key)
            if found is not None and found[0]["features"].shape[0] != rows:
                raise ValueError(f"chunk has {found[0]['features'].shape[0]} rows, expected {rows}")
        except ValueError as err:
            self._discard([npz_path, meta_path], str(err))
            return None
        if found is None:
            return None
        return found[0]["features"], found[1]["timing"]


class Store:
    """The cache root: hands out `FeatureEntry`s, and stores head results and model files."""

    def __init__(self, root: str | None = None):
        self.root = os.path.abspath(root or default_cache_dir())

    def check_writable(self) -> None:
        """Raises PermissionError naming the folder when it cannot be written; removes stale temp files."""
        try:
            probe_writable(self.root)
        except OSError as err:
            raise PermissionError(
                f"cache folder {self.root!r} is not writable ({err.strerror or err}). "
                f"Pass a writable folder to --cache-dir or set ${CACHE_ENV}."
            ) from err
        self.remove_stale_temp()

    def remove_stale_temp(self, max_age_s: float = STALE_TEMP_S) -> int:
        """Deletes temp files (`.<name>.*.tmp*`, see `atomic`) older than `max_age_s`: a killed writer's leftovers.
        Younger ones may belong to a run in progress. Returns how many were removed."""
        cutoff, removed = time.time() - max_age_s, 0
        for folder, _, files in os.walk(self.root):
            for name in files:
                path = os.path.join(folder, name)
                try:
                    if name.startswith(".") and ".tmp" in name and os.stat(path).st_mtime < cutoff:
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed

    def features(self, backbone: str, img_size: int, split: str, parts: dict) -> FeatureEntry:
        """The entry of one split's features; `parts` from `feature_key_parts`."""
        # "size" stays the key's word for pixels, so existing caches keep their keys.
        key = make_key({**parts, "backbone": backbone, "size": int(img_size), "split": split,
                        "pipeline": PIPELINE_VERSION})
        return FeatureEntry(self.root, backbone, int(img_size), split, key)

    # -- small sealed JSON records: trained heads' results (heads/) and other measurements (records/KIND/) --

    def _head_path(self, key: str) -> str:
        return os.path.join(self.root, "heads", f"{key}.json")

    def _record_path(self, kind: str, key: str) -> str:
        return os.path.join(self.root, "records", kind, f"{key}.json")

    @staticmethod
    def _load_sealed(path: str, key: str, fields: tuple, what: str, then: str = "") -> dict | None:
        """The `result` of the sealed record at `path` made under `key`, or None when absent; a record that
        is unreadable, of another key, edited, or lacking one of `fields` is discarded (None, with a warning)."""
        try:
            with open(path) as f:
                record = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:  # json.JSONDecodeError is a ValueError
            reason = f"unreadable ({err})"
        else:
            reason = _sealed_problem(record, key, fields)
            if reason is None:
                return record["result"]
        log.warning("cache: discarding %s %s (%s)%s", what, os.path.basename(path), reason, then)
        _unlink_all([path])
        return None

    @staticmethod
    def _save_sealed(path: str, key: str, parts: dict, result: dict) -> None:
        write_json(path, seal({"key": key, "parts": parts, "result": result}))

    def load_head(self, parts: dict) -> dict | None:
        """A trained head's result (see `HEAD_FIELDS`), or None when absent or invalid (then discarded)."""
        key = make_key(parts)
        return self._load_sealed(self._head_path(key), key, HEAD_FIELDS, "head result", "; retraining")

    def save_head(self, parts: dict, result: dict) -> None:
        key = make_key(parts)
        self._save_sealed(self._head_path(key), key, parts, result)

    def load_record(self, kind: str, parts: dict) -> dict | None:
        """A stored `result` of `kind` made from `parts`, or None when absent or invalid (then discarded)."""
        key = make_key(parts)
        return self._load_sealed(self._record_path(kind, key), key, (), f"{kind} record")

    def save_record(self, kind: str, parts: dict, result: dict) -> None:
        key = make_key(parts)
        self._save_sealed(self._record_path(kind, key), key, parts, result)

    # -- finished model files, so a warm 0-transfer.py run skips training --

    def _model_paths(self, key: str) -> tuple[str, str]:
        stem = os.path.join(self.root, "models", key)
        return stem + ".h5", stem + ".json"

    def load_model_file(self, parts: dict) -> tuple[str, dict] | None:
        """`(path, info)` of a cached model file made from `parts`, or None when absent or corrupt."""
        key = make_key(parts)
        path, meta_path = self._model_paths(key)
        if not (os.path.exists(path) and os.path.exists(meta_path)):
            return None
        try:
            with open(meta_path) as f:
                record = json.load(f)
            if record.get("key") != key:
                raise ValueError("key mismatch")
            if sha256_file(path) != record.get("sha256"):
                raise ValueError("checksum mismatch (truncated or modified file)")
            return path, record.get("info", {})
        except (OSError, ValueError) as err:
            log.warning("cache: discarding model %s (%s); retraining", os.path.basename(path), err)
            for p in (path, meta_path):
                if os.path.exists(p):
                    os.unlink(p)
            return None

    def save_model_file(self, parts: dict, src: str, info: dict) -> None:
        """Copies the model file `src` into the cache (atomically), with a sidecar."""
        key = make_key(parts)
        path, meta_path = self._model_paths(key)
        copy_file(src, path)
        write_json(meta_path, {"key": key, "parts": parts, "sha256": sha256_file(path), "info": info})
