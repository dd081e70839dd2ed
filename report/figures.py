"""Comparison figures from the tidy results table (matplotlib, Agg backend).

Each function takes the results DataFrame and returns a matplotlib Figure.
Accuracies come only from rows with pretrained weights; random-weight rows
appear on speed axes only.
"""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmark.core.data import CLASSES  # noqa: E402
from benchmark.core.results import best_rows, top_scorer  # noqa: E402


def timing_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, img_size) with its throughput."""
    return frame.dropna(subset=["samples_per_sec"]).drop_duplicates(["model", "img_size"]).reset_index(drop=True)


def pareto_front(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Rows not beaten on both `x` and `y` (larger is better for both), sorted by x."""
    ordered = points.sort_values([x, y], ascending=[False, False])
    keep, best = [], -np.inf
    for i, row in ordered.iterrows():
        if row[y] > best:
            keep.append(i)
            best = row[y]
    return points.loc[keep].sort_values(x)


def text_box(annotation, renderer):
    """The label's own box, without its leader line."""
    from matplotlib.text import Text

    annotation.update_positions(renderer)  # an annotation's text moves to xytext only when laid out
    return Text.get_window_extent(annotation, renderer)


def place_labels(ax, fig, points, fontsize: int = 8) -> list:
    """Annotates (x, y, text) points without overlaps.

    Each label tries positions right then left of its point, stepping away
    vertically, and takes the first that stays inside the axes and overlaps
    no label placed before it. Returns the annotations.
    """
    fig.canvas.draw()  # fixes the axes limits and scales used below
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    candidates = [(dx, ha, dy) for k in range(12) for dy in ((4 + 11 * k, 4 - 11 * k) if k else (4,))
                  for dx, ha in ((4, "left"), (-4, "right"))]
    placed, boxes = [], []
    for x, y, text in sorted(points, key=lambda p: -p[1]):
        chosen = None
        for dx, ha, dy in candidates:
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize, ha=ha,
                              arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5} if abs(dy) > 4 else None)
            box = text_box(ann, renderer)
            inside = (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1)
            if inside and not any(box.expanded(1.02, 1.1).overlaps(other) for other in boxes):
                chosen = (ann, box)
                break
            ann.remove()
        if chosen is None:  # no free spot: keep the default position
            ann = ax.annotate(text, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=fontsize)
            chosen = (ann, text_box(ann, renderer))
        placed.append(chosen[0])
        boxes.append(chosen[1])
    return placed


def _label(row) -> str:
    return f"{row['model']} @{int(row['img_size'])}"


def _labels_to_draw(best: pd.DataFrame, front: pd.DataFrame) -> pd.DataFrame:
    """Only the Pareto points and the best of each family get a text label."""
    family_best = best.loc[best.groupby("family")["test_acc"].idxmax()]
    return pd.concat([front, family_best]).drop_duplicates(["model", "img_size"])


def accuracy_vs_throughput(frame: pd.DataFrame):
    """Figure 1: test accuracy against extraction throughput, with the Pareto front."""
    fig, ax = plt.subplots(figsize=(8, 5.2))
    best = best_rows(frame)
    timed = timing_rows(frame)
    random = timed[timed["weights"] == "random"]
    front = None
    if not best.empty:
        err = np.vstack([best["test_acc"] - best["test_ci_low"], best["test_ci_high"] - best["test_acc"]]) * 100
        ax.errorbar(best["samples_per_sec"], best["test_acc"] * 100, yerr=err, fmt="o", color="tab:blue",
                    ecolor="0.7", capsize=2, label="pretrained (best head, 95% CI)")
        front = pareto_front(best, "samples_per_sec", "test_acc")
        ax.plot(front["samples_per_sec"], front["test_acc"] * 100, "-", color="tab:orange", lw=1.5,
                label="Pareto front")
    if not random.empty:
        # Random-weight rows have no accuracy: hollow markers on the time axis only.
        ax.plot(random["samples_per_sec"], np.zeros(len(random)), "o", mfc="none", mec="0.4", clip_on=False,
                transform=ax.get_xaxis_transform(), label="random weights (timing only)")
    ax.set_xscale("log")
    ax.set_xlabel("extraction throughput (images/s, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against speed")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()  # before labelling: labels are placed in final display coordinates
    if front is not None:
        place_labels(ax, fig, [(row["samples_per_sec"], row["test_acc"] * 100, _label(row))
                               for _, row in _labels_to_draw(best, front).iterrows()])
    return fig


