"""The fault suite: each way a user, a disk or a concurrent run can hurt a run, as a named case.

Every case asserts the exit code, that the message names the culprit, that no
traceback is printed, and where it applies that nothing was lost.
"""

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(module_args, cwd=ROOT, preexec_fn=None, **extra_env):
    env = {k: v for k, v in os.environ.items() if k != "BACKBONE_WEIGHTS_DIR"}
    return subprocess.run([sys.executable, *module_args], cwd=cwd, capture_output=True, text=True,
                          env={**env, "TF_CPP_MIN_LOG_LEVEL": "3", **extra_env}, timeout=600, preexec_fn=preexec_fn)


def _bench(tiny_cifar_dir, tmp_path, *args, out="r", cache="c", report=False, preexec_fn=None):
    return _run(["-m", "benchmark", "--data-dir", tiny_cifar_dir, "--val-holdout", "100", "--train-size", "100",
                 "--val-size", "50", "--test-size", "50", "--time-images", "8", "--batch-size", "16",
                 "--out", str(tmp_path / out), "--cache-dir", str(tmp_path / cache),
                 *([] if report else ["--no-report"]), *args], preexec_fn=preexec_fn)


def _clean_error(done, code, *names):
    assert done.returncode == code, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    for name in names:
        assert name in done.stderr, (name, done.stderr[-2000:])


# -- flags: one line, exit 2, nothing run --

FLAG_CASES = {
    "size above twice native": (["--backbones", "MobileNetV2", "--sizes", "10000"], ["10000 px is too large",
                                                                                       "at most 448 px"]),
    "val holdout too large": (["--backbones", "MobileNetV2", "--val-holdout", "50000"], ["--val-holdout"]),
    "negative train size": (["--backbones", "MobileNetV2", "--train-size", "-5"], ["--train-size", "positive"]),
    "list with --all": (["--list", "--all"], ["--list"]),
    "list with --backbones": (["--list", "--backbones", "FooNet"], ["--list"]),
    "a head twice": (["--backbones", "MobileNetV2", "--heads", "linear", "linear"], ["--heads names a head twice"]),
    "heads with --time-only": (["--backbones", "MobileNetV2", "--time-only", "--heads", "mlp"], ["--time-only"]),
    "report dir unwritable": (["--backbones", "MobileNetV3Small", "--time-only", "--report-dir", "/proc/x"],
                              ["--report-dir", "/proc/x"]),
    "bad executor": (["--backbones", "MobileNetV2", "--executor", "dask-local:0"], ["--executor"]),
    "no jobs per worker": (["--backbones", "MobileNetV2", "--worker-jobs", "0"], ["--worker-jobs"]),
}


@pytest.mark.parametrize("case", list(FLAG_CASES))
def test_bad_flags(case, tiny_cifar_dir, tmp_path):
    args, names = FLAG_CASES[case]
    t0 = time.perf_counter()
    done = _bench(tiny_cifar_dir, tmp_path, *args, report="--report-dir" in args)
    _clean_error(done, 2, *names)
    assert not os.path.exists(tmp_path / "r" / "results.csv")
    assert time.perf_counter() - t0 < 120  # found before any model is built


# -- a user's own images (--data): one line naming the problem and the file, exit 2, before any model --

def _image(path, size=(8, 8)):
    from PIL import Image

    Image.new("RGB", size, (40, 80, 120)).save(path)


def _classes(root, counts: dict):
    for name, n in counts.items():
        os.makedirs(root / name, exist_ok=True)
        for i in range(n):
            _image(root / name / f"{i}.png")


