"""`python -m report [--results DIR] [--out DIR]`: build the HTML report from benchmark results."""

from __future__ import annotations

import argparse
import errno
import os

from . import exit_code

UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.ENOTDIR, errno.EISDIR}


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
    """Builds the page; a user error (a missing or damaged results file, an unwritable --out) is one line, exit 2."""
    args = build_parser().parse_args(argv)

    def work() -> int:
        from report import build_report

        from ..core.atomic import probe_writable
        from .commands import for_report

        try:
            probe_writable(out_dir(args))  # found now, not after the figures
        except OSError as err:
            raise PermissionError(f"--out folder {out_dir(args)!r} is not writable ({err.strerror or err}); pass "
                                  f"a writable --out") from None
        try:
            build_report(args.results, out_dir(args), author=args.author, commands=for_report())
        except OSError as err:  # e.g. --out on a read-only disk: name the folder and the fix
            if err.errno not in UNWRITABLE:
                raise
            raise PermissionError(f"cannot write the report to {out_dir(args)!r} ({err.strerror or err}); pass "
                                  f"a writable --out") from None
        return 0

    return exit_code(work)
