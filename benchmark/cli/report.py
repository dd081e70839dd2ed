"""`python -m report [--results DIR] [--out DIR]`: build the HTML report from benchmark results."""

from __future__ import annotations

import argparse
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m report",
        description="Build the comparison figures and the self-contained HTML report (with the journal-style "
                    "write-up) from the benchmark's results.csv and environment.json.")
    parser.add_argument("--results", default="results", help="folder with results.csv (default: results)")
    parser.add_argument("--out", help="where index.html goes (default: RESULTS/report, where `python -m benchmark` "
                                      "puts it too)")
    parser.add_argument("--author", help="the paper's author line (default: git config user.name, else "
                                         "'backbone-bench')")
    return parser


def out_dir(args: argparse.Namespace) -> str:
    """Where the page goes: --out, else RESULTS/report."""
    return args.out or os.path.join(args.results, "report")


def command_line(results: str, out: str) -> str:
    """The shortest `python -m report` command that builds the page from `results` into `out`."""
    from .commands import parse, shortest

    parser = build_parser()

    def outcome(tokens: list[str]):
        args = parse(parser, tokens)
        return None if args is None else (args.results, out_dir(args))

    return shortest(parser.prog, [([], ["--results", results]), ([], ["--out", out])], outcome)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from benchmark.core.results import ResultsSchemaError
    from report import build_report

    from .commands import for_report

    try:
        build_report(args.results, out_dir(args), author=args.author, commands=for_report())
    except (FileNotFoundError, ResultsSchemaError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
