"""Builds the self-contained HTML report: the journal-style paper of the experiment.

`build_report(results_dir, out_dir)` reads results.csv, environment.json,
examples.npz (and epoch_ratio.json when measured), draws the figures as PNG
files beside index.html, and writes the page. No scripts, fonts or styles
come from the network. Every number on the page is formatted from those
files or from the statistics `facts()` computes from them, and
`report.numbers.unsupported_numbers` checks that.

Figures are numbered in the order they appear, among those that could be
drawn; one that cannot (no examples file, one input size only) is named on
the page with the reason, and takes no number.
"""

from __future__ import annotations

import html
import os
import subprocess
from dataclasses import dataclass

import pandas as pd

import backbones
from benchmark.core.atomic import atomic_path, write_text
from benchmark.core.results import (REGIMES, TOP_SCORER_RULE, best_rows, load_environment, load_epoch_ratio,
                                    load_examples, load_results, load_transfer, ranked, top_scorer)

from . import figures
from .numbers import fixed, millions, pct, thousands
from .stats import correlation, mcnemar

CSS = """
body{font-family:Georgia,'Times New Roman',serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222;line-height:1.5}
h1{font-size:1.8em;margin-bottom:.2em;overflow-wrap:anywhere} h2{border-bottom:1px solid #ccc;margin-top:1.6em}
.authors{color:#555;font-style:italic} .abstract{background:#f6f6f6;padding:.8em 1.2em;border-left:4px solid #888}
figure{margin:1.2em 0;text-align:center} figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:.9em;color:#444;text-align:left}
.scroll{overflow-x:auto;max-width:100%} table{border-collapse:collapse;font-size:.85em;margin:1em 0;width:100%}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left} .muted{color:#777} .top td{font-weight:bold}
.box{border:1px solid #bbb;background:#fafafa;padding:.6em 1em;margin:1em 0} .box dt{font-weight:bold}
.box dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:0} .box dd{margin:0;overflow-wrap:anywhere}
code,pre{font-size:.85em} pre{background:#f4f4f4;padding:.6em;overflow-x:auto;white-space:pre}
.missing{border:1px dashed #c66;padding:.5em 1em;color:#633;font-size:.9em}
"""

REFERENCES = (
    ("keras", "Keras documentation. <i>Keras Applications</i>. https://keras.io/api/applications/"),
    ("kornblith", "S. Kornblith, J. Shlens, Q. V. Le. <i>Do Better ImageNet Models Transfer Better?</i> "
                  "CVPR 2019."),
    ("cifar", "A. Krizhevsky. <i>Learning Multiple Layers of Features from Tiny Images.</i> Technical report, "
              "University of Toronto, 2009."),
    ("mcnemar", "Q. McNemar. <i>Note on the sampling error of the difference between correlated proportions or "
                "percentages.</i> Psychometrika, 1947."),
    ("bootstrap", "B. Efron, R. J. Tibshirani. <i>An Introduction to the Bootstrap.</i> Chapman &amp; Hall, 1993."),
    ("wilson", "E. B. Wilson. <i>Probable inference, the law of succession, and statistical inference.</i> "
               "Journal of the American Statistical Association, 1927."),
)
CITE = {key: i for i, (key, _) in enumerate(REFERENCES, 1)}
N_EXTRACT = 50000  # the cost table's "time to extract the 50000 training images"


def cite(*keys: str) -> str:
    return "[" + ", ".join(str(CITE[k]) for k in keys) + "]"


def _e(text) -> str:
    return html.escape(str(text))


@dataclass
class Figure:
    key: str
    filename: str
    caption: str
    missing: str | None = None  # why it cannot be drawn
    number: int = 0


class Figures:
    """The page's figures in page order; numbers go to the drawable ones only, consecutively."""

    def __init__(self, figures_: list[Figure]):
        self.all = figures_
        number = 0
        for fig in figures_:
            if fig.missing is None:
                number += 1
                fig.number = number
        self.by_key = {f.key: f for f in figures_}

    def ref(self, key: str) -> str:
        fig = self.by_key[key]
        return f"Figure {fig.number}" if fig.missing is None else "a figure not drawn here"

    def html(self, key: str) -> str:
        fig = self.by_key[key]
        if fig.missing is not None:
            return f'<p class=missing>Not drawn: {_e(fig.caption.split(".")[0].lower())} ({_e(fig.missing)}).</p>'
        return (f'<figure><img src="{fig.filename}" alt="Figure {fig.number}. {_e(fig.caption)}" loading="eager">'
                f"<figcaption><b>Figure {fig.number}.</b> {_e(fig.caption)}</figcaption></figure>")


def _runner_up(frame: pd.DataFrame, top) -> pd.Series | None:
    """The best row of another backbone, by the same rule."""
    order = ranked(frame)
    others = order[order["model"] != top["model"]]
    return None if others.empty else others.iloc[0]


def KSL_SETTINGS(frame: pd.DataFrame) -> list[tuple[str, object]]:  # noqa: N802 (a table, computed)
    """The (regime, size) settings the correlation paragraph reports, in its order."""
    sizes = sorted({int(s) for s in frame["img_size"].dropna()})
    return [("frozen", "best"), ("frozen", "native"), *[("frozen", s) for s in sizes], ("finetune", "best")]


