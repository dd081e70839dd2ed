"""The on-disk cache: one memo for every computed thing, in the spirit of scikit-learn's `Memory.cache`.

Layout under the cache root:

    features/<Backbone>/<size>px-<split>-<key>.npz    float16 features (N, D), int64 labels (N,)
    features/<Backbone>/<size>px-<split>-<key>.json   sidecar: full key, sha256 of the .npz, shape, timing
    features/<Backbone>/<size>px-<split>-<key>.partial/chunk-NNNNNN.{npz,json}
                                                       finished chunks of an interrupted extraction
    heads/<key>.json                                   a trained head's (or fine-tuned network's) scores
    models/<key>.h5, models/<key>.json                 a finished model file (0-transfer.py) and its sidecar
    datasets/<key>.npz, datasets/<key>.json            a folder's decoded images (--data folder:PATH)
    records/<kind>/<key>.json                          other results: "evaluations" of a model file,
                                                       "weights" verdicts (a weights file fits its backbone)

Every record is a JSON sidecar `{"key", ..., "meta_sha256"}`, sealed (a
checksum of the rest of it), beside at most one file whose sha256 it holds.
There is one key builder (`make_key`, a sha256 of the key's parts, built
only here), one read path (`read_sidecar` under `_verified`: absent is a
miss; unreadable, of another key, edited, lacking a field or with a changed
file is reported in one warning line, deleted and recomputed) and one write
path (the file first, the sidecar last, both atomic, so a record exists only
once it is complete). `Store.memo(kind, parts, compute)` puts them together;
feature entries use the same three pieces, with their chunks for resuming.

The feature key covers everything the features depend on: backbone, input
size, weights identity (file sha256, "imagenet" or "random"), the data
fingerprint of exactly the images extracted, and the pipeline version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .atomic import atomic_open, atomic_path, probe_writable, sha256_file, write_json, write_npz
from .diskarray import DiskArray, write_npz_parts

log = logging.getLogger("benchmark")

# Bump when extraction changes in a way that alters the features.
PIPELINE_VERSION = 1
CACHE_ENV = "BACKBONE_BENCH_CACHE"
TIMING_FIELDS = ("images_timed", "seconds_timed", "wall_s", "batch_size")
HEAD_FIELDS = ("val_acc", "test_acc", "test_ci_low", "test_ci_high", "per_class_acc", "confusion", "test_pred",
               "epochs", "head_train_s")
# The folders of the memo's kinds ("heads" and "models" predate records/, and keep their place so caches hit).
KIND_FOLDERS = {"heads": "heads", "models": "models", "datasets": "datasets"}
# What a record of a kind must hold to be used; a record that lacks one is recomputed.
REQUIRED_FIELDS = {"heads": HEAD_FIELDS, "evaluations": ("accuracy", "loss", "n_images", "seconds", "predictions"),
                   "datasets": ("class_names", "data_size", "n_skipped", "skipped", "decode_images_per_sec"),
                   "transferability": ("logme", "hscore", "knn_acc")}  # transferability.SCORES
FILE_SUFFIX = {"models": ".h5", "datasets": ".npz"}  # kinds that keep a file beside their sidecar
STORE_FOLDERS = ("features", "heads", "models", "records", "datasets")  # the only folders the stale-temp sweep visits
STALE_TEMP_S = 24 * 3600  # temp files older than this are leftovers of killed writers
TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp(\.[\w.]+)?$")  # `atomic`'s mkstemp names, nothing else


def default_cache_dir() -> str:
    """`$BACKBONE_BENCH_CACHE`, else `~/.cache/backbone-bench`."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "backbone-bench")


def make_key(parts: dict) -> str:
    """A stable sha256 of a dict of JSON-serialisable key parts: the store's one key builder."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def seal(meta: dict) -> dict:
    """`meta` with `meta_sha256`, a checksum of the rest of it: an edited sidecar is detected like an edited array."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return {**body, "meta_sha256": make_key(body)}


def check_timing(meta: dict) -> None:
    """Raises ValueError unless `meta["timing"]` holds the four numeric timing fields."""
    timing = meta.get("timing")
    if not isinstance(timing, dict) or not all(isinstance(timing.get(k), (int, float)) and not
                                               isinstance(timing.get(k), bool) for k in TIMING_FIELDS):
        raise ValueError(f"sidecar lacks a valid timing ({', '.join(TIMING_FIELDS)})")


