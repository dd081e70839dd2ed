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
import time
from abc import ABC, abstractmethod
from concurrent.futures import Future
from typing import Protocol

from ..core.data import Split
from ..core.features import BackboneJob, WeightsUnavailable
from ..core.room import NoRoom
from .config import WORKER_JOBS, WORKER_MAX_RSS_MB
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


# Failures that a fresh process would only repeat: the data, the disk room, a download, a missing file.
FINAL_ERRORS = frozenset({"DataError", "NoRoom", "WeightsUnavailable", "FileNotFoundError"})


class ProcessExecutor(Executor):
    """Jobs in worker processes of their own, one at a time (the default), through a `WorkerPool`.

    The worker's output goes to this process's stdout and stderr. On Ctrl-C the
    worker (same process group) stops too, its finished chunks stay in the
    cache, and the KeyboardInterrupt goes on to the caller.
    """

    def __init__(self, max_jobs: int = WORKER_JOBS, max_rss_mb: float = WORKER_MAX_RSS_MB, echo=print):
        self.pool = WorkerPool(max_jobs, max_rss_mb, echo)

    def submit(self, job: BackboneJob) -> Future:
        future: Future = Future()
        try:
            future.set_result(self.pool.run(job.as_dict()))
        except JobFailed as err:
            future.set_exception(err)
        return future

    def close(self) -> None:
        self.pool.close()


class WorkerPool:
    """One worker process (`python -m benchmark.run.worker --serve`), reused for up to `max_jobs` jobs.

    A worker starts when a job needs one, and is recycled (its input closed, so
    it exits) after `max_jobs` jobs, when it holds more than `max_rss_mb` after
    a job, and after any failure. A job that fails in a worker that had run
    other jobs before is retried once in a fresh worker, since what the reused
    process kept may be to blame; a fresh worker's failure is final, as is one
    in `FINAL_ERRORS`. With `retry` False the caller retries instead (Dask's
    own retry then finds a fresh worker, since a failure drops the old one).
    The seconds a worker takes to start are reported as the `worker_start`
    phase of the job that started it.
    """

    def __init__(self, max_jobs: int = WORKER_JOBS, max_rss_mb: float = WORKER_MAX_RSS_MB, echo=print,
                 retry: bool = True):
        if max_jobs < 1:
            raise ValueError(f"a worker runs at least 1 job before it is recycled, not {max_jobs}")
        self.max_jobs, self.max_rss_mb, self.echo, self.retry = max_jobs, max_rss_mb, echo, retry
        self.process: subprocess.Popen | None = None
        self.reply = None
        self.jobs_done = self.jobs_before = 0  # by the current process: in all, and before the current job
        self.starts = 0  # processes started so far

    def run(self, job: dict) -> dict:
        """The report of `job` (`BackboneJob.as_dict()`).

        Raises:
            JobFailed: with the worker's error, or its exit code when it wrote no report.
        """
        reused = self.process is not None
        try:
            return self._run(job)
        except JobFailed as err:
            if not (self.retry and reused) or err.error_type in FINAL_ERRORS:
                raise
            self.echo(f"{_what(job)}: failed in a worker that had run {self.jobs_before} other jobs "
                      f"({str(err).strip().splitlines()[-1]}); retrying once in a fresh worker")
            return self._run(job)

    def _run(self, job: dict) -> dict:
        started_s = self._start() if self.process is None else 0.0
        self.jobs_before = self.jobs_done
        try:
            self.process.stdin.write(json.dumps(job) + "\n")
            self.process.stdin.flush()
            line = self.reply.readline()
        except BrokenPipeError:  # it died between jobs
            line = ""
        except BaseException:  # Ctrl-C: the worker got it too
            self.close(kill=True)
            raise
        report = _parse(line)
        if report is None:
            code = self.close(kill=True)
            raise JobFailed(f"extracting {_what(job)} failed in its worker process: {exit_reason(code)}", "",
                            socket.gethostname())
        self.jobs_done += 1
        if not report.get("ok"):
            self.close()
            raise JobFailed(f"extracting {_what(job)} failed on {report.get('host')}: {report.get('error')}",
                            report.get("error_type", ""), report.get("host"))
        if started_s:
            report["phases"] = {**report.get("phases", {}), "worker_start": round(started_s, 3)}
        report["worker_job"] = self.jobs_done  # 1: the job ran in a fresh process
        if self.jobs_done >= self.max_jobs or (report.get("rss_mb") or 0) > self.max_rss_mb:
            self.close()
        return report

    def _start(self) -> float:
        """Starts a worker and waits until it has imported TensorFlow; returns the seconds that took."""
        t0 = time.perf_counter()
        read_end, write_end = os.pipe()
        try:
            self.process = subprocess.Popen(self.command(write_end), stdin=subprocess.PIPE, pass_fds=(write_end,),
                                            env=_worker_env(), text=True)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self.reply = os.fdopen(read_end)
        self.starts += 1
        self.jobs_done = 0
        try:
            ready = _parse(self.reply.readline())
        except BaseException:
            self.close(kill=True)
            raise
        if not (ready or {}).get("ready"):
            code = self.close(kill=True)
            raise JobFailed(f"a worker process did not start: {exit_reason(code)}", "", socket.gethostname())
        return time.perf_counter() - t0

    @staticmethod
    def command(reply_fd: int) -> list[str]:
        return [sys.executable, "-m", "benchmark.run.worker", "--serve", str(reply_fd)]

    def close(self, kill: bool = False) -> int | None:
        """Ends the worker, if any: its input closed (it exits after its job), or terminated with `kill`.
        Returns its exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        try:
            if kill:
                process.terminate()
            process.stdin.close()
        except OSError:
            pass
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        finally:
            if self.reply is not None:
                self.reply.close()
                self.reply = None
        return code


def _what(job: dict) -> str:
    return f"{job['backbone']} @{job['img_size']}px"


def _parse(line: str) -> dict | None:
    try:
        return json.loads(line) if line.strip() else None
    except ValueError:
        return None


def exit_reason(code: int | None) -> str:
    """What a worker's exit code without a report means, and what to do about it."""
    if code is None:
        return "it was ended while the run was closing its workers (an interrupted run)."
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


def _worker_env() -> dict:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": _PROJECT_ROOT + (os.pathsep + path if path else "")}
