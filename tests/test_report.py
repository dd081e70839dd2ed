"""The report: built from a results fixture that a tiny benchmark run produced."""

import base64
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmark.core.results import best_rows, load_environment, load_results
from benchmark.run.config import RunConfig
from benchmark.run.runner import Runner
from report import build_report
from report.load import facts
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
                       cache_dir=str(root / "cache"), out=str(root / "results"), n_time_images=16, batch_size=16,
                       regimes=("frozen", "finetune"))
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
    assert len(sources) == 7  # examples, speed, size, time, sweep, regimes, confusion
    import re

    numbers = [int(n) for n in re.findall(r"<b>Figure (\d+)\.</b>", page)]
    assert numbers == list(range(1, 8))
    # one pretrained backbone: no correlation figure, named with the reason instead of a gap in the numbers
    assert "not drawn: imagenet top-1 against cifar-10" in page.lower() and "fewer than 2 pretrained backbones" in page
    assert 'name=viewport' in page and "<div class=scroll><table>" in page
    # the transferability scores of the two frozen feature sets against their heads (n = 2: tau, no rho)
    assert "<b>Table 3.</b>" in page and "LogME" in page and "k-NN accuracy" in page
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
    # Two numbers the sources cannot produce (timings vary per run, so pick them against this run's sources).
    from report.numbers import allowed_numbers

    allowed = allowed_numbers(frame, env)
    acc = next(v for v in ("97.3", "96.7", "95.9", "94.3", "93.1") if v not in allowed)
    speed = next(v for v in ("123.4", "321.7", "456.9", "789.1") if v not in allowed)
    tampered = page.replace("<h2>Discussion</h2>", f"<h2>Discussion</h2><p>accuracy {acc}% at {speed} images/s</p>")
    assert unsupported_numbers(tampered, frame, env) == sorted([acc, speed])


def _with_rows(tiny_results, folder, frame) -> str:
    """A copy of the results folder holding `frame` as its rows (the SQLite store left out, so the CSV is read)."""
    shutil.copytree(tiny_results, folder, ignore=shutil.ignore_patterns("results.sqlite*"))
    frame.to_csv(folder / "results.csv", index=False)
    return str(folder)


def test_a_folder_with_fine_tuned_rows_only(tiny_results, tmp_path):
    """--regime finetune alone writes no frozen rows: the page still builds, naming what it cannot draw."""
    import pandas as pd

    frame = pd.read_csv(os.path.join(tiny_results, "results.csv"))
    results = _with_rows(tiny_results, tmp_path / "results", frame[frame["regime"] == "finetune"])
    page_path = build_report(results, str(tmp_path / "out"), echo=lambda *_: None)
    page = open(page_path).read()
    assert "no frozen-regime timing in these results" in page and "finetune regime" in page
    assert unsupported_numbers(page, load_results(results), facts(results)) == []


def test_a_truth_folder(tiny_results, tmp_path):
    """--truth: the quick rows held against networks fine-tuned on all the images (Table 3's full columns, Table 5,
    the truth figure, the recommendation's check and the command that rebuilds the page)."""
    from benchmark.cli.report import main as report_main
    from benchmark.transfer.select import FINAL_IMG_SIZE

    truth = tmp_path / "truth"
    truth.mkdir()
    frame = pd.read_csv(os.path.join(tiny_results, "results.csv"))
    tuned = frame[frame["regime"] == "finetune"].assign(train_size=900)  # stands for the full protocol's rows
    tuned.to_csv(truth / "results.csv", index=False)
    out = tmp_path / "out"
    assert report_main(["--results", tiny_results, "--truth", str(truth), "--out", str(out)]) == 0
    page = open(out / "index.html").read()
    assert "<b>Table 5.</b>" in page and "all 900 training images" in page and "fig_quick_vs_truth.png" in page
    with Image.open(out / "fig_quick_vs_truth.png") as im:
        im.verify()
    assert "τ<sub>w</sub> full" in page and "quick frozen head @" in page
    assert f"--truth {truth}" in page  # Reproduction: the page's own command keeps its truth
    assert "Do cheap scores rank the backbones as the heads do?" in page
    # no transferability columns (docs/measured): the question says what is held against the truth
    scoreless = _with_rows(tiny_results, tmp_path / "scoreless", frame.assign(
        **{c: np.nan for c in ("logme", "hscore", "knn_acc", "logme_ms", "hscore_ms", "knn_acc_ms")}))
    assert report_main(["--results", scoreless, "--truth", str(truth), "--out", str(tmp_path / "o2")]) == 0
    page2 = open(tmp_path / "o2" / "index.html").read()
    assert "cheap scores" not in page2 and "Do ImageNet top-1 and the quick runs rank the backbones" in page2
    assert unsupported_numbers(page2, load_results(scoreless),
                               facts(scoreless, FINAL_IMG_SIZE, truth_dir=str(truth))) == []
    env = facts(tiny_results, FINAL_IMG_SIZE, truth_dir=str(truth))
    assert unsupported_numbers(page, load_results(tiny_results), env) == []
    check_in_browser(str(out / "index.html"))
    assert "fig_quick_vs_truth.png" not in open(build_report(tiny_results, str(tmp_path / "plain"),
                                                             echo=lambda *_: None)).read()
    frame[frame["regime"] == "frozen"].to_csv(truth / "results.csv", index=False)  # no fine-tuned row: one line
    assert report_main(["--results", tiny_results, "--truth", str(truth), "--out", str(out)]) == 2


