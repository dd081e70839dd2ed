"""Everything the page is built from, read once from the results folder.

`load(results_dir)` reads results.csv, environment.json, the examples file,
the runs whose rows are still exported (results.sqlite), epoch_ratio.json and
0-transfer.py's transfer.json/npz. `facts()` is the part besides results.csv
that the page may quote numbers from (`report.numbers` checks the page
against it).

One results folder may hold rows of several datasets (the `dataset` column);
a page covers one of them (`choose_dataset`), and only its rows, examples and
runs: the other datasets' rows never reach its tables, figures or statistics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from benchmark.core.data import CLASSES
from benchmark.core.results import (DEFAULT_DATASET, load_environment, load_epoch_ratio, load_examples, load_results,
                                    load_transfer, of_dataset)
from benchmark.core.results_db import live_runs

from .analysis import N_EXTRACT, statistics

# What an environment says about its own run's data: wrong for another dataset's page.
DATA_KEYS = ("dataset", "dataset_info", "data_source", "data_lossy_jpeg")
# CIFAR-10's facts for runs recorded before the environment named the dataset.
CIFAR10_INFO = {"class_names": list(CLASSES), "img_size": 32, "n_train_pool": 50000, "n_test": 10000}


@dataclass(frozen=True)
class Results:
    """A results folder as the report reads it, for one of its datasets.

    Attributes:
        frame: results.csv's rows of that dataset (the loader guarantees every column).
        env: the facts: that dataset's latest environment with its live runs, the dataset (`dataset_facts`),
            the epoch measurement, the transfer record and the statistics (see `facts`).
        examples: that dataset's examples file as (images uint8 (n, S, S, 3), labels (n_test,),
            {key: predictions (n_test,)}), or None.
        final: transfer.npz as (images, labels, predictions), or None (always None for another dataset than
            CIFAR-10: 0-transfer.py's model answers CIFAR-10).
    """

    results_dir: str
    frame: pd.DataFrame
    env: dict
    examples: tuple | None
    final: tuple | None

    @property
    def dataset(self) -> dict:
        """The page's dataset: `{"name", "label", "class_names", "n_classes", ...its run's dataset_info}`."""
        return self.env["dataset"]

    @property
    def dataset_flag(self) -> str | None:
        """The `--dataset` a command needs to build this page again (None: the folder's default gives it)."""
        name = self.dataset["name"]
        return None if default_dataset([name, *self.env["other_datasets"]]) == name else name


def load(results_dir: str, final_min_size: int | None = None, dataset: str | None = None,
         truth_dir: str | None = None) -> Results:
    """Reads the folder for one dataset (`choose_dataset`); `final_min_size` is 0-transfer.py's smallest input
    size when the command lines say it (the report may not import them), a fact the page then quotes.
    `truth_dir` is a results folder of networks fine-tuned on all the training images (`--full --regime
    finetune`), which the quick rankings are held against (`analysis.against_truth`).

    Raises:
        ValueError: `dataset` has no rows in the folder (naming those it has), or the truth folder has no
            fine-tuned row of it.
        FileNotFoundError: `truth_dir` has no results.csv.
    """
    every = load_results(results_dir)
    name = choose_dataset(results_dir, every, dataset)
    frame = of_dataset(every, name).reset_index(drop=True)
    try:
        examples = load_examples(results_dir, name)
    except FileNotFoundError:  # none, or damaged (load_npz has said so)
        examples = None
    labels, predictions = (examples[1], examples[2]) if examples else (None, {})
    truth, truth_runs = _truth(truth_dir, name)
    runs = [r for r in live_runs(results_dir) if dataset_of(r) == name]
    env = _environment(results_dir, runs, name)
    tuned = [r["finetune"] for r in runs if r.get("finetune")] or ([env["finetune"]] if env.get("finetune") else [])
    transfer, final = load_transfer(results_dir) if name == DEFAULT_DATASET else (None, None)
    if transfer and transfer.get("jpeg_robustness"):
        values = list(transfer["jpeg_robustness"].values())
        transfer = {**transfer, "jpeg_spread": max(values) - min(values)}
    facts_ = {**env, "finetune": tuned[-1] if tuned else None, "runs": [_run_summary(r) for r in runs],
              "dataset": dataset_facts(name, env, frame), "other_datasets": [n for n in names(every) if n != name],
              "results_dir": results_dir, "epoch_ratio": load_epoch_ratio(results_dir),
              "statistics": statistics(frame, labels, predictions, truth), "n_extract": N_EXTRACT,
              "transfer": transfer, "final_min_size": final_min_size, "truth_dir": truth_dir,
              "truth_runs": [_run_summary(r) for r in truth_runs]}
    return Results(results_dir, frame, facts_, examples, final)


def truth_frame(truth_dir: str, name: str) -> pd.DataFrame:
    """The truth folder's scored fine-tuned rows of dataset `name` (`--truth` of the report and of --recommend).

    Raises:
        FileNotFoundError: no results.csv in `truth_dir`.
        ValueError: no such row, with the command that makes them.
    """
    rows = of_dataset(load_results(truth_dir), name)
    rows = rows[(rows["regime"] == "finetune") & rows["val_acc"].notna()].reset_index(drop=True)
    if rows.empty:
        raise ValueError(f"--truth {truth_dir}: no fine-tuned row of {name} in its results.csv; fill it with "
                         f"python -m benchmark --backbones ... --full --regime finetune --out {truth_dir}")
    return rows


def _truth(truth_dir: str | None, name: str) -> tuple[pd.DataFrame | None, list[dict]]:
    """The truth folder's fine-tuned rows of dataset `name` and its live runs of it ((None, []) without one)."""
    if truth_dir is None:
        return None, []
    return truth_frame(truth_dir, name), [r for r in live_runs(truth_dir) if dataset_of(r) == name]


def facts(results_dir: str, final_min_size: int | None = None, dataset: str | None = None,
          truth_dir: str | None = None) -> dict:
    """Everything besides results.csv that the page may quote numbers from: the environment, the dataset, the
    epoch measurement, the transfer record, the truth folder's runs and the statistics computed from the results
    (with the truth's rows held against them)."""
    return load(results_dir, final_min_size, dataset, truth_dir).env


def names(frame: pd.DataFrame) -> list[str]:
    """The datasets whose rows `frame` holds, by name."""
    return sorted(set(frame["dataset"].fillna(DEFAULT_DATASET)))


def default_dataset(present: list[str]) -> str:
    """The page's dataset when none is asked for: the only one, else CIFAR-10 when present, else the first by
    name (CIFAR-10 for a folder without rows)."""
    present = sorted(set(present))
    return DEFAULT_DATASET if DEFAULT_DATASET in present or not present else present[0]


def choose_dataset(results_dir: str, frame: pd.DataFrame, wanted: str | None = None) -> str:
    """`wanted` when the folder holds its rows, else `default_dataset`.

    Raises:
        ValueError: `wanted` has no rows, naming the datasets the folder holds (the command line's one line).
    """
    present = names(frame)
    if wanted is None:
        return default_dataset(present)
    if wanted not in present:
        raise ValueError(f"--dataset {wanted}: no rows of that dataset in {results_dir}/results.csv; it holds "
                         + (f"rows of: {', '.join(present)}" if present else "no rows"))
    return wanted


def dataset_of(env: dict) -> str:
    """The dataset a run's environment was recorded for (older runs: CIFAR-10)."""
    return env.get("dataset") or DEFAULT_DATASET


def label(name: str) -> str:
    """How the page writes a dataset's name: "CIFAR-10", else the name as the rows carry it."""
    return "CIFAR-10" if name == DEFAULT_DATASET else name


def dataset_facts(name: str, env: dict, frame: pd.DataFrame) -> dict:
    """The page's dataset: its run's `dataset_info` (class names, storage size `img_size`, pool sizes, source)
    with `name`, `label` and `n_classes`. CIFAR-10 without a record gets its known facts; another dataset
    without one gets numbered classes, as many as its confusion matrices have."""
    info = env.get("dataset_info") if dataset_of(env) == name else None
    known = CIFAR10_INFO if name == DEFAULT_DATASET else {"class_names": _numbered_classes(frame)}
    out = {**known, **(info or {}), "name": name, "label": label(name)}
    return {**out, "class_names": [str(c) for c in out["class_names"]], "n_classes": len(out["class_names"])}


def _numbered_classes(frame: pd.DataFrame) -> list[str]:
    """"0", "1", ...: one per row of the first confusion matrix in `frame` (none: [])."""
    found = frame["confusion"].dropna()
    return [str(i) for i in range(len(json.loads(found.iloc[0])))] if len(found) else []


def _environment(results_dir: str, runs: list[dict], name: str) -> dict:
    """`name`'s latest environment: environment.json when the folder's latest run was of it, else the newest
    live run of it, else environment.json without what it says about its own run's data."""
    env = load_environment(results_dir)
    if dataset_of(env) == name:
        return env
    if runs:
        return runs[-1]
    return {k: v for k, v in env.items() if k not in DATA_KEYS}


def _run_summary(env: dict) -> dict:
    return {"settings": env.get("settings") or env.get("config") or {}, "git_sha": env.get("git_sha"),
            "date": env.get("date")}
