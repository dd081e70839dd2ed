"""Shared fixtures: tiny synthetic data, and the real assets in ../shared/assets."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The fp32 matmul peak, given instead of measured: the measurement costs about 10 s of both cores in each of the
# suite's benchmark runs. tests/test_flops.py and the worker test in tests/test_layout.py measure it.
os.environ.setdefault("BACKBONE_BENCH_MATMUL_PEAK", "100.0")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(os.path.dirname(ROOT), "shared", "assets")
sys.path.insert(0, ROOT)

from benchmark.core.data import Dataset  # noqa: E402


def make_tiny_cifar(n_train: int = 400, n_test: int = 200, seed: int = 0) -> Dataset:
    """Synthetic CIFAR-shaped data whose class is visible in the mean colour."""
    rng = np.random.default_rng(seed)
    palette = rng.integers(30, 225, size=(10, 3))

    def make(n):
        y = np.arange(n) % 10
        rng.shuffle(y)
        x = rng.normal(0, 20, size=(n, 32, 32, 3)) + palette[y][:, None, None, :]
        return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return Dataset(x_train, y_train, x_test, y_test, "synthetic")


def every_entry(names) -> list:
    """`names` as test parameters: entries under 10 M parameters, and the smallest of each other family, run by
    default; the larger rest are marked `sweep` (`tox -e sweep`), which keeps the default run within CI's time."""
    import backbones

    specs = [backbones.get(name) for name in names]
    smallest = {}
    for spec in sorted(specs, key=lambda s: s.param_count):
        smallest.setdefault(spec.family, spec.name)
    return [spec.name if spec.param_count < 10_000_000 or smallest[spec.family] == spec.name
            else pytest.param(spec.name, marks=pytest.mark.sweep) for spec in specs]


@pytest.fixture(scope="session")
def tiny_cifar() -> Dataset:
    return make_tiny_cifar()


@pytest.fixture(scope="session")
def weights_dir() -> str:
    path = os.environ.get("BACKBONE_WEIGHTS_DIR") or os.path.join(ASSETS, "weights")
    if not os.path.isfile(os.path.join(path, "MobileNetV2_notop_imagenet.weights.h5")):
        pytest.skip(f"no real weights at {path} (set BACKBONE_WEIGHTS_DIR or provide ../shared/assets)")
    return path


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory) -> str:
    """A real `cifar-10-batches-py` folder: $CIFAR10_DIR, or built from ../shared/assets."""
    path = os.environ.get("CIFAR10_DIR")
    if path and os.path.isdir(path):
        return path
    script = os.path.join(ASSETS, "cifar10", "build_batches.py")
    if not os.path.isfile(script):
        pytest.skip("no real CIFAR-10: set CIFAR10_DIR or provide ../shared/assets")
    out = tmp_path_factory.mktemp("cifar")
    subprocess.run([sys.executable, script, str(out)], check=True, capture_output=True)
    return str(out / "cifar-10-batches-py")


@pytest.fixture(scope="session")
def real_cifar(cifar_dir):
    from benchmark.core.data import load_cifar10

    return load_cifar10(cifar_dir)


def write_cifar_folder(data: Dataset, folder) -> str:
    """Writes `data` in the official cifar-10-batches-py layout (5 train batches + test)."""
    import pickle

    os.makedirs(folder, exist_ok=True)

    def dump(x, y, name):
        flat = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump({b"data": flat, b"labels": [int(v) for v in y]}, f, protocol=4)

    for i, part in enumerate(np.array_split(np.arange(len(data.y_train)), 5), 1):
        dump(data.x_train[part], data.y_train[part], f"data_batch_{i}")
    dump(data.x_test, data.y_test, "test_batch")
    return str(folder)


@pytest.fixture(scope="session")
def tiny_cifar_dir(tiny_cifar, tmp_path_factory) -> str:
    return write_cifar_folder(tiny_cifar, tmp_path_factory.mktemp("tiny") / "cifar-10-batches-py")
