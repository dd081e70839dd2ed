"""The report of a results folder that holds rows of two datasets: CIFAR-10 and a 3-class "mini" of 48-px
images. The folder is written by hand (no model is trained): rows through the results database, as runs
write them, and each dataset's examples file."""

import html as html_lib
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

import backbones
from benchmark.core.data import CLASSES, Split
from benchmark.core.metrics import confusion_matrix
from benchmark.core.results import prediction_key, write_examples
from benchmark.core.results_db import ResultsDB
from benchmark.transfer.select import FINAL_IMG_SIZE
from report import build_report
from report.load import choose_dataset, load
from report.numbers import unsupported_numbers
from test_report import _images, _with_transfer, check_in_browser

MINI = ("apple", "bee", "cup")
PRETRAINED = ("MobileNetV2", "MobileNet", "DenseNet121")


def _rows(dataset: str, labels: np.ndarray, skill: float, rng) -> tuple[list[dict], dict]:
    """Results rows of `dataset` as a run writes them: three pretrained backbones at 96 px with both heads, and
    one timed with random weights; and each scored row's predictions on the test `labels` (n_test,)."""
    n_classes = int(labels.max()) + 1
    rows, predictions = [], {}
    for i, name in enumerate(PRETRAINED + ("ResNet50",)):
        spec = backbones.get(name)
        sps = 40.0 + 25 * i
        shared = {"model": name, "img_size": 96, "precision": "fp32", "regime": "frozen", "family": spec.family,
                  "param_count": spec.param_count, "feature_dim": spec.feature_dim,
                  "imagenet_top1": spec.imagenet_top1, "samples_per_sec": sps, "ms_per_img": round(1000 / sps, 3),
                  "images_timed": 64, "extract_wall_s": 3.5, "batch_size": 32, "peak_rss_mb": 900.0 + 10 * i,
                  "gflops_per_img": 0.5 + i, "gflops_per_sec": round((0.5 + i) * sps, 2), "matmul_peak_gflops": 250.0,
                  "pct_of_peak": round(100 * (0.5 + i) * sps / 250.0, 1), "from_cache": False, "seed": 0,
                  "dataset": dataset, "data_fingerprint": f"fp-{dataset}", "host": "box", "device": "cpu"}
        if name not in PRETRAINED:
            rows.append({**shared, "head": "none", "weights": "random", "weights_id": "random"})
            continue
        for j, head in enumerate(("linear", "mlp")):
            right = rng.random(len(labels)) < skill - 0.08 * i + 0.03 * j
            pred = np.where(right, labels, (labels + 1) % n_classes)
            acc = float(right.mean())
            cm = confusion_matrix(labels, pred, n_classes)
            row = {**shared, "head": head, "weights": "imagenet", "weights_id": "imagenet", "train_size": 120,
                   "val_size": 30, "test_size": len(labels), "val_acc": round(acc + 0.01, 4), "test_acc": acc,
                   "test_ci_low": max(0.0, acc - 0.06), "test_ci_high": min(1.0, acc + 0.06), "head_epochs": 7,
                   "head_train_s": 1.25, "trainable_params": spec.feature_dim * n_classes + n_classes,
                   "per_class_acc": json.dumps((np.diag(cm) / cm.sum(axis=1)).tolist()),
                   "confusion": json.dumps(cm.tolist())}
            rows.append(row)
            predictions[prediction_key(row)] = pred
    return rows, predictions


def _environment(dataset: str | None, size: int, class_names) -> dict:
    """A run's environment; `dataset=None` writes one from before the dataset was recorded (CIFAR-10)."""
    env = {"cpu_count": 2, "cpu_model": "test cpu", "python": "3", "date": "2025-01-01", "git_sha": "abc",
           "data_lossy_jpeg": False, "config": {"seed": 0},
           "heads": {"linear": {"learning_rate": 0.001, "batch_size": 64, "max_epochs": 30, "patience": 3},
                     "mlp": {"hidden": 512, "dropout": 0.5}}}
    if dataset is not None:
        env.update(dataset=dataset, dataset_info={
            "name": dataset, "source": f"/data/{dataset}", "class_names": list(class_names), "n_train_pool": 150,
            "n_test": 60, "img_size": size, "lossy_jpeg": False, "data_size": size, "n_skipped": 0})
    return env