def statistics(frame: pd.DataFrame, labels, predictions: dict) -> dict:
    """The numbers the paper derives from the results: the paired test and the correlations."""
    out: dict = {"extract_minutes": {}}
    top = top_scorer(frame)
    second = _runner_up(frame, top) if top is not None else None
    if second is not None and labels is not None:
        a, b = predictions.get(figures.prediction_key(top)), predictions.get(figures.prediction_key(second))
        full = int(top["test_size"]) == int(second["test_size"]) == len(labels)  # not an older 48-image file
        if a is not None and b is not None and full and len(a) == len(b) == len(labels):
            out["mcnemar"] = {**mcnemar(a, b, labels), "a": figures.prediction_key(top),
                              "b": figures.prediction_key(second)}
    for regime, size in KSL_SETTINGS(frame):
        pts = figures.ksl_points(frame, regime, size)
        found = correlation(pts["imagenet_top1"], pts["test_acc"]) if len(pts) else None
        if found:
            out.setdefault("ksl", {})[f"{regime}@{size}"] = {**found, "models": list(pts["model"])}
    ksl = out.get("ksl", {})
    out["ksl_zero"] = {"spans_zero": sum(c["r_low"] < 0 < c["r_high"] for c in ksl.values()), "settings": len(ksl)}
    out["same_order"] = {}
    best = best_rows(frame)
    for size in sorted({int(s) for s in frame["img_size"].dropna()}):
        orders = [list(best[(best["regime"] == regime) & (best["img_size"] == size)]["model"]) for regime in REGIMES]
        shared = set(orders[0]) & set(orders[1])
        if len(shared) >= 2:  # ranked: each list is the models best first by validation accuracy
            out["same_order"][size] = [m for m in orders[0] if m in shared] == [m for m in orders[1] if m in shared]
    for _, row in figures.timing_rows(frame).iterrows():  # what extracting all 50000 images would take here
        out["extract_minutes"][f"{row['model']}|{int(row['img_size'])}"] = N_EXTRACT / row["samples_per_sec"] / 60
    pairs = figures.regime_pairs(frame)
    out["regime_gain"] = {f"{r['model']}|{int(r['img_size'])}": r["test_acc_finetune"] - r["test_acc_frozen"]
                          for _, r in pairs.iterrows()}
    out["regime_counts"] = {"pairs": len(out["regime_gain"]), "helped": sum(g > 0 for g in out["regime_gain"].values())}
    peaks = frame["matmul_peak_gflops"].dropna()
    if len(peaks):
        out["matmul_peak_median"] = float(peaks.median())
    scored = ranked(frame)
    if not scored.empty:
        out["median_half_ci"] = float(((scored["test_ci_high"] - scored["test_ci_low"]) / 2).median())
    out["threshold"], out["p_floor"] = 0.05, 0.001
    return out


def live_runs(results_dir: str) -> list[dict]:
    """The environments of the runs whose rows are still in the export (not superseded), oldest first,
    from the results database; [] for a folder without one."""
    import json
    import sqlite3

    from benchmark.core.results_db import DB_FILE

    import pathlib

    path = os.path.join(results_dir, DB_FILE)
    if not os.path.exists(path):
        return []
    try:
        conn = sqlite3.connect(pathlib.Path(path).resolve().as_uri() + "?mode=ro", uri=True)
        try:
            found = conn.execute(
                "SELECT environment FROM runs WHERE id IN (SELECT DISTINCT r.run_id FROM rows AS r JOIN "
                "(SELECT MAX(id) AS last FROM rows GROUP BY key) AS k ON r.id = k.last) ORDER BY id").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return []
    return [json.loads(env) for (env,) in found]


def facts(results_dir: str) -> dict:
    """Everything besides results.csv that the page may quote numbers from: the environment, the
    epoch measurement, and the statistics computed from the results and their predictions."""
    frame = load_results(results_dir)
    try:
        _, labels, predictions = load_examples(results_dir)
    except (OSError, KeyError, ValueError):
        labels, predictions = None, {}
    runs = live_runs(results_dir)
    env = load_environment(results_dir)
    tuned = [r["finetune"] for r in runs if r.get("finetune")] or ([env["finetune"]] if env.get("finetune") else [])
    transfer, _ = load_transfer(results_dir)
    if transfer and transfer.get("jpeg_robustness"):
        values = list(transfer["jpeg_robustness"].values())
        transfer = {**transfer, "jpeg_spread": max(values) - min(values)}
    return {**env, "finetune": tuned[-1] if tuned else None, "runs": [_run_summary(r) for r in runs],
            "epoch_ratio": load_epoch_ratio(results_dir), "statistics": statistics(frame, labels, predictions),
            "n_extract": N_EXTRACT, "transfer": transfer}


def _run_summary(env: dict) -> dict:
    return {"settings": env.get("settings") or env.get("config") or {}, "git_sha": env.get("git_sha"),
            "date": env.get("date")}


def _author(explicit: str | None) -> str:
    if explicit:
        return explicit
    try:
        name = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True, timeout=10,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    return name or "backbone-bench"


def _table(head: list[str], rows: list[tuple[list[str], bool]]) -> str:
    if not rows:
        return "<p class=muted>No rows.</p>"
    cells = "".join(f"<tr{' class=top' if top else ''}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                    for row, top in rows)
    return ("<div class=scroll><table><tr>" + "".join(f"<th>{h}</th>" for h in head) + f"</tr>{cells}"
            "</table></div>")


def _results_table(frame: pd.DataFrame) -> str:
    top = top_scorer(frame)
    rows = []
    for i, (_, r) in enumerate(ranked(frame).iterrows()):
        rows.append(([_e(r["model"]), str(int(r["img_size"])), _e(r.get("regime", "frozen")), _e(r["head"]),
                      pct(r["val_acc"]), pct(r["test_acc"]), f"{pct(r['test_ci_low'])}–{pct(r['test_ci_high'])}",
                      thousands(r["trainable_params"]) if pd.notna(r.get("trainable_params")) else "–"],
                     top is not None and i == 0))
    return _table(["backbone", "size (px)", "regime", "head", "val acc (%)", "test acc (%)", "95% CI (%)",
                   "trained params (k)"], rows)


def _cost_table(frame: pd.DataFrame, stats: dict) -> str:
    """keras.io-style: per backbone, its cost at each measured size and its best frozen accuracy."""
    best = best_rows(figures.frozen(frame))
    rows = []
    for _, r in figures.timing_rows(frame).sort_values(["model", "img_size"]).iterrows():
        spec = backbones.get(r["model"])
        scored = best[(best["model"] == r["model"]) & (best["img_size"] == r["img_size"])]
        acc = (f"{pct(scored.iloc[0]['test_acc'])} ({pct(scored.iloc[0]['test_ci_low'])}–"
               f"{pct(scored.iloc[0]['test_ci_high'])})" if not scored.empty else "–")
        minutes = stats["extract_minutes"].get(f"{r['model']}|{int(r['img_size'])}")
        rows.append(([_e(r["model"]), fixed(spec.imagenet_top1), millions(r["param_count"]), str(int(r["img_size"])),
                      fixed(r["gflops_per_img"], 2) if pd.notna(r["gflops_per_img"]) else "–",
                      fixed(r["ms_per_img"]), fixed(r["peak_rss_mb"], 0) if pd.notna(r["peak_rss_mb"]) else "–",
                      fixed(r["pct_of_peak"]) if pd.notna(r["pct_of_peak"]) else "–",
                      fixed(minutes) if minutes else "–", acc,
                      str(int(r["images_timed"])) if pd.notna(r["images_timed"]) else "–"], False))
    return _table(["backbone", "ImageNet top-1 (%)", "params without the top (M)", "size (px)", "GFLOPs/image",
                   "ms/image", "peak RSS (MiB)", "% of matmul peak", f"min to extract {N_EXTRACT}",
                   "test acc (%) (95% CI)", "images timed"], rows)


def _span(values) -> str:
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}–{high}"


