"""The tidy results table: one row per (backbone, input size, regime, head).

Written as `results.csv` and `results.json` (pandas, records orient) with
`environment.json` beside them, atomically, after every backbone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile

import pandas as pd

import backbones

from .atomic import write_json, write_npz, write_text
from .transferability import SCORES

SCHEMA_VERSION = 8
REGIMES = ("frozen", "finetune")


def _add_regime(frame: pd.DataFrame) -> None:
    frame.insert(frame.columns.get_loc("head") + 1, "regime", "frozen")
    for col in ("ft_epochs", "ft_train_s", "trainable_params"):
        frame.insert(frame.columns.get_loc("head_train_s") + 1 + ("ft_epochs", "ft_train_s",
                                                                    "trainable_params").index(col), col, None)


# Older layouts load_results still reads, each migrated to the next: schema 2
# had no precision column (every row was fp32); schema 3 had no host and
# device columns (unknown); schema 4 had no regime (every row was frozen);
# schema 5 had no dataset column (every row was CIFAR-10); schema 6 had no
# transferability columns (empty); schema 7 had no job_rss_mb (unknown).
_MIGRATIONS = {2: lambda frame: frame.insert(2, "precision", "fp32"),
               3: lambda frame: frame.insert(frame.columns.get_loc("schema_version"), "host", None)
               or frame.insert(frame.columns.get_loc("schema_version"), "device", None),
               4: _add_regime,
               5: lambda frame: frame.insert(frame.columns.get_loc("data_fingerprint"), "dataset", DEFAULT_DATASET),
               6: lambda frame: [frame.insert(frame.columns.get_loc("per_class_acc"), col, None)
                                 for col in TRANSFERABILITY_COLUMNS],
               7: lambda frame: frame.insert(frame.columns.get_loc("peak_rss_mb") + 1, "job_rss_mb", None)}
DEFAULT_DATASET = "cifar10"
TRANSFERABILITY_COLUMNS = (*SCORES, *(f"{name}_ms" for name in SCORES))  # new in schema 7

# Column -> meaning. The order is the CSV's column order.
COLUMNS = {
    "model": "registry name of the backbone",
    "img_size": "square input size in pixels that 32x32 images are upscaled to",
    "precision": "compute precision of the base: 'fp32', or 'bf16' (Keras mixed_bfloat16)",
    "head": "'linear' or 'mlp'; 'none' for timing-only rows",
    "regime": "'frozen': a head on the frozen base's features; 'finetune': the base's last stage (above its "
              "registry cut) and an mlp head trained together on cached maps",
    "weights": "'imagenet' (pretrained) or 'random' (timing only, accuracy left empty)",
    "family": "architecture family",
    "param_count": "parameters of the base without its top",
    "feature_dim": "width of the pooled features",
    "imagenet_top1": "published ImageNet top-1 (%) of the Keras weights",
    "samples_per_sec": "extraction throughput, images/s, warm-up batch excluded (finetune rows: of the frozen "
                       "part below the cut, whose maps are cached)",
    "ms_per_img": "1000 / samples_per_sec",
    "images_timed": "images the throughput was measured on",
    "extract_wall_s": "wall seconds of the whole extraction, warm-up included",
    "batch_size": "extraction batch size actually used",
    "peak_rss_mb": "peak resident memory (MiB) of the process that extracted this backbone, while it did (the "
                   "kernel's mark reset at the job's start): it includes what the process held when the job began, "
                   "which in a reused worker is what earlier jobs left (up to --worker-max-rss-mb)",
    "job_rss_mb": "the job's own high-water mark: peak_rss_mb minus the process's resident memory when the job "
                  "began (its images and TensorFlow were loaded by then)",
    "gflops_per_img": "GFLOPs per image (2 x multiply-adds of conv and dense layers, counted from the graph)",
    "gflops_per_sec": "achieved GFLOP/s during extraction: gflops_per_img x samples_per_sec",
    "matmul_peak_gflops": ("this machine's fp32 matmul GFLOP/s, measured in the same run (or given by "
                           "$BACKBONE_BENCH_MATMUL_PEAK)"),
    "pct_of_peak": "gflops_per_sec as a percentage of matmul_peak_gflops (the fp32 peak, also for bf16 rows)",
    "train_size": "training images the head saw",
    "val_size": "validation images used for early stopping",
    "test_size": "test images scored",
    "val_acc": "validation accuracy of the head",
    "test_acc": "test accuracy of the head",
    "test_ci_low": "bootstrap 95% interval of test_acc, lower end",
    "test_ci_high": "bootstrap 95% interval of test_acc, upper end",
    "head_epochs": "epochs the head trained before early stopping",
    "head_train_s": "seconds spent training the head (finetune rows: on the frozen base, before fine-tuning)",
    "ft_epochs": "fine-tuning epochs run before early stopping (finetune rows)",
    "ft_train_s": "wall seconds of fine-tuning, on cached maps (finetune rows)",
    "trainable_params": "parameters trained: the head's (frozen rows), the last stage's and the head's (finetune)",
    "logme": "LogME of the training split's frozen pooled features (You et al. 2021), per image; higher should be "
             "better. Frozen rows only: a fine-tuned row's backbone and size has them on its frozen rows",
    "hscore": "H-score of the same features (Ledoit-Wolf shrunk covariance, Ibrahim et al. 2021), 0 to classes - 1",
    "knn_acc": "leave-one-out 20-nearest-neighbour accuracy (cosine, centred features) on the same features",
    "logme_ms": "milliseconds LogME took (NumPy, on this machine)",
    "hscore_ms": "milliseconds the H-score took",
    "knn_acc_ms": "milliseconds the k-NN accuracy took",
    "per_class_acc": "JSON list of the per-class test accuracies, one per class (10 for CIFAR-10)",
    "confusion": "JSON test confusion matrix (10x10 for CIFAR-10), rows true, columns predicted",
    "from_cache": "true when the features came from the cache (timing is from when they were made)",
    "seed": "seed of the split, heads and bootstrap",
    "weights_id": "sha256 of the weights file, 'imagenet' or 'random'",
    "dataset": "the images' dataset: 'cifar10', or the name of a --data folder or .npz file",
    "data_fingerprint": "sha256 of the images and labels used",
    "host": "machine that extracted the features (a sweep on a cluster has several)",
    "device": "what extracted them: the GPU's name, else the CPU model",
    "schema_version": "version of this table's layout",
}


FLOAT_COLUMNS = ("imagenet_top1", "samples_per_sec", "ms_per_img", "extract_wall_s", "peak_rss_mb", "job_rss_mb",
                 "gflops_per_img",
                 "gflops_per_sec", "matmul_peak_gflops", "pct_of_peak", "val_acc", "test_acc", "test_ci_low",
                 "test_ci_high", "head_train_s", "ft_train_s", "logme", "hscore", "knn_acc", "logme_ms", "hscore_ms",
                 "knn_acc_ms")
INT_COLUMNS = ("img_size", "param_count", "feature_dim", "images_timed", "batch_size", "train_size",
               "val_size", "test_size", "head_epochs", "ft_epochs", "trainable_params", "seed", "schema_version")


class ResultsSchemaError(ValueError):
    """A results file written by an incompatible version of the tool."""


def to_frame(rows: list[dict]) -> pd.DataFrame:
    """The rows as a DataFrame with exactly `COLUMNS`, in order."""
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["schema_version"] = SCHEMA_VERSION
    frame["regime"] = frame["regime"].fillna("frozen")  # rows stored before the regime column
    frame["dataset"] = frame["dataset"].fillna(DEFAULT_DATASET)  # rows stored before the dataset column
    for col in INT_COLUMNS:  # nullable ints: timing-only rows leave some empty
        frame[col] = pd.array(frame[col], dtype="Int64")
    return frame


def write_results(rows: list[dict], out_dir: str, environment: dict | None = None) -> pd.DataFrame:
    """Writes results.csv, results.json and environment.json atomically."""
    os.makedirs(out_dir, exist_ok=True)
    frame = to_frame(rows)
    write_text(os.path.join(out_dir, "results.csv"), frame.to_csv(index=False))
    write_text(os.path.join(out_dir, "results.json"), frame.to_json(orient="records", indent=1) + "\n")
    if environment is not None:
        write_json(os.path.join(out_dir, "environment.json"), environment)
    return frame


def load_results(out_dir: str) -> pd.DataFrame:
    """Reads results.csv, checking its schema.

    Raises:
        FileNotFoundError: when there is no results.csv in `out_dir`.
        ResultsSchemaError: when the file is from another schema version.
    """
    path = os.path.join(out_dir, "results.csv")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no results at {path}; run `python -m benchmark` first")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ResultsSchemaError(f"{path} is not a results table ({str(err).strip()}); move it away or pass "
                                 f"another --out, then rerun the benchmark") from None
    versions = set(frame.get("schema_version", pd.Series([None])).dropna().astype(int))
    if len(versions) == 1 and (old := next(iter(versions))) in _MIGRATIONS:
        for version in range(old, SCHEMA_VERSION):
            _MIGRATIONS[version](frame)
        frame["schema_version"] = SCHEMA_VERSION
        versions = {SCHEMA_VERSION}
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing or versions != {SCHEMA_VERSION}:
        raise ResultsSchemaError(
            f"{path} was written with results schema {sorted(versions) or 'unknown'}, this tool writes "
            f"schema {SCHEMA_VERSION}" + (f" (missing columns: {', '.join(missing)})" if missing else "")
            + ". Move it away or pass another --out, then rerun the benchmark."
        )
    _check_values(frame, path)
    return frame


TEXT_VALUES = {"model": set(backbones.names()), "weights": {"imagenet", "random"},
               "head": {"linear", "mlp", "none"}, "regime": set(REGIMES), "precision": set(backbones.PRECISIONS)}


REQUIRED_VALUES = ("model", "img_size", "dataset")  # every row names its backbone, size and data
JSON_COLUMNS = ("per_class_acc", "confusion")  # lists, as JSON text


def _json_problem(text) -> bool:
    try:
        return not isinstance(json.loads(text), list)
    except (TypeError, ValueError):
        return True


def _check_values(frame: pd.DataFrame, path: str) -> None:
    """Raises ResultsSchemaError naming the file, line and column of the first value of the wrong kind."""
    for col in COLUMNS:
        if col in REQUIRED_VALUES and frame[col].isna().any():
            i = int(frame[col].isna().to_numpy().nonzero()[0][0])
            raise ResultsSchemaError(f"{path}, line {i + 2}, column {col}: empty, and every row needs one; fix or "
                                     f"delete that row, or rerun the benchmark into a new --out")
        if col in JSON_COLUMNS:
            bad = frame[col].notna() & frame[col].map(_json_problem)
            expected = "a JSON list"
        elif col in INT_COLUMNS or col in FLOAT_COLUMNS:
            values = pd.to_numeric(frame[col], errors="coerce")
            bad = frame[col].notna() & values.isna()
            expected = "a number"
        elif col in TEXT_VALUES:
            bad = frame[col].notna() & ~frame[col].isin(TEXT_VALUES[col])
            expected = "a registry name" if col == "model" else f"one of {', '.join(sorted(TEXT_VALUES[col]))}"
        else:
            continue
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise ResultsSchemaError(f"{path}, line {i + 2}, column {col}: {frame[col].iloc[i]!r} is not "
                                     f"{expected}; fix or delete that row, or rerun the benchmark into a new --out")
        if col in INT_COLUMNS or col in FLOAT_COLUMNS:
            frame[col] = values


N_EXAMPLES = 48


def examples_file(dataset: str = DEFAULT_DATASET) -> str:
    """The examples file of a dataset's rows: examples.npz for CIFAR-10, examples-NAME.npz for another."""
    return "examples.npz" if dataset == DEFAULT_DATASET else f"examples-{dataset}.npz"