def _add_run(folder: str, dataset: str, recorded: str | None, class_names, size: int, n_test: int, skill: float):
    """One run of `dataset` into `folder`: its rows through the database and its examples file."""
    rng = np.random.default_rng(len(class_names))
    labels = np.arange(n_test) % len(class_names)
    rows, predictions = _rows(dataset, labels, skill, rng)
    images = rng.integers(0, 256, (n_test, size, size, 3), dtype=np.uint8)
    env = _environment(recorded, size, class_names)
    db = ResultsDB(folder)
    try:
        db.add(db.start_run(env), rows, env)
    finally:
        db.close()
    write_examples(folder, Split("test", images, labels), predictions, dataset)


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    """A folder with CIFAR-10 rows (an older run, whose environment does not name its dataset), then rows of
    "mini" (the latest run: environment.json is mini's), and 0-transfer.py's CIFAR-10 model beside them."""
    root = tmp_path_factory.mktemp("two")
    folder = str(root / "built")
    _add_run(folder, "cifar10", None, CLASSES, 32, 100, 0.8)
    _add_run(folder, "mini", "mini", MINI, 48, 60, 0.9)
    return str(_with_transfer(folder, root))


@pytest.fixture(scope="module")
def pages(two_datasets, tmp_path_factory):
    """The default page and mini's, built by `python -m report` (with the command lines' builders)."""
    from benchmark.cli.report import main

    out = tmp_path_factory.mktemp("pages")
    assert main(["--results", two_datasets, "--out", str(out / "default"), "--author", "A"]) == 0
    assert main(["--results", two_datasets, "--dataset", "mini", "--author", "A"]) == 0
    return str(out / "default" / "index.html"), os.path.join(two_datasets, "report-mini", "index.html")


def _section(page: str, start: str, end: str) -> str:
    return page[page.index(start):page.index(end)]


def test_the_default_page_covers_cifar10_and_names_the_other_dataset(pages, two_datasets):
    page = open(pages[0]).read()
    assert "<h1>Which ImageNet backbone for CIFAR-10?" in page
    note = re.search(r"<p class=muted>This page covers CIFAR-10 only;.*?</p>", page).group(0)
    assert "rows of mini" in note and f"python -m report --results {two_datasets} --dataset mini" in note
    assert page.index(note) < page.index("<h2>Abstract</h2>")  # near the top
    assert "<h2>The final model</h2>" in page and "Krizhevsky" in page
    frame = load(two_datasets).frame
    assert set(frame["dataset"]) == {"cifar10"} and len(frame) == 7  # mini's rows stay out
    assert unsupported_numbers(page, frame, load(two_datasets, FINAL_IMG_SIZE).env) == []
    check_in_browser(pages[0])


def test_a_page_takes_its_own_dataset_s_environment(two_datasets, tmp_path):
    """environment.json is the latest run's (mini's): CIFAR-10's page takes its own run's record from the
    database, and without the database it keeps none of what mini's record says about mini's data."""
    import shutil

    assert load(two_datasets).env["dataset"]["class_names"] == list(CLASSES)
    assert load(two_datasets).env.get("dataset_info") is None  # the CIFAR-10 run's own record had none
    copy = tmp_path / "copy"
    shutil.copytree(two_datasets, copy, ignore=shutil.ignore_patterns("results.sqlite*"))
    env = load(str(copy)).env
    assert "dataset_info" not in env and env["dataset"]["class_names"] == list(CLASSES) and env["runs"] == []
    assert load(str(copy), dataset="mini").env["dataset_info"]["source"] == "/data/mini"


def test_the_page_of_the_other_dataset(pages, two_datasets):
    page = open(pages[1]).read()
    assert "<h1>Which ImageNet backbone for mini?" in page
    abstract = _section(page, "<p class=abstract>", "<h2>Introduction</h2>")
    assert "feature extractors for mini (3 classes)" in abstract and "CIFAR-10" not in abstract
    assert "0-transfer.py</code> trained" not in abstract  # the final model's result is CIFAR-10's
    assert "<h2>The final model</h2>" not in page and "Krizhevsky" not in page and "cifar10.h5" not in page
    assert "mini's 48×48 images upscaled (bilinear)" in page and "images stored at 48×48 px" in page
    assert "held out of its training split" in page and "official test set" not in page
    assert "rows of CIFAR-10, whose page" in page
    assert f"python -m report --results {two_datasets} --dataset cifar10" in page
    assert "ImageNet top-1 against mini test accuracy" in page  # the correlation figure's caption
    results = load(two_datasets, dataset="mini")
    assert set(results.frame["dataset"]) == {"mini"} and results.dataset["class_names"] == list(MINI)
    assert results.examples[0].shape[1:] == (48, 48, 3) and results.final is None
    assert unsupported_numbers(page, results.frame, results.env) == []
    lines = html_lib.unescape(_section(page, "<pre>", "</pre>")).splitlines()
    assert lines[-1] == f"python -m report --results {two_datasets} --dataset mini"  # its own default --out
    check_in_browser(pages[1])