def _hardware_box(frame: pd.DataFrame, env: dict) -> str:
    peak = (env.get("statistics") or {}).get("matmul_peak_median")
    flags = env.get("isa_flags")
    items = [
        ("CPU", f"{_e(env.get('cpu_model', 'not recorded'))}, {env.get('cpu_count', '?')} cores"
                + (f"; GPU {_e(', '.join(env['gpus']))}" if env.get("gpus") else "; no GPU")),
        ("ISA flags", _e(" ".join(flags)) + (" (no AMX)" if not any(f.startswith("amx") for f in flags) else "")
         if flags else "not recorded by this run"),
        ("RAM", f"{fixed(env['ram_gib'])} GiB" if env.get("ram_gib") else "not recorded by this run"),
        ("fp32 matmul peak", f"{fixed(peak)} GFLOP/s (median over the rows; tf.matmul, measured in each run)"
         if peak else "not measured"),
        ("Software", f"Python {_e(env.get('python'))}, TensorFlow {_e(env.get('tensorflow'))}, Keras "
                     f"{_e(env.get('keras'))}, NumPy {_e(env.get('numpy'))}, pandas {_e(env.get('pandas'))}"),
        ("Date, commit", f"{_e(str(env.get('date', ''))[:10])}, git {_e(env.get('git_sha'))}"),
    ]
    return "<div class=box><dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl></div>"


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


def _engine_text(frame: pd.DataFrame, cfg: dict) -> str:
    precisions = sorted(set(frame["precision"].dropna()))
    text = ("Computation is in " + " and ".join({"fp32": "float32", "bf16": "bfloat16 (Keras mixed_bfloat16, "
                                                 "float32 weights)"}.get(p, p) for p in precisions) + ".")
    if cfg.get("isolate"):
        text += (" Each backbone is built and extracted in a fresh process, so its peak memory and timing do not "
                 "carry over from the backbones before it.")
    return text


def _epoch_text(measured: dict | None, figs: Figures) -> str:
    if not measured:
        return ""
    h, e, r = measured["head_epoch_s"], measured["end_to_end_epoch_s"], measured["ratio"]
    return (f"<p><b>Why cache.</b> One epoch of the MLP head on {measured['n_images']} images took "
            f"{fixed(h['median'], 2)} s on cached features and {fixed(e['median'])} s when trained end to end "
            f"through the frozen {_e(measured['model'])} at {measured['img_size']} px with the upscaling inside "
            f"the model: {fixed(r['median'])}× slower (median of {measured['repeats']} paired epochs, range "
            f"{fixed(r['min'])}–{fixed(r['max'])}×; {figs.ref('epoch')}). The frozen base gives the same outputs "
            f"every epoch, so computing them once makes every later epoch nearly free.</p>")


def _final_section(env: dict, figs: Figures) -> str:
    """The final experiment, from transfer.json: what 0-transfer.py trained, each stage's accuracy and cost."""
    t = env.get("transfer")
    if not t:
        return ("<h2>The final model</h2><p class=missing>Not in this results folder: copy the "
                "<code>transfer.json</code> and <code>transfer.npz</code> that <code>python 0-transfer.py</code> "
                "writes beside <code>cifar10.h5</code> into it to add this section.</p>")
    rows = []
    for stage in t.get("stages", []):
        rows.append(([_e(stage["stage"]) + (" (not kept)" if stage.get("kept") is False else ""), pct(stage["val_acc"]),
                      pct(stage["test_acc"]) if stage.get("test_acc") is not None else "–",
                      str(stage["epochs"]) if stage.get("epochs") is not None else "–",
                      fixed(stage["wall_s"]) if stage.get("wall_s") is not None else "–",
                      thousands(stage["trainable_params"]) if stage.get("trainable_params") else "–"], False))
    jpeg = t.get("jpeg_robustness") or {}
    jpeg_txt = ""
    if len(jpeg) > 1:
        parts = ", ".join(f"{_e(k.replace('_', ' '))} {pct(v)}%" for k, v in jpeg.items())
        lean = ("more than a point: stronger compression changes the model's answers. Whether it also "
                "leans on the artefacts of the quality-75 copy it was trained on cannot be told from re-encoding "
                "alone; that needs the original, lossless test images" if t["jpeg_spread"] > 0.01 else
                "within a point: the model does not lean on JPEG compression artefacts")
        jpeg_txt = (f"<p><b>Robustness to compression.</b> The same test images, re-encoded as JPEG, give {parts}; "
                    f"the spread is {pct(t['jpeg_spread'])} points, {lean}.</p>") + _shift_text(t.get("jpeg_shift"))
    regime = "fine-tuned above " + _e(t["cut"]) if t.get("cut") else "a head on the frozen base"
    members = f", with {_e(', '.join(t['members']))} as ensemble members" if t.get("members") else ""
    members += (", averaging the probabilities of each image and its mirror image inside the saved model"
                if t.get("test_mirroring") else "")
    return (
        f"<h2>The final model</h2><p><code>0-transfer.py</code> trained {_e(t['backbone'])} at {t['img_size']} px, "
        f"{regime}{members}, on {t['n_train']} training images, choosing on {t['n_val']} validation images. "
        f"The saved file, loaded back with <code>safe_mode</code> and scored through the grader's "
        f"<code>preprocess_data</code>, reaches <b>{pct(t['test_acc'])}%</b> on {t['n_test']} test images "
        f"(validation {pct(t['val_acc'])}%). It is {fixed(t['file_size_mib'])} MiB and takes "
        f"{fixed(t['inference_s_per_10000'])} s per {N_EXTRACT // 5} images on this CPU. Table 3 gives each stage; "
        f"{figs.ref('final_curves')} the training curves, {figs.ref('final_confusion')} its errors by class, and "
        f"{figs.ref('final_examples')} its predictions on test images.</p>"
        f"<p><b>Table 3.</b> Stages of the final model: validation and test accuracy (test images scored on "
        f"cached features, never used to choose), epochs, wall seconds and trained parameters.</p>"
        + _table(["stage", "val acc (%)", "test acc (%)", "epochs", "wall (s)", "trained params (k)"], rows)
        + jpeg_txt + figs.html("final_curves") + figs.html("final_confusion")
        + ("" if figs.all[0].key == "final_examples" else figs.html("final_examples")))


