"""A run killed with SIGKILL mid-extraction resumes from its finished chunks and ends with the same table."""

import glob
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fake_weights(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("weights")
    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg") \
        .save_weights(str(folder / "MobileNetV2_notop_imagenet.weights.h5"))
    return str(folder)


def _cmd(data_dir, weights, cache, out):
    return [sys.executable, "-m", "benchmark", "--backbones", "MobileNetV2", "--sizes", "96", "--data-dir", data_dir,
            "--weights-dir", weights, "--val-holdout", "100", "--train-size", "300", "--val-size", "50",
            "--test-size", "100", "--chunk-size", "16", "--batch-size", "16", "--heads", "linear",
            "--cache-dir", cache, "--out", out]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def test_sigkill_then_resume(tiny_cifar_dir, fake_weights, tmp_path):
    cache, out = str(tmp_path / "cache"), str(tmp_path / "out")
    proc = subprocess.Popen(_cmd(tiny_cifar_dir, fake_weights, cache, out), cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks = os.path.join(cache, "features", "MobileNetV2", "*.partial", "chunk-*.json")
    deadline = time.time() + 300
    while len(glob.glob(chunks)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(glob.glob(chunks)) >= 3, "the run ended before the chosen kill point"
    # nothing the kill left behind passes for a finished entry
    assert not glob.glob(os.path.join(cache, "features", "MobileNetV2", "*.npz"))

    done = subprocess.run(_cmd(tiny_cifar_dir, fake_weights, cache, out), cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "resumed" in done.stdout and "finished chunks" in done.stdout

    clean_out = str(tmp_path / "clean")
    clean = subprocess.run(_cmd(tiny_cifar_dir, fake_weights, str(tmp_path / "cache2"), clean_out), cwd=ROOT,
                           env=_env(), capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr
    a, b = pd.read_csv(os.path.join(out, "results.csv")), pd.read_csv(os.path.join(clean_out, "results.csv"))
    cols = ["model", "img_size", "head", "train_size", "val_acc", "test_acc"]
    pd.testing.assert_frame_equal(a[cols], b[cols], atol=1e-3)
