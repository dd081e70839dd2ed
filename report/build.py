"""Builds the self-contained HTML report and the journal-style write-up.

`build_report(results_dir, out_dir)` reads results.csv, environment.json and
examples.npz, draws the figures as PNG files beside index.html, and writes
the page. No scripts, fonts or styles come from the network.
"""

from __future__ import annotations

import html
import os

import pandas as pd

from benchmark.core.atomic import atomic_path, write_text
from benchmark.core.results import (TOP_SCORER_RULE, best_rows, load_environment, load_epoch_ratio, load_examples,
                                    load_results, top_scorer)

from . import figures
from .numbers import fixed, millions, pct

FIGURES = (
    ("fig1_accuracy_vs_throughput.png", "accuracy_vs_throughput",
     "Test accuracy against extraction throughput. Error bars are bootstrap 95% intervals; the orange line is "
     "the Pareto front; hollow markers on the time axis are backbones timed with random weights."),
    ("fig2_accuracy_vs_params.png", "accuracy_vs_params", "Test accuracy against the frozen base's parameter count."),
    ("fig3_time_per_image.png", "time_per_image", "Extraction time per image, sorted."),
    ("fig4_resolution_sweep.png", "resolution_sweep", "Accuracy and throughput against input size."),
    ("fig5_confusion.png", "confusion", "Confusion matrix and per-class accuracy of the top scorer."),
    ("fig6_examples.png", "examples", "Test images with the top scorer's predictions."),
)
EPOCH_FIGURE = "fig7_epoch_ratio.png"

CSS = """
body{font-family:Georgia,'Times New Roman',serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222;line-height:1.5}
h1{font-size:1.8em;margin-bottom:.2em} h2{border-bottom:1px solid #ccc;margin-top:1.6em}
.authors{color:#555;font-style:italic} .abstract{background:#f6f6f6;padding:.8em 1.2em;border-left:4px solid #888}
figure{margin:1.2em 0;text-align:center} figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.9em;color:#444;text-align:left}
table{border-collapse:collapse;font-size:.85em;margin:1em 0;width:100%} th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th:first-child,td:first-child{text-align:left} .muted{color:#777}
"""


def _e(text) -> str:
    return html.escape(str(text))


def _figure(number: int, filename: str, caption: str) -> str:
    return (f'<figure><img src="{filename}" alt="Figure {number}">'
            f"<figcaption><b>Figure {number}.</b> {_e(caption)}</figcaption></figure>")


def _results_table(frame: pd.DataFrame) -> str:
    scored = frame[(frame["weights"] == "imagenet") & frame["test_acc"].notna()]
    scored = scored.sort_values(["test_acc", "samples_per_sec"], ascending=False)
    head = ("<tr><th>backbone</th><th>size (px)</th><th>head</th><th>val acc (%)</th><th>test acc (%)</th>"
            "<th>95% CI (%)</th><th>images/s</th><th>params (M)</th></tr>")
    body = "".join(
        f"<tr><td>{_e(r['model'])}</td><td>{int(r['img_size'])}</td><td>{_e(r['head'])}</td>"
        f"<td>{pct(r['val_acc'])}</td><td>{pct(r['test_acc'])}</td>"
        f"<td>{pct(r['test_ci_low'])}–{pct(r['test_ci_high'])}</td><td>{fixed(r['samples_per_sec'])}</td>"
        f"<td>{millions(r['param_count'])}</td></tr>" for _, r in scored.iterrows())
    return f"<table>{head}{body}</table>" if body else "<p class=muted>No rows with pretrained weights.</p>"


def _timing_table(frame: pd.DataFrame) -> str:
    timed = figures.timing_rows(frame).sort_values("samples_per_sec", ascending=False)
    head = "<tr><th>backbone</th><th>size (px)</th><th>weights</th><th>images/s</th><th>ms/image</th><th>params (M)</th></tr>"
    body = "".join(
        f"<tr><td>{_e(r['model'])}</td><td>{int(r['img_size'])}</td><td>{_e(r['weights'])}</td>"
        f"<td>{fixed(r['samples_per_sec'])}</td><td>{fixed(r['ms_per_img'])}</td><td>{millions(r['param_count'])}</td></tr>"
        for _, r in timed.iterrows())
    return f"<table>{head}{body}</table>"