def test_the_other_dataset_s_figures_have_its_classes(pages):
    """mini's confusion figure is 3 x 3 and its examples are mini's 48-px images: drawn from mini's rows, they
    differ from CIFAR-10's, and the axes carry mini's class names (checked on the figure itself)."""
    from report import figures

    folder = os.path.dirname(pages[1])
    assert {"fig_confusion.png", "fig_examples.png", "fig_imagenet_vs_cifar.png"} <= set(_images(pages[1]))
    results = load(os.path.dirname(folder), dataset="mini")
    fig = figures.confusion(results.frame, results.dataset["class_names"])
    matrix, bars = fig.axes[0], fig.axes[1]
    assert [t.get_text() for t in matrix.get_xticklabels()] == list(MINI)
    assert [t.get_text() for t in bars.get_yticklabels()] == list(MINI)
    assert len(matrix.texts) == 9  # a number in every cell
    with Image.open(os.path.join(folder, "fig_confusion.png")) as im:
        im.verify()


def test_the_dataset_is_chosen_as_documented(two_datasets):
    import pandas as pd

    frame = pd.DataFrame({"dataset": ["mini", "cifar10", "flowers"]})
    assert choose_dataset("R", frame) == "cifar10"
    assert choose_dataset("R", frame[frame["dataset"] != "cifar10"]) == "flowers"  # the first by name
    assert choose_dataset("R", frame[frame["dataset"] == "mini"]) == "mini"  # the only one
    with pytest.raises(ValueError, match=r"--dataset foo: no rows of that dataset in R/results.csv; it holds rows "
                                         r"of: cifar10, flowers, mini"):
        choose_dataset("R", frame, "foo")
    assert load(two_datasets).dataset_flag is None and load(two_datasets, dataset="mini").dataset_flag == "mini"


def test_an_unknown_dataset_is_one_line_and_exit_2(two_datasets, capsys):
    from benchmark.cli.report import main

    before = sorted(os.listdir(two_datasets))
    assert main(["--results", two_datasets, "--dataset", "foo"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--dataset foo" in err and "cifar10, mini" in err
    assert sorted(os.listdir(two_datasets)) == before  # no report folder made


def test_the_report_command_names_the_dataset_only_when_given():
    from benchmark.cli.report import command_line

    assert command_line("r", os.path.join("r", "report")) == "python -m report --results r"
    mini = "python -m report --results r --dataset mini"
    assert command_line("r", os.path.join("r", "report-mini"), "mini") == mini
    assert command_line("r", "x", "mini") == "python -m report --results r --dataset mini --out x"
    assert command_line("r", os.path.join("r", "report-mini")) == "python -m report --results r --out r/report-mini"


def test_a_library_call_takes_the_dataset(two_datasets, tmp_path):
    page = open(build_report(two_datasets, str(tmp_path), echo=lambda *_: None, dataset="mini")).read()
    assert "<h1>Which ImageNet backbone for mini?" in page and "names no commands" in page


@pytest.mark.parametrize("n_classes", [2, 25, 100])
def test_the_confusion_figure_stays_legible_for_any_number_of_classes(n_classes):
    from report import figures

    rng = np.random.default_rng(n_classes)
    labels = np.repeat(np.arange(n_classes), 5)
    cm = confusion_matrix(labels, np.where(rng.random(len(labels)) < 0.7, labels, 0), n_classes)
    names = [f"class {i}" for i in range(n_classes)]
    fig = figures.confusion_figure(cm, "a row", names)
    matrix = fig.axes[0]
    assert [t.get_text() for t in matrix.get_yticklabels()] == names
    assert len(matrix.texts) == (n_classes ** 2 if n_classes <= figures.CELL_NUMBERS_UP_TO else 0)
    assert min(t.get_fontsize() for t in matrix.get_yticklabels()) >= 3.5
