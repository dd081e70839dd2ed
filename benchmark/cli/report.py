"""`python -m report [--results DIR] [--dataset NAME] [--out DIR]`: build the HTML report from benchmark results."""

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
    parser.add_argument("--dataset", help="which dataset's rows the page covers, when the folder holds several "
                                          "(default: the only one, else cifar10)")
    parser.add_argument("--out", help="where index.html goes (default: RESULTS/report, where `python -m benchmark` "
                                      "puts it too; RESULTS/report-NAME with --dataset NAME other than cifar10)")
    parser.add_argument("--truth", metavar="DIR",
                        help="a results folder of networks fine-tuned on all the training images (python -m "
                             "benchmark --backbones ... --full --regime finetune --out DIR): the page then holds "
                             "each quick ranking against it")
    parser.add_argument("--author", help="the paper's author line (default: git config user.name, else "
                                         "'backbone-bench')")
    return parser


def out_dir(args: argparse.Namespace) -> str:
    """Where the page goes: --out, else RESULTS/report (RESULTS/report-NAME for --dataset NAME, `report_dir`)."""
    from report import report_dir

    return args.out or report_dir(args.results, args.dataset)


def command_line(results: str, out: str, dataset: str | None = None, truth: str | None = None) -> str:
    """The shortest `python -m report` command that builds the page from `results` into `out`, with
    `--dataset dataset` when given (the caller gives it only where the folder's default is another) and
    `--truth truth` when given."""
    from .commands import parse, shortest

    parser = build_parser()

    def outcome(tokens: list[str]):
        args = parse(parser, tokens)
        return None if args is None else (args.results, args.dataset, args.truth, out_dir(args))

    dataset_flag = [([], ["--dataset", dataset])] if dataset else []
    truth_flag = [(["--truth", truth],)] if truth else []
    return shortest(parser.prog, [([], ["--results", results]), *dataset_flag, *truth_flag, ([], ["--out", out])],
                    outcome)


def main(argv=None) -> int:
    """Builds the page; a user error (a missing or damaged results file, a --dataset the folder lacks, an
    unwritable --out) is one line, exit 2."""
    args = build_parser().parse_args(argv)

    def work() -> int:
        from report import build_report
        from report.load import choose_dataset

        from ..core.atomic import probe_writable
        from ..core.results import load_results
        from .commands import for_report

        if args.dataset is not None:  # a name the folder lacks: said before any folder is made
            choose_dataset(args.results, load_results(args.results), args.dataset)
        try:
            probe_writable(out_dir(args))  # found now, not after the figures
        except OSError as err:
            raise PermissionError(f"--out folder {out_dir(args)!r} is not writable ({err.strerror or err}); pass "
                                  f"a writable --out") from None
        try:
            build_report(args.results, out_dir(args), author=args.author, commands=for_report(), dataset=args.dataset,
                         truth_dir=args.truth)
        except OSError as err:  # e.g. --out on a read-only disk: name the folder and the fix
            if err.errno not in UNWRITABLE:
                raise
            raise PermissionError(f"cannot write the report to {out_dir(args)!r} ({err.strerror or err}); pass "
                                  f"a writable --out") from None
        return 0

    return exit_code(work)