def _with_transfer(tiny_results, tmp_path):
    """A copy of the results folder with a transfer.json and transfer.npz from 0-transfer.py."""
    import json as json_lib

    from benchmark.core.atomic import write_npz

    results = tmp_path / "results"
    shutil.copytree(tiny_results, results)
    rng = np.random.default_rng(0)
    labels = np.arange(100) % 10
    predictions = np.where(rng.random(100) < 0.8, labels, (labels + 1) % 10)
    write_npz(str(results / "transfer.npz"), images=rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8),
              labels=labels.astype(np.uint8), predictions=predictions.astype(np.uint8))
    record = {"backbone": "MobileNetV2", "img_size": 48, "regime": "finetune", "cut": "block_12_add", "members": [],
              "n_train": 200, "n_val": 100, "n_test": 100, "val_acc": 0.83, "test_acc": 0.8, "test_loss": 0.7,
              "file_size_mib": 9.25, "inference_s": 1.5, "inference_images": 100, "inference_s_per_10000": 150.0,
              "jpeg_robustness": {"plain": 0.8, "quality_50": 0.77, "quality_95": 0.79},
              "stages": [{"stage": "frozen head", "val_acc": 0.81, "test_acc": 0.78, "epochs": 4, "wall_s": 2.5,
                          "trainable_params": 660000},
                         {"stage": "fine-tuned", "val_acc": 0.83, "test_acc": 0.8, "epochs": 2, "wall_s": 12.5,
                          "trainable_params": 1500000},
                         {"stage": "ensemble", "val_acc": 0.835, "main_val_acc": 0.83, "kept": False, "wall_s": 5.5,
                          "members": [{"model": "MobileNet", "weight": 0.25, "val_acc": 0.7}]},
                         {"stage": "test-time mirroring", "val_acc": 0.84, "main_val_acc": 0.83, "kept": True,
                          "wall_s": 3.5, "test_acc": 0.8}],
              "test_mirroring": True,
              "jpeg_shift": {"quality": 50, "n_lost": 70, "n_gained": 40, "to_class": 6, "to_class_name": "frog",
                             "to_class_count": 40, "to_class_share": 0.5714, "class_share_before": 0.1,
                             "class_share_after": 0.13},
              "curves": {"head": {"accuracy": [0.5, 0.7, 0.8, 0.85], "val_accuracy": [0.6, 0.75, 0.8, 0.81]},
                         "fine_tune": {"accuracy": [0.9, 0.95], "val_accuracy": [0.82, 0.83]}}}
    (results / "transfer.json").write_text(json_lib.dumps(record))
    return results


