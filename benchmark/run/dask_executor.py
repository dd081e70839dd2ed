"""Jobs on Dask distributed: `--executor dask-local:N`, `dask-local:gpus`, `dask://HOST:PORT`.

Imported only when `--executor` asks for Dask (`pip install -r requirements-dask.txt`).
Each job is plain data (`BackboneJob.as_dict()`); the Dask task runs it in a
`python -m benchmark.run.worker` process on the worker's machine, the same
`WorkerPool` as a local run's: a Dask worker lives for many jobs, and so does
its TensorFlow worker process, recycled after `max_jobs` jobs or above an RSS
bound (Dask workers are daemonic, so they cannot fork through
`multiprocessing`; the pool starts its process with `subprocess`). A task that raises is retried once
(`retries=1`); a task whose worker dies is rerun elsewhere by the scheduler,
and resumes from the finished chunks in the shared cache.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import uuid

import distributed

from ..core.features import BackboneJob
from .executor import WORKER_JOBS, WORKER_MAX_RSS_MB, Executor, JobFailed, WorkerPool

log = logging.getLogger("benchmark")
CONNECT_TIMEOUT_S = 10
LOOPBACK = "127.0.0.1"  # where local clusters listen: an unauthenticated Dask worker runs what it is sent


def visible_gpus(environ=None, list_gpus=None) -> list[str]:
    """The GPUs a `dask-local:gpus` cluster pins one worker to each.

    `CUDA_VISIBLE_DEVICES` when set (indices or UUIDs, comma-separated),
    else the indices `nvidia-smi -L` lists, else none.
    """
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    lines = (list_gpus or _nvidia_smi_list)()
    return [str(i) for i, line in enumerate(lines) if line.startswith("GPU ")]


def _nvidia_smi_list() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return []


def gpu_worker_specs(devices: list[str]) -> dict:
    """SpecCluster worker specs: one single-threaded Nanny per device, its jobs seeing only that device.
    They listen on loopback only, like the LocalCluster path: a Dask worker runs whatever it is sent."""
    return {f"gpu-{device}": {"cls": distributed.Nanny, "options": {"nthreads": 1, "host": LOOPBACK,
                                                                   "env": {"CUDA_VISIBLE_DEVICES": device}}}
            for device in devices}


_pools = threading.local()  # one WorkerPool per thread of a Dask worker: each runs one task at a time
_made: list = []  # every pool this Dask worker made, for close_pools
_made_lock = threading.Lock()


def close_pools() -> int:
    """Ends this Dask worker's TensorFlow worker processes (each pool starts a new one when a job comes);
    `DaskExecutor.close` runs it on every worker, so none holds its memory between runs. Returns how many
    were running."""
    with _made_lock:
        pools = list(_made)
    return sum(pool.close() is not None for pool in pools)


def run_job_task(job: dict, pool: dict) -> dict:
    """The Dask task: one job in this Dask worker thread's worker process.

    Args:
        job: `BackboneJob.as_dict()`.
        pool: the `WorkerPool`'s settings as `DaskExecutor` sends them, `{"max_jobs": N, "max_rss_mb": MB}`.

    Raises:
        RuntimeError: a builtin exception carrying the failure as JSON, so
            that it passes through a scheduler that cannot import this project.
    """
    current = getattr(_pools, "pool", None)
    if current is None or (current.max_jobs, current.max_rss_mb) != (pool["max_jobs"], pool["max_rss_mb"]):
        if current is not None:
            current.close()
        # no retry of its own: the task's `retries=1` reruns it, and a failure has dropped the old worker
        current = _pools.pool = WorkerPool(pool["max_jobs"], pool["max_rss_mb"], retry=False)
        with _made_lock:
            _made.append(current)
    try:
        return current.run(job)
    except JobFailed as err:
        raise RuntimeError(json.dumps({"message": str(err), "error_type": err.error_type,
                                       "host": err.host or socket.gethostname()})) from None


# What the scheduler receives for each job: a builtin (`eval`), this constant
# expression and the job's dict. The scheduler unpickles task graphs, so a task
# made only of plain data runs on a scheduler without this project installed;
# the workers import it.
TASK = "__import__('benchmark.run.dask_executor', fromlist=['run_job_task']).run_job_task(job, pool)"
CLOSE = "__import__('benchmark.run.dask_executor', fromlist=['close_pools']).close_pools()"


class TaskFuture:
    """A `distributed.Future` whose `result()` raises `JobFailed` for a failed job (a `JobFuture`)."""

    def __init__(self, future):
        self.future = future

    def done(self) -> bool:
        return self.future.done()

    def result(self, timeout=None):
        """The report; TimeoutError while the job runs; JobFailed for anything else that went wrong."""
        try:
            return self.future.result(timeout=timeout)
        except (TimeoutError, asyncio.TimeoutError):  # the same class only from Python 3.11 on
            raise TimeoutError from None
        except Exception as err:  # a job's failure, or Dask's own: KilledWorker, a worker without the project, ...
            try:
                failure = json.loads(str(err))
                failure["message"]
            except (ValueError, TypeError, KeyError):
                raise JobFailed(f"{type(err).__name__}: {err}", type(err).__name__) from None
            raise JobFailed(failure["message"], failure.get("error_type", ""), failure.get("host")) from None


class DaskExecutor(Executor):
    """`submit(job)` -> a `TaskFuture` (wrapping a `distributed.Future`) of the worker's report.

    Args:
        address: a running scheduler (`tcp://HOST:PORT`, `tls://...`); None
            starts a local cluster on 127.0.0.1.
        n_workers: the local cluster's workers (one thread each).
        gpus: a local cluster of one worker per visible GPU, each pinned with
            `CUDA_VISIBLE_DEVICES`.
        max_jobs, max_rss_mb: when each Dask worker's TensorFlow process is recycled (`WorkerPool`).

    Raises:
        ConnectionError: naming the address when no scheduler answers within 10 s.
        ValueError: for `gpus=True` on a machine without a visible GPU.
    """

    def __init__(self, address: str | None = None, n_workers: int | None = None, gpus: bool = False,
                 max_jobs: int = WORKER_JOBS, max_rss_mb: float = WORKER_MAX_RSS_MB):
        self.pool = {"max_jobs": max_jobs, "max_rss_mb": max_rss_mb}
        self.cluster = None
        if address is None:
            self.cluster = self._local_cluster(n_workers, gpus)
            address = self.cluster.scheduler_address
        try:
            self.client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as err:
            raise ConnectionError(f"no Dask scheduler answered at {address} within {CONNECT_TIMEOUT_S} s ({err}). "
                                  f"Start one with `dask scheduler`, or check the address and the firewall.") from None
        except (TypeError, ValueError) as err:  # tls:// without certificates: Dask's TypeError names no fix
            if not address.startswith("tls://"):
                raise
            raise ConnectionError(f"{address} is a TLS address, and TLS needs certificates ({type(err).__name__}: "
                                  f"{err}): set distributed.comm.tls.ca-file, .client.cert and .client.key in the "
                                  f"Dask config (or DASK_DISTRIBUTED__COMM__TLS__* variables), or use dask://HOST:PORT "
                                  f"on a trusted network") from None
        self.max_pending = 10**6  # the scheduler queues them; the runner collects in plan order
        self.names: dict[str, str] = {}

    @staticmethod
    def _local_cluster(n_workers, gpus):
        # Without a dashboard the scheduler still serves /health on its dashboard address: a free loopback port,
        # not 8787 (another cluster's, or every interface's when it is given as ':8787').
        common = {"scheduler_kwargs": {"host": LOOPBACK, "dashboard": False, "dashboard_address": f"{LOOPBACK}:0"}}
        if gpus:
            devices = visible_gpus()
            if not devices:
                raise ValueError("--executor dask-local:gpus found no GPU (CUDA_VISIBLE_DEVICES is unset and "
                                 "nvidia-smi lists none); use dask-local:N")
            scheduler = {"cls": distributed.Scheduler, "options": common["scheduler_kwargs"]}
            return distributed.SpecCluster(workers=gpu_worker_specs(devices), scheduler=scheduler)
        return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                        host=LOOPBACK, dashboard_address=None,
                                        scheduler_kwargs={"dashboard_address": f"{LOOPBACK}:0"})

    def submit(self, job: BackboneJob) -> TaskFuture:
        key = f"extract {job.backbone} @{job.img_size}px {uuid.uuid4().hex[:8]}"
        self.names[key] = f"{job.backbone} @{job.img_size}px"
        task = {"job": job.as_dict(), "pool": self.pool}
        return TaskFuture(self.client.submit(eval, TASK, task, key=key, pure=False, retries=1))

    def status(self) -> str:
        """Which worker runs what, for the progress line."""
        running = [f"{self.names.get(k, k)} on {worker}" for worker, keys in self.client.processing().items()
                   for k in keys]
        return "; ".join(running) if running else "nothing running"

    def workers(self) -> list[str]:
        return sorted(self.client.scheduler_info()["workers"])

    def cancel(self, futures) -> None:
        """Cancels the jobs of `futures` on the scheduler: queued ones never start."""
        self.client.cancel([f.future for f in futures if isinstance(f, TaskFuture)])

    def close(self) -> None:
        """Ends the workers' TensorFlow processes, closes the client, and the local cluster when this executor
        started one."""
        try:
            self.client.run(eval, CLOSE)
        except Exception as err:  # a worker that went away, or one without the project: its processes end with it
            log.warning("could not end the Dask workers' job processes: %s: %s", type(err).__name__, err)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


__all__ = ["DaskExecutor", "JobFailed", "TASK", "TaskFuture", "gpu_worker_specs", "run_job_task", "visible_gpus"]
