"""The report: built from a results fixture that a tiny benchmark run produced."""

import base64
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
from PIL import Image

from benchmark.core.results import best_rows, load_environment, load_results
from benchmark.run.config import RunConfig
from benchmark.run.runner import Runner
from report import build_report
from report.build import facts
from report.numbers import unsupported_numbers


@pytest.fixture(scope="module")
def tiny_results(tiny_cifar_dir, tmp_path_factory):
    """A real (tiny) benchmark run: MobileNetV2 with a loadable weights file, MobileNetV3Small without."""
    import keras

    root = tmp_path_factory.mktemp("report")
    weights = root / "weights"
    weights.mkdir()
    keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg") \
        .save_weights(str(weights / "MobileNetV2_notop_imagenet.weights.h5"))
    config = RunConfig(backbones=("MobileNetV2", "MobileNetV3Small"), img_sizes=(32, 40), n_train=200, n_val=50,
                       n_test=100, n_val_holdout=100, data_dir=tiny_cifar_dir, weights_from=str(weights),
                       cache_dir=str(root / "cache"), out=str(root / "results"), n_time_images=16, batch_size=16)
    Runner(config, echo=lambda *_: None).run()
    return str(root / "results")


@pytest.fixture(scope="module")
def built(tiny_results, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("out"))
    return build_report(tiny_results, out, echo=lambda *_: None)


def _images(page_path):
    import re

    page = open(page_path).read()
    return re.findall(r'<img[^>]+src="([^"]+)"', page)


def test_page_and_figures(built):
    page = open(built).read()
    assert page.startswith("<!DOCTYPE html>")
    for section in ("Abstract", "Introduction", "Materials and methods", "Results", "Discussion", "Conclusion",
                    "References", "Kornblith", "Keras Applications"):
        assert section in page
    assert "http://" not in page.replace("https://keras.io", "") and "<script" not in page  # no network
    sources = _images(built)
    assert len(sources) == 6
    assert page.index("<img") < page.index("Abstract")  # a figure at the top
    for src in sources:
        if src.startswith("data:"):
            Image.open(__import__("io").BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
        else:
            path = os.path.join(os.path.dirname(built), src)
            assert os.path.isfile(path), src
            with Image.open(path) as im:
                im.verify()


def test_every_number_comes_from_the_results(built, tiny_results):
    page = open(built).read()
    frame, env = load_results(tiny_results), facts(tiny_results)
    assert unsupported_numbers(page, frame, env) == []
    # the check can fail: a number that is not in the results is caught
    tampered = page.replace("<h2>Discussion</h2>", "<h2>Discussion</h2><p>accuracy 97.3% at 123.4 images/s</p>")
    assert unsupported_numbers(tampered, frame, env) == ["123.4", "97.3"]


def test_lossless_data_is_not_called_lossy(built):
    assert "lossy JPEG" not in open(built).read()  # the fixture is synthetic, not the JPEG copy


def test_report_cli_errors(tmp_path):
    import sys

    out = subprocess.run([sys.executable, "-m", "report", "--results", str(tmp_path / "none")],
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and "no results" in out.stderr


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_renders_in_a_real_browser(built):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    shot = os.path.join(os.path.dirname(built), "screenshot.png")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={profile}",
                        "--hide-scrollbars", "--window-size=1100,1600", f"--screenshot={shot}",
                        "file://" + os.path.abspath(built)], capture_output=True, timeout=120)
    assert os.path.isfile(shot), "chromium wrote no screenshot"
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 10, "the screenshot is blank"
    # dark pixels: text and figures were drawn, not just a white page
    assert (pixels < 128).mean() > 0.01
    print(f"screenshot: {shot}")


def test_key_figure_labels_do_not_overlap_with_40_backbones():
    import backbones
    from report import figures

    rng = np.random.default_rng(0)
    rows = []
    for name in backbones.names():  # 40 pretrained rows, crowded on purpose
        spec = backbones.get(name)
        acc = 0.7 + 0.1 * rng.random()
        rows.append({"model": name, "img_size": 128, "head": "linear", "weights": "imagenet", "family": spec.family,
                     "param_count": spec.param_count, "samples_per_sec": 10 ** rng.uniform(0, 3),
                     "ms_per_img": 1.0, "val_acc": acc, "test_acc": acc, "test_ci_low": acc - 0.02,
                     "test_ci_high": acc + 0.02})
    import pandas as pd

    fig = figures.accuracy_vs_throughput(pd.DataFrame(rows))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.axes[0].texts]
    frame = pd.DataFrame(rows)
    best = best_rows(frame)
    expected = figures._labels_to_draw(best, figures.pareto_front(best, "samples_per_sec", "test_acc"))
    assert len(texts) == len(expected) >= 5  # only the Pareto points and the best of each family
    boxes = [figures.text_box(t, renderer) for t in texts]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())


def test_epoch_ratio_figure_and_text(tiny_results, tmp_path):
    """A real (tiny) `python -m benchmark.epoch_ratio` run adds Figure 7 and its numbers to the report."""
    from benchmark.cli.epoch_ratio import main
    from benchmark.core.results import EPOCH_RATIO_FILE, load_epoch_ratio

    results = tmp_path / "results"
    shutil.copytree(tiny_results, results)
    assert main(["--backbone", "MobileNetV3Small", "--size", "32", "--images", "64", "--repeats", "2",
                 "--out", str(results)]) == 0
    measured = load_epoch_ratio(str(results))
    assert measured["n_images"] == 64 and len(measured["ratio"]["values"]) == 2
    assert all(v > 0 for v in measured["head_epoch_s"]["values"] + measured["end_to_end_epoch_s"]["values"])
    assert sorted(os.listdir(results)).count(EPOCH_RATIO_FILE) == 1
    page_path = build_report(str(results), str(tmp_path / "out"), echo=lambda *_: None)
    page = open(page_path).read()
    assert "fig7_epoch_ratio.png" in _images(page_path) and "Why cache" in page
    with Image.open(tmp_path / "out" / "fig7_epoch_ratio.png") as im:
        im.verify()
    frame = load_results(str(results))
    assert unsupported_numbers(page, frame, facts(str(results))) == []
    # without the measurement the same numbers would be unsupported
    assert unsupported_numbers(page, frame, load_environment(str(results))) != []


def test_epoch_ratio_cli_rejects_bad_input(tmp_path, capsys):
    from benchmark.cli.epoch_ratio import main

    assert main(["--backbone", "NoSuchNet", "--out", str(tmp_path)]) == 2
    assert "NoSuchNet" in capsys.readouterr().err
    assert main(["--backbone", "Xception", "--size", "32", "--out", str(tmp_path)]) == 2
    assert "at least 71" in capsys.readouterr().err
    assert not os.listdir(tmp_path)