def read_sidecar(meta_path: str, key: str, file_path: str | None = None,
                 check: Callable[[dict], None] | None = None) -> dict | None:
    """The store's one read: a record's sidecar, checked; None when it is absent (or went while reading).

    Raises:
        ValueError: naming the problem, when the sidecar is unreadable, of
            another key, edited (seal), fails `check`, or when `file_path`
            is missing or its sha256 differs from the sidecar's.
    """
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"unreadable sidecar ({err})") from err
    if not isinstance(meta, dict) or meta.get("key") != key:
        raise ValueError("sidecar key does not match (different data, weights or settings)")
    if "meta_sha256" in meta and seal(meta)["meta_sha256"] != meta["meta_sha256"]:  # older records: no seal
        raise ValueError("sidecar metadata modified (checksum mismatch)")
    if check is not None:
        check(meta)
    if file_path is not None:
        try:
            if sha256_file(file_path) != meta.get("sha256"):
                raise ValueError("checksum mismatch (truncated or modified file)")
        except FileNotFoundError:
            raise ValueError(f"{os.path.basename(file_path)} missing") from None
        except OSError as err:  # unreadable: a miss to recompute, like a changed file
            raise ValueError(f"{os.path.basename(file_path)} unreadable ({err.strerror or err})") from None
    return meta


def _unlink_all(paths) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:  # another run discarded it first
            pass


def _verified(paths: list[str], what: str, read: Callable):
    """`read()`, or None after discarding `paths` (one warning line) when it raises ValueError."""
    try:
        return read()
    except ValueError as err:
        log.warning("cache: discarding %s %s (%s); recomputing", what, os.path.basename(paths[0]), err)
        _unlink_all(paths)
        return None


def _load_arrays(npz_path: str) -> dict:
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise ValueError("feature file missing") from None
    except Exception as err:  # zipfile/format errors of many kinds
        raise ValueError(f"unreadable feature file ({err})") from err


