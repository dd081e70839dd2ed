import os
import subprocess
import sys

import pandas as pd
import pytest

from benchmark.cli.bench import main
from benchmark.core.results import COLUMNS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, env=None):
    environ = {k: v for k, v in os.environ.items() if k != "BACKBONE_WEIGHTS_DIR"}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}, timeout=600)


def test_help_lists_the_flags():
    out = _cli("--help")
    assert out.returncode == 0
    for flag in ("--all", "--backbones", "--sizes", "--train-size", "--test-size", "--full", "--data-dir",
                 "--weights-dir", "--cache-dir", "--out", "--batch-size", "--seed", "--time-only", "--list",
                 "--precision"):
        assert flag in out.stdout


def test_list_prints_the_registry(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "EfficientNetV2L" in out and "40 backbones." in out


@pytest.mark.parametrize("args, message", [
    (["--backbones", "MobileNetV4"], "Did you mean: MobileNetV2"),
    (["--backbones", "Xception", "--sizes", "64"], "at least 71"),
    ([], "say what to run"),
    (["--all", "--pretrained"], "--pretrained needs a weights folder"),
    (["--backbones", "VGG16", "--data-dir", "/nonexistent/cifar"], "does not exist"),
    (["--backbones", "VGG16", "--weights-dir", "/nonexistent/weights"], "does not exist"),
    (["--backbones", "VGG16", "--precision", "fp8"], "invalid choice: 'fp8'"),
])
def test_user_errors_exit_2_without_traceback(args, message, tmp_path):
    out = _cli(*args, "--out", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"))
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr


def test_train_size_larger_than_data(tiny_cifar_dir, tmp_path):
    out = _cli("--backbones", "MobileNetV3Small", "--sizes", "32", "--data-dir", tiny_cifar_dir, "--val-holdout",
               "100", "--train-size", "5000", "--out", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"))
    assert out.returncode == 2 and "--train-size 5000 is larger than the data" in out.stderr


def test_unwritable_output(tiny_cifar_dir, tmp_path):
    (tmp_path / "file").write_text("x")
    out = _cli("--backbones", "MobileNetV3Small", "--data-dir", tiny_cifar_dir, "--out", str(tmp_path / "file" / "r"),
               "--cache-dir", str(tmp_path / "c"))
    assert out.returncode == 2 and "not writable" in out.stderr


def _tiny_run(tiny_cifar_dir, tmp_path, weights, *extra):
    return main(["--backbones", "MobileNetV2", "mobilenetv3small", "--sizes", "32", "--data-dir", tiny_cifar_dir,
                 "--weights-dir", weights, "--val-holdout", "100", "--train-size", "200", "--val-size", "50",
                 "--test-size", "100", "--out", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"),
                 "--time-images", "16", "--batch-size", "16", *extra])


def test_end_to_end_two_backbones(tiny_cifar_dir, tmp_path, capsys):
    # MobileNetV2 gets a (fake but loadable) weights file, MobileNetV3Small has none.
    import keras

    weights = tmp_path / "weights"
    weights.mkdir()
    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg") \
        .save_weights(str(weights / "MobileNetV2_notop_imagenet.weights.h5"))
    assert _tiny_run(tiny_cifar_dir, tmp_path, str(weights)) == 0
    out = capsys.readouterr().out
    assert "No pretrained weights for 1 of 2" in out
    frame = pd.read_csv(tmp_path / "results" / "results.csv")
    assert list(frame.columns) == list(COLUMNS)
    assert sorted(zip(frame["model"], frame["head"])) == [("MobileNetV2", "linear"), ("MobileNetV2", "mlp"),
                                                          ("MobileNetV3Small", "none")]
    pretrained = frame[frame["weights"] == "imagenet"]
    assert pretrained["test_acc"].between(0, 1).all() and (pretrained["test_size"] == 100).all()
    random = frame[frame["weights"] == "random"]
    assert random["test_acc"].isna().all() and random["samples_per_sec"].gt(0).all()
    assert (frame["from_cache"] == False).all()  # noqa: E712
    assert os.path.exists(tmp_path / "results" / "environment.json")

    # the rerun reads everything from the cache and gives the same table
    assert _tiny_run(tiny_cifar_dir, tmp_path, str(weights)) == 0
    again = pd.read_csv(tmp_path / "results" / "results.csv")
    assert (again["from_cache"] == True).all()  # noqa: E712
    cols = ["model", "head", "samples_per_sec", "val_acc", "test_acc", "confusion"]
    pd.testing.assert_frame_equal(frame[cols], again[cols])
    assert (again["precision"] == "fp32").all()

    # bf16 features are made anew and cached apart from the fp32 ones; the fp32 rows stay beside them
    assert _tiny_run(tiny_cifar_dir, tmp_path, str(weights), "--precision", "bf16") == 0
    both = pd.read_csv(tmp_path / "results" / "results.csv")
    assert list(both["precision"]) == ["fp32"] * 3 + ["bf16"] * 3
    bf16 = both[both["precision"] == "bf16"]
    assert (bf16["from_cache"] == False).all()  # noqa: E712
    assert bf16.loc[bf16["weights"] == "imagenet", "test_acc"].between(0, 1).all()
    assert "bf16" in capsys.readouterr().out


def test_failed_imagenet_download_falls_back_to_timing(tiny_cifar_dir, tmp_path, monkeypatch, capsys, caplog):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.setattr(file_utils, "get_file", offline)
    monkeypatch.delenv("BACKBONE_WEIGHTS_DIR", raising=False)
    rc = main(["--backbones", "MobileNetV3Small", "--sizes", "32", "--data-dir", tiny_cifar_dir, "--val-holdout",
               "100", "--train-size", "100", "--val-size", "50", "--test-size", "50", "--time-images", "8",
               "--out", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"),
               "--no-isolate"])  # a worker process would not see the patched downloader
    assert rc == 0
    frame = pd.read_csv(tmp_path / "r" / "results.csv")
    assert list(frame["weights"]) == ["random"] and frame["test_acc"].isna().all()
    assert any("could not download ImageNet weights" in r.getMessage() for r in caplog.records)


def test_backbones_are_extracted_in_worker_processes(tiny_cifar_dir, tmp_path, monkeypatch, capsys):
    """By default no model is built in the runner's own process: each backbone gets a fresh worker."""
    import backbones

    def build_base_here(*args, **kwargs):
        raise AssertionError("a model was built in the runner's process")

    monkeypatch.setattr(backbones, "build_base", build_base_here)
    no_weights = tmp_path / "no-weights"  # random weights, so no download is tried
    no_weights.mkdir()
    common = ["--weights-dir", str(no_weights), "--backbones", "MobileNetV3Small", "--time-only", "--data-dir",
              tiny_cifar_dir, "--val-holdout", "100", "--train-size", "100", "--val-size", "50", "--test-size", "50",
              "--out", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"), "--time-images", "16",
              "--batch-size", "16", "--no-report"]
    assert main([*common, "--sizes", "32", "40"]) == 0
    frame = pd.read_csv(tmp_path / "r" / "results.csv")
    assert list(frame["img_size"]) == [32, 40] and frame["samples_per_sec"].gt(0).all()
    assert frame["peak_rss_mb"].gt(0).all() and (frame["from_cache"] == False).all()  # noqa: E712
    # --no-isolate builds here, and so meets the patched function
    with pytest.raises(AssertionError, match="built in the runner's process"):
        main([*common, "--sizes", "48", "--no-isolate"])


def test_output_is_the_projects_own_lines(tiny_cifar_dir, tmp_path):
    """TensorFlow's C++ start-up lines (runner and worker) are hidden by default and shown with -v."""
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "BACKBONE_WEIGHTS_DIR")}
    (tmp_path / "no-weights").mkdir()
    args = [sys.executable, "-m", "benchmark", "--backbones", "MobileNetV3Small", "--sizes", "32", "--time-only",
            "--data-dir", tiny_cifar_dir, "--weights-dir", str(tmp_path / "no-weights"), "--val-holdout", "100",
            "--train-size", "100", "--val-size", "50", "--test-size", "50", "--time-images", "8", "--no-report"]

    def run(name, *extra):
        return subprocess.run([*args, "--out", str(tmp_path / name), "--cache-dir", str(tmp_path / f"c-{name}"),
                               *extra], cwd=ROOT, capture_output=True, text=True, env=environ, timeout=600)

    quiet = run("quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert "absl::InitializeLog" not in quiet.stderr and "I0000" not in quiet.stderr and "cuInit" not in quiet.stderr
    assert "sweep 1/1" in quiet.stdout and "elapsed, ETA" in quiet.stdout
    loud = run("loud", "-v")
    assert loud.returncode == 0 and "I0000" in loud.stderr
