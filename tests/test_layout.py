"""The architecture's promises: cache keys unchanged by the move, one top-scorer rule,
the extraction job as plain data, and a worker that stands on its own."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import backbones
from benchmark.core.data import Split, SplitRecipe, splits_fingerprint
from benchmark.core.features import BackboneJob, cached_features, ensure_features
from benchmark.core.heads import HEAD_VERSION, HeadConfig
from benchmark.core.results import best_rows, top_scorer, write_results
from benchmark.core.store import Store, make_key

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Keys computed at commit 5556ae1, before the code moved into benchmark/core: existing caches must still hit.
PINNED = {
    ("MobileNetV2", 128, "train", "file", None, "fp32", None):
        "881fec8f06df54bc34ae046c53961fd95407214f981b62b74f3e2afb5d6d889d",
    ("VGG16", 32, "timing", "random", 32, "fp32", None):
        "21a3b7a048db89dc8685a0a1ff9cdfa8a9df16e833caf50b4698fa1dc7a58e33",
    ("Xception", 160, "val", "file", None, "bf16", None):
        "0e2d14d2832d7054f8e0c8f8fb2f39aa08bb4d429c5b13d1ebed90fbe7746ee0",
    ("ConvNeXtTiny", 64, "test", "random", None, "fp32", None):
        "8ae1ffb3f9fdd98e06e224c4a59dbfbb03f0f40e9accfd70cb393aab140fe53e",
    ("DenseNet121", 224, "train", "file", None, "fp32", "pool4_pool"):
        "f11f4f803802c1fd02eb36688510b457cc80fd4d89132de97503683a67f2d7a9",
}
PINNED_HEAD = "d43fd978dcb534db8d35b4abf5f25dc4c68d566b6e272909b76c478f24a3da2a"


def _two_images():
    x = (np.arange(2 * 32 * 32 * 3) % 256).astype(np.uint8).reshape(2, 32, 32, 3)
    return x, np.array([0, 1], np.int64)


def _weights(kind):
    return backbones.WeightsSource("file", path="/x.h5", identity="ab" * 32) if kind == "file" \
        else backbones.WeightsSource("random")


@pytest.mark.parametrize("case", list(PINNED))
def test_cache_keys_are_pinned(case):
    name, img_size, split, kind, batch_size, precision, cut = case
    x, y = _two_images()
    job = BackboneJob(name, img_size, _weights(kind), splits=(split,), precision=precision, cut=cut,
                     batch_size=batch_size or 32)
    assert job.entry(Store("/nonexistent"), Split(split, x, y)).key == PINNED[case]


def test_head_key_is_pinned():
    features = {p: PINNED[("MobileNetV2", 128, "train", "file", None, "fp32", None)] for p in ("train", "val", "test")}
    key = make_key({"features": features, "head": HeadConfig(kind="mlp").as_dict(), "seed": 0,
                    "version": HEAD_VERSION})
    assert key == PINNED_HEAD


def _row(model, head, val, sps, img_size=128, test=0.5):
    return {"model": model, "img_size": img_size, "head": head, "weights": "imagenet", "val_acc": val,
            "test_acc": test, "samples_per_sec": sps}


def test_top_scorer_breaks_ties_by_speed_then_simpler_head():
    rows = [_row("DenseNet121", "mlp", 0.788, 50.0, test=0.751), _row("DenseNet121", "linear", 0.788, 50.0, test=0.741),
            _row("Xception", "mlp", 0.78, 20.0, test=0.9), _row("VGG16", "none", None, 500.0)]
    rows[3]["weights"] = "random"
    frame = pd.DataFrame(rows)
    top = top_scorer(frame)
    # a validation tie between heads: the simpler one, whatever the test accuracy says
    assert (top["model"], top["head"]) == ("DenseNet121", "linear")
    frame.loc[2, "val_acc"] = 0.788  # a three-way tie: the faster extraction wins
    frame.loc[2, "samples_per_sec"] = 60.0
    assert top_scorer(frame)["model"] == "Xception"
    assert list(best_rows(frame)["model"]) == ["Xception", "DenseNet121"]  # one row per (model, img_size)
    assert top_scorer(frame[frame["weights"] == "random"]) is None


def test_report_and_transfer_name_the_same_top_scorer(tmp_path):
    """With a validation tie in the results, 0-transfer.py and the report pick the same row."""
    from benchmark.transfer.select import choose_backbone
    from report.figures import top_scorer as report_top_scorer

    frame = write_results([_row("DenseNet121", "mlp", 0.788, 50.0, test=0.751),
                           _row("MobileNet", "linear", 0.788, 90.0, test=0.70)], str(tmp_path))
    assert report_top_scorer is top_scorer
    assert choose_backbone(str(tmp_path), echo=lambda *_: None)[0] == top_scorer(frame)["model"] == "MobileNet"


def test_job_is_plain_data():
    job = BackboneJob("MobileNetV2", 96, _weights("file"), splits=("train", "train-flip", "val"),
                     data=SplitRecipe("/data", n_val_holdout=100, n_train=200, seed=3), cache_dir="/cache",
                     cut=None, matmul_peak_gflops=200.0, peak_host="h")
    assert BackboneJob.from_dict(json.loads(json.dumps(job.as_dict()))) == job
    assert pickle.loads(pickle.dumps(job)) == job


def test_ensure_features_then_cached(tiny_cifar, tmp_path):
    recipe = SplitRecipe(n_val_holdout=100, n_train=60, n_val=20, n_test=20)
    splits = recipe.make(tiny_cifar)
    job = BackboneJob("MobileNetV3Small", 32, _weights("random"), splits=("train", "train-flip", "val"),
                     data=recipe, cache_dir=str(tmp_path), batch_size=16)
    assert all(found is None for found in cached_features(job, splits).values())
    made = ensure_features(job, splits, echo=lambda *_: None)
    assert [found.from_cache for found in made.values()] == [False] * 3
    assert made["train-flip"].features.shape == (60, 576) and made["train"].meta.keys() >= {
        "timing", "peak_rss_mb", "flops_per_img", "matmul_peak_gflops", "host", "device"}
    again = ensure_features(job, splits, echo=lambda *_: None)
    assert all(found.from_cache for found in again.values())
    np.testing.assert_array_equal(again["val"].features, made["val"].features)
    assert made["train"].key != made["train-flip"].key  # mirrored images: an entry of their own
    np.testing.assert_array_equal(made["train-flip"].labels, splits["train"].y)


def _worker(job, tmp_path, env=None):
    """The worker's own protocol: the job as a line on its input, its report as a line on the reply pipe."""
    read_end, write_end = os.pipe()
    try:
        out = subprocess.run([sys.executable, "-m", "benchmark.run.worker", "--serve", str(write_end)],
                             input=json.dumps(job.as_dict()) + "\n", pass_fds=(write_end,), cwd=ROOT,
                             capture_output=True, text=True, timeout=300,
                             env={k: v for k, v in {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}.items()
                                  if v is not None})  # None: unset
    finally:
        os.close(write_end)
    with os.fdopen(read_end) as reply:
        ready, report = [json.loads(line) for line in reply]
    assert ready == {"ready": True}
    return out, report