def _epoch_section(measured: dict | None) -> str:
    """Results paragraph and Figure 7 for `python -m benchmark.epoch_ratio`, when it was run."""
    if not measured:
        return ""
    h, e, r = measured["head_epoch_s"], measured["end_to_end_epoch_s"], measured["ratio"]
    text = (f"<p><b>Why cache.</b> One epoch of the MLP head on {measured['n_images']} images took "
            f"{fixed(h['median'], 2)} s on cached features and {fixed(e['median'])} s when trained end to end "
            f"through the frozen {_e(measured['model'])} at {measured['img_size']} px with the upscaling inside "
            f"the model: {fixed(r['median'])}× slower (median of {measured['repeats']} paired epochs, range "
            f"{fixed(r['min'])}–{fixed(r['max'])}×). The frozen base gives the same outputs every epoch, so "
            f"computing them once makes every later epoch nearly free.</p>")
    return text + _figure(7, EPOCH_FIGURE, "Seconds per head epoch on cached features and end to end through "
                                           "the frozen base, median with the range over the repeats.")


def _engine_text(frame: pd.DataFrame, cfg: dict) -> str:
    precisions = sorted(set(frame["precision"].dropna()))  # load_results fills it for older schemas
    text = ("Computation is in " + " and ".join({"fp32": "float32", "bf16": "bfloat16 (Keras mixed_bfloat16, "
                                                 "float32 weights)"}.get(p, p) for p in precisions) + ".")
    if cfg.get("isolate"):
        text += (" Each backbone is built and extracted in a fresh process, so its peak memory and timing do not "
                 "carry over from the backbones before it.")
    return text


def _mixed_hardware(frame: pd.DataFrame) -> str:
    """A warning when the rows were extracted on more than one device (a cluster sweep)."""
    devices = sorted(frame["device"].dropna().unique()) if "device" in frame else []
    if len(devices) < 2:
        return ""
    hosts = sorted(frame["host"].dropna().unique())
    return (f"<p><b>Mixed hardware.</b> These rows were extracted on {len(hosts)} hosts with different devices "
            f"({_e('; '.join(devices))}). Throughputs, GFLOP/s and % of peak are each measured against the device "
            f"that did the work (see the host and device columns), so speeds from different devices are not "
            f"comparable with each other on one axis.</p>")


def facts(results_dir: str) -> dict:
    """Everything besides results.csv that the page may quote numbers from."""
    return {**load_environment(results_dir), "epoch_ratio": load_epoch_ratio(results_dir)}


