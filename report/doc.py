"""What every section of the paper takes: the loaded results, the figure plan and what the command lines
tell the report (`Commands`), with the summaries several sections share."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from benchmark.core.results import DEFAULT_DATASET, ranked, top_scorer

from . import figures
from .analysis import runner_up, sizes
from .load import Results
from .plan import Figures


@dataclass(frozen=True)
class Commands:
    """What the command-line layer tells the report, which may not import it (.importlinter).

    Attributes:
        benchmark: a run's recorded settings (environment.json's "config") and a results folder ->
            the `python -m benchmark` command that makes that run, or None when no command can.
        transfer: transfer.json's record -> the `python 0-transfer.py` command that trains that model.
        report: (results folder, report folder[, dataset]) -> the `python -m report` command that builds the
            page; the dataset is passed only when the folder's default is another.
        final_min_size: the smallest input size 0-transfer.py trains the top scorer at.
    """

    benchmark: Callable[[dict, str | None], str | None]
    transfer: Callable[[dict], str | None]
    report: Callable[..., str]
    final_min_size: int


@dataclass(frozen=True)
class Doc:
    """One paper: the results, its figures, the command lines (None for a library call) and the author."""

    results: Results
    figs: Figures
    commands: Commands | None
    author: str
    out_dir: str

    @property
    def frame(self) -> pd.DataFrame:
        return self.results.frame

    @property
    def env(self) -> dict:
        return self.results.env

    @property
    def stats(self) -> dict:
        return self.env.get("statistics") or {}

    @property
    def transfer(self) -> dict | None:
        return self.env.get("transfer")

    @property
    def dataset(self) -> dict:
        """The page's dataset (`report.load.dataset_facts`): name, label, class names, storage size..."""
        return self.results.dataset

    @property
    def data(self) -> str:
        """The dataset as the prose names it: "CIFAR-10", or the name its rows carry."""
        return self.dataset["label"]

    @property
    def is_cifar10(self) -> bool:
        """CIFAR-10's page: its citation, its lossy copy and 0-transfer.py's final model belong here only."""
        return self.dataset["name"] == DEFAULT_DATASET

    @functools.cached_property
    def scored(self) -> pd.DataFrame:
        return ranked(self.frame)

    @functools.cached_property
    def top(self) -> pd.Series | None:
        return top_scorer(self.frame)

    @functools.cached_property
    def second(self) -> pd.Series | None:
        return runner_up(self.frame, self.top) if self.top is not None else None

    @functools.cached_property
    def pretrained(self) -> list[str]:
        return sorted(self.frame.loc[self.frame["weights"] == "imagenet", "model"].unique())

    @property
    def sizes(self) -> list[int]:
        return sizes(self.frame)

    @functools.cached_property
    def split_sizes(self) -> tuple[int | None, int | None, int | None]:
        """The largest (train, val, test) image counts of the scored rows; Nones without any."""
        if self.scored.empty:
            return None, None, None
        return tuple(int(self.scored[col].max()) for col in ("train_size", "val_size", "test_size"))

    @functools.cached_property
    def tables(self) -> dict[str, int]:
        """The page's tables in page order, numbered consecutively among those it shows: the scored rows and the
        cost always, the rank agreement (with transferability scores or a truth), the budgets, the truth, and the
        final model's stages."""
        stats = self.stats
        shown = {"results": True, "cost": True, "rank": bool(stats.get("transferability") or stats.get("truth")),
                 "budgets": any(r["best"] is not None for r in stats.get("recommend", [])),
                 "truth": bool(stats.get("truth")), "final": self.is_cifar10 and bool(self.transfer)}
        return {key: number for number, key in enumerate((k for k, on in shown.items() if on), start=1)}

    @functools.cached_property
    def has_finetune(self) -> bool:
        return bool((self.frame["regime"] == "finetune").any())

    @functools.cached_property
    def timed(self) -> pd.DataFrame:
        return figures.timing_rows(self.frame)
