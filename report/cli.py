"""`python -m report [--results DIR] [--out DIR]`: build the HTML report from benchmark results."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m report",
        description="Build the comparison figures and the self-contained HTML report (with the journal-style "
                    "write-up) from the benchmark's results.csv and environment.json.")
    parser.add_argument("--results", default="results", help="folder with results.csv (default: results)")
    parser.add_argument("--out", help="where index.html goes (default: RESULTS/report, where `python -m benchmark` "
                                      "puts it too)")
    parser.add_argument("--author", help="the paper's author line (default: git config user.name, else "
                                         "'backbone-bench')")
    args = parser.parse_args(argv)
    from benchmark.core.results import ResultsSchemaError

    from .build import build_report

    try:
        build_report(args.results, args.out or os.path.join(args.results, "report"), author=args.author)
    except (FileNotFoundError, ResultsSchemaError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