def paper(frame: pd.DataFrame, env: dict) -> str:
    """The write-up's HTML body; every number is formatted from `frame` or `env` (see `facts`)."""
    best = best_rows(frame)
    top = top_scorer(frame)
    timed = figures.timing_rows(frame)
    n_models = frame["model"].nunique()
    random_models = frame.loc[frame["weights"] == "random", "model"].nunique()
    pretrained_models = frame.loc[frame["weights"] == "imagenet", "model"].nunique()
    sizes = sorted(frame["img_size"].dropna().astype(int).unique())
    fastest = timed.sort_values("samples_per_sec", ascending=False).iloc[0] if not timed.empty else None
    cfg = env.get("config", {})
    heads_cfg = env.get("heads", {})
    lossy = env.get("data_lossy_jpeg")
    any_scored = best.iloc[0] if not best.empty else None
    n_train = int(any_scored["train_size"]) if any_scored is not None else None
    n_val = int(any_scored["val_size"]) if any_scored is not None else None
    n_test = int(any_scored["test_size"]) if any_scored is not None else None

    if top is not None:
        headline = (f"The top scorer is <b>{_e(top['model'])}</b> at {int(top['img_size'])} px with the "
                    f"{_e(top['head'])} head: {pct(top['test_acc'])}% test accuracy (95% CI "
                    f"{pct(top['test_ci_low'])}–{pct(top['test_ci_high'])}%) at {fixed(top['samples_per_sec'])} "
                    f"images/s.")
    else:
        headline = "No backbone had pretrained weights in this run, so no accuracy is reported."
    fastest_txt = (f" The fastest extractor is {_e(fastest['model'])} at {int(fastest['img_size'])} px, "
                   f"{fixed(fastest['samples_per_sec'])} images/s." if fastest is not None else "")
    data_txt = (
        f"We use CIFAR-10: {n_train} training, {n_val} validation and {n_test} test images, stratified and "
        f"seeded (seed {int(cfg.get('seed', 0))}); the validation images are held out of the official training "
        f"set and the test images come from the official test set." if n_train else "We use CIFAR-10.")
    if lossy:
        data_txt += (" <b>This run used the lossy JPEG copy of CIFAR-10</b> (quality-75 JPEGs of the original "
                     "images), which costs a point or two of accuracy against the original data.")
    head_txt = ""
    if heads_cfg:
        lin, mlp = heads_cfg.get("linear", {}), heads_cfg.get("mlp", {})
        head_txt = (f"Two heads are trained on the standardised cached features: a linear softmax layer, and an "
                    f"MLP with {mlp.get('hidden')} ReLU units and dropout {mlp.get('dropout')}. Both use Adam "
                    f"(learning rate {lin.get('learning_rate')}, batch {lin.get('batch_size')}) for at most "
                    f"{lin.get('max_epochs')} epochs with early stopping on validation accuracy (patience "
                    f"{lin.get('patience')}), keeping the best weights.")
    hw = (f"All timings were taken on {_e(env.get('cpu_model', '?'))} with {env.get('cpu_count', '?')} cores"
          f"{'' if not env.get('gpus') else ' and GPU ' + _e(', '.join(env['gpus']))}, using Python "
          f"{_e(env.get('python'))}, TensorFlow {_e(env.get('tensorflow'))}, Keras {_e(env.get('keras'))} and "
          f"NumPy {_e(env.get('numpy'))}, on {_e(str(env.get('date', ''))[:10])} (git commit {_e(env.get('git_sha'))}).")
    chosen = (f"<p>The top scorer, here and in <code>0-transfer.py</code>, is chosen by one rule: "
              f"{_e(TOP_SCORER_RULE)} <code>0-transfer.py</code> reads this table and trains its final model on it, "
              f"<b>{_e(top['model'])}</b> (scored at {int(top['img_size'])} px, validation "
              f"accuracy {pct(top['val_acc'])}%). It trains at that size or the backbone's native size, whichever "
              f"is larger, fine-tunes the last block on cached activations where the registry defines a cut, and "
              f"adds head-only ensemble members; its README gives the accuracy measured for the saved model.</p>"
              if top is not None else "")

    sections = [
        f"<h1>Which frozen ImageNet backbone for CIFAR-10? A benchmark of Keras Applications on this machine</h1>",
        "<p class=authors>Author names · Affiliation · contact address</p>",
        _figure(1, FIGURES[0][0], FIGURES[0][2]),
        "<h2>Abstract</h2>",
        f"<p class=abstract>We measure {n_models} ImageNet backbones from Keras Applications as frozen feature "
        f"extractors for CIFAR-10, at input sizes of {', '.join(str(s) for s in sizes)} px. For each we time "
        f"feature extraction and, where pretrained weights were available ({pretrained_models} of them), train "
        f"linear and MLP heads on cached features. {headline}{fastest_txt}</p>",
        "<h2>Introduction</h2>",
        "<p><i>Transfer learning</i> reuses a network trained on a large dataset (here ImageNet) for a new task. "
        "The cheapest form keeps the pretrained layers <i>frozen</i> (not trainable) and trains only a small head "
        "on their outputs; <i>fine-tuning</i> then optionally unfreezes some top layers and trains them at a low "
        "learning rate. Freezing prevents the small target dataset from destroying general features through "
        "large early gradients, cuts the training cost to the head alone, and lets the frozen outputs be computed "
        "once and cached, so that every later epoch costs almost nothing. Keras Applications provides the "
        "architectures compared here with ImageNet weights and a matching <code>preprocess_input</code> per "
        "model. Which of them transfers best is an empirical question: better ImageNet models tend to transfer "
        "better, but not uniformly (Kornblith et al., 2019), and on a CPU the cost of extraction matters as much as accuracy.</p>",
        "<h2>Materials and methods</h2>",
        f"<h3>Data</h3><p>{data_txt}</p>",
        "<h3>Backbones, preprocessing and upscaling</h3>",
        "<p>Each backbone is built with <code>include_top=False</code> and global average pooling, frozen, and fed "
        "CIFAR-10's 32×32 images upscaled (bilinear) to the input size, then passed through the model's own "
        "<code>preprocess_input</code>. Resizing and preprocessing run inside the same TensorFlow graph as the "
        "base, batch by batch, so the upscaled dataset is never held in memory. Throughput excludes the first "
        "(warm-up) batch. Backbones without pretrained weights on the machine are timed with random weights, "
        "which does not change their speed, and get no accuracy. ConvNeXt's depthwise convolutions, which "
        "Keras writes as grouped convolutions (slow on CPU), are run as the equivalent depthwise layers. "
        f"{_engine_text(frame, cfg)}</p>",
        "<h3>Feature cache</h3><p>Features are stored per backbone, input size, weights identity and exact set "
        "of images, with a checksum, and reused by later runs; heads are trained on the cached features.</p>",
        f"<h3>Heads and hyperparameters</h3><p>{head_txt} Test accuracy is reported with a percentile bootstrap "
        f"95% interval.</p>",
        f"<h3>Hardware and software</h3><p>{hw}</p>{_mixed_hardware(frame)}",
        "<h2>Results</h2>",
        f"<p>{headline}{fastest_txt} Table 1 lists every backbone with pretrained weights; Table 2 the "
        f"extraction speed of all.</p>",
        "<p><b>Table 1.</b> Accuracy of the heads on frozen features (pretrained backbones).</p>",
        _results_table(frame),
        chosen,
        *[_figure(i, name, caption) for i, (name, _, caption) in enumerate(FIGURES, 1) if i > 1],
        "<p><b>Table 2.</b> Extraction speed of every backbone.</p>",
        _timing_table(frame),
        _epoch_section(env.get("epoch_ratio")),
        "<h2>Discussion</h2>",
        f"<p>Accuracy and speed trade off: the Pareto front in Figure 1 shows which backbones are worth their "
        f"cost on this machine. {random_models} of the {n_models} backbones had no pretrained weights here; their "
        f"speed is measured but their accuracy is unknown, so the ranking covers only the others. Timings are "
        f"CPU-only and depend on the core count and the oneDNN kernels each architecture hits; on a GPU, "
        f"throughput would be one to two orders of magnitude higher and larger inputs would become cheap, which "
        f"favours the larger, more accurate backbones at their native sizes. Small input sizes hurt models "
        f"designed for large inputs more, so the resolution sweep (Figure 4) matters when choosing a size.</p>",
        "<h2>Conclusion</h2>",
        f"<p>{headline} The feature cache makes the heads nearly free to retrain, so the extraction time is the "
        f"real cost of each choice.</p>",
        "<h2>References</h2><ol>",
        "<li>Keras documentation, <i>Keras Applications</i>. https://keras.io/api/applications/</li>",
        "<li>S. Kornblith, J. Shlens, Q. V. Le. <i>Do Better ImageNet Models Transfer Better?</i> CVPR 2019.</li>",
        "</ol>",
    ]
    return "\n".join(sections)