def _shift_text(shift: dict | None) -> str:
    """Where the images go that the strongest re-encoding breaks (transfer.json's jpeg_shift)."""
    if not shift or not shift.get("n_lost") or not shift.get("to_class_name"):
        return ""
    name, q = _e(shift["to_class_name"]), shift["quality"]
    before, after = shift["class_share_before"], shift["class_share_after"]
    moves = (f"rises from {pct(before)}% of all predictions to {pct(after)}%" if after > before else
             f"goes from {pct(before)}% of all predictions to {pct(after)}%")
    # at least 20 lost images, and twice the share a uniform spread over the nine wrong classes would give
    gathered = shift["n_lost"] >= 20 and shift["to_class_share"] >= 2 / 9 and after > before
    why = (f" The errors gather on one class more than a plain loss of detail would explain; one reading is "
           f"that the block artefacts of strong compression resemble texture the model learnt for {name}."
           if gathered else "")
    return (f"<p>At quality {q}, {shift['n_lost']} test images that the model gets right go wrong, and "
            f"{shift['n_gained']} go the other way. {pct(shift['to_class_share'], 0)}% of the lost ones are called "
            f"{name}, and {name} {moves}.{why}</p>")


def _paired_text(stats: dict, top, second) -> str:
    test = stats.get("mcnemar")
    if top is None or second is None:
        return ""
    if test is None:
        return ("<p><b>Is the top scorer better than the runner-up?</b> The per-image predictions needed for a "
                "paired test are not in this results folder (examples.npz from an older run), so the question is "
                "left open; rerun the benchmark into it to add them.</p>")
    verdict = ("the difference is significant at the 5% level" if test["p"] < stats["threshold"] else
               "<b>the two are not distinguishable</b> at the 5% level: the ranking between them could be noise")
    p_txt = f"p &lt; {stats['p_floor']}" if test["p"] < stats["p_floor"] else f"p = {fixed(test['p'], 3)}"
    return (f"<p><b>Is the top scorer better than the runner-up?</b> On the same {test['n']} test images, "
            f"{_e(top['model'])} @{int(top['img_size'])} ({_e(top.get('regime', 'frozen'))}, {_e(top['head'])}) "
            f"is right where {_e(second['model'])} @{int(second['img_size'])} ({_e(second.get('regime', 'frozen'))}, "
            f"{_e(second['head'])}) is wrong on {test['only_a']} images, and the reverse on {test['only_b']}. "
            f"The exact McNemar test {cite('mcnemar')} gives {p_txt}: {verdict}.</p>")


def _ksl_text(stats: dict, frame: pd.DataFrame, figs: Figures) -> str:
    ksl = stats.get("ksl", {})
    if not ksl:
        return ("<p><b>Do better ImageNet models transfer better?</b> Fewer than 3 pretrained backbones were "
                "scored, too few for a correlation.</p>")

    def one(key: str, what: str) -> str:
        c = ksl.get(key)
        if not c:
            return ""
        return (f"{what}: Pearson r = {fixed(c['r'], 2)} (95% interval {fixed(c['r_low'], 2)} to "
                f"{fixed(c['r_high'], 2)}, n = {c['n']}), Spearman rho = {fixed(c['rho'], 2)}. ")

    sizes = sorted({int(s) for s in frame["img_size"].dropna()})
    parts = [one("frozen@best", "Frozen, each backbone at its best size"),
             one("frozen@native", "frozen, each at its native size")]
    parts += [one(f"frozen@{s}", f"frozen, all at {s} px") for s in sizes]
    parts += [one("finetune@best", "fine-tuned, each at its best size")]
    zero = stats["ksl_zero"]
    verdict = (": with so few backbones these numbers neither confirm nor refute the paper."
               if zero["spans_zero"] == zero["settings"] else
               "; where it does not, the sign of r says whether our data agree with the paper.")
    text = (f"<p><b>Do better ImageNet models transfer better?</b> Kornblith et al. {cite('kornblith')} found a "
            f"strong correlation between ImageNet top-1 and transfer accuracy across sixteen networks, for fixed "
            f"features and for fine-tuning. {figs.ref('ksl')} asks the same of our data. {''.join(parts)}"
            f"The interval spans zero in {zero['spans_zero']} of these {zero['settings']} settings{verdict}")
    native = ksl.get("frozen@native")
    small = [(s, ksl[f"frozen@{s}"]) for s in sizes if f"frozen@{s}" in ksl]
    if native and small and native["r"] > max(c["r"] for _, c in small):
        s_low, c_low = small[0]
        text += (f" The point estimates move with the input size, from r = {fixed(c_low['r'], 2)} with all at "
                 f"{s_low} px to r = {fixed(native['r'], 2)} with each at its native size, as expected if small "
                 f"inputs favour networks built for small inputs and penalise those built for large ones "
                 f"({figs.ref('sweep')}); the intervals make this a hint, not a finding.")
    return text + "</p>"


def _regime_text(stats: dict, figs: Figures) -> str:
    gains = stats.get("regime_gain") or {}
    if not gains:
        return ""
    low, high = min(gains, key=gains.get), max(gains, key=gains.get)

    def name(key):
        model, size = key.split("|")
        return f"{_e(model)} @{size}"

    counts = stats["regime_counts"]
    return (f"<p><b>Frozen against fine-tuned.</b> {figs.ref('regimes')} compares, for each backbone and size "
            f"with both regimes, the frozen features' best head with the network whose last stage was fine-tuned "
            f"with an MLP head on cached maps. Fine-tuning changed test accuracy by {pct(gains[low])} points "
            f"({name(low)}) to {pct(gains[high])} points ({name(high)}); it helped in {counts['helped']} of the "
            f"{counts['pairs']} pairs. Whether the order of the backbones is the same in both regimes can be read off "
            f"Table 1 and {figs.ref('ksl')}.</p>")


