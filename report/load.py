"""Everything the page is built from, read once from the results folder.

`load(results_dir)` reads results.csv, environment.json, examples.npz, the
runs whose rows are still exported (results.sqlite), epoch_ratio.json and
0-transfer.py's transfer.json/npz. `facts()` is the part besides results.csv
that the page may quote numbers from (`report.numbers` checks the page
against it).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from benchmark.core.results import load_environment, load_epoch_ratio, load_examples, load_results, load_transfer
from benchmark.core.results_db import live_runs

from .analysis import N_EXTRACT, statistics


@dataclass(frozen=True)
class Results:
    """A results folder as the report reads it.

    Attributes:
        frame: results.csv (the loader guarantees every column).
        env: the facts: environment.json with the live runs, the epoch measurement, the transfer record
            and the statistics (see `facts`).
        examples: examples.npz as (images, labels, {key: predictions}), or None.
        final: transfer.npz as (images, labels, predictions), or None.
    """

    results_dir: str
    frame: pd.DataFrame
    env: dict
    examples: tuple | None
    final: tuple | None


def load(results_dir: str, final_min_size: int | None = None) -> Results:
    """Reads the folder; `final_min_size` is 0-transfer.py's smallest input size when the command lines
    say it (the report may not import them), a fact the page then quotes."""
    frame = load_results(results_dir)
    try:
        examples = load_examples(results_dir)
    except FileNotFoundError:  # none, or damaged (load_npz has said so)
        examples = None
    labels, predictions = (examples[1], examples[2]) if examples else (None, {})
    runs = live_runs(results_dir)
    env = load_environment(results_dir)
    tuned = [r["finetune"] for r in runs if r.get("finetune")] or ([env["finetune"]] if env.get("finetune") else [])
    transfer, final = load_transfer(results_dir)
    if transfer and transfer.get("jpeg_robustness"):
        values = list(transfer["jpeg_robustness"].values())
        transfer = {**transfer, "jpeg_spread": max(values) - min(values)}
    facts_ = {**env, "finetune": tuned[-1] if tuned else None, "runs": [_run_summary(r) for r in runs],
              "epoch_ratio": load_epoch_ratio(results_dir), "statistics": statistics(frame, labels, predictions),
              "n_extract": N_EXTRACT, "transfer": transfer, "final_min_size": final_min_size}
    return Results(results_dir, frame, facts_, examples, final)


def facts(results_dir: str, final_min_size: int | None = None) -> dict:
    """Everything besides results.csv that the page may quote numbers from: the environment, the
    epoch measurement, the transfer record and the statistics computed from the results."""
    return load(results_dir, final_min_size).env


def _run_summary(env: dict) -> dict:
    return {"settings": env.get("settings") or env.get("config") or {}, "git_sha": env.get("git_sha"),
            "date": env.get("date")}