def _save(fig, path: str) -> None:
    """Saves a figure as PNG atomically and closes it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:  # a unique temp name: concurrent builds never share one
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def build_report(results_dir: str = "results", out_dir: str | None = None, echo=print) -> str:
    """Writes `out_dir/index.html` (default `results_dir/report`) and its figures; returns the page's path."""
    out_dir = out_dir or os.path.join(results_dir, "report")
    frame = load_results(results_dir)
    env = facts(results_dir)
    try:
        images, labels, predictions = load_examples(results_dir)
    except FileNotFoundError:
        images, labels, predictions = None, None, {}
    os.makedirs(out_dir, exist_ok=True)
    for filename, func, _ in FIGURES:
        if func == "examples":
            if images is None:
                continue
            fig = figures.examples(frame, images, labels, predictions)
        else:
            fig = getattr(figures, func)(frame)
        _save(fig, os.path.join(out_dir, filename))
    if env["epoch_ratio"]:
        _save(figures.epoch_ratio(env["epoch_ratio"]), os.path.join(out_dir, EPOCH_FIGURE))
    body = paper(frame, env)
    if images is None:
        body = body.replace(_figure(6, FIGURES[5][0], FIGURES[5][2]), "")
    page = (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>backbone-bench report</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>\n")
    index = os.path.join(out_dir, "index.html")
    write_text(index, page)
    echo(f"Report: {index}")
    return index