def _reproduction(env: dict, results_dir: str) -> str:
    """The commands that regenerate the tables and figures: the runs whose rows the folder still holds."""
    runs = env.get("runs") or [{"settings": env.get("config") or {}, "git_sha": env.get("git_sha")}]
    lines, seen = [], set()
    for run in runs:
        command = _command(run["settings"], results_dir)
        if command and command not in seen:
            seen.add(command)
            lines.append(f"{command}    # at git {run.get('git_sha') or 'unknown'}")
    lines.append(f"python -m report --results {results_dir}")
    return ("<p>With the data and weights folders of the README's offline setup, these commands, each from a "
            "clone at the commit named beside it, regenerate every table and figure (runs into the same --out "
            "folder add their rows):</p><pre>" + _e("\n".join(lines)) + "</pre>")


def _command(cfg: dict, out: str | None = None) -> str | None:
    """The `python -m benchmark` command line of a run's settings (None for a run without any, e.g. an import)."""
    names = cfg.get("backbones") or []
    if not names:
        return None
    which = "--all" if len(names) == len(backbones.names()) else "--backbones " + " ".join(names)
    parts = ["python -m benchmark", which]
    sizes = cfg.get("img_sizes") or []
    if list(sizes) != [128]:
        parts.append("--sizes " + " ".join(str(s) for s in sizes))
    quick = {"n_train": 2000, "n_val": 500, "n_test": 2000}
    if all(cfg.get(k) is None for k in quick):
        parts.append("--full")
    else:
        for key, flag in (("n_train", "--train-size"), ("n_val", "--val-size"), ("n_test", "--test-size")):
            if cfg.get(key) != quick[key]:
                parts.append(f"{flag} {cfg.get(key) or 'all'}")
    for key, flag, default in (("n_val_holdout", "--val-holdout", 5000), ("seed", "--seed", 0),
                               ("batch_size", "--batch-size", 32), ("precision", "--precision", "fp32")):
        if cfg.get(key, default) != default:
            parts.append(f"{flag} {cfg[key]}")
    if cfg.get("time_only"):
        parts.append("--time-only")
    if list(cfg.get("heads") or ["linear", "mlp"]) != ["linear", "mlp"]:
        parts.append("--heads " + " ".join(cfg["heads"]))
    if (cfg.get("regimes") or ["frozen"]) != ["frozen"]:
        parts.append("--regime " + " ".join(cfg["regimes"]))
    if out:
        parts.append(f"--out {out}")
    return " ".join(parts)