def test_worker_process_does_its_job_alone(tiny_cifar, tiny_cifar_dir, tmp_path):
    recipe = SplitRecipe(tiny_cifar_dir, n_val_holdout=100, n_train=60, n_val=20, n_test=20)
    job = BackboneJob("MobileNetV3Small", 32, _weights("random"), splits=("timing",), data=recipe,
                     cache_dir=str(tmp_path / "cache"), data_fingerprint=splits_fingerprint(recipe.make(tiny_cifar)),
                     batch_size=8, n_time_images=8, time_budget_s=1.0, matmul_peak_gflops=1.0, peak_host="elsewhere")
    out, report = _worker(job, tmp_path, env={"BACKBONE_BENCH_MATMUL_PEAK": None})  # measured, not the tests' value
    assert out.returncode == 0 and report["ok"], out.stderr
    assert report["matmul_peak_gflops"] not in (1.0, 100.0)  # on a host the job did not name, it measures its own
    assert report["matmul_peak_gflops"] > 1.0
    assert report["timing"]["images_timed"] > 0 and report["peak_rss_mb"] > 0
    assert cached_features(job, recipe.make(tiny_cifar), Store(job.cache_dir))["timing"].key == report["keys"]["timing"]


def test_worker_refuses_other_data_naming_host_and_path(tiny_cifar_dir, tmp_path):
    import socket

    recipe = SplitRecipe(tiny_cifar_dir, n_val_holdout=100, n_train=60, n_val=20, n_test=20)
    job = BackboneJob("MobileNetV3Small", 32, _weights("random"), splits=("timing",), data=recipe,
                     cache_dir=str(tmp_path / "cache"), data_fingerprint="0" * 64)
    out, report = _worker(job, tmp_path)
    assert out.returncode == 0 and not report["ok"] and "Traceback" not in out.stderr  # it then waits for more
    assert socket.gethostname() in report["error"] and tiny_cifar_dir in report["error"]
    assert not os.path.exists(tmp_path / "cache" / "features")


def test_worker_imports_only_the_core():
    code = ("import sys, benchmark.run.worker; "
            "bad = [m for m in sys.modules if m.startswith(('benchmark.run.runner', 'benchmark.cli', 'report', "
            "'benchmark.transfer', 'tensorflow', 'keras'))]; assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_top_scorer_picks_across_regimes_and_a_tie_goes_to_frozen():
    frozen = {**_row("DenseNet121", "mlp", 0.80, 50.0), "regime": "frozen"}
    tuned = {**_row("DenseNet121", "mlp", 0.85, 90.0), "regime": "finetune"}
    frame = pd.DataFrame([frozen, tuned])
    assert top_scorer(frame)["regime"] == "finetune"
    frame.loc[1, "val_acc"] = 0.80  # a tie: the cheaper regime, although the fine-tuned row extracts faster
    assert top_scorer(frame)["regime"] == "frozen"
    assert list(best_rows(frame)["regime"]) == ["frozen", "finetune"]  # one row per (model, img_size, regime)


def test_a_finetune_job_is_plain_data_with_the_same_map_keys():
    from benchmark.core.finetune import FineTuneConfig

    job = BackboneJob("DenseNet121", 224, _weights("file"), splits=("train",), cut="pool4_pool",
                     finetune=FineTuneConfig(epochs=2).as_dict())
    assert BackboneJob.from_dict(json.loads(json.dumps(job.as_dict()))) == job
    x, y = _two_images()
    plain = BackboneJob("DenseNet121", 224, _weights("file"), splits=("train",), cut="pool4_pool")
    assert job.entry(Store("/x"), Split("train", x, y)).key == plain.entry(Store("/x"), Split("train", x, y)).key