def test_the_final_model_section_from_transfer_json(tiny_results, tmp_path):
    """transfer.json and transfer.npz in the results folder add the final-model section and put its
    predictions at the top; the figure numbers stay consecutive and every number is traced."""
    results = _with_transfer(tiny_results, tmp_path)
    page_path = build_report(str(results), str(tmp_path / "out"), echo=lambda *_: None)
    page = open(page_path).read()
    assert "<h2>The final model</h2>" in page and "Robustness to compression" in page
    numbers = [int(n) for n in __import__("re").findall(r"<b>Table (\d+)\.</b>", page)]
    assert numbers == list(range(1, len(numbers) + 1)) and "Stages of the final model" in page  # one number each
    assert "more than a point" in page  # a 3-point spread is called out
    assert "57% of the lost ones are called frog" in page and "gather on one class" in page
    assert "rises from 10.0% of all predictions to 13.0%" in page and "ensemble (not kept)" in page
    assert "its mirror image inside the saved model" in page and "test-time mirroring" in page
    first = _images(page_path)[0]
    assert first == "fig_final_examples.png"  # the top picture
    import re

    numbers = [int(n) for n in re.findall(r"<b>Figure (\d+)\.</b>", page)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) == 10
    assert unsupported_numbers(page, load_results(str(results)), facts(str(results))) == []
    check_in_browser(page_path)


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
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")


# Runs in the page once it has loaded: what the checks need, as JSON in an attribute --dump-dom prints.
_PROBE = """<script>
addEventListener('load', () => {
  const W = document.documentElement.clientWidth;
  const inScroll = e => e.closest('.scroll, pre');
  const r = {width: W, scrollWidth: document.documentElement.scrollWidth,
    images: [...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]),
    figures: [...document.querySelectorAll('figcaption b')].map(b => b.textContent),
    overflow: [...document.body.querySelectorAll('*')].filter(e => !inScroll(e)).filter(e => {
      const b = e.getBoundingClientRect(); return b.width > 0 && (b.right > W + 1 || b.left < -1); })
      .map(e => e.tagName + ' ' + (e.textContent || '').slice(0, 40)),
    resources: performance.getEntriesByType('resource').map(e => e.name)};
  document.body.setAttribute('data-probe', JSON.stringify(r));
});
</script>"""


def browser_probe(page_path: str, width: int) -> dict:
    """Loads a copy of the page (with `_PROBE`) in headless Chromium at `width` px and returns the probe."""
    import html as html_lib
    import json
    import re

    browser = _chromium()
    probe_page = os.path.join(os.path.dirname(page_path), f"_probe_{width}.html")
    with open(page_path) as f:
        page = f.read()
    with open(probe_page, "w") as f:
        f.write(page.replace("</body>", _PROBE + "</body>"))
    try:
        with tempfile.TemporaryDirectory() as profile:
            out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                                  "--disable-background-networking", "--disable-component-update", "--no-first-run",
                                  "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
                                  f"--window-size={width},2000", "--virtual-time-budget=10000", "--dump-dom",
                                  "file://" + os.path.abspath(probe_page)], capture_output=True, text=True, timeout=180)
    finally:
        os.unlink(probe_page)
    found = re.search(r'data-probe="([^"]*)"', out.stdout)
    assert found, f"chromium printed no probe (rc {out.returncode}): {out.stderr[-2000:]}"
    return json.loads(html_lib.unescape(found.group(1)))


def check_in_browser(page_path: str) -> None:
    """The report's browser checks, at a desktop and a phone width."""
    for width in (1280, 420):
        probe = browser_probe(page_path, width)
        assert probe["images"], "no images on the page"
        broken = [src for src, complete, natural in probe["images"] if not complete or natural <= 0]
        assert not broken, f"images that did not load at {width} px: {broken}"
        numbers = [int(text.split()[1].rstrip(".")) for text in probe["figures"]]
        assert numbers == list(range(1, len(numbers) + 1)), f"figure numbers not consecutive: {numbers}"
        assert not probe["overflow"], f"elements overflow the {width}-px viewport: {probe['overflow'][:5]}"
        assert probe["scrollWidth"] <= probe["width"] + 1, f"the page scrolls sideways at {width} px"
        external = [url for url in probe["resources"] if not url.startswith("file://")]
        assert not external, f"the page made requests off the machine: {external}"


def test_report_renders_in_a_real_browser(built):
    check_in_browser(built)


