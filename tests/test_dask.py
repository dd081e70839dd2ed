"""`--executor` on a real Dask cluster: a scheduler and two workers on 127.0.0.1, started as
the README starts them, running the CLI on tiny data; a worker SIGKILLed mid-job; failures."""

import glob
import os
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

pytest.importorskip("distributed")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Columns that differ between two runs of the same sweep only by where and how fast it ran.
UNSTABLE = ["samples_per_sec", "ms_per_img", "extract_wall_s", "peak_rss_mb", "job_rss_mb", "gflops_per_sec", "matmul_peak_gflops",
            "pct_of_peak", "head_train_s", "from_cache", "host", "logme_ms", "hscore_ms", "knn_acc_ms"]


def _env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1", **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_workers(address: str, n: int) -> None:
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(n, timeout=120)


class Cluster:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1 (no nanny: a killed worker stays dead)."""

    def __init__(self, tmp_path, n_workers: int = 2):
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.log = tmp_path / "dask.log"  # the workers' output, their jobs' included
        logs = open(self.log, "w")
        # The scheduler runs in another folder and without the project on its path: jobs are plain data.
        self.scheduler = subprocess.Popen(
            ["dask", "scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1], "--no-dashboard",
             "--dashboard-address", "127.0.0.1:0"],  # its /health server: not 0.0.0.0:8787
            cwd=str(tmp_path), stdout=logs, stderr=logs, env=_env())
        self.workers = [subprocess.Popen(
            ["dask", "worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
             "--dashboard-address", "127.0.0.1:0"],
            cwd=str(tmp_path), stdout=logs, stderr=logs, env=_env(PYTHONPATH=ROOT)) for _ in range(n_workers)]
        _wait_for_workers(self.address, n_workers)

    def close(self):
        for proc in [*self.workers, self.scheduler]:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("dask"))
    yield c
    c.close()


@pytest.fixture(scope="module")
def fake_weights(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("weights")
    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg") \
        .save_weights(str(folder / "MobileNetV2_notop_imagenet.weights.h5"))
    (folder / "MobileNet_notop_imagenet.weights.h5").write_bytes(b"not an h5 file")  # a job that raises
    return str(folder)


def _cli(data_dir, weights, tmp_path, name, *extra, backbones=("MobileNetV2", "MobileNetV3Small"), sizes=("32",)):
    cmd = [sys.executable, "-m", "benchmark", "--backbones", *backbones, "--sizes", *sizes, "--data-dir", data_dir,
           "--weights-dir", weights, "--val-holdout", "100", "--train-size", "200", "--val-size", "50",
           "--test-size", "100", "--time-images", "16", "--batch-size", "16", "--cache-dir", str(tmp_path / f"c-{name}"),
           "--out", str(tmp_path / name), "--no-report", *extra]
    return cmd


def _run(cmd):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=600)


def _stable(out_dir):
    return pd.read_csv(os.path.join(out_dir, "results.csv")).drop(columns=UNSTABLE)


def test_dask_cluster_gives_the_local_table(cluster, tiny_cifar_dir, fake_weights, tmp_path):
    local = _run(_cli(tiny_cifar_dir, fake_weights, tmp_path, "local"))
    assert local.returncode == 0, local.stderr
    dask = _run(_cli(tiny_cifar_dir, fake_weights, tmp_path, "dask", "--executor", cluster.address))
    assert dask.returncode == 0, dask.stderr
    assert "Dask: 2 workers" in dask.stdout
    pd.testing.assert_frame_equal(_stable(tmp_path / "local"), _stable(tmp_path / "dask"))
    rows = pd.read_csv(tmp_path / "dask" / "results.csv")
    assert rows["host"].notna().all() and rows["device"].notna().all() and rows["matmul_peak_gflops"].gt(0).all()
    # the Dask workers live on, but the run ended their TensorFlow job processes (they held GBs between runs)
    import psutil

    left = [child.cmdline() for worker in cluster.workers for child in psutil.Process(worker.pid).children(True)
            if "benchmark.run.worker" in " ".join(child.cmdline())]
    assert not left, left
    assert "hosts" in open(tmp_path / "dask" / "environment.json").read()


def _trust_weights(fake_weights, cache_dir, name="MobileNet"):
    """A cached 'fits' verdict for the garbage file, so the up-front check passes and the job itself raises."""
    import backbones

    from benchmark.core.keys import weights_parts
    from benchmark.core.store import Store

    sha = backbones.sha256_file(os.path.join(fake_weights, f"{name}_notop_imagenet.weights.h5"))
    Store(str(cache_dir)).write("weights", weights_parts(name, sha), {"fits": True})


def test_a_job_that_raises_is_retried_then_reported_and_the_sweep_goes_on(cluster, tiny_cifar_dir, fake_weights,
                                                                           tmp_path):
    errors_before = cluster.log.read_text().count("worker error")
    for name, extra in (("local", []), ("dask", ["--executor", cluster.address])):
        _trust_weights(fake_weights, tmp_path / f"c-{name}")
        done = _run(_cli(tiny_cifar_dir, fake_weights, tmp_path, name, *extra,
                         backbones=("MobileNet", "MobileNetV3Small")))
        assert done.returncode == 1, done.stderr
        assert "failed: MobileNet @32px" in done.stderr and "rerun the same command" in done.stderr
        assert "Traceback" not in done.stderr.split("failed: MobileNet")[-1]
        frame = pd.read_csv(tmp_path / name / "results.csv")
        assert list(frame["model"]) == ["MobileNetV3Small"]  # the other job went on
    assert cluster.log.read_text().count("worker error") - errors_before == 2  # Dask ran the failing job twice


def test_unreachable_scheduler_is_a_clear_error(tiny_cifar_dir, fake_weights, tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    t0 = time.perf_counter()
    done = _run(_cli(tiny_cifar_dir, fake_weights, tmp_path, "none", "--executor", address))
    assert done.returncode == 2 and address in done.stderr and "Traceback" not in done.stderr
    assert time.perf_counter() - t0 < 60  # 10 s to connect, plus start-up


def test_bad_executor_value(tiny_cifar_dir, fake_weights, tmp_path):
    done = _run(_cli(tiny_cifar_dir, fake_weights, tmp_path, "bad", "--executor", "dask-local:zero"))
    assert done.returncode == 2 and "dask-local:N" in done.stderr


def test_dask_local(tiny_cifar_dir, fake_weights, tmp_path):
    done = _run(_cli(tiny_cifar_dir, fake_weights, tmp_path, "dl", "--executor", "dask-local:2",
                     backbones=("MobileNetV3Small",), sizes=("32", "40")))
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(tmp_path / "dl" / "results.csv")
    assert list(frame["img_size"]) == [32, 40] and frame["samples_per_sec"].gt(0).all()


@pytest.mark.slow
def test_worker_killed_mid_job_the_sweep_completes(tiny_cifar_dir, fake_weights, tmp_path):
    own = Cluster(tmp_path, n_workers=2)
    try:
        cmd = _cli(tiny_cifar_dir, fake_weights, tmp_path, "killed", "--executor", own.address, "--chunk-size", "16",
                   "--heads", "linear", backbones=("MobileNetV2",), sizes=("160",))
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        chunks = str(tmp_path / "c-killed" / "features" / "MobileNetV2" / "*.partial" / "chunk-*.json")
        deadline = time.time() + 300
        while len(glob.glob(chunks)) < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        job = _job_process({worker.pid for worker in own.workers})
        assert job is not None, "no worker process found running the job"
        victim = _parent(job)
        os.kill(victim, signal.SIGKILL)  # the Dask worker; its job process dies with it
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
        # the rerun on the other worker picked up the finished chunks (worker output goes to the workers' log)
        assert "resumed" in (tmp_path / "dask.log").read_text()
        clean = _run(_cli(tiny_cifar_dir, fake_weights, tmp_path, "clean", "--chunk-size", "16", "--heads", "linear",
                          backbones=("MobileNetV2",), sizes=("160",)))
        assert clean.returncode == 0, clean.stderr
        cols = ["model", "img_size", "head", "train_size", "val_acc", "test_acc"]
        a = pd.read_csv(tmp_path / "killed" / "results.csv")[cols]
        b = pd.read_csv(tmp_path / "clean" / "results.csv")[cols]
        pd.testing.assert_frame_equal(a, b, atol=1e-3)
    finally:
        own.close()


def _job_process(parents: set[int]) -> int | None:
    """A job process started by one of `parents` (this test's Dask workers), never another run's on the machine."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
                if b"benchmark.run.worker" in cmdline and _parent(int(pid)) in parents:
                    return int(pid)
            except OSError:  # gone meanwhile
                continue
    return None


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_gpu_pinning_one_worker_per_device():
    from benchmark.run.dask_executor import gpu_worker_specs, visible_gpus

    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,2"}) == ["0", "2"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == [] and visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []
    smi = ["GPU 0: NVIDIA H100 (UUID: GPU-a)", "GPU 1: NVIDIA H100 (UUID: GPU-b)"]
    assert visible_gpus({}, list_gpus=lambda: smi) == ["0", "1"]
    assert visible_gpus({}, list_gpus=lambda: []) == []
    specs = gpu_worker_specs(["0", "2"])
    assert [s["options"]["env"]["CUDA_VISIBLE_DEVICES"] for s in specs.values()] == ["0", "2"]
    assert all(s["options"]["nthreads"] == 1 for s in specs.values())


def test_plan_packs_longest_first():
    from benchmark.run.plan import FULL_IMAGES, estimate_sweep

    frame = pd.DataFrame([{"model": "MobileNet", "img_size": 112, "samples_per_sec": 400.0},
                          {"model": "Xception", "img_size": 299, "samples_per_sec": 10.0},
                          {"model": "VGG16", "img_size": 224, "samples_per_sec": 20.0}])
    jobs, makespan, unmeasured = estimate_sweep(frame, n_workers=2, startup_s=0)
    est = {j["model"]: j["est_s"] for j in jobs}
    assert est["MobileNet"] == pytest.approx(FULL_IMAGES / 100.0)  # 112 -> 224 px: a quarter of the rate
    assert makespan == pytest.approx(FULL_IMAGES / 10.0)  # Xception alone on one worker; the rest on the other
    assert {j["worker"] for j in jobs if j["model"] != "Xception"} != {j["worker"] for j in jobs
                                                                       if j["model"] == "Xception"}
    assert len(unmeasured) == 37


def _listening(pids: set[int]) -> list[str]:
    import psutil

    return [f"{c.laddr.ip}:{c.laddr.port}" for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids]


@pytest.mark.parametrize("gpus", [False, True], ids=["dask-local:2", "dask-local:gpus"])
def test_local_clusters_listen_on_loopback_only(gpus, monkeypatch):
    """Fault: a Dask worker runs what it is sent, so our local clusters must not listen beyond 127.0.0.1
    (dask-local:gpus once gave its Nanny processes no host)."""
    import psutil

    from benchmark.run import dask_executor

    monkeypatch.setattr(dask_executor, "visible_gpus", lambda: ["0"])  # one 'GPU' worker, pinned, on a CPU
    me = psutil.Process()

    def ours():  # this process and its children: the earlier tests' clusters among them
        return {me.pid, *(child.pid for child in me.children(recursive=True))}

    before = set(_listening(ours()))
    executor = dask_executor.DaskExecutor(n_workers=None if gpus else 2, gpus=gpus)
    try:
        addresses = [a for a in _listening(ours()) if a not in before]  # only what this executor opened
        assert addresses and all(a.startswith("127.0.0.1:") for a in addresses), addresses
        assert not any(a.endswith(":8787") for a in addresses), addresses  # never contends for the usual port
        assert len(executor.workers()) == (1 if gpus else 2)
    finally:
        executor.close()


def test_tls_without_certificates_is_one_line():
    from benchmark.run.dask_executor import DaskExecutor

    with pytest.raises(ConnectionError, match="TLS needs certificates"):
        DaskExecutor("tls://127.0.0.1:1")
