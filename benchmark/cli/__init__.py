"""Command lines: thin entry points over the library.

* `python -m benchmark` (`bench`): the benchmark sweep;
* `python 0-transfer.py` (`transfer`): the final model;
* `python -m benchmark.epoch_ratio` (`benchmark/epoch_ratio.py`, beside `benchmark/__main__.py`): the cached-head
  measurement.

They share one rule for user errors: one line on stderr, exit code 2.
"""

from __future__ import annotations

import atexit
import errno
import os
import re
import shutil
import subprocess
import sys
from typing import Callable

import backbones

from ..core.data import DataError
from ..core.progress import quiet_framework
from ..core.results import ResultsSchemaError

# Errors a user can fix from the message alone: no traceback, exit code 2.
USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, ConnectionError, backbones.UnknownBackboneError,
               DataError, ResultsSchemaError)


# TensorFlow's C++ start-up lines, printed by every process that imports it (workers included) before its
# log level applies: absl's notice, INFO/WARNING lines, and the CUDA probe's error on a machine without a GPU.
FRAMEWORK_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)"
                             r"|[IW]\d{4} [\d:.]+\s+\d+ \S+\.cc:\d+\]"
                             r"|E\d{4} [\d:.]+\s+\d+ cuda_\w+\.cc:\d+\] failed call to cuInit)")
_filtered = False


def start(verbose: bool = False) -> None:
    """Before TensorFlow is imported: its logs quiet (unless `verbose`), warnings as one
    `warning:` line, and progress lines that reach a redirected log at once."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    quiet_framework(verbose)
    if not verbose:
        filter_stderr()


# The filter runs in a process of its own, in a session of its own (so Ctrl-C does not reach it): it drains
# the pipe to its end, so a hard crash of this process (abort, fatal error) still shows its last words.
_FILTER = ("import re, sys\n"
           "drop = re.compile(sys.argv[1])\n"
           "for line in sys.stdin.buffer:\n"
           "    if not drop.match(line.decode('utf-8', 'replace')):\n"
           "        sys.stderr.buffer.write(line)\n"
           "        sys.stderr.buffer.flush()\n")


def filter_stderr(drop: re.Pattern = FRAMEWORK_NOISE) -> None:
    """Routes this process's file descriptor 2, which its worker processes inherit, through a
    small filter process that drops lines matching `drop`. Once per process, and only when
    nothing else (a test runner's capture) has replaced `sys.stderr`."""
    global _filtered
    if _filtered or sys.stderr is not sys.__stderr__:
        return
    _filtered = True
    sys.stderr.flush()
    try:
        proc = subprocess.Popen([sys.executable, "-c", _FILTER, drop.pattern], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, start_new_session=True)
    except OSError:  # no filter is better than no run
        return
    original = os.dup(2)
    os.dup2(proc.stdin.fileno(), 2)
    proc.stdin.close()

    def restore() -> None:  # at exit: hand fd 2 back; the filter drains what is left and ends
        sys.stderr.flush()
        os.dup2(original, 2)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a straggling child still holds the pipe; it will end with it
            pass

    atexit.register(restore)


DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}  # no space, a file-size limit, a quota


def disk_full(err: OSError) -> str:
    """One line for a write that ran out of room: the file, the reason, the free space there, the fix."""
    folder = os.path.dirname(os.path.abspath(err.filename)) if err.filename else os.getcwd()
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    free = shutil.disk_usage(folder).free / 2**30
    return (f"could not write {err.filename or 'a file'} ({err.strerror}; {free:.1f} GiB free in {folder}). Make "
            f"room, or point --out/--cache-dir at another disk, and rerun: finished work is kept in the cache and "
            f"the results database")


def exit_code(work: Callable[[], int], interrupted: str = "interrupted") -> int:
    """Runs `work`; a user error prints `error: ...` and gives 2, Ctrl-C prints `interrupted` and gives 130."""
    try:
        return work()
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `--list | head`
        return 0
    except OSError as err:
        if err.errno not in DISK_FULL:
            raise
        print(f"error: {disk_full(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        return 130
