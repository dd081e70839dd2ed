"""Command lines: thin entry points over the library.

* `python -m benchmark` (`bench`): the benchmark sweep;
* `python 0-transfer.py` (`transfer`): the final model;
* `python -m benchmark.epoch_ratio` (`epoch_ratio`): the cached-head measurement.

They share one rule for user errors: one line on stderr, exit code 2.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

import backbones

from ..core.data import DataError
from ..core.results import ResultsSchemaError

# Errors a user can fix from the message alone: no traceback, exit code 2.
USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, ConnectionError, backbones.UnknownBackboneError,
               DataError, ResultsSchemaError)


def start() -> None:
    """Before TensorFlow is imported: quieter C++ logs, and progress lines that reach a redirected log at once."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)


def exit_code(work: Callable[[], int], interrupted: str = "interrupted") -> int:
    """Runs `work`; a user error prints `error: ...` and gives 2, Ctrl-C prints `interrupted` and gives 130."""
    try:
        return work()
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `--list | head`
        return 0
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        return 130