def paper(frame: pd.DataFrame, env: dict, figs: Figures, results_dir: str = "results",
          author: str = "backbone-bench") -> str:
    """The paper's HTML body; every number is formatted from `frame` or `env` (see `facts`)."""
    stats = env.get("statistics") or {}
    top = top_scorer(frame)
    second = _runner_up(frame, top) if top is not None else None
    timed = figures.timing_rows(frame)
    n_models = frame["model"].nunique()
    pretrained = sorted(frame.loc[frame["weights"] == "imagenet", "model"].unique())
    random_models = frame.loc[frame["weights"] == "random", "model"].nunique()
    scored_sizes = sorted({int(s) for s in frame.loc[frame["val_acc"].notna(), "img_size"]})
    sizes = sorted({int(s) for s in frame["img_size"].dropna()})
    cfg = env.get("config", {})
    heads_cfg = env.get("heads", {})
    ft_cfg = env.get("finetune") or {}
    lossy = env.get("data_lossy_jpeg")
    scored = ranked(frame)
    n_train = int(scored["train_size"].max()) if not scored.empty else None
    n_val = int(scored["val_size"].max()) if not scored.empty else None
    n_test = int(scored["test_size"].max()) if not scored.empty else None
    has_finetune = "regime" in frame and (frame["regime"] == "finetune").any()
    n_timed_random = frame.loc[frame["weights"] == "random", "images_timed"].dropna()
    n_timed_scored = frame.loc[frame["weights"] == "imagenet", "images_timed"].dropna()
    fastest = timed.sort_values("samples_per_sec", ascending=False).iloc[0] if not timed.empty else None

    if top is not None:
        headline = (f"By validation accuracy the top scorer is <b>{_e(top['model'])}</b> at {int(top['img_size'])} "
                    f"px ({_e(top.get('regime', 'frozen'))} regime, {_e(top['head'])} head): {pct(top['test_acc'])}% "
                    f"test accuracy (95% CI {pct(top['test_ci_low'])}–{pct(top['test_ci_high'])}%).")
    else:
        headline = ""
    test = stats.get("mcnemar")
    distinguishable = ("" if not test else
                       " It is not distinguishable from the runner-up on the same test images (exact McNemar test)."
                       if test["p"] >= stats["threshold"] else
                       " Its lead over the runner-up is significant (exact McNemar test).")
    n_scored_models = scored["model"].nunique()
    scale = (f"We time {n_models} ImageNet backbones from Keras Applications {cite('keras')} as feature extractors "
             f"for CIFAR-10 {cite('cifar')} on one {env.get('cpu_count', '?')}-core CPU, at "
             f"{', '.join(str(s) for s in sizes)} px. None of them was scored in this run (no pretrained weights, or "
             f"timing only), so no accuracy is reported." if not n_scored_models else
             f"We time {n_models} ImageNet backbones from Keras Applications {cite('keras')} as feature extractors "
             f"for CIFAR-10 {cite('cifar')} on one {env.get('cpu_count', '?')}-core CPU, at "
             f"{', '.join(str(s) for s in sizes)} px. Only {len(pretrained)} of them had ImageNet weights on this "
             f"machine ({_e(', '.join(pretrained))}); those {len(pretrained)} are scored, at "
             f"{', '.join(str(s) for s in scored_sizes)} px, on a stratified subset of {n_train} training, {n_val} "
             f"validation and {n_test} test images"
             + (", as frozen feature extractors and with their last stage fine-tuned" if has_finetune else
                ", as frozen feature extractors") + ". The others are timed with random weights and have no accuracy.")
    data_txt = (
        f"CIFAR-10 {cite('cifar')}: {n_train} training, {n_val} validation and {n_test} test images, stratified and "
        f"seeded (seed {int(cfg.get('seed', 0))}); the validation images are held out of the official training "
        f"set and the test images come from the official test set." if n_train else "CIFAR-10.")
    if lossy:
        data_txt += (" <b>This run used a lossy JPEG copy of CIFAR-10</b> (quality-75 JPEGs of the original "
                     "images); accuracies on the original, lossless images will differ (see Limitations).")
    head_txt = ""
    if heads_cfg:
        lin, mlp = heads_cfg.get("linear", {}), heads_cfg.get("mlp", {})
        head_txt = (f"Two heads are trained on the standardised cached features: a linear softmax layer, and an "
                    f"MLP with {mlp.get('hidden')} ReLU units and dropout {mlp.get('dropout')}. Both use Adam "
                    f"(learning rate {lin.get('learning_rate')}, batch {lin.get('batch_size')}) for at most "
                    f"{lin.get('max_epochs')} epochs with early stopping on validation accuracy (patience "
                    f"{lin.get('patience')}), keeping the best weights.")
    regime_txt = ("<p><b>Frozen.</b> The heads above are trained on the frozen base's pooled features.</p>")
    if has_finetune:
        regime_txt += (
            f"<p><b>Fine-tuned.</b> Each base is cut at the input of its last stage (the registry's "
            f"<code>finetune_cut</code>, e.g. DenseNet's conv5 block or Xception's exit flow). The maps below the "
            f"cut are extracted once and cached; an MLP head is trained on the frozen features, then the last "
            f"stage and the head are trained together on the cached maps, mirrored at random, with BatchNorm "
            f"statistics frozen, Adam at learning rate {ft_cfg.get('learning_rate')}, label smoothing "
            f"{ft_cfg.get('label_smoothing')}, at most {ft_cfg.get('epochs')} epochs with early stopping on "
            f"validation accuracy (patience {ft_cfg.get('patience')}). This is the CPU-sized form of the "
            f"fine-tuning regime of Kornblith et al. {cite('kornblith')}, who train every layer.</p>")
    chosen = (f"<p>The top scorer, here, in the console and in <code>0-transfer.py</code>, is chosen by one rule: "
              f"{_e(TOP_SCORER_RULE)} <code>0-transfer.py</code> trains its final model on that backbone, in that "
              f"regime, at the scored size or the native size, whichever is larger.</p>" if top is not None else "")
    timing_note = ""
    if len(n_timed_random) and len(n_timed_scored):
        timing_note = (f" Backbones with random weights were timed on {_span(n_timed_random)} images after a "
                       f"warm-up batch, the pretrained ones on the {_span(n_timed_scored)} images they extracted "
                       f"(warm-up excluded), so the former are noisier.")
    ksl_best = (stats.get("ksl") or {}).get("frozen@best")
    same = stats.get("same_order") or {}
    if not test:
        lead = ""
    elif test["p"] >= stats["threshold"]:
        lead = (f"The top of the ranking is within the noise of {test['n']} test images, so the choice between the "
                f"leaders is a choice of speed, which Table 2 prices per image and per {N_EXTRACT} images. ")
    else:
        lead = (f"The top scorer's lead over the runner-up is larger than the noise of {test['n']} test images; "
                f"Table 2 prices what it costs per image and per {N_EXTRACT} images. ")
    if same:
        kept = [str(size) for size, yes in same.items() if yes]
        moved = [str(size) for size, yes in same.items() if not yes]
        order = ("Fine-tuning the last stage on cached maps is affordable on a CPU; "
                 + (f"it kept the order of the backbones by validation accuracy at {', '.join(kept)} px" if kept
                    else "")
                 + ("; " if kept and moved else "")
                 + (f"it changed it at {', '.join(moved)} px" if moved else "") + ". ")
    else:
        order = ""
    conclusion = (
        f"<p>{lead}{order}"
        + (f"Whether published ImageNet accuracy predicts CIFAR-10 accuracy here cannot be told from "
           f"{ksl_best['n']} backbones (r = {fixed(ksl_best['r'], 2)}, 95% interval {fixed(ksl_best['r_low'], 2)} to "
           f"{fixed(ksl_best['r_high'], 2)}, each at its best size). " if ksl_best and ksl_best["r_low"] < 0 <
           ksl_best["r_high"] else
           f"ImageNet top-1 and CIFAR-10 accuracy correlate with r = {fixed(ksl_best['r'], 2)} (95% interval "
           f"{fixed(ksl_best['r_low'], 2)} to {fixed(ksl_best['r_high'], 2)}, n = {ksl_best['n']}). "
           if ksl_best else "")
        + "Caching the frozen outputs makes every head and every rerun nearly free, so the extraction is the real "
          "cost of each choice.</p>")
    limitations = (
        "<ul>"
        + ("<li><b>Lossy data.</b> The CIFAR-10 used here is a quality-75 JPEG copy; the original images are "
           "lossless, and accuracies measured on the copy are not those of the original data.</li>" if lossy else "")
        + f"<li><b>{len(pretrained)} of {n_models} backbones</b> had ImageNet weights on this machine; the others "
          f"are timed only, so the accuracy ranking covers {n_scored_models} networks.</li>"
        + (f"<li><b>Quick subsets.</b> Heads were trained on {n_train} images and tested on {n_test}; the 95% "
           f"intervals reach ±{pct(stats['median_half_ci'])} points (median half-width), and a full run "
           f"(<code>--full</code>) would narrow them.</li>" if n_train and n_train < 45000 and
           "median_half_ci" in stats else "")
        + "<li><b>One machine, CPU only.</b> Every timing comes from one CPU (see the hardware box); speeds on "
          "other CPUs or on GPUs were not measured and will rank differently.</li>"
        + ("<li><b>Timing-only rows</b> were timed on fewer images than the pretrained rows.</li>" if timing_note
           else "")
        + ("<li><b>Fine-tuning is partial:</b> only the last stage is trained, on cached maps, for a few epochs.</li>"
           if has_finetune else "")
        + "</ul>")

    fastest_txt = (f" The fastest extractor is {_e(fastest['model'])} at {int(fastest['img_size'])} px, "
                   f"{fixed(fastest['samples_per_sec'])} images/s." if fastest is not None else "")
    sections = [
        "<h1>Which ImageNet backbone for CIFAR-10? Frozen and fine-tuned Keras Applications on one CPU</h1>",
        f"<p class=authors>{_e(author)}</p>",
        figs.html(figs.all[0].key),
        "<h2>Abstract</h2>",
        f"<p class=abstract>{scale} {headline}{distinguishable}{fastest_txt}</p>",
        "<h2>Introduction</h2>",
        "<p><i>Transfer learning</i> reuses a network trained on a large dataset (here ImageNet) for a new task. "
        "The cheapest form keeps the pretrained layers <i>frozen</i> and trains only a small head on their "
        "outputs; <i>fine-tuning</i> also trains some of the pretrained layers, at a low learning rate. Freezing "
        "keeps the small target dataset from destroying general features through large early gradients, cuts the "
        "training cost to the head, and lets the frozen outputs be computed once and cached. Keras Applications "
        f"{cite('keras')} provides the architectures compared here with ImageNet weights and a matching "
        "<code>preprocess_input</code> per model. Which of them transfers best is an empirical question: better "
        f"ImageNet models tend to transfer better, and the ranking differs between fixed features and fine-tuning "
        f"{cite('kornblith')}; on a CPU the cost of extraction matters as much as accuracy.</p>",
        "<h2>Materials and methods</h2>",
        f"<h3>Data</h3><p>{data_txt}</p>",
        "<h3>Backbones, preprocessing and upscaling</h3>",
        "<p>Each backbone is built with <code>include_top=False</code> and global average pooling, and fed "
        "CIFAR-10's 32×32 images upscaled (bilinear) to the input size, then passed through the model's own "
        "<code>preprocess_input</code>. Resizing and preprocessing run inside the same TensorFlow graph as the "
        "base, batch by batch. Throughput excludes the first (warm-up) batch. Backbones without pretrained "
        "weights on the machine are timed with random weights, which does not change their speed, and get no "
        "accuracy. ConvNeXt's depthwise convolutions, which Keras writes as grouped convolutions (slow on CPU), "
        f"are run as the equivalent depthwise layers. {_engine_text(frame, cfg)}{timing_note}</p>",
        f"<h3>Regimes and heads</h3>{regime_txt}<p>{head_txt}</p>",
        "<h3>Statistics</h3><p>Test accuracy is reported with a percentile bootstrap 95% interval "
        f"{cite('bootstrap')}; per-class accuracy with a Wilson interval {cite('wilson')}. Two rows are compared on "
        f"the same test images with the exact McNemar test {cite('mcnemar')}. Rows are ranked by validation "
        "accuracy; test accuracy is never used to choose.</p>",
        f"<h3>Hardware and software</h3>{_hardware_box(frame, env)}{_mixed_hardware(frame)}",
        "<h2>Results</h2>",
        f"<p>{headline} Table 1 ranks every scored row by the top-scorer rule; {figs.ref('throughput')} sets "
        f"accuracy against extraction speed, {figs.ref('params')} against the base's size, and "
        f"{figs.ref('time')} gives every backbone's time per image. {figs.ref('confusion')} breaks the top "
        f"scorer's errors down by class, and {figs.ref('examples')} shows its predictions on test images.</p>",
        "<p><b>Table 1.</b> Scored rows, best first by the top-scorer rule (the top scorer in bold).</p>",
        _results_table(frame),
        _paired_text(stats, top, second),
        chosen,
        figs.html("throughput") if figs.all[0].key != "throughput" else "",
        figs.html("params"),
        figs.html("time"),
        f"<p><b>Table 2.</b> Cost of every backbone at each measured size, in the style of the Keras Applications "
        f"table: published ImageNet top-1, parameters of the base without its top, GFLOPs per image counted "
        f"from the graph, time per image, peak memory, share of this machine's matmul peak, the minutes "
        f"extracting {N_EXTRACT} images would take here, and the best frozen head's test accuracy.</p>",
        _cost_table(frame, stats),
        figs.html("sweep"),
        _regime_text(stats, figs),
        figs.html("regimes"),
        _ksl_text(stats, frame, figs),
        figs.html("ksl"),
        figs.html("confusion"),
        figs.html("examples") if figs.all[0].key != "examples" else "",
        _epoch_text(env.get("epoch_ratio"), figs),
        figs.html("epoch"),
        _final_section(env, figs),
        "<h2>Discussion</h2>",
        f"<p>Accuracy and speed trade off: the Pareto front in {figs.ref('throughput')} shows which backbones are "
        f"worth their cost on this machine. {random_models} of the {n_models} backbones had no pretrained weights "
        f"here; their speed is measured but their accuracy is unknown, so the ranking covers only the others. "
        f"Timings depend on the core count and on the oneDNN kernels each architecture hits on this CPU's "
        f"instruction set (see the hardware box). Small input sizes hurt networks designed for large inputs more, "
        f"so the resolution sweep ({figs.ref('sweep')}) matters when choosing a size.</p>",
        "<h2>Limitations</h2>", limitations,
        "<h2>Conclusion</h2>", conclusion,
        "<h2>Reproduction</h2>", _reproduction(env, results_dir),
        "<h2>References</h2><ol>", *[f"<li>{text}</li>" for _, text in REFERENCES], "</ol>",
    ]
    return "\n".join(s for s in sections if s)