def _broken(root):
    _classes(root, {"cats": 4, "dogs": 4})
    (root / "dogs" / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")


def _bad_labels(root):
    np.savez(root / "d.npz", x_train=np.zeros((4, 8, 8, 3), np.uint8), y_train=np.array([0, 1, 0, 5]),
             x_test=np.zeros((2, 8, 8, 3), np.uint8), y_test=np.array([0, 1]), class_names=np.array(["a", "b"]))


DATA_CASES = {  # (make the data under root, --data value, extra flags, what the line names)
    "no such folder": (None, "folder:{root}/nope", [], ["no such folder", "nope"]),
    "empty class folder": (lambda r: _classes(r, {"cats": 3, "dogs": 0}), "folder:{root}", [],
                           ["dogs has no images"]),
    "one class": (lambda r: _classes(r, {"cats": 3}), "folder:{root}", [], ["at least two"]),
    "too few images in a class": (lambda r: _classes(r, {"cats": 5, "dogs": 1}), "folder:{root}", [],
                                  ["class 'dogs'", "at least 3"]),
    "broken image, --bad-images stop": (_broken, "folder:{root}", ["--bad-images", "stop"],
                                        ["cut.jpg cannot be decoded"]),
    "npz labels out of range": (_bad_labels, "npz:{root}/d.npz", [], ["d.npz", "y_train holds label 5"]),
    "npz missing": (None, "npz:{root}/none.npz", [], ["none.npz: no such file"]),
    "--data-dir with a folder": (lambda r: _classes(r, {"cats": 3, "dogs": 3}), "folder:{root}",
                                 ["--data-dir", "/tmp"], ["--data-dir is CIFAR-10's"]),
    "unknown form": (None, "zip:{root}", [], ["cifar10, folder:PATH or npz:PATH"]),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_data_is_one_line(case, tmp_path):
    make, spec, extra, names = DATA_CASES[case]
    root = tmp_path / "data"
    os.makedirs(root)
    if make:
        make(root)
    done = _run(["-m", "benchmark", "--data", spec.format(root=root), "--backbones", "MobileNetV2", *extra,
                 "--out", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"), "--no-report"])
    _clean_error(done, 2, *names)
    assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1, done.stderr
    assert "built" not in done.stdout and not os.path.exists(tmp_path / "r" / "results.csv")


def test_transfer_size_not_a_number(tmp_path):
    done = _run([os.path.join(ROOT, "0-transfer.py"), "--backbone", "MobileNetV2", "--size", "abc"], cwd=tmp_path)
    _clean_error(done, 2, "'abc'", "pixels or 'native'")


# -- 0-transfer.py: bad numbers and outputs, refused before the data load (exit 2), nothing trained --

TRANSFER_FLAG_CASES = {
    "batch size 0": (["--batch-size", "0"], ["--batch-size", "1 or more"]),  # looped forever
    "negative batch size": (["--batch-size", "-3"], ["--batch-size"]),
    "chunk size 0": (["--chunk-size", "0"], ["--chunk-size"]),  # divided by zero
    "epochs 0": (["--epochs", "0"], ["--epochs"]),  # KeyError: 'loss'
    "fine-tuning epochs 0": (["--ft-epochs", "0"], ["--ft-epochs"]),
    "output without a model suffix": (["--output", "model.txt"], ["model.txt", ".h5 or .keras"]),  # after training
    "output in an unwritable folder": (["--output", "/proc/x/cifar10.h5"], ["--output", "/proc/x"]),
}


@pytest.mark.parametrize("case", list(TRANSFER_FLAG_CASES))
def test_transfer_bad_flags(case, tmp_path):
    args, names = TRANSFER_FLAG_CASES[case]
    done = _run([os.path.join(ROOT, "0-transfer.py"), "--backbone", "MobileNetV2", "--data-dir",
                 str(tmp_path / "no-data"), "--cache-dir", str(tmp_path / "c"), *args], cwd=tmp_path)
    _clean_error(done, 2, *names)
    assert "no-data" not in done.stderr and not (tmp_path / "cifar10.h5").exists()  # before the data load


def test_transfer_offline_without_a_weights_folder(tiny_cifar_dir, tmp_path):
    """No weights folder and no network: one line with the fix (was Keras's URL fetch traceback)."""
    proxy = "http://127.0.0.1:9"  # refuses at once: the download fails as it does offline, and never leaves the machine
    done = _run([os.path.join(ROOT, "0-transfer.py"), "--backbone", "MobileNetV2", "--size", "96", "--data-dir",
                 tiny_cifar_dir, "--cache-dir", str(tmp_path / "c"), "--val-holdout", "100", "--train-size", "100",
                 "--test-size", "50", "--no-fine-tune", "--mirror", "off"], cwd=tmp_path,
                HTTP_PROXY=proxy, HTTPS_PROXY=proxy, http_proxy=proxy, https_proxy=proxy,
                KERAS_HOME=str(tmp_path / "keras"))
    _clean_error(done, 2, "could not download ImageNet weights for MobileNetV2", "--weights-dir", "Offline use")
    assert not (tmp_path / "cifar10.h5").exists()


def test_non_finite_features_fail_naming_the_backbone_and_overflow_stays_float32(tmp_path):
    from benchmark.core.extract import Timing, extract_split
    from benchmark.core.store import Store

    class Constant:  # an extractor whose base gives `value` everywhere
        on_batch = None

        def __init__(self, value):
            self.value = value

        def run(self, images):
            return np.full((len(images), 3), self.value, np.float32), Timing(len(images), 1.0, 1.0, 1)

    images = np.zeros((4, 32, 32, 3), np.uint8)
    entry = Store(str(tmp_path)).features("MobileNetV2", 32, "train", {"data": "nan"})
    with pytest.raises(ValueError, match=r"MobileNetV2 @32px gave 6 NaN or infinite feature values on train images 0-1"):
        extract_split(entry, Constant(np.nan), images, chunk_size=2)
    assert entry.load_chunk(0, 2) is None  # nothing cached
    big = Store(str(tmp_path)).features("MobileNetV2", 32, "train", {"data": "big"})
    features, _, _ = extract_split(big, Constant(1e6), images, chunk_size=2)
    assert features.dtype == np.float32 and np.isfinite(features).all() and features.max() == 1e6
    plain, _, _ = extract_split(Store(str(tmp_path)).features("MobileNetV2", 32, "train", {"data": "ok"}),
                                Constant(2.0), images)
    assert plain.dtype == np.float16


# -- bad weights files: found before the data load, one line, the sweep goes on, exit 1 --

def _garbage(path, other):
    path.write_bytes(b"\x00garbage" * 100)


def _truncated(path, other):
    import keras

    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg") \
        .save_weights(str(path))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _another_backbones(path, other):
    import keras

    keras.applications.MobileNet(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg") \
        .save_weights(str(path))


@pytest.mark.parametrize("make", [_garbage, _truncated, _another_backbones], ids=["garbage", "truncated", "other"])
def test_bad_weights_file(make, tiny_cifar_dir, tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    path = weights / "MobileNetV2_notop_imagenet.weights.h5"
    make(path, None)
    done = _bench(tiny_cifar_dir, tmp_path, "--backbones", "MobileNetV2", "MobileNetV3Small", "--sizes", "32",
                  "--weights-dir", str(weights))
    _clean_error(done, 1, str(path), "MobileNetV2", "does not fit")
    frame = pd.read_csv(tmp_path / "r" / "results.csv")
    assert list(frame["model"]) == ["MobileNetV3Small"]  # the rest of the sweep went on


# -- the cache: wrong but parseable metadata is found, discarded with one warning, and recomputed --

@pytest.fixture(scope="module")
def warm_run(tiny_cifar_dir, tmp_path_factory):
    """One finished tiny run (MobileNetV3Small with fake weights: features, heads, a results table)."""
    import keras

    root = tmp_path_factory.mktemp("warm")
    weights = root / "weights"
    weights.mkdir()
    keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg") \
        .save_weights(str(weights / "MobileNetV3Small_notop_imagenet.weights.h5"))
    args = ["--backbones", "MobileNetV3Small", "--sizes", "32", "--weights-dir", str(weights), "--heads", "linear"]
    done = _bench(tiny_cifar_dir, root, *args)
    assert done.returncode == 0, done.stderr
    return root, args


@pytest.fixture
def warm(warm_run, tmp_path):
    """The finished run's cache and results, copied into this test's folder (each case damages its own copy)."""
    import shutil

    root, args = warm_run
    for name in ("c", "r"):
        shutil.copytree(root / name, tmp_path / name)
    return args


def _sidecars(tmp_path, split):
    return [p for p in (tmp_path / "c" / "features" / "MobileNetV3Small").glob(f"32px-{split}-*.json")]


def _edit_timing(tmp_path):
    path = _sidecars(tmp_path, "train")[0]
    meta = json.loads(path.read_text())
    meta["timing"]["seconds_timed"] /= 2  # an edited measurement
    path.write_text(json.dumps(meta))


def _drop_timing(tmp_path):  # resealed: a sidecar whose checksum holds but whose fields do not
    from benchmark.core.store import seal

    path = _sidecars(tmp_path, "val")[0]
    meta = json.loads(path.read_text())
    del meta["timing"]
    path.write_text(json.dumps(seal(meta)))


def _empty_head_result(tmp_path):
    from benchmark.core.store import seal

    for path in (tmp_path / "c" / "heads").glob("*.json"):
        record = json.loads(path.read_text())
        record["result"] = {}
        path.write_text(json.dumps(seal(record)))


@pytest.mark.parametrize("corrupt, culprit", [(_edit_timing, "metadata modified"), (_drop_timing, "timing"),
                                              (_empty_head_result, "result lacks")],
                         ids=["edited timing", "sidecar without timing", "head result empty"])
def test_wrong_cache_metadata_is_recomputed(corrupt, culprit, warm, tiny_cifar_dir, tmp_path):
    before = pd.read_csv(tmp_path / "r" / "results.csv")
    corrupt(tmp_path)
    done = _bench(tiny_cifar_dir, tmp_path, *warm)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("warning: cache: discarding") >= 1 and culprit in done.stderr
    after = pd.read_csv(tmp_path / "r" / "results.csv")
    pd.testing.assert_series_equal(before["test_acc"], after["test_acc"])  # recomputed, not lost
    again = _bench(tiny_cifar_dir, tmp_path, *warm)  # healed: the next run reads everything from the cache
    assert "discarding" not in again.stderr and (pd.read_csv(tmp_path / "r" / "results.csv")["from_cache"]).all()


# -- a malformed results folder: the report and 0-transfer.py name file, line and column --

def _results(tmp_path):
    from benchmark.core.results import write_results

    rows = [{"model": "MobileNetV2", "img_size": 96, "head": "linear", "weights": "imagenet", "val_acc": 0.7,
             "test_acc": 0.7, "test_ci_low": 0.68, "test_ci_high": 0.72, "samples_per_sec": 100.0}]
    write_results(rows, str(tmp_path / "res"), {"python": "3"})
    return tmp_path / "res"


def _text_val_acc(res):
    frame = pd.read_csv(res / "results.csv")
    frame["val_acc"] = frame["val_acc"].astype(object)
    frame.loc[0, "val_acc"] = "high"
    frame.to_csv(res / "results.csv", index=False)
    return "column val_acc"


def _garbage_row(res):
    with open(res / "results.csv", "a") as f:
        f.write("x" * 20 + "\n")
    return "line 3"


def _extra_field(res):
    with open(res / "results.csv", "a") as f:
        f.write(open(res / "results.csv").read().splitlines()[1] + ",extra\n")
    return "results.csv"


def _corrupt_environment(res):
    (res / "environment.json").write_text("{not json")
    return "environment.json"


@pytest.mark.parametrize("damage", [_text_val_acc, _garbage_row, _extra_field, _corrupt_environment],
                         ids=["text val_acc", "garbage row", "extra field", "corrupt environment.json"])
def test_malformed_results_folder(damage, tmp_path):
    res = _results(tmp_path)
    culprit = damage(res)
    done = _run(["-m", "report", "--results", str(res), "--out", str(tmp_path / "page")])
    _clean_error(done, 2, culprit)
    if damage is not _corrupt_environment:
        done = _run([os.path.join(ROOT, "0-transfer.py"), "--results", str(res)], cwd=tmp_path)
        _clean_error(done, 2, culprit)


# -- the cache under concurrency and after a kill --

def test_concurrent_writability_probes(tmp_path):
    from benchmark.core.atomic import probe_writable

    errors = []

    def probe():
        for _ in range(100):
            try:
                probe_writable(str(tmp_path))
            except OSError as err:
                errors.append(err)

    threads = [threading.Thread(target=probe) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and os.listdir(tmp_path) == []


def test_vanished_files_are_a_cache_miss(tmp_path):
    from benchmark.core.store import Store

    entry = Store(str(tmp_path)).features("MobileNetV2", 32, "train", {"data": "x"})
    timing = {"images_timed": 1, "seconds_timed": 1.0, "wall_s": 1.0, "batch_size": 1}
    entry.save(np.zeros((2, 3), np.float16), np.zeros(2, np.int64), {"timing": timing})
    os.unlink(entry.meta_path)  # another run discarded it between our check and our read
    assert entry.load() is None
    entry.save_chunk(0, np.zeros((2, 3), np.float16), timing)
    os.unlink(entry._chunk_paths(0)[0])
    assert entry.load_chunk(0, 2) is None  # discarded as incomplete, no exception


def test_stale_temp_files_are_removed(tmp_path):
    from benchmark.core.store import Store

    folder = tmp_path / "features" / "MobileNetV2"
    folder.mkdir(parents=True)
    stale, fresh = folder / ".32px-train-x.npz.abc123.tmp", folder / ".32px-val-x.npz.def456.tmp"
    stale.write_bytes(b"x" * 1000)
    fresh.write_bytes(b"x")
    old = time.time() - 2 * 24 * 3600
    os.utime(stale, (old, old))
    Store(str(tmp_path)).check_writable()
    assert not stale.exists() and fresh.exists()  # a young one may belong to a run in progress


# -- preprocess_data --

def _preprocess():
    import importlib.util

    spec = importlib.util.spec_from_file_location("transfer0", os.path.join(ROOT, "0-transfer.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.preprocess_data


@pytest.mark.parametrize("X, message", [
    (np.full((4, 32, 32, 3), np.nan), "NaN or infinite"),
    (np.full((4, 32, 32, 3), np.inf), "NaN or infinite"),
    (np.random.default_rng(0).random((20, 32, 32, 3)), "0..255, not 0..1"),
], ids=["nan", "inf", "scaled to 0..1"])
def test_preprocess_data_rejects(X, message):
    with pytest.raises(ValueError, match=message):
        _preprocess()(X, np.arange(len(X)) % 10)


def test_preprocess_data_accepts_a_few_black_images():
    X = np.random.default_rng(0).integers(0, 256, (200, 32, 32, 3)).astype(np.float32)
    X[:3] = 0.0
    assert _preprocess()(X, np.arange(200) % 10)[0].shape == (200, 32, 32, 3)


# -- the results folder keeps every run's rows --

def _timing_run(tiny_cifar_dir, tmp_path, *backbones, extra=()):
    (tmp_path / "nw").mkdir(exist_ok=True)
    return _bench(tiny_cifar_dir, tmp_path, "--backbones", *backbones, "--sizes", "32", "--time-only",
                  "--weights-dir", str(tmp_path / "nw"), *extra, out="shared", cache="c-" + "-".join(backbones))


def test_a_second_run_adds_its_rows(tiny_cifar_dir, tmp_path):
    first = _timing_run(tiny_cifar_dir, tmp_path, "MobileNetV2")
    assert first.returncode == 0, first.stderr
    second = _timing_run(tiny_cifar_dir, tmp_path, "MobileNet")
    assert second.returncode == 0 and "added 1 and replaced 0" in second.stdout, second.stdout
    assert list(pd.read_csv(tmp_path / "shared" / "results.csv")["model"]) == ["MobileNetV2", "MobileNet"]
    again = _timing_run(tiny_cifar_dir, tmp_path, "MobileNetV2")  # the same key: superseded, not duplicated
    assert "added 0 and replaced 1" in again.stdout
    assert list(pd.read_csv(tmp_path / "shared" / "results.csv")["model"]) == ["MobileNetV2", "MobileNet"]
    fresh = _timing_run(tiny_cifar_dir, tmp_path, "MobileNet", extra=["--fresh"])
    assert fresh.returncode == 0 and list(pd.read_csv(tmp_path / "shared" / "results.csv")["model"]) == ["MobileNet"]


def test_concurrent_runs_into_one_folder_lose_nothing(tiny_cifar_dir, tmp_path):
    (tmp_path / "nw").mkdir()
    names = ["MobileNetV2", "MobileNet", "MobileNetV3Small"]
    procs = [subprocess.Popen([sys.executable, "-m", "benchmark", "--backbones", name, "--sizes", "32", "--time-only",
                               "--data-dir", tiny_cifar_dir, "--val-holdout", "100", "--train-size", "100",
                               "--val-size", "50", "--test-size", "50", "--time-images", "8",
                               "--weights-dir", str(tmp_path / "nw"), "--out", str(tmp_path / "shared"),
                               "--cache-dir", str(tmp_path / f"c-{name}"), "--no-report"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}) for name in names]
    for proc in procs:
        assert proc.wait(timeout=600) == 0, proc.stderr.read()
    assert sorted(pd.read_csv(tmp_path / "shared" / "results.csv")["model"]) == sorted(names)


def test_an_older_results_csv_is_imported_once(tiny_cifar_dir, tmp_path):
    res = _results(tmp_path)  # a schema-8 table written without the database, made a schema-3 one
    (res / "environment.json").unlink()
    frame = pd.read_csv(res / "results.csv")
    frame.drop(columns=["host", "device", "regime", "ft_epochs", "ft_train_s", "trainable_params", "dataset",
                        "logme", "hscore", "knn_acc", "logme_ms", "hscore_ms", "knn_acc_ms", "job_rss_mb"]) \
        .assign(schema_version=3).to_csv(res / "results.csv", index=False)
    (tmp_path / "nw").mkdir()
    done = _bench(tiny_cifar_dir, tmp_path, "--backbones", "MobileNet", "--sizes", "32", "--time-only",
                  "--weights-dir", str(tmp_path / "nw"), out="res")
    assert done.returncode == 0, done.stderr
    assert list(pd.read_csv(res / "results.csv")["model"]) == ["MobileNetV2", "MobileNet"]


def test_markup_in_a_shared_results_csv_is_refused(tmp_path):
    """Stored XSS: a `precision` cell of a shared results.csv once reached the page unescaped. The loader now
    checks every enumerated column, so `python -m report` names the cell and builds nothing."""
    import shutil

    results = tmp_path / "results"
    shutil.copytree(os.path.join(ROOT, "docs", "measured"), results)
    frame = pd.read_csv(results / "results.csv")
    frame.loc[0, "precision"] = "<img src=x onerror=alert(1)>"
    frame.to_csv(results / "results.csv", index=False)
    done = _run(["-m", "report", "--results", str(results), "--out", str(tmp_path / "out")])
    _clean_error(done, 2, "results.csv, line 2, column precision", "one of bf16, fp32")
    assert not (tmp_path / "out" / "index.html").exists()


REPORT_CASES = {  # python -m report once caught only two error types: each of these was a traceback
    "out not writable": (lambda results: None, ["--out", "/proc/report"], ["/proc/report", "writable --out"]),
    "confusion not JSON": (lambda results: _edit_csv(results, "confusion", "[[1, 2"), [],
                           ["line 2, column confusion", "a JSON list"]),
    "img_size blank": (lambda results: _edit_csv(results, "img_size", None), [], ["line 2, column img_size", "empty"]),
}


def _edit_csv(results, column, value):
    frame = pd.read_csv(results / "results.csv")
    frame[column] = frame[column].astype(object)
    frame.loc[0, column] = value
    frame.to_csv(results / "results.csv", index=False)


@pytest.mark.parametrize("case", list(REPORT_CASES))
def test_report_errors_are_one_line(case, tmp_path):
    import shutil

    edit, args, names = REPORT_CASES[case]
    results = tmp_path / "results"
    shutil.copytree(os.path.join(ROOT, "docs", "measured"), results)
    edit(results)
    done = _run(["-m", "report", "--results", str(results), *(args or ["--out", str(tmp_path / "out")])])
    _clean_error(done, 2, *names)


def test_predictions_of_different_protocols_do_not_collide():
    """examples.npz's keys once left out the split sizes, weights and data: a folder holding runs of two
    training sizes fed the paired test and the examples figure with another row's predictions."""
    from benchmark.core.results import prediction_key, row_predictions

    row = {"model": "MobileNetV2", "img_size": 32, "precision": "fp32", "head": "mlp", "regime": "frozen",
           "weights_id": "w", "data_fingerprint": "d", "train_size": 100, "val_size": 50, "test_size": 50}
    others = [{**row, "train_size": 200}, {**row, "weights_id": "v"}, {**row, "data_fingerprint": "e"},
              {**row, "regime": "finetune"}]
    keys = {prediction_key(r) for r in [row, *others]}
    assert len(keys) == 5
    predictions = {prediction_key(r): np.array([i]) for i, r in enumerate([row, *others])}
    assert [int(row_predictions(predictions, r)[0]) for r in [row, *others]] == [0, 1, 2, 3, 4]
    from_csv = pd.Series({**row, "img_size": 32.0, "train_size": 100.0, "val_size": 50.0, "test_size": 50.0})
    assert prediction_key(from_csv) == prediction_key(row)  # a row read back from results.csv finds its own
    assert int(row_predictions({"MobileNetV2|32|mlp": np.array([7])}, row)[0]) == 7  # an older examples.npz


def test_a_hand_edited_results_csv_is_refused_not_overwritten(tmp_path):
    """results.csv is an export of results.sqlite: a run once re-exported it over a user's edit, silently."""
    from benchmark.core.results import ResultsSchemaError
    from benchmark.core.results_db import ResultsDB

    row = {"model": "MobileNetV2", "img_size": 32, "precision": "fp32", "head": "mlp", "regime": "frozen",
           "weights": "imagenet", "weights_id": "w", "data_fingerprint": "d", "train_size": 100, "val_size": 50,
           "test_size": 50, "val_acc": 0.5, "test_acc": 0.5}
    db = ResultsDB(str(tmp_path))
    db.add(db.start_run({}), [row])
    db.close()
    ResultsDB(str(tmp_path)).close()  # untouched: fine
    csv = tmp_path / "results.csv"
    edited = csv.read_text().replace("0.5", "0.9", 1)
    csv.write_text(edited)
    with pytest.raises(ResultsSchemaError, match="results.csv changed since this tool wrote it"):
        ResultsDB(str(tmp_path))
    assert csv.read_text() == edited  # the edit is still there
    csv.unlink()  # the way out the message names: exported again by the next run
    db = ResultsDB(str(tmp_path))
    db.add(db.start_run({}), [{**row, "test_acc": 0.6}])
    db.close()
    assert len(pd.read_csv(csv)) == 1


def test_a_damaged_results_database_is_one_line(tiny_cifar_dir, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "results.sqlite").write_bytes(b"\x00not a database" * 100)
    done = _bench(tiny_cifar_dir, tmp_path, "--backbones", "MobileNetV3Small", "--time-only", "--sizes", "32")
    _clean_error(done, 2, "results.sqlite is not a readable results database", "--fresh")


def test_damaged_npz_files_leave_a_report_without_their_figures(tmp_path):
    """A truncated examples.npz or transfer.npz once broke the report (BadZipFile), and with it every later
    benchmark run's report. Now: one warning naming each file, and the page says which figures are missing."""
    import shutil

    results = tmp_path / "results"
    shutil.copytree(os.path.join(ROOT, "docs", "measured"), results)
    for name in ("examples.npz", "transfer.npz"):
        data = (results / name).read_bytes()
        (results / name).write_bytes(data[: len(data) // 2])
    done = _run(["-m", "report", "--results", str(results), "--out", str(tmp_path / "out")])
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "examples.npz is damaged" in done.stderr and "transfer.npz is damaged" in done.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    assert "fig_examples.png" not in page and "no examples.npz" in page


def test_disk_full_is_one_line_and_keeps_the_rows(warm, tiny_cifar_dir, tmp_path):
    """A write that runs out of room (here a 100 KiB file-size limit, as `ulimit -f 100` sets: examples.npz
    is larger) was a traceback. Now one line naming the file and the free space, exit 1, and the database
    keeps the rows written before it."""
    import resource
    import sqlite3

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (100 * 1024, 100 * 1024))

    done = _bench(tiny_cifar_dir, tmp_path, *warm, out="r2", preexec_fn=limit)
    _clean_error(done, 1, "could not write", "examples.npz", "File too large", "GiB free")
    with sqlite3.connect(tmp_path / "r2" / "results.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0] == 1  # the linear head's row


def test_fresh_while_another_run_writes_is_refused(tiny_cifar_dir, tmp_path):
    """--fresh once unlinked a live database under a concurrent run, whose exports then overwrote the new
    run's. Every run holds the folder's run lock shared; --fresh needs it alone."""
    import fcntl

    out = tmp_path / "r"
    out.mkdir()
    (out / "results.csv").write_text("kept\n")
    with open(out / ".run.lock", "a+") as other_run:
        fcntl.flock(other_run, fcntl.LOCK_SH)
        done = _bench(tiny_cifar_dir, tmp_path, "--backbones", "MobileNetV3Small", "--time-only", "--sizes", "32",
                      "--fresh")
    _clean_error(done, 2, "--fresh would delete the results of another run", str(out))
    assert (out / "results.csv").read_text() == "kept\n"
    done = _bench(tiny_cifar_dir, tmp_path, "--backbones", "MobileNetV3Small", "--time-only", "--sizes", "32",
                  "--fresh")  # alone, it starts the folder anew
    assert done.returncode == 0, done.stderr[-2000:]
    assert pd.read_csv(out / "results.csv")["model"].tolist() == ["MobileNetV3Small"]
