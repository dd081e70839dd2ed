"""The persistent worker (`WorkerPool`): jobs share a process until it is recycled, and failures stay contained."""

import os
import signal
import socket
import subprocess
import sys

import pytest

from backbones import WeightsSource
from benchmark.core.data import SplitRecipe, splits_fingerprint
from benchmark.core.features import BackboneJob
from benchmark.run.executor import JobFailed, WorkerPool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _job(data_dir: str, cache: str, name: str = "MobileNetV3Small", img_size: int = 32, fingerprint: str = "") -> dict:
    """A timing-only job on a few tiny images, with the matmul peak given (the worker would measure it)."""
    recipe = SplitRecipe(n_val_holdout=100, n_train=100, n_val=50, n_test=50, data_dir=data_dir)
    return BackboneJob(name, img_size, WeightsSource("random"), splits=("timing",), data=recipe, cache_dir=cache,
                       data_fingerprint=fingerprint,
                       n_time_images=8, batch_size=8, time_budget_s=1.0, matmul_peak_gflops=100.0,
                       peak_host=socket.gethostname(), label=f"{name} @{img_size}px").as_dict()


@pytest.fixture
def pool():
    lines = []
    made = []

    def make(**kwargs):
        made.append(WorkerPool(echo=lines.append, **kwargs))
        made[-1].lines = lines
        return made[-1]

    yield make
    for each in made:
        each.close()


def test_jobs_share_a_worker_until_it_is_recycled(pool, tiny_cifar_dir, tmp_path):
    workers = pool(max_jobs=2)
    names = ("MobileNetV3Small", "MobileNet", "MobileNetV2")
    recipe = SplitRecipe(n_val_holdout=100, n_train=100, n_val=50, n_test=50, data_dir=tiny_cifar_dir)
    planned = splits_fingerprint(recipe.make())
    reports = [workers.run(_job(tiny_cifar_dir, str(tmp_path), name, fingerprint=planned)) for name in names]
    assert [r["worker_job"] for r in reports] == [1, 2, 1] and workers.starts == 2
    # the start-up is the phase of the job that started the worker, and only of that one
    assert [("worker_start" in r["phases"]) for r in reports] == [True, False, True]
    for report in reports:
        assert report["ok"] and report["phases"]["forward"] > 0 and report["phases"]["build"] > 0
        assert report["timing"]["images_timed"] > 0 and report["rss_mb"] > 0 and report["peak_rss_mb"] > 0
    # the second job in a worker reuses the images the first one loaded and checked
    assert reports[1]["phases"]["worker_data"] < reports[0]["phases"]["worker_data"]
    assert workers.process is not None  # the third job's worker waits for more
    workers.close()
    assert workers.process is None


def test_a_worker_above_its_rss_bound_is_recycled(pool, tiny_cifar_dir, tmp_path):
    workers = pool(max_jobs=10, max_rss_mb=1)
    reports = [workers.run(_job(tiny_cifar_dir, str(tmp_path), name)) for name in ("MobileNetV3Small", "MobileNet")]
    assert [r["worker_job"] for r in reports] == [1, 1] and workers.starts == 2 and workers.process is None


def test_a_failure_in_a_reused_worker_is_retried_once_in_a_fresh_one(pool, tiny_cifar_dir, tmp_path):
    workers = pool(max_jobs=5)
    workers.run(_job(tiny_cifar_dir, str(tmp_path)))
    with pytest.raises(JobFailed, match="MobileNet @8px") as failed:  # below its smallest input size, every time
        workers.run(_job(tiny_cifar_dir, str(tmp_path), "MobileNet", 8))
    assert failed.value.error_type == "ValueError"
    assert workers.starts == 2 and workers.process is None  # retried in a fresh worker, which was then dropped
    assert any("retrying once in a fresh worker" in line for line in workers.lines)
    assert workers.run(_job(tiny_cifar_dir, str(tmp_path)))["worker_job"] == 1 and workers.starts == 3

    fresh = pool(max_jobs=5)  # a fresh worker's failure is final: no retry
    with pytest.raises(JobFailed):
        fresh.run(_job(tiny_cifar_dir, str(tmp_path), "MobileNet", 8))
    assert fresh.starts == 1


def test_a_worker_killed_between_jobs_is_replaced(pool, tiny_cifar_dir, tmp_path):
    workers = pool(max_jobs=5)
    workers.run(_job(tiny_cifar_dir, str(tmp_path)))
    os.kill(workers.process.pid, signal.SIGKILL)  # as the kernel's out-of-memory killer does
    report = workers.run(_job(tiny_cifar_dir, str(tmp_path), "MobileNet"))
    assert report["ok"] and report["worker_job"] == 1 and workers.starts == 2
    assert any("out-of-memory killer" in line and "retrying once" in line for line in workers.lines)


@pytest.mark.parametrize("code, says", [(-9, "out-of-memory killer"), (-11, "signal SIGSEGV"), (3, "exit code 3")])
def test_a_worker_that_dies_without_a_report_is_named_with_advice(code, says, monkeypatch, tmp_path):
    """A worker killed for memory once got "rerun with --no-isolate", which would kill the runner instead."""
    die = f"os.kill(os.getpid(), {-code})" if code < 0 else f"sys.exit({code})"
    monkeypatch.setattr(WorkerPool, "command", staticmethod(
        lambda fd: [sys.executable, "-c", f"import os, sys; {die}"]))
    workers = WorkerPool()
    with pytest.raises(JobFailed, match=says) as failed:
        workers.run(_job(str(tmp_path), str(tmp_path)))
    assert "Rerun with --no-isolate" not in str(failed.value) and workers.process is None


def test_the_worker_refuses_other_arguments():
    done = subprocess.run([sys.executable, "-m", "benchmark.run.worker", "{}", "report.json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "usage: python -m benchmark.run.worker --serve REPLY_FD" in done.stderr


def test_the_sweep_says_where_its_time_went(tiny_cifar_dir, tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmark", "--backbones", "MobileNetV3Small", "MobileNet",
                           "--time-only", "--sizes", "32", "--time-images", "8", "--batch-size", "8",
                           "--data-dir", tiny_cifar_dir, "--val-holdout", "100", "--train-size", "100",
                           "--val-size", "50", "--test-size", "50", "--worker-jobs", "2", "--no-report",
                           "--out", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "BACKBONE_BENCH_MATMUL_PEAK": "100"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Where the time went" in done.stdout and "timed forward passes" in done.stdout
    for phase in ("prepare", "worker_start", "build", "warmup", "forward", "write_results", "unaccounted"):
        assert f"  {phase} " in done.stdout, (phase, done.stdout[-3000:])
