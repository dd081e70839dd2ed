"""Executors: where an `BackboneJob` runs. The interface is `Executor`: `submit(job)`
returns a future of the worker's report (`JobFuture`); `max_pending`, `status`,
`cancel` and `close` have defaults that fit an executor which finishes each job
inside `submit`. Another engine (a cluster scheduler) needs only an adapter of
its own: `ProcessExecutor` and `InlineExecutor` here, `DaskExecutor` in
`dask_executor`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from abc import ABC, abstractmethod
from concurrent.futures import Future
from typing import Protocol

from ..core.data import Split
from ..core.features import BackboneJob, WeightsUnavailable
from ..core.room import NoRoom
from .worker import run_job

# The folder that holds the `benchmark` package, so a worker imports the same code from any working folder.
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class JobFailed(RuntimeError):
    """A job's worker failed; `error_type` names the worker's exception class."""

    def __init__(self, message: str, error_type: str = "", host: str | None = None):
        super().__init__(message)
        self.error_type, self.host = error_type, host

    def __reduce__(self):  # survives the trip from a Dask worker with its fields
        return type(self), (str(self), self.error_type, self.host)


def is_download_failure(err: BaseException) -> bool:
    """True for a failed ImageNet download, raised in this process or reported by a worker."""
    return isinstance(err, WeightsUnavailable) or getattr(err, "error_type", "") == WeightsUnavailable.__name__


class JobFuture(Protocol):
    """What `Executor.submit` returns: a `concurrent.futures.Future`, or an adapter with the same two methods."""

    def done(self) -> bool:
        """True once the job has finished, well or not."""

    def result(self, timeout: float | None = None) -> dict:
        """The worker's report; raises TimeoutError while the job still runs after `timeout` seconds, and the
        job's failure (`JobFailed`, or the exception itself in process) when it failed."""


class Executor(ABC):
    """Where the runner sends its jobs: everything the runner calls on an executor.

    Only `submit` has no default. The defaults fit an executor that runs each
    job to its end inside `submit`: one job in flight, nothing to report or
    cancel while waiting, nothing to release.
    """

    max_pending: int = 1
    """Jobs the runner may have submitted and not yet collected (its submit-ahead window)."""

    @abstractmethod
    def submit(self, job: BackboneJob) -> JobFuture:
        """Starts `job` (or runs it to its end) and returns the future of the worker's report."""

    def status(self) -> str:
        """One line on the jobs in flight, for the runner's progress line while it waits on a future."""
        return "waiting for the job"

    def cancel(self, futures: list[JobFuture]) -> None:
        """Drops submitted jobs that have not started (on Ctrl-C); by default there are none."""

    def close(self) -> None:
        """Releases what the executor holds (a cluster, a client); called once by the runner that made it."""


class InlineExecutor(Executor):
    """Runs each job in this process, on the images the runner already holds (`--no-isolate`)."""

    def __init__(self, splits: dict[str, Split], echo=print):
        self.splits, self.echo = splits, echo

    def submit(self, job: BackboneJob) -> Future:
        future: Future = Future()
        try:
            future.set_result(run_job(job, self.splits, self.echo))
        except NoRoom as err:  # this job only, as from a worker process: the sweep goes on
            future.set_exception(JobFailed(str(err), "NoRoom", socket.gethostname()))
        except Exception as err:
            future.set_exception(err)
        return future


class ProcessExecutor(Executor):
    """One fresh `python -m benchmark.run.worker` process per job, one at a time (the default).

    The worker's output goes to this process's stdout and stderr. On Ctrl-C the
    worker (same process group) stops too, its finished chunks stay in the
    cache, and the KeyboardInterrupt goes on to the caller.
    """

    def submit(self, job: BackboneJob) -> Future:
        future: Future = Future()
        try:
            future.set_result(run_in_subprocess(job.as_dict()))
        except JobFailed as err:
            future.set_exception(err)
        return future


def run_in_subprocess(job: dict) -> dict:
    """Runs the job (`BackboneJob.as_dict()`) in a fresh worker process here and returns its report.

    Raises:
        JobFailed: with the worker's error, or its exit code when it wrote no report.
    """
    with tempfile.TemporaryDirectory(prefix="bench-job-") as tmp:
        report_path = os.path.join(tmp, "report.json")
        code = _wait(subprocess.Popen([sys.executable, "-m", "benchmark.run.worker", json.dumps(job), report_path],
                                      env=_worker_env()))
        report = _read(report_path)
    what = f"{job['backbone']} @{job['img_size']}px"
    if report is not None and report.get("ok"):
        return report
    if report is not None:
        raise JobFailed(f"extracting {what} failed on {report.get('host')}: {report.get('error')}",
                        report.get("error_type", ""), report.get("host"))
    raise JobFailed(f"extracting {what} failed in its worker process: {exit_reason(code)}", "",
                    socket.gethostname())


def exit_reason(code: int) -> str:
    """What a worker's exit code without a report means, and what to do about it."""
    if code == -signal.SIGKILL:
        return ("it was killed (SIGKILL), most likely by the kernel's out-of-memory killer: the job needed more "
                "memory than was free. Close other programs, or give it fewer images (--train-size) or a smaller "
                "--sizes; --no-isolate would not help, it would put this process at the same risk.")
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return (f"it was killed by signal {name}; its output is above. Rerun the same "
                f"command to retry it (finished jobs are kept).")
    return (f"exit code {code}, and its output is above. Rerun the same command to retry it (finished jobs are kept); "
            f"-v shows TensorFlow's own log lines.")


def _wait(process: subprocess.Popen) -> int:
    try:
        return process.wait()
    except BaseException:
        process.terminate()
        process.wait()
        raise


def _read(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _worker_env() -> dict:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": _PROJECT_ROOT + (os.pathsep + path if path else "")}
