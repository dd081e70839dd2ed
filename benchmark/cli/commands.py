"""Command lines from recorded settings, for the report's Reproduction section.

Each builder writes the most explicit command its record allows, checks with
the program's own parser that it does what the record says, then leaves out
every flag the parser gives the same result without (`shortest`): no default
is copied here. `for_report()` hands the builders to `report.build_report`,
which may not import the command lines.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import shlex
from typing import Callable, Sequence

Alternatives = Sequence[Sequence[str]]  # one flag's forms, shortest first; [] leaves it out


def parse(parser: argparse.ArgumentParser, tokens: list[str]) -> argparse.Namespace | None:
    """`parser`'s namespace for `tokens`, or None where it rejects them (its message swallowed)."""
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            return parser.parse_args(tokens)
        except SystemExit:
            return None


def shortest(prog: str, groups: list[Alternatives], outcome: Callable[[list[str]], object],
             target: object = None) -> str | None:
    """The shortest command `prog ...` whose `outcome` is `target` (default: the most explicit command's).

    Each group lists one flag's alternatives, shortest first ([] leaves the flag out), the most explicit
    last. The most explicit command (every group's last alternative) must reach `target`, else None: the
    record holds a setting no flag gives. Then each group in turn takes its first alternative that keeps the
    outcome. `outcome(tokens)` is what the program would do with the tokens, None where it refuses them.
    """
    chosen = [list(group[-1]) for group in groups]
    explicit = outcome(_flat(chosen))
    target = explicit if target is None else target
    if explicit is None or explicit != target:
        return None
    for i, group in enumerate(groups):
        for alternative in group[:-1]:
            trial = chosen[:i] + [list(alternative)] + chosen[i + 1:]
            if outcome(_flat(trial)) == target:
                chosen[i] = list(alternative)
                break
    return " ".join([prog, shlex.join(_flat(chosen))]).strip()


def _flat(groups: list[list[str]]) -> list[str]:
    return [token for group in groups for token in group]


def _flag(flag: str, *values) -> Alternatives:
    """A flag with values, or left out."""
    return ([], [flag, *(str(v) for v in values)])


# FinalRun's fields with a flag of their own; the folders (results, data, weights, cache) are the reader's.
FINAL_RUN_FLAGS = {"backbone": "--backbone", "img_size": "--size", "output": "--output", "n_train": "--train-size",
                   "n_test": "--test-size", "n_val_holdout": "--val-holdout", "cut": "--cut", "mirror": "--mirror"}
TRAINING_FLAGS = {"hidden": "--hidden", "dropout": "--dropout", "label_smoothing": "--label-smoothing",
                  "epochs": "--epochs", "ft_epochs": "--ft-epochs", "ft_lr": "--ft-lr", "ft_shift": "--ft-shift",
                  "ft_schedule": "--ft-schedule", "ft_precision": "--ft-precision",
                  "train_jpeg": "--train-jpeg",
                  "batch_size": "--batch-size", "chunk_size": "--chunk-size", "seed": "--seed"}
PATH_FIELDS = ("results", "data_dir", "weights_dir", "cache_dir", "recheck")
# What a transfer.json from before a training setting existed ran with: the setting's value before it existed.
BEFORE_IT_EXISTED = {"ft_schedule": "constant", "ft_precision": "fp32", "train_jpeg": None}


def settings_command(settings: dict) -> str | None:
    """The `python 0-transfer.py` command of transfer.json's "settings" (a `FinalRun` as a dict), exact:
    the shortest command whose parsed `FinalRun` equals it, folders aside; None when no command does."""
    from .transfer import build_parser, run_from_args

    training = {**BEFORE_IT_EXISTED, **(settings.get("training") or {})}
    settings = {**settings, "training": training}
    groups = [_flag(flag, settings[key]) if settings.get(key) is not None else ([],)
              for key, flag in FINAL_RUN_FLAGS.items()]
    groups += [_flag(flag, *(training[key] if isinstance(training[key], (list, tuple)) else [training[key]]))
               for key, flag in TRAINING_FLAGS.items() if training.get(key) is not None]
    groups += [([], ["--fine-tune" if settings.get("fine_tune") else "--no-fine-tune"])
               if settings.get("fine_tune") is not None else ([],),
               ([], ["--no-flip"]) if training.get("flip") is False else ([],),
               _flag("--ensemble", *settings["ensemble"]) if settings.get("ensemble") else ([],),
               ([], ["--jpeg-qualities", *map(str, settings.get("jpeg_qualities") or [])])]
    parser = build_parser()

    def outcome(tokens: list[str]):
        args = parse(parser, tokens)
        if args is None:
            return None
        return _comparable(dataclasses.asdict(run_from_args(args)))

    return shortest(parser.prog, groups, outcome, _comparable(settings))


def _comparable(settings: dict) -> dict:
    """A FinalRun dict as flags can say it: folders left out, tuples as lists, the size as text."""
    out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items() if k not in PATH_FIELDS}
    if out.get("training"):
        out["training"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in out["training"].items()}
    out["img_size"] = None if out.get("img_size") is None else str(out["img_size"])
    return out


def transfer_command(record: dict) -> str | None:
    """The `python 0-transfer.py` command that trains transfer.json's model: its backbone, size, regime and
    cut, fine-tuning settings, saved ensemble members, test-time mirroring (on or off, as saved), image
    counts and output file. Settings transfer.json does not record (the seed, the head's units, dropout and
    epochs, the batch and chunk sizes) are the parser's defaults; None for a record without a backbone."""
    from .transfer import build_parser

    if record.get("settings"):
        return settings_command(record["settings"])
    if not record.get("backbone"):
        return None
    ft = record.get("fine_tune_settings") or {}
    if ft:
        ft = {"schedule": BEFORE_IT_EXISTED["ft_schedule"], **ft}
    groups = [
        (["--backbone", record["backbone"]],),
        (["--size", str(record["img_size"])],),
        (["--fine-tune"] if record.get("regime") == "finetune" else ["--no-fine-tune"],),
        _flag("--cut", record["cut"]) if record.get("cut") else ([],),
        *[_flag(flag, ft[key]) for key, flag in (("epochs", "--ft-epochs"), ("learning_rate", "--ft-lr"),
                                                 ("shift", "--ft-shift"), ("schedule", "--ft-schedule"),
                                                 ("label_smoothing", "--label-smoothing"))
          if key in ft],
        ([], ["--no-flip"]) if ft.get("flip") is False else ([],),
        _flag("--ensemble", *record["members"]) if record.get("members") else ([],),
        (["--mirror", "on" if record.get("test_mirroring") else "off"],),
        *[_flag(flag, record[key]) for key, flag in (("n_train", "--train-size"), ("n_val", "--val-holdout"),
                                                     ("n_test", "--test-size"), ("model_file", "--output"))
          if record.get(key) is not None],
    ]
    parser = build_parser()

    def outcome(tokens: list[str]):
        args = parse(parser, tokens)
        return None if args is None else vars(args)

    return shortest(parser.prog, groups, outcome)


def for_report():
    """The command builders `report.build_report` takes (`report.Commands`)."""
    from report import Commands

    from ..transfer.select import FINAL_IMG_SIZE
    from . import bench, report

    return Commands(benchmark=bench.command_line, transfer=transfer_command, report=report.command_line,
                    final_min_size=FINAL_IMG_SIZE)