def write_examples(out_dir: str, test, predictions: dict, dataset: str = DEFAULT_DATASET) -> None:
    """Writes `examples_file(dataset)` for the report: the first `N_EXAMPLES` test images, every test label, and
    each row's prediction for every test image (key "model|img_size|head", "|finetune" for that regime),
    which the report's paired test (McNemar) compares image by image."""
    import numpy as np

    images, labels = test.x[:N_EXAMPLES], np.asarray(test.y)
    try:  # earlier runs' predictions on the same images stay, as their rows do
        old_images, old_labels, earlier = load_examples(out_dir, dataset)
        earlier = earlier if np.array_equal(old_images, images) and np.array_equal(old_labels, labels) else {}
    except NPZ_ERRORS:  # none yet, or damaged: this run writes it anew
        earlier = {}
    kept = {key: value for key, value in {**earlier, **predictions}.items()
            if len(value) == len(labels)}  # a file from before full predictions: its rows' are dropped
    largest = max([int(np.max(labels, initial=0))] + [int(np.max(v, initial=0)) for v in kept.values()])
    dtype = np.uint8 if largest < 256 else np.int32  # labels and predictions, without wrapping
    arrays = {"images": images, "labels": labels.astype(dtype)}
    arrays.update({f"pred:{key}": np.asarray(value, dtype) for key, value in kept.items()})
    write_npz(os.path.join(out_dir, examples_file(dataset)), **arrays)


