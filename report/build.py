"""Builds the self-contained HTML report: the journal-style paper of the experiment.

`build_report(results_dir, out_dir)` reads the results folder (`report.load`)
for one of its datasets (`dataset`; by default the only one, else CIFAR-10),
plans and draws the figures as PNG files beside index.html (`report.plan`),
and writes the page from its sections (`report.sections`). No scripts, fonts
or styles come from the network. Every number on the page is formatted from
those files or from the facts computed from them, and
`report.numbers.unsupported_numbers` checks that.

The command lines pass `commands` (`report.doc.Commands`): how to write the
commands that reproduce the page, which the report may not import. A library
call without them gets a page whose Reproduction section says so.
"""

from __future__ import annotations

import os
import subprocess

from benchmark.core.atomic import write_text
from benchmark.core.results import DEFAULT_DATASET

from .doc import Commands, Doc
from .html import page
from .load import load
from .plan import draw, figure_plan
from .sections import paper

__all__ = ["Commands", "build_report", "report_dir"]


def build_report(results_dir: str = "results", out_dir: str | None = None, echo=print, author: str | None = None,
                 commands: Commands | None = None, dataset: str | None = None, truth_dir: str | None = None) -> str:
    """Writes `out_dir/index.html` (default `report_dir`) and its figures for `dataset`'s rows (None: the
    folder's default, `report.load.choose_dataset`); returns the page's path. `truth_dir`: a results folder of
    networks fine-tuned on all the training images, which the quick rankings are held against.

    Raises:
        ValueError: `dataset` has no rows in the folder, or `truth_dir` no fine-tuned row of it.
    """
    out_dir = out_dir or report_dir(results_dir, dataset)
    results = load(results_dir, commands.final_min_size if commands else None, dataset, truth_dir)
    figs = figure_plan(results)
    os.makedirs(out_dir, exist_ok=True)
    draw(figs, results, out_dir)
    index = os.path.join(out_dir, "index.html")
    write_text(index, page(paper(Doc(results, figs, commands, _author(author), out_dir))))
    echo(f"Report: {index}")
    return index


def report_dir(results_dir: str, dataset: str | None = None) -> str:
    """Where a page goes by default: `results_dir/report`, or `results_dir/report-NAME` for a dataset asked for
    by name other than CIFAR-10, so that one folder's datasets never overwrite each other's page."""
    return os.path.join(results_dir, "report" if dataset in (None, DEFAULT_DATASET) else f"report-{dataset}")


def _author(explicit: str | None) -> str:
    """`explicit`, else git's user.name, else "backbone-bench"."""
    if explicit:
        return explicit
    try:
        name = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True, timeout=10,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    return name or "backbone-bench"