def figure_plan(frame: pd.DataFrame, env: dict, predictions: dict | None, final_arrays=None) -> Figures:
    """The page's figures, in page order, each with the reason when it cannot be drawn. The top picture is
    the final model's predictions when transfer.npz is there, else the top scorer's, else the speed figure."""
    pretrained = ranked(frame)["model"].nunique()  # backbones with an accuracy
    has_finetune = "regime" in frame and (frame["regime"] == "finetune").any()
    top = top_scorer(frame)
    examples_first = predictions is not None and top is not None and figures.prediction_key(top) in predictions
    has_frozen_scores = not best_rows(figures.frozen(frame)).empty
    timed = not figures.timing_rows(frame).empty
    plan = [
        Figure("examples", "fig_examples.png",
               "CIFAR-10 test images with the top scorer's predictions (green: right; red: wrong, with the true "
               "label).", None if examples_first else
               "no examples.npz with the top scorer's predictions beside the results, or no scored row"),
        Figure("throughput", "fig_accuracy_vs_throughput.png",
               "Test accuracy against extraction throughput, frozen features. Error bars are bootstrap 95% "
               "intervals; the orange line is the Pareto front; the star is the top scorer when it is a frozen "
               "row. The strip below places the backbones timed with random weights on the same speed axis; "
               "they have no accuracy.", None if timed else "no frozen-regime timing in these results"),
        Figure("params", "fig_accuracy_vs_params.png",
               "Test accuracy (best frozen head, 95% interval) against the frozen base's parameters without its "
               "top.", None if has_frozen_scores else "no frozen-regime accuracy in these results"),
        Figure("time", "fig_time_per_image.png", "Extraction time per image, sorted, with the values.",
               None if timed else "no frozen-regime timing in these results"),
        Figure("sweep", "fig_resolution_sweep.png",
               "Resolution sweep: test accuracy (best frozen head, 95% interval) and throughput against input size.",
               None if figures.sweep_models(frame) else "every pretrained backbone was scored at one size only"),
        Figure("regimes", "fig_frozen_vs_finetuned.png",
               "Frozen against fine-tuned: test accuracy of the frozen base's best head and of the network whose "
               "last stage was fine-tuned, per backbone and size, with bootstrap 95% intervals.",
               None if not figures.regime_pairs(frame).empty else
               "no backbone and size scored in both regimes" if has_finetune else
               "no fine-tuned rows (run the benchmark with --regime frozen finetune)"),
        Figure("ksl", "fig_imagenet_vs_cifar.png",
               "ImageNet top-1 against CIFAR-10 test accuracy (95% interval), each backbone at its best size, "
               "frozen and, where measured, fine-tuned.",
               None if pretrained >= 2 else "fewer than 2 pretrained backbones"),
        Figure("confusion", "fig_confusion.png",
               "The top scorer's confusion matrix, each row as % of its true class (errors coloured, the diagonal "
               "in blue), and its per-class accuracy with Wilson 95% intervals.",
               None if top is not None else "no scored row"),
        Figure("epoch", "fig_epoch_ratio.png",
               "Seconds per head epoch on cached features and end to end through the frozen base, median with "
               "the range over the repeats.",
               None if env.get("epoch_ratio") else "python -m benchmark.epoch_ratio was not run into this folder"),
    ]
    t = env.get("transfer")
    no_transfer = "no transfer.json from 0-transfer.py in the results folder"
    no_arrays = "no transfer.npz from 0-transfer.py in the results folder"
    plan += [
        Figure("final_curves", "fig_final_curves.png",
               "Training the final model: training and validation accuracy per epoch, the head on frozen features "
               "and then the fine-tuned part above the cut.", None if t and t.get("curves") else no_transfer),
        Figure("final_confusion", "fig_final_confusion.png",
               "The final model's confusion matrix on the test images, each row as % of its true class, and its "
               "per-class accuracy with Wilson 95% intervals.", None if final_arrays is not None else no_arrays),
        Figure("final_examples", "fig_final_examples.png",
               "The final model (cifar10.h5 as saved) on CIFAR-10 test images: predicted label (green: right; red: "
               "wrong, with the true label).", None if final_arrays is not None else no_arrays),
    ]
    examples = plan.pop(0)
    plan.insert([f.key for f in plan].index("confusion") + 1, examples)  # the page shows it after the confusion
    by_key = {f.key: f for f in plan}
    # The top picture: the final model's predictions, else the top scorer's, else the speed figure. The
    # rest keep the order paper() places them in, so the numbers run in page order.
    top_key = next(k for k in ("final_examples", "examples", "throughput") if by_key[k].missing is None
                   or k == "throughput")
    return Figures([by_key[top_key]] + [f for f in plan if f.key != top_key])