def test_the_browser_check_can_fail(built, tmp_path):
    """A wide element outside a scroll box, a missing image and a skipped figure number are each caught."""
    page = open(built).read()
    bad = tmp_path / "index.html"
    for src in _images(built):
        shutil.copy(os.path.join(os.path.dirname(built), src), tmp_path / src)
    bad.write_text(page.replace("<h2>Abstract</h2>", "<h2>Abstract</h2><div style='width:2000px'>wide</div>"))
    with pytest.raises(AssertionError, match="overflow"):
        check_in_browser(str(bad))
    bad.write_text(page.replace(_images(built)[0], "nowhere.png", 1))
    with pytest.raises(AssertionError, match="did not load"):
        check_in_browser(str(bad))
    bad.write_text(page.replace("<b>Figure 2.</b>", "<b>Figure 5.</b>"))
    with pytest.raises(AssertionError, match="not consecutive"):
        check_in_browser(str(bad))


def test_committed_report_renders_in_a_real_browser():
    """The report committed under docs/ opens from the repo with every figure, at both widths."""
    page = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "report", "index.html")
    if not os.path.exists(page):
        pytest.skip("no committed report at docs/report")
    check_in_browser(page)


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
    """A real (tiny) `python -m benchmark.epoch_ratio` run adds its figure and its numbers to the report."""
    from benchmark.epoch_ratio import main
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
    assert "fig_epoch_ratio.png" in _images(page_path) and "Why cache" in page
    with Image.open(tmp_path / "out" / "fig_epoch_ratio.png") as im:
        im.verify()
    frame = load_results(str(results))
    assert unsupported_numbers(page, frame, facts(str(results))) == []
    # without the measurement the same numbers would be unsupported
    assert unsupported_numbers(page, frame, load_environment(str(results))) != []


def test_epoch_ratio_cli_rejects_bad_input(tmp_path, capsys):
    from benchmark.epoch_ratio import main

    assert main(["--backbone", "NoSuchNet", "--out", str(tmp_path)]) == 2
    assert "NoSuchNet" in capsys.readouterr().err
    assert main(["--backbone", "Xception", "--size", "32", "--out", str(tmp_path)]) == 2
    assert "at least 71" in capsys.readouterr().err
    assert not os.listdir(tmp_path)



def _config_of(command: str):
    """The RunConfig `python -m benchmark` makes of `command` (its flags after the program)."""
    import shlex

    from benchmark.cli.bench import build_parser, config_from_args

    return config_from_args(build_parser().parse_args(shlex.split(command)[3:]))


@pytest.mark.parametrize("config", [
    RunConfig(backbones=("MobileNetV2",)),
    RunConfig(backbones=("DenseNet121", "MobileNet"), img_sizes=(96, 160, "native"), isolate=True, out="r"),
    RunConfig(backbones=tuple(__import__("backbones").names()), regimes=("frozen", "finetune"), isolate=True),
    RunConfig(backbones=("Xception",), img_sizes=("native",), n_train=None, n_val=None, n_test=None,
              n_time_images=256, isolate=True, data_dir="/data", weights_from="/w", cache_dir="/c", worker_jobs=1,
              worker_max_rss_mb=8000),
    RunConfig(backbones=("MobileNetV2", "MobileNetV3Small"), img_sizes=(32, "native"), n_train=None, n_val=500,
              n_test=None, n_val_holdout=4000, seed=3, batch_size=16, heads=("mlp",), n_time_images=400,
              chunk_size=1024, precision="bf16", isolate=False),
    RunConfig(backbones=("ResNet50",), time_only=True, isolate=True, executor="dask-local:2"),
])
def test_benchmark_command_round_trips(config):
    """A run's recorded settings -> its command line -> the parser gives the same RunConfig (the folders
    and the executor are the reader's own); only flags the parser needs are written."""
    import dataclasses
    import json

    from benchmark.cli.bench import MACHINE_SETTINGS, command_line

    recorded = json.loads(json.dumps(vars(config)))  # as environment.json holds it
    command = command_line(recorded, config.out)
    assert command.startswith("python -m benchmark ") and f"--out {config.out}" in command
    parsed = _config_of(command)
    assert dataclasses.replace(parsed, **{k: getattr(config, k) for k in MACHINE_SETTINGS}) == config
    assert "--data-dir" not in command and "--executor" not in command
    assert _config_of(command_line(recorded)).out == "results"  # without a folder: the parser's own


