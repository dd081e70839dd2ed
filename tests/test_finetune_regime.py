"""The fine-tuned regime: its job, its cached scores, and its rows in the benchmark."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import backbones
from benchmark.core.data import SplitRecipe
from benchmark.core.diskarray import DiskArray
from benchmark.core.features import BackboneJob, ensure_features
from benchmark.core.finetune import FineTuneConfig
from benchmark.core.networks import ensure_finetuned, load_finetuned
from benchmark.core.store import Store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_finetuned_scores_are_measured_then_cached(tiny_cifar, tmp_path):
    recipe = SplitRecipe(n_val_holdout=100, n_train=120, n_val=40, n_test=40)
    splits = recipe.make(tiny_cifar)
    spec = backbones.get("MobileNet")
    job = BackboneJob(spec.name, 32, backbones.WeightsSource("random"), splits=("train", "val", "test"), data=recipe,
                     cache_dir=str(tmp_path), cut=spec.finetune_cut, batch_size=32, chunk_size=50,
                     finetune=FineTuneConfig(epochs=2, patience=1).as_dict())
    lines = []
    sets = ensure_features(job, splits, echo=lines.append, on_disk=True)  # as the worker does for this job
    assert sets["train"].features.shape == (120, 2, 2, 512)  # the maps below the cut (conv 12-13 above it)
    # the maps stay on disk, joined from 3 chunks there, and read back the same as a plain load
    assert isinstance(sets["train"].features, DiskArray)
    entry = job.entry(Store(job.cache_dir), splits["train"])
    stored, labels, _ = entry.load()
    assert np.array_equal(np.asarray(sets["train"].features), stored) and np.array_equal(labels, splits["train"].y)
    assert not os.path.exists(entry.partial_dir)
    again = ensure_features(job, splits, echo=lambda line: pytest.fail(f"extracted again: {line}"), on_disk=True)
    assert isinstance(again["val"].features, DiskArray) and again["val"].key == sets["val"].key
    assert load_finetuned(job, splits, Store(job.cache_dir), seed=0) is None
    result = ensure_finetuned(job, sets, echo=lines.append)
    assert 1 <= result["ft_epochs"] <= 2 and result["ft_train_s"] > 0
    assert 0 <= result["val_acc"] <= 1 and result["test_ci_low"] <= result["test_acc"] <= result["test_ci_high"]
    assert len(result["test_pred"]) == 40 and len(result["per_class_acc"]) == 10
    # the last stage (conv 12-13, BatchNorm frozen) and the mlp head: more than the head alone
    from benchmark.run.rows import head_params

    assert result["trainable_params"] > head_params("mlp", 1024) + 1_000_000
    assert any("fine-tune epoch 1" in line for line in lines)
    assert load_finetuned(job, splits, Store(job.cache_dir), seed=0) == result
    assert ensure_finetuned(job, sets, echo=lambda *_: pytest.fail("retrained")) == result


def test_other_settings_miss_the_cache(tiny_cifar, tmp_path):
    """The stored result is keyed on the fine-tuning settings and the seed, not only on the maps."""
    from benchmark.core.keys import finetune_parts
    from benchmark.core.networks import FINETUNE_HEAD

    def finetune_key(job, keys, seed):
        return finetune_parts(keys, job.finetune, FINETUNE_HEAD.as_dict(), seed)

    job = BackboneJob("MobileNet", 32, backbones.WeightsSource("random"), splits=("train", "val", "test"),
                     cut="conv_pw_11_relu", finetune=FineTuneConfig(epochs=2).as_dict())
    keys = {"train": "a", "val": "b", "test": "c"}
    store = Store(str(tmp_path))
    result = {"val_acc": 1.0, "test_acc": 1.0, "test_ci_low": 1.0, "test_ci_high": 1.0, "per_class_acc": [1.0] * 10,
              "confusion": [[0] * 10] * 10, "test_pred": [0], "epochs": 1, "head_train_s": 0.1}
    store.write("heads", finetune_key(job, keys, 0), result)
    other = BackboneJob(**{**job.__dict__, "finetune": FineTuneConfig(epochs=3).as_dict()})
    assert finetune_key(other, keys, 0) != finetune_key(job, keys, 0)
    assert finetune_key(job, keys, 1) != finetune_key(job, keys, 0)
    assert finetune_key(job, {**keys, "train": "z"}, 0) != finetune_key(job, keys, 0)
    assert store.lookup("heads", finetune_key(job, keys, 0)) == result
    assert store.lookup("heads", finetune_key(other, keys, 0)) is None


def test_a_job_without_settings_is_refused(tmp_path):
    job = BackboneJob("MobileNet", 32, backbones.WeightsSource("random"), splits=("train",), cut="conv_pw_11_relu")
    with pytest.raises(ValueError, match="no cut or no fine-tuning settings"):
        ensure_finetuned(job, {}, Store(str(tmp_path)))


def _bench(cifar_dir, weights_dir, tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "benchmark", "--backbones", "MobileNet", "--sizes", "32",
                           "--train-size", "300", "--val-size", "100", "--test-size", "200", "--data-dir", cifar_dir,
                           "--weights-dir", weights_dir, "--cache-dir", str(tmp_path / "cache"),
                           "--out", str(tmp_path / "res"), "--no-report", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.mark.integration
def test_benchmark_adds_finetune_rows_and_reruns_from_cache(cifar_dir, weights_dir, tmp_path):
    done = _bench(cifar_dir, weights_dir, tmp_path, "--regime", "frozen", "finetune")
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(tmp_path / "res" / "results.csv")
    assert list(zip(frame["regime"], frame["head"])) == [("frozen", "linear"), ("frozen", "mlp"), ("finetune", "mlp")]
    tuned = frame[frame["regime"] == "finetune"].iloc[0]
    assert tuned["ft_epochs"] >= 1 and tuned["ft_train_s"] > 0 and 0 < tuned["val_acc"] <= 1
    frozen_mlp = frame[(frame["regime"] == "frozen") & (frame["head"] == "mlp")].iloc[0]
    assert tuned["trainable_params"] > frozen_mlp["trainable_params"] > 0
    frozen = frame[frame["regime"] == "frozen"]  # one set of transferability scores per frozen feature set
    assert frozen["logme"].nunique() == 1 and 0 < frozen["hscore"].iloc[0] < 9 and 0 < frozen["knn_acc"].iloc[0] <= 1
    assert (frozen["logme_ms"] > 0).all() and pd.isna(tuned["logme"])
    assert "finetune" in done.stdout
    again = _bench(cifar_dir, weights_dir, tmp_path, "--regime", "frozen", "finetune")
    assert again.returncode == 0, again.stderr
    assert "maps and fine-tuned scores from cache" in again.stdout and "fine-tune epoch" not in again.stdout
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "res" / "results.csv").drop(columns=["from_cache"]),
                                  frame.drop(columns=["from_cache"]))


def test_time_only_with_finetune_is_refused(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmark", "--backbones", "MobileNet", "--time-only",
                           "--regime", "finetune", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "--time-only" in done.stderr and "Traceback" not in done.stderr