DRAW = {
    "throughput": figures.accuracy_vs_throughput, "params": figures.accuracy_vs_params,
    "time": figures.time_per_image, "sweep": figures.resolution_sweep, "regimes": figures.frozen_vs_finetuned,
    "ksl": figures.imagenet_vs_cifar, "confusion": figures.confusion,
}


def _save(fig, path: str) -> None:
    """Saves a figure as PNG atomically and closes it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:  # a unique temp name: concurrent builds never share one
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def build_report(results_dir: str = "results", out_dir: str | None = None, echo=print,
                 author: str | None = None) -> str:
    """Writes `out_dir/index.html` (default `results_dir/report`) and its figures; returns the page's path."""
    out_dir = out_dir or os.path.join(results_dir, "report")
    frame = load_results(results_dir)
    env = facts(results_dir)
    try:
        images, labels, predictions = load_examples(results_dir)
    except (OSError, KeyError, ValueError):
        images, labels, predictions = None, None, {}
    _, final_arrays = load_transfer(results_dir)
    figs = figure_plan(frame, env, predictions if images is not None else None, final_arrays)
    os.makedirs(out_dir, exist_ok=True)
    for fig in figs.all:
        if fig.missing is not None:
            continue
        if fig.key == "examples":
            drawn = figures.examples(frame, images, labels, predictions)
        elif fig.key == "epoch":
            drawn = figures.epoch_ratio(env["epoch_ratio"])
        elif fig.key == "final_examples":
            drawn = figures.examples_figure(final_arrays[0], final_arrays[1], final_arrays[2],
                                            f"The final model, {env['transfer']['backbone']} @"
                                            f"{env['transfer']['img_size']} px," if env.get("transfer")
                                            else "The final model")
        elif fig.key == "final_curves":
            drawn = figures.training_curves(env["transfer"])
        elif fig.key == "final_confusion":
            drawn = figures.confusion_figure(figures.confusion_matrix(final_arrays[1], final_arrays[2]),
                                             "the final model")
        else:
            drawn = DRAW[fig.key](frame)
        _save(drawn, os.path.join(out_dir, fig.filename))
    body = paper(frame, env, figs, results_dir, _author(author))
    page = ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
            f"<title>backbone-bench report</title><style>{CSS}</style></head><body>{body}</body></html>\n")
    index = os.path.join(out_dir, "index.html")
    write_text(index, page)
    echo(f"Report: {index}")
    return index