def test_benchmark_command_writes_only_what_differs_from_the_parser():
    from benchmark.cli.bench import command_line

    quick = vars(RunConfig(backbones=("MobileNetV2",), isolate=True))
    assert command_line(quick) == "python -m benchmark --backbones MobileNetV2"
    assert command_line({**quick, "img_sizes": [160], "seed": 1}) == \
        "python -m benchmark --backbones MobileNetV2 --sizes 160 --seed 1"
    assert command_line({**quick, "n_train": None, "n_val": None, "n_test": None, "img_sizes": ["native"],
                         "n_time_images": 256}) == "python -m benchmark --backbones MobileNetV2 --full"
    assert command_line({**quick, "time_budget_s": 5.0}) is None  # no flag sets it: a run started from Python
    assert command_line({"imported_from": "results.csv"}) is None and command_line({}) is None


@pytest.mark.parametrize("record", [
    {"backbone": "DenseNet121", "img_size": 160, "regime": "finetune", "cut": "pool3_pool",
     "fine_tune_settings": {"batch_size": 64, "epochs": 5, "flip": True, "label_smoothing": 0.1,
                            "learning_rate": 0.0001, "patience": 2, "shift": 1},
     "members": [], "test_mirroring": False, "n_train": 45000, "n_val": 5000, "n_test": 10000,
     "model_file": "cifar10.h5"},
    {"backbone": "MobileNetV2", "img_size": 96, "regime": "finetune", "cut": "block_12_add",
     "fine_tune_settings": {"batch_size": 64, "epochs": 3, "flip": False, "label_smoothing": 0.0,
                            "learning_rate": 0.0003, "patience": 2, "shift": 0},
     "members": ["MobileNet", "Xception"], "test_mirroring": True, "n_train": 2000, "n_val": 1000, "n_test": 500,
     "model_file": "other.h5"},
    {"backbone": "Xception", "img_size": 224, "regime": "frozen", "cut": None, "fine_tune_settings": None,
     "members": [], "test_mirroring": True, "n_train": 45000, "n_val": 5000, "n_test": 10000},
])
def test_transfer_command_round_trips(record):
    """transfer.json -> its 0-transfer.py command -> the parser gives back the recorded model's settings."""
    import dataclasses
    import shlex

    from benchmark.cli.commands import transfer_command
    from benchmark.cli.transfer import build_parser
    from benchmark.transfer.train import TransferConfig

    command = transfer_command(record)
    assert command.startswith("python 0-transfer.py ")
    args = build_parser().parse_args(shlex.split(command)[2:])
    assert (args.backbone, int(args.size), args.cut) == (record["backbone"], record["img_size"], record["cut"])
    assert args.fine_tune is (record["regime"] == "finetune") and args.ensemble == record["members"]
    assert args.mirror == ("on" if record["test_mirroring"] else "off")
    assert (args.train_size, args.val_holdout, args.test_size) == (record["n_train"], record["n_val"], record["n_test"])
    assert args.output == record.get("model_file", "cifar10.h5")
    if record["fine_tune_settings"]:
        config = TransferConfig(ft_epochs=args.ft_epochs, ft_lr=args.ft_lr, ft_shift=args.ft_shift,
                                ft_schedule=args.ft_schedule, flip=not args.no_flip,
                                label_smoothing=args.label_smoothing)
        assert dataclasses.asdict(config.fine_tune()) == {"schedule": "constant", "precision": "fp32",
                                                          **record["fine_tune_settings"]}


def test_transfer_command_writes_only_what_differs_from_the_parser():
    """The measured default run: the flags whose recorded value the parser's default does not give."""
    import json

    from benchmark.cli.commands import transfer_command

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "docs", "measured", "transfer.json")) as f:
        record = json.load(f)
    assert transfer_command(record) == "python 0-transfer.py"  # the default, as measured
    assert transfer_command({}) is None