# What makes two rows "the same measurement": a newer one supersedes the older (results_db), and its test
# predictions are stored under it (examples.npz).
KEY_COLUMNS = ("model", "img_size", "precision", "head", "weights_id", "data_fingerprint", "train_size", "val_size",
               "test_size")


def _plain(value):
    """JSON for numpy scalars and pandas' missing values."""
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and value != value else value


def _key_value(value):
    value = _plain(value)
    return int(value) if isinstance(value, float) and value.is_integer() else value  # 2000.0 from a CSV is 2000


def row_key(row) -> str:
    """A results row's key (a dict or a pandas row): `KEY_COLUMNS`, and the regime when not frozen."""
    parts = [_key_value(row.get(col)) for col in KEY_COLUMNS]
    if row.get("regime") not in (None, "frozen"):  # frozen rows keep the keys they had before the regime column
        parts.append(row["regime"])
    return json.dumps(parts, default=str)


def prediction_key(row) -> str:
    """examples.npz's key of a results row's predictions: a digest of the row's own key, so rows of other
    protocols (split sizes, weights, data) never share predictions."""
    return hashlib.sha256(row_key(row).encode()).hexdigest()[:24]


def row_predictions(predictions: dict, row):
    """The row's test predictions from `load_examples`' dict, or None. Files written before the row's own
    key was used held "model|img_size|head[|precision]" keys ("finetune" for that regime): read as a fallback."""
    tail = "finetune" if row["regime"] == "finetune" else row["head"]
    legacy = f"{row['model']}|{int(row['img_size'])}|{tail}" + ("" if row["precision"] == "fp32" else
                                                                f"|{row['precision']}")
    found = predictions.get(prediction_key(row))
    return found if found is not None else predictions.get(legacy)