def accuracy_vs_params(frame: pd.DataFrame):
    """Figure 2: test accuracy against parameter count."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    best = best_rows(frame)
    if not best.empty:
        ax.scatter(best["param_count"] / 1e6, best["test_acc"] * 100, color="tab:green")
    ax.set_xscale("log")
    ax.set_xlabel("parameters of the frozen base (millions, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against size")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    if not best.empty:
        front = pareto_front(best.assign(neg=-best["param_count"]), "neg", "test_acc")
        place_labels(ax, fig, [(row["param_count"] / 1e6, row["test_acc"] * 100, _label(row))
                               for _, row in _labels_to_draw(best, front).iterrows()])
    return fig


def time_per_image(frame: pd.DataFrame):
    """Figure 3: extraction time per image, one horizontal bar per (backbone, size), sorted."""
    timed = timing_rows(frame).sort_values("ms_per_img")
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.22 * len(timed) + 1)))
    colors = ["tab:blue" if w == "imagenet" else "0.6" for w in timed["weights"]]
    ax.barh([_label(r) for _, r in timed.iterrows()], timed["ms_per_img"], color=colors)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("extraction time per image (ms, log scale)")
    ax.set_ylabel("backbone @ input size (px)")
    ax.set_title("Extraction time per image (grey: random weights, timing only)")
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(alpha=0.3, axis="x", which="both")
    fig.tight_layout()
    return fig


def resolution_sweep(frame: pd.DataFrame):
    """Figure 4: accuracy and throughput against input size, one line per backbone."""
    fig, (ax_acc, ax_speed) = plt.subplots(1, 2, figsize=(10, 4.2))
    best = best_rows(frame)
    for model, rows in best.groupby("model"):
        rows = rows.sort_values("img_size")
        ax_acc.plot(rows["img_size"], rows["test_acc"] * 100, "o-", label=model)
    for model, rows in timing_rows(frame).groupby("model"):
        if rows["img_size"].nunique() > 1 or model in set(best["model"]):
            rows = rows.sort_values("img_size")
            ax_speed.plot(rows["img_size"], rows["samples_per_sec"], "o-", label=model)
    ax_acc.set_xlabel("input size (px)")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.set_title("Accuracy against input size")
    ax_speed.set_xlabel("input size (px)")
    ax_speed.set_ylabel("throughput (images/s, log scale)")
    ax_speed.set_yscale("log")
    ax_speed.set_title("Throughput against input size")
    for ax in (ax_acc, ax_speed):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def confusion(frame: pd.DataFrame):
    """Figure 5: the top scorer's confusion matrix and per-class accuracy."""
    top = top_scorer(frame)
    fig, (ax_cm, ax_pc) = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [1.2, 1]})
    if top is None:
        ax_cm.set_axis_off()
        ax_pc.set_axis_off()
        return fig
    cm = np.array(json.loads(top["confusion"]))
    per_class = np.array(json.loads(top["per_class_acc"]), dtype=float)
    im = ax_cm.imshow(cm, cmap="Blues")
    ax_cm.set_xticks(range(10), CLASSES, rotation=60, fontsize=8)
    ax_cm.set_yticks(range(10), CLASSES, fontsize=8)
    ax_cm.set_xlabel("predicted class")
    ax_cm.set_ylabel("true class")
    ax_cm.set_title(f"Confusion matrix: {_label(top)} px, {top['head']} head")
    fig.colorbar(im, ax=ax_cm, label="test images")
    ax_pc.barh(CLASSES, per_class * 100, color="tab:blue")
    ax_pc.invert_yaxis()
    ax_pc.set_xlim(0, 100)
    ax_pc.set_xlabel("per-class test accuracy (%)")
    ax_pc.set_title("Per-class accuracy")
    ax_pc.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def examples(frame: pd.DataFrame, images: np.ndarray, labels: np.ndarray, predictions: dict):
    """Figure 6: test images with true and predicted labels from the top scorer."""
    top = top_scorer(frame)
    key = None if top is None else f"{top['model']}|{int(top['img_size'])}|{top['head']}"
    preds = predictions.get(key)
    n = min(len(images), 24)
    cols = 8
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.85))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(images[i], interpolation="nearest")
        truth = CLASSES[int(labels[i])]
        if preds is None:
            ax.set_title(truth, fontsize=7)
        else:
            guess = CLASSES[int(preds[i])]
            ok = guess == truth
            ax.set_title(f"{guess}" if ok else f"{guess}\n(true: {truth})", fontsize=7,
                         color="tab:green" if ok else "tab:red")
    fig.suptitle("Test images: predicted label (red: mistakes, with the true label)" if preds is not None
                 else "Test images and their labels", fontsize=9)
    fig.tight_layout()
    return fig


def epoch_ratio(measured: dict):
    """Figure 7: seconds per head epoch on cached features against end to end
    through the frozen base (median, with the range over the repeats)."""
    rows = [("head on cached features", measured["head_epoch_s"]),
            (f"end to end through {measured['model']} @{measured['img_size']}", measured["end_to_end_epoch_s"])]
    med = np.array([r["median"] for _, r in rows])
    err = np.array([[r["median"] - r["min"] for _, r in rows], [r["max"] - r["median"] for _, r in rows]])
    fig, ax = plt.subplots(figsize=(8, 2.8))
    ax.barh([name for name, _ in rows], med, xerr=err, color=["tab:green", "tab:red"], capsize=4)
    for y, value in enumerate(med):
        ax.annotate(f"{value:.3g} s", (value, y), xytext=(8, 8), textcoords="offset points", fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(med.min() / 3, med.max() * 4)
    ax.set_xlabel("seconds per epoch (log scale)")
    ratio = measured["ratio"]
    ax.set_title(f"One head epoch on {measured['n_images']} images\nend to end is {ratio['median']:.0f}x slower "
                 f"(range {ratio['min']:.0f}-{ratio['max']:.0f}x over {len(ratio['values'])} repeats)", fontsize=9)
    ax.grid(alpha=0.3, axis="x", which="both")
    fig.tight_layout()
    return fig