def test_reproduction_and_the_final_result_from_the_command_line(tiny_results, tmp_path):
    """`python -m report` passes the command lines' builders: the abstract states the final model's result,
    the size rule quotes 0-transfer.py's own constant, and Reproduction gives each run's command from its
    recorded settings, 0-transfer.py's from transfer.json, and the report's."""
    import html as html_lib

    from benchmark.cli.bench import MACHINE_SETTINGS
    from benchmark.cli.report import main
    from benchmark.transfer.select import FINAL_IMG_SIZE

    results, out = _with_transfer(tiny_results, tmp_path), tmp_path / "out"
    assert main(["--results", str(results), "--out", str(out), "--author", "A. Author"]) == 0
    page = (out / "index.html").read_text()
    abstract = page[page.index("<p class=abstract>"):page.index("<h2>Introduction</h2>")]
    assert ("The final model that <code>0-transfer.py</code> trained, MobileNetV2 at 48 px, fine-tuned above "
            "block_12_add, reaches <b>80.0%</b> test accuracy on 100 test images.") in abstract
    assert f"at the scored size or {FINAL_IMG_SIZE} px, whichever is larger" in page
    assert "native size, whichever" not in page
    lines = html_lib.unescape(page[page.index("<pre>") + len("<pre>"):page.index("</pre>")]).splitlines()
    run = [line.split("    #")[0] for line in lines if line.startswith("python -m benchmark ")]
    assert len(run) == 1
    recorded, parsed = load_environment(str(results))["config"], vars(_config_of(run[0]))
    assert parsed["out"] == str(results)
    assert all(parsed[k] == (tuple(v) if isinstance(v, list) else v) for k, v in recorded.items()
               if k not in (*MACHINE_SETTINGS, "out"))
    assert ("python 0-transfer.py --backbone MobileNetV2 --size 48 --fine-tune --cut block_12_add --mirror on "
            "--train-size 200 --val-holdout 100 --test-size 100") in lines[1]
    assert lines[-1] == f"python -m report --results {results} --out {out}"
    assert unsupported_numbers(page, load_results(str(results)), facts(str(results), FINAL_IMG_SIZE)) == []


def test_a_library_call_names_no_commands(built):
    """Without the command lines' builders the page does not guess commands; it says so."""
    page = open(built).read()
    section = page[page.index("<h2>Reproduction</h2>"):page.index("<h2>References</h2>")]
    assert "names no commands" in section and "<pre>" not in section and "python -m benchmark" not in section


def test_every_value_from_the_results_folder_is_escaped(tiny_results, tmp_path):
    """Markup in environment.json, transfer.json or epoch_ratio.json reaches the page as text."""
    import json

    results = _with_transfer(tiny_results, tmp_path)
    env = json.loads((results / "environment.json").read_text())
    env.update(cpu_count="<i>2</i>", cpu_model="<b>cpu</b>")
    env["heads"]["mlp"]["hidden"] = "<u>512</u>"
    (results / "environment.json").write_text(json.dumps(env))
    record = json.loads((results / "transfer.json").read_text())
    record.update(img_size="<s>48</s>", n_train="<em>200</em>")
    record["jpeg_shift"]["quality"] = "<q>50</q>"
    (results / "transfer.json").write_text(json.dumps(record))
    frame = pd.read_csv(results / "results.csv")  # the free-text columns of a shared results.csv
    for column, markup in (("family", "<b>fam</b>"), ("host", "<i>host</i>"), ("device", "<u>dev</u>"),
                           ("weights_id", "<s>w</s>"), ("data_fingerprint", "<q>d</q>")):
        frame[column] = markup
    frame.to_csv(results / "results.csv", index=False)
    page = open(build_report(str(results), str(tmp_path / "out"), echo=lambda *_: None)).read()
    for raw in ("<i>2</i>", "<b>cpu</b>", "<u>512</u>", "<s>48</s>", "<em>200</em>", "<q>50</q>", "<b>fam</b>",
                "<i>host</i>", "<u>dev</u>", "<s>w</s>", "<q>d</q>"):
        assert raw not in page
    assert "&lt;i&gt;2&lt;/i&gt;" in page and "&lt;s&gt;48&lt;/s&gt;" in page and "&lt;q&gt;50&lt;/q&gt;" in page
    assert "&lt;u&gt;512&lt;/u&gt;" in page and "&lt;em&gt;200&lt;/em&gt;" in page and "&lt;b&gt;cpu" in page