NPZ_ERRORS = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile)  # a missing, truncated or foreign .npz


def load_npz(path: str, names: tuple) -> tuple | None:
    """`names`' arrays (a name ending in "*" gives a dict of every array with that prefix) from the .npz at
    `path`; None when it is absent, or damaged (then one warning naming it and what to do)."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as npz:
            return tuple({k[len(n) - 1:]: npz[k] for k in npz.files if k.startswith(n[:-1])} if n.endswith("*")
                         else npz[n] for n in names)
    except FileNotFoundError:
        return None
    except NPZ_ERRORS as err:
        logging.getLogger("benchmark").warning("%s is damaged (%s: %s); the report goes on without it. Delete it: "
                                               "the command that wrote it writes it again.", path,
                                               type(err).__name__, err)
        return None


def load_examples(out_dir: str, dataset: str = DEFAULT_DATASET) -> tuple:
    """`(images uint8 (n, S, S, 3), labels (n_test,), {"model|img_size|head": predictions (n_test,)})` of
    `dataset`'s rows; the images are the first n of the test images the labels belong to."""
    name = examples_file(dataset)
    found = load_npz(os.path.join(out_dir, name), ("images", "labels", "pred:*"))
    if found is None:
        raise FileNotFoundError(f"no readable {name} in {out_dir}")
    return found