def _read_arrays(npz_path: str, meta_path: str, key: str, rows: int | None = None) -> tuple[dict, dict] | None:
    """A feature entry's (or chunk's) arrays and sidecar, verified; None when absent; ValueError when corrupt."""
    meta = read_sidecar(meta_path, key, npz_path, check_timing)
    if meta is None:
        return None
    arrays = _load_arrays(npz_path)
    feats = arrays.get("features")
    if feats is None or list(feats.shape) != list(meta.get("shape", [])):
        raise ValueError(f"features have shape {None if feats is None else feats.shape}, "
                         f"sidecar says {meta.get('shape')}")
    if rows is not None and feats.shape[0] != rows:
        raise ValueError(f"chunk has {feats.shape[0]} rows, expected {rows}")
    return arrays, meta


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

    def load(self) -> tuple[np.ndarray, np.ndarray, dict] | None:
        """Returns `(features, labels, meta)`, or None when absent or corrupt."""
        found = _verified([self.npz_path, self.meta_path], "features",
                          lambda: _read_arrays(self.npz_path, self.meta_path, self.key))
        if found is None:
            return None
        arrays, meta = found
        return arrays["features"], arrays["labels"], meta

    def load_on_disk(self) -> tuple[DiskArray, np.ndarray, dict] | None:
        """Like `load`, but the features stay on disk (`DiskArray`): the checksum is streamed and only the
        labels are read. For maps that may not fit in memory."""

        def read():
            meta = read_sidecar(self.meta_path, self.key, self.npz_path, check_timing)
            if meta is None:
                return None
            try:
                features = DiskArray(self.npz_path, "features")
                with np.load(self.npz_path, allow_pickle=False) as npz:
                    labels = npz["labels"]
            except Exception as err:  # zipfile/format errors of many kinds
                raise ValueError(f"unreadable feature file ({err})") from err
            if list(features.shape) != list(meta.get("shape", [])):
                raise ValueError(f"features have shape {features.shape}, sidecar says {meta.get('shape')}")
            return features, labels, meta

        return _verified([self.npz_path, self.meta_path], "features", read)

    def load_meta(self) -> dict | None:
        """The sidecar alone (key, seal and timing checked; the array file must exist but is not read),
        for callers that need an entry's metadata but not its arrays. None when absent or corrupt."""
        meta = _verified([self.npz_path, self.meta_path], "features",
                         lambda: read_sidecar(self.meta_path, self.key, check=check_timing))
        return meta if meta is not None and os.path.exists(self.npz_path) else None

    def save(self, features: np.ndarray, labels: np.ndarray, meta: dict) -> None:
        """Stores the entry atomically and drops any partial chunks."""
        self._seal(write_npz(self.npz_path, features=features, labels=labels), features.shape, meta)

    def _seal(self, sha: str, shape: tuple, meta: dict) -> None:
        """Writes the sidecar of the array file just written (its sha256 and shape) and drops any partial chunks."""
        write_json(self.meta_path, seal({**meta, "key": self.key, "sha256": sha, "shape": list(shape)}))
        shutil.rmtree(self.partial_dir, ignore_errors=True)

    def save_chunks(self, n_rows: int, chunk_size: int, labels: np.ndarray, meta: dict) -> DiskArray:
        """Stores the entry from its finished chunks, read one at a time (the whole array is never in
        memory), atomically, and drops the chunks. A chunk kept in float32 (float16 would overflow) makes the
        entry float32, as `np.concatenate` would. Returns the stored features, left on disk (not read again)."""
        n_chunks = -(-n_rows // chunk_size)
        paths = [self._chunk_paths(i)[0] for i in range(n_chunks)]
        heads = [DiskArray(path, "features") for path in paths]
        dtype = np.result_type(*[h.dtype for h in heads])
        shape = (n_rows, *heads[0].shape[1:])
        parts = (self.load_chunk(i, min(chunk_size, n_rows - i * chunk_size)) for i in range(n_chunks))

        def arrays():
            for i, found in enumerate(parts):
                if found is None:
                    raise ValueError(f"chunk {i} of {self.backbone} @{self.img_size}px {self.split} vanished")
                yield found[0]

        with atomic_open(self.npz_path, "wb") as f:
            write_npz_parts(f, "features", arrays(), shape, dtype, labels=labels)
        self._seal(sha256_file(self.npz_path), shape, meta)
        return DiskArray(self.npz_path, "features")

    # -- chunks of an extraction in progress, for resuming after a crash --

    def _chunk_paths(self, index: int) -> tuple[str, str]:
        stem = os.path.join(self.partial_dir, f"chunk-{index:06d}")
        return stem + ".npz", stem + ".json"

    def save_chunk(self, index: int, features: np.ndarray, timing: dict) -> None:
        npz_path, meta_path = self._chunk_paths(index)
        sha = write_npz(npz_path, features=features)
        write_json(meta_path, seal({"key": self.key, "sha256": sha, "shape": list(features.shape), "timing": timing}))

    def chunk_timing(self, index: int, rows: int) -> tuple[None, dict] | None:
        """`(None, timing)` of a finished chunk of `rows` features, verified without loading its array; None
        when absent or corrupt."""
        npz_path, meta_path = self._chunk_paths(index)

        def read():
            meta = read_sidecar(meta_path, self.key, npz_path, check_timing)
            if meta is None:
                return None
            try:
                shape = DiskArray(npz_path, "features").shape
            except Exception as err:  # zipfile/format errors of many kinds
                raise ValueError(f"unreadable chunk ({err})") from err
            if list(shape) != list(meta.get("shape", [])) or shape[0] != rows:
                raise ValueError(f"chunk has shape {shape}, expected {rows} rows as its sidecar's {meta.get('shape')}")
            return None, meta["timing"]

        return _verified([npz_path, meta_path], "chunk", read)

    def load_chunk(self, index: int, rows: int) -> tuple[np.ndarray, dict] | None:
        """A finished chunk of `rows` features, or None when absent or corrupt."""
        npz_path, meta_path = self._chunk_paths(index)
        found = _verified([npz_path, meta_path], "chunk", lambda: _read_arrays(npz_path, meta_path, self.key, rows))
        return None if found is None else (found[0]["features"], found[1]["timing"])


class Store:
    """The cache root: the memo (`memo`, `lookup`, `write`) and the feature entries."""

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
        """Deletes this store's temp files (`atomic`'s `.<name>.<random>.tmp[.suffix]`, in the store's own
        folders only) older than `max_age_s`: a killed writer's leftovers. Younger ones may belong to a run
        in progress, and files elsewhere under the root are never touched. Returns how many were removed."""
        cutoff, removed = time.time() - max_age_s, 0
        for top in STORE_FOLDERS:
            for folder, _, files in os.walk(os.path.join(self.root, top)):
                for name in files:
                    path = os.path.join(folder, name)
                    try:
                        if TEMP_NAME.match(name) and os.stat(path).st_mtime < cutoff:
                            os.unlink(path)
                            removed += 1
                    except FileNotFoundError:
                        pass
        return removed

    def features(self, backbone: str, img_size: int, split: str, parts: dict) -> FeatureEntry:
        """The entry of one split's features; `parts` from `keys.feature_parts`."""
        # "size" stays the key's word for pixels, so existing caches keep their keys.
        key = make_key({**parts, "backbone": backbone, "size": int(img_size), "split": split,
                        "pipeline": PIPELINE_VERSION})
        return FeatureEntry(self.root, backbone, int(img_size), split, key)

    # -- the memo: sealed records of any kind, each with at most one file --

    def paths(self, kind: str, parts: dict) -> tuple[str, str | None]:
        """`(sidecar, file or None)` of the record of `kind` made from `parts`."""
        folder = os.path.join(self.root, KIND_FOLDERS.get(kind) or os.path.join("records", kind))
        stem = os.path.join(folder, make_key(parts))
        return stem + ".json", (stem + FILE_SUFFIX[kind] if kind in FILE_SUFFIX else None)

    def lookup(self, kind: str, parts: dict) -> dict | None:
        """The stored result of `kind` made from `parts`, or None when absent or invalid (then discarded).
        For kinds with a file (`FILE_SUFFIX`), the result's "path" is the verified file."""
        meta_path, file_path = self.paths(kind, parts)
        fields = REQUIRED_FIELDS.get(kind, ())

        def check(record: dict) -> None:
            result = record.get("result", record.get("info"))  # "info": model sidecars before the seal
            bad = [f for f in fields if not isinstance(result, dict) or f not in result]
            if not isinstance(result, dict) or bad:
                raise ValueError(f"result lacks {', '.join(bad) or 'everything'}")

        record = _verified([meta_path, *([file_path] if file_path else [])], f"{kind} record",
                           lambda: read_sidecar(meta_path, make_key(parts), file_path, check))
        if record is None:
            return None
        result = record.get("result", record.get("info"))
        return {**result, "path": file_path} if file_path else result

    def write(self, kind: str, parts: dict, result: dict, make_file: Callable[[str], None] | None = None) -> dict:
        """Stores `result` (and, for kinds with a file, what `make_file(tmp_path)` writes) atomically;
        returns what `lookup` would."""
        if not isinstance(result, dict) or (kind in FILE_SUFFIX) != callable(make_file):
            raise TypeError(f"a {kind} record is a dict" + (" and a function that writes its file" if kind in
                                                            FILE_SUFFIX else "") + f"; got {type(result).__name__}")
        missing = [f for f in REQUIRED_FIELDS.get(kind, ()) if f not in result]
        if missing:  # it would be discarded on every read
            raise ValueError(f"a {kind} record lacks {', '.join(missing)}")
        meta_path, file_path = self.paths(kind, parts)
        extra = {}
        if file_path:
            with atomic_path(file_path) as tmp:
                make_file(tmp)
            extra["sha256"] = sha256_file(file_path)
        write_json(meta_path, seal({"key": make_key(parts), "parts": parts, "result": result, **extra}))
        return {**result, "path": file_path} if file_path else result

    def memo(self, kind: str, parts: dict, compute: Callable, on_hit: Callable[[dict], None] | None = None,
             refresh: bool = False) -> dict:
        """The result of `kind` made from `parts`: from the store, or `compute()` now and stored.

        For kinds with a file, `compute()` returns `(result, make_file)`, and
        `make_file(path)` writes the file; the returned dict's "path" is it.
        `on_hit(result)` runs when the result came from the store (to say so);
        `refresh` computes again whatever is stored. An exception in `compute`
        stores nothing.
        """
        found = None if refresh else self.lookup(kind, parts)
        if found is not None:
            if on_hit is not None:
                on_hit(found)
            return found
        if kind in FILE_SUFFIX:
            result, make_file = compute()
            return self.write(kind, parts, result, make_file)
        return self.write(kind, parts, compute())