def load_environment(out_dir: str) -> dict:
    """environment.json beside the results; ResultsSchemaError naming the file when it is not a JSON object."""
    return _load_json(os.path.join(out_dir, "environment.json"))


def _load_json(path: str) -> dict:
    try:
        with open(path) as f:
            obj = json.load(f)
    except json.JSONDecodeError as err:
        raise ResultsSchemaError(f"{path} is not valid JSON ({err}); delete it and rerun the command that "
                                 f"wrote it") from None
    if not isinstance(obj, dict):
        raise ResultsSchemaError(f"{path} does not hold a JSON object; delete it and rerun the command that wrote it")
    return obj


# `0-transfer.py` writes these beside the model: the final experiment's record, and its test labels,
# predictions and first test images (the report's final-model section reads both when they are in
# the results folder).
TRANSFER_JSON = "transfer.json"
TRANSFER_NPZ = "transfer.npz"


def load_transfer(out_dir: str) -> tuple[dict | None, tuple | None]:
    """`(transfer.json as a dict or None, (images, labels, predictions) from transfer.npz or None)`."""
    path = os.path.join(out_dir, TRANSFER_JSON)
    record = _load_json(path) if os.path.exists(path) else None
    return record, load_npz(os.path.join(out_dir, TRANSFER_NPZ), ("images", "labels", "predictions"))


# `python -m benchmark.epoch_ratio` writes this file beside the results; the report reads it.
EPOCH_RATIO_FILE = "epoch_ratio.json"


def load_epoch_ratio(out_dir: str) -> dict | None:
    """The cached-head against end-to-end epoch measurement, or None when there is none."""
    path = os.path.join(out_dir, EPOCH_RATIO_FILE)
    return _load_json(path) if os.path.exists(path) else None


# -- the one rule for "the best row", used by the console, the report and 0-transfer.py --

HEAD_ORDER = {"linear": 0, "mlp": 1}  # simpler first
REGIME_ORDER = {"frozen": 0, "finetune": 1}  # cheaper first
TOP_SCORER_RULE = ("the highest validation accuracy among rows with pretrained weights, in either regime; ties go "
                   "to the frozen regime (cheaper to train), then the faster extraction (samples_per_sec), then the "
                   "simpler head (linear before mlp), then the smaller input size, then the model name. Test "
                   "accuracy is never used to choose.")


def of_dataset(frame: pd.DataFrame, dataset: str | None) -> pd.DataFrame:
    """The rows of `dataset` (None: all). A table from before the dataset column is CIFAR-10's."""
    if dataset is None:
        return frame
    names = frame["dataset"] if "dataset" in frame.columns else pd.Series(DEFAULT_DATASET, index=frame.index)
    return frame[names.fillna(DEFAULT_DATASET) == dataset]


def ranked(frame: pd.DataFrame) -> pd.DataFrame:
    """Scored rows (pretrained weights, a validation accuracy), best first by `TOP_SCORER_RULE`."""
    if "regime" not in frame.columns:  # a frame built by hand, or from before the regime column
        frame = frame.assign(regime="frozen")
    scored = frame[(frame["weights"] == "imagenet") & frame["val_acc"].notna()]
    order = scored.assign(_regime=scored["regime"].map(REGIME_ORDER).fillna(len(REGIME_ORDER)),
                          _head=scored["head"].map(HEAD_ORDER).fillna(len(HEAD_ORDER)),
                          _sps=scored["samples_per_sec"].fillna(0))
    order = order.sort_values(["val_acc", "_regime", "_sps", "_head", "img_size", "model"],
                              ascending=[False, True, False, True, True, True], kind="stable")
    return order.drop(columns=["_regime", "_head", "_sps"])


def top_scorer(frame: pd.DataFrame, dataset: str | None = None) -> pd.Series | None:
    """The best row of `dataset` (None: of any) by `TOP_SCORER_RULE`, or None when no such row has an accuracy."""
    order = ranked(of_dataset(frame, dataset))
    return None if order.empty else order.iloc[0]


def best_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, img_size, regime): its best head by `TOP_SCORER_RULE`, best first."""
    return ranked(frame).drop_duplicates(["model", "img_size", "regime"]).reset_index(drop=True)
