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

from benchmark.core.results import best_rows, row_predictions, top_scorer  # noqa: E402


def frozen(frame: pd.DataFrame) -> pd.DataFrame:
    """The frozen regime's rows (a fine-tuned row's throughput is of the part below its cut only). A frame
    built by hand without the regime column (as `ranked` allows) is all frozen; loaded results have it."""
    return frame[frame["regime"] == "frozen"] if "regime" in frame else frame


def timing_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, img_size) with the whole base's throughput (frozen rows)."""
    return frozen(frame).dropna(subset=["samples_per_sec"]).drop_duplicates(["model", "img_size"]) \
        .reset_index(drop=True)


def _plain_log_ticks(axis) -> None:
    """Log-axis ticks as plain numbers (3, 10, 30), not 3x10^0."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


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
    """Accuracy against extraction throughput (frozen regime), the Pareto front and the top scorer; below,
    in a strip of its own, the throughput of backbones timed with random weights (they have no accuracy)."""
    best = best_rows(frozen(frame))
    random = timing_rows(frame)
    random = random[random["weights"] == "random"]
    fig, (ax, strip) = plt.subplots(2, 1, figsize=(8, 6.2), sharex=True,
                                    gridspec_kw={"height_ratios": [5, 1] if not random.empty else [5, 0.01]})
    front = None
    if not best.empty:
        err = np.vstack([best["test_acc"] - best["test_ci_low"], best["test_ci_high"] - best["test_acc"]]) * 100
        ax.errorbar(best["samples_per_sec"], best["test_acc"] * 100, yerr=err, fmt="o", color="tab:blue",
                    ecolor="0.7", capsize=2, label="pretrained, frozen (best head, 95% CI)")
        front = pareto_front(best, "samples_per_sec", "test_acc")
        ax.plot(front["samples_per_sec"], front["test_acc"] * 100, "-", color="tab:orange", lw=1.5,
                label="Pareto front")
        top = top_scorer(frame)
        if top is not None and top["regime"] == "frozen":
            ax.plot([top["samples_per_sec"]], [top["test_acc"] * 100], "*", ms=16, mfc="gold", mec="k",
                    label="top scorer (validation rule)")
    ax.set_xscale("log")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against speed (frozen features)")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize=8)
    strip.set_yticks([])
    if not random.empty:
        strip.plot(random["samples_per_sec"], np.zeros(len(random)), "|", ms=18, color="0.4")
        strip.set_ylabel("random\nweights", fontsize=8, rotation=0, ha="right", va="center")
        strip.set_title("timed only, no accuracy (random weights)", fontsize=8, loc="left")
        strip.grid(alpha=0.3, axis="x", which="both")
    else:
        strip.set_axis_off()
    strip.set_xlabel("extraction throughput (images/s, log scale)")
    _plain_log_ticks(strip.xaxis)
    fig.tight_layout()  # before labelling: labels are placed in final display coordinates
    if front is not None:
        place_labels(ax, fig, [(row["samples_per_sec"], row["test_acc"] * 100, _label(row))
                               for _, row in _labels_to_draw(best, front).iterrows()])
    return fig


def accuracy_vs_params(frame: pd.DataFrame):
    """Test accuracy (frozen, best head) against the base's parameter count."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    best = best_rows(frozen(frame))
    if not best.empty:
        err = np.vstack([best["test_acc"] - best["test_ci_low"], best["test_ci_high"] - best["test_acc"]]) * 100
        ax.errorbar(best["param_count"] / 1e6, best["test_acc"] * 100, yerr=err, fmt="o", color="tab:green",
                    ecolor="0.7", capsize=2)
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis)
    ax.set_xlabel("parameters of the frozen base without its top (millions, log scale)")
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
    """Extraction time per image, one labelled dot per (backbone, size), sorted (a dot plot: on a log
    axis a bar's length would mean nothing)."""
    timed = timing_rows(frame).sort_values("ms_per_img")
    fig, ax = plt.subplots(figsize=(7.5, max(2.5, 0.22 * len(timed) + 1)))
    colors = ["tab:blue" if w == "imagenet" else "0.5" for w in timed["weights"]]
    y = np.arange(len(timed))
    ax.hlines(y, timed["ms_per_img"].min() / 1.5, timed["ms_per_img"], color="0.88", lw=0.8)
    ax.scatter(timed["ms_per_img"], y, color=colors, s=18, zorder=3)
    for yi, value in zip(y, timed["ms_per_img"]):
        ax.annotate(f"{value:.3g}", (value, yi), xytext=(5, -3), textcoords="offset points", fontsize=6.5)
    ax.set_yticks(y, [_label(r) for _, r in timed.iterrows()])
    ax.invert_yaxis()
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis)
    ax.set_xlim(timed["ms_per_img"].min() / 1.5, timed["ms_per_img"].max() * 2.2)
    ax.set_xlabel("extraction time per image (ms, log scale)")
    ax.set_ylabel("backbone @ input size (px)")
    ax.set_title("Extraction time per image (blue: pretrained; grey: random weights, timed only)", fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(alpha=0.3, axis="x", which="both")
    fig.tight_layout()
    return fig


def sweep_models(frame: pd.DataFrame) -> list[str]:
    """Pretrained backbones scored at more than one input size (what the resolution sweep can show)."""
    best = best_rows(frozen(frame))
    sizes = best.groupby("model")["img_size"].nunique()
    return sorted(sizes[sizes > 1].index)


def resolution_sweep(frame: pd.DataFrame):
    """Accuracy (frozen, best head, 95% CI) and throughput against input size, one line per backbone."""
    fig, (ax_acc, ax_speed) = plt.subplots(1, 2, figsize=(10, 4.2))
    best = best_rows(frozen(frame))
    for model in sweep_models(frame):
        rows = best[best["model"] == model].sort_values("img_size")
        err = np.vstack([rows["test_acc"] - rows["test_ci_low"], rows["test_ci_high"] - rows["test_acc"]]) * 100
        ax_acc.errorbar(rows["img_size"], rows["test_acc"] * 100, yerr=err, fmt="o-", capsize=2, label=model)
        ax_speed.plot(rows["img_size"], rows["samples_per_sec"], "o-", label=model)
    ax_acc.set_xlabel("input size (px)")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.set_title("Accuracy against input size")
    ax_speed.set_xlabel("input size (px)")
    ax_speed.set_ylabel("throughput (images/s, log scale)")
    ax_speed.set_yscale("log")
    _plain_log_ticks(ax_speed.yaxis)
    ax_speed.set_title("Throughput against input size")
    for ax in (ax_acc, ax_speed):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def regime_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """(model, img_size) with both regimes scored: the frozen best head's and the fine-tuned test accuracy."""
    best = best_rows(frame)
    if best.empty:
        return pd.DataFrame()
    cols = ["model", "img_size", "test_acc", "test_ci_low", "test_ci_high", "val_acc"]
    a = best[best["regime"] == "frozen"][cols]
    b = best[best["regime"] == "finetune"][cols + ["ft_train_s", "trainable_params"]]
    return a.merge(b, on=["model", "img_size"], suffixes=("_frozen", "_finetune")).sort_values(
        ["model", "img_size"]).reset_index(drop=True)


def frozen_vs_finetuned(frame: pd.DataFrame):
    """Per (backbone, size): test accuracy of the frozen regime's best head and of the fine-tuned network."""
    pairs = regime_pairs(frame)
    fig, ax = plt.subplots(figsize=(7.5, max(2.5, 0.36 * len(pairs) + 1.2)))
    y = np.arange(len(pairs))
    for regime, color, dy in (("frozen", "tab:blue", -0.12), ("finetune", "tab:red", 0.12)):
        acc = pairs[f"test_acc_{regime}"] * 100
        err = np.vstack([acc - pairs[f"test_ci_low_{regime}"] * 100, pairs[f"test_ci_high_{regime}"] * 100 - acc])
        ax.errorbar(acc, y + dy, xerr=err, fmt="o", color=color, ecolor=color, alpha=0.9, capsize=2,
                    label={"frozen": "frozen base, best head", "finetune": "last stage fine-tuned"}[regime])
    for yi, (_, r) in zip(y, pairs.iterrows()):
        ax.plot([r["test_acc_frozen"] * 100, r["test_acc_finetune"] * 100], [yi - 0.12, yi + 0.12], color="0.7",
                lw=0.8)
    ax.set_yticks(y, [_label(r) for _, r in pairs.iterrows()], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy (%), 95% bootstrap interval")
    ax.set_title("Frozen features against a fine-tuned last stage")
    ax.grid(alpha=0.3, axis="x")
    if len(pairs):
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def ksl_points(frame: pd.DataFrame, regime: str, img_size: str | int = "best") -> pd.DataFrame:
    """One row per pretrained backbone for Kornblith et al.'s question: its ImageNet top-1 and its target-task
    accuracy in `regime`, at `img_size` (a number, "native", or "best": its best size by the top-scorer rule)."""
    rows = best_rows(frame)
    rows = rows[rows["regime"] == regime]
    if img_size == "native":
        import backbones

        rows = rows[rows["img_size"] == rows["model"].map(lambda m: backbones.get(m).native_size)]
    elif img_size != "best":
        rows = rows[rows["img_size"] == int(img_size)]
    return rows.drop_duplicates("model").reset_index(drop=True)  # ranked: the first row per model is its best


def imagenet_vs_cifar(frame: pd.DataFrame, data: str = "CIFAR-10"):
    """ImageNet top-1 against test accuracy on `data` (the dataset's label; 95% CI), frozen and, where
    measured, fine-tuned, each backbone at its best input size."""
    fig, ax = plt.subplots(figsize=(7, 4.6))
    labels = []
    for regime, marker, color in (("frozen", "o", "tab:blue"), ("finetune", "s", "tab:red")):
        pts = ksl_points(frame, regime)
        if pts.empty:
            continue
        err = np.vstack([pts["test_acc"] - pts["test_ci_low"], pts["test_ci_high"] - pts["test_acc"]]) * 100
        ax.errorbar(pts["imagenet_top1"], pts["test_acc"] * 100, yerr=err, fmt=marker, color=color, capsize=2,
                    label={"frozen": "frozen features", "finetune": "last stage fine-tuned (ft)"}[regime])
        labels += [(r["imagenet_top1"], r["test_acc"] * 100, f"{r['model']} @{int(r['img_size'])}"
                    + (" (ft)" if regime == "finetune" else "")) for _, r in pts.iterrows()]
    ax.set_xlabel("published ImageNet top-1 of the Keras weights (%)")
    ax.set_ylabel(f"{data} test accuracy (%)")
    ax.set_title("Do better ImageNet models transfer better? (each at its best size)")
    return _labelled(fig, ax, labels, x_margin=0.25, y_margin=0.1)


def quick_vs_truth(points: pd.DataFrame, data: str = "CIFAR-10"):
    """Per backbone: its quick test accuracies (frozen head, fine-tuned; 95% intervals) against the test accuracy
    of the network fine-tuned on all the training images (the truth; 95% interval). `points`:
    `report.analysis.truth_points`."""
    fig, ax = plt.subplots(figsize=(7, 4.6))
    labels = []
    truth = points["test_acc"] * 100
    truth_err = np.vstack([truth - points["test_ci_low"] * 100, points["test_ci_high"] * 100 - truth])
    size = int(points["quick_size"].iloc[0])
    for regime, marker, color, name in (("frozen", "o", "tab:blue", "frozen head"),
                                        ("finetune", "s", "tab:red", "last stage fine-tuned")):
        col = f"quick_{regime}"
        have = points[col].notna() if col in points.columns else pd.Series(False, index=points.index)
        if not have.any():
            continue
        pts = points[have]
        x = pts[col] * 100
        x_err = np.vstack([x - pts[f"{col}_low"] * 100, pts[f"{col}_high"] * 100 - x])
        ax.errorbar(x, truth[have], xerr=x_err, yerr=truth_err[:, have.to_numpy()], fmt=marker, color=color,
                    capsize=2, label=f"quick, {name} @{size} px")
        labels += [(xi, yi, f"{m} ({'ft' if regime == 'finetune' else 'frozen'})")
                   for xi, yi, m in zip(x, truth[have], pts["model"])]
    n_train = int(points["train_size"].max())
    ax.set_xlabel(f"quick {data} test accuracy (%), {size} px")
    ax.set_ylabel(f"fine-tuned on all {n_train} training images:\ntest accuracy (%)")
    ax.set_title("Does the quick ranking order the backbones as the full fine-tune does?")
    return _labelled(fig, ax, labels, x_margin=0.2, y_margin=0.15)


def _labelled(fig, ax, labels: list, x_margin: float, y_margin: float):
    """Grid, legend and margins, then the point labels without overlaps: a label ending "(ft)" (fine-tuned) in red,
    the others in blue."""
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.margins(x=x_margin, y=y_margin)
    fig.tight_layout()
    for ann in place_labels(ax, fig, labels, fontsize=7):
        ann.set_color("tab:red" if ann.get_text().endswith("(ft)") else "tab:blue")
    return fig


def confusion(frame: pd.DataFrame, class_names):
    """The top scorer's confusion matrix and per-class accuracy (see `confusion_figure`)."""
    top = top_scorer(frame)
    if top is None:
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.set_axis_off()
        return fig
    return confusion_figure(np.array(json.loads(top["confusion"]), dtype=float),
                            f"{_label(top)} px, {top['regime']}, {top['head']} head", class_names)


def class_name(class_names, i: int) -> str:
    """Label `i`'s name; its number past the names' end (a matrix wider than the names it came with)."""
    return str(class_names[i]) if 0 <= i < len(class_names) else str(i)


def class_labels(class_names, n: int) -> list[str]:
    """The names of labels 0..n-1."""
    return [class_name(class_names, i) for i in range(n)]


CELL_NUMBERS_UP_TO = 20  # classes: above, the matrix is drawn without a number in every cell
SIDE_BY_SIDE_UP_TO = 30  # classes: above, the per-class bars go below the matrix, which takes the full width


def confusion_figure(cm: np.ndarray, what: str, class_names):
    """A confusion matrix (n_classes, n_classes), each row normalised to 100% (errors coloured on their own
    scale, so the diagonal does not swamp it), and the per-class accuracy with Wilson 95% intervals.

    Legible from 2 to ~100 classes: up to `CELL_NUMBERS_UP_TO` every cell prints its value (the diagonal's in
    blue); above, the cells would be too small to read, so the diagonal is shaded blue instead. Above
    `SIDE_BY_SIDE_UP_TO` the matrix takes the figure's width and the per-class bars stand below it.
    """
    n = len(cm)
    names = class_labels(class_names, n)
    stacked = n > SIDE_BY_SIDE_UP_TO
    if stacked:
        fig, (ax_cm, ax_pc) = plt.subplots(2, 1, figsize=(11.5, 15), gridspec_kw={"height_ratios": [3, 1]})
        tick = min(8.0, 520 / n)  # points: a row of a ~9-inch matrix is 650/n points high
    else:
        fig, (ax_cm, ax_pc) = plt.subplots(1, 2, figsize=(11.5, max(4.8, 0.13 * n + 2)),
                                           gridspec_kw={"width_ratios": [1.25, 1]})
        tick = 8 if n <= 12 else max(3.5, 96 / n)
    per_row = cm.sum(axis=1)
    _confusion_matrix(ax_cm, fig, 100 * cm / np.maximum(per_row[:, None], 1), names, tick, what)
    _per_class_bars(ax_pc, np.diag(cm), per_row, names, None if n <= 12 else tick, vertical=stacked)
    fig.tight_layout()
    return fig


def _confusion_matrix(ax, fig, share: np.ndarray, names: list[str], tick: float, what: str) -> None:
    """The matrix of `share` (n, n), % of each true class: errors in red, the diagonal in blue."""
    n = len(share)
    off = share.copy()
    np.fill_diagonal(off, np.nan)
    top = max(1.0, np.nanmax(off)) if n > 1 else 1.0
    im = ax.imshow(off, cmap="Reds", vmin=0, vmax=top)
    if n <= CELL_NUMBERS_UP_TO:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{share[i, j]:.0f}", ha="center", va="center", fontsize=6.5 if n <= 12 else 5,
                        color="tab:blue" if i == j else ("white" if share[i, j] > 0.6 * top else "k"),
                        fontweight="bold" if i == j else None)
    else:
        diagonal = np.full_like(share, np.nan)
        np.fill_diagonal(diagonal, np.diag(share))
        ax.imshow(diagonal, cmap="Blues", vmin=0, vmax=100)
    ax.set_xticks(range(n), names, rotation=60 if n <= 12 else 90, fontsize=tick)
    ax.set_yticks(range(n), names, fontsize=tick)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion (% of each true class): {what}", fontsize=9)
    fig.colorbar(im, ax=ax, label="% of the true class (off-diagonal)", shrink=0.6 if n > SIDE_BY_SIDE_UP_TO else 1)


def _per_class_bars(ax, correct: np.ndarray, per_row: np.ndarray, names: list[str], tick, vertical: bool) -> None:
    """Per-class accuracy (n,) with Wilson 95% intervals: horizontal bars, the first class on top, or vertical
    bars under a wide matrix."""
    from .stats import wilson

    intervals = np.array([wilson(c, m) for c, m in zip(correct, per_row)]).reshape(len(names), 2) * 100
    acc = 100 * correct / np.maximum(per_row, 1)
    err = np.vstack([acc - intervals[:, 0], intervals[:, 1] - acc])
    low, high = int(per_row.min()), int(per_row.max())
    n_class = f"{low}" if low == high else f"{low}-{high}"
    label = f"per-class test accuracy (%), Wilson 95% interval\n({n_class} test images per class)"
    if vertical:
        ax.bar(range(len(names)), acc, yerr=err, color="tab:blue", ecolor="0.3", capsize=0)
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=tick)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_ylim(0, 100)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    else:
        ax.barh(range(len(names)), acc, xerr=err, color="tab:blue", ecolor="0.3", capsize=2)
        ax.set_yticks(range(len(names)), names, fontsize=tick)
        ax.invert_yaxis()  # the first class on top, as in the matrix
        ax.set_xlim(0, 100)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3, axis="x")
    ax.set_title("Per-class accuracy", fontsize=9)


def training_curves(record: dict):
    """The final model's per-epoch training and validation accuracy, stage after stage."""
    curves = record.get("curves") or {}
    fig, ax = plt.subplots(figsize=(8, 3.8))
    start = 0
    for stage, color in (("head", "tab:blue"), ("fine_tune", "tab:red")):
        c = curves.get(stage)
        if not c or not c.get("val_accuracy"):
            continue
        epochs = np.arange(start + 1, start + 1 + len(c["val_accuracy"]))
        name = {"head": "head on frozen features", "fine_tune": "last stage fine-tuned"}[stage]
        ax.plot(epochs, np.array(c.get("accuracy", [np.nan] * len(epochs))) * 100, "--", color=color,
                label=f"{name}: training")
        ax.plot(epochs, np.array(c["val_accuracy"]) * 100, "o-", color=color, ms=3, label=f"{name}: validation")
        start = epochs[-1]
    ax.set_xlabel("epoch (the fine-tuning epochs follow the head's)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Training the final model: {record.get('backbone')} @{record.get('img_size')} px", fontsize=9)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def examples(frame: pd.DataFrame, images: np.ndarray, labels: np.ndarray, predictions: dict, class_names,
             n: int = 16):
    """Test images with the top scorer's predictions (mistakes in red, with the true label)."""
    top = top_scorer(frame)
    preds = None if top is None else row_predictions(predictions, top)
    return examples_figure(images, labels, preds, f"The top scorer, {_label(top)} px," if top is not None else "",
                           class_names, n)


def _short(name: str, width: int = 16) -> str:
    """A class name that fits above a thumbnail."""
    return name if len(name) <= width else name[:width - 1] + "…"


def examples_figure(images: np.ndarray, labels: np.ndarray, preds, who: str, class_names, n: int = 16):
    """`n` test images (n, S, S, 3) of any size S in rows of 8, each titled with its predicted label (red:
    wrong, with the true one); labels index `class_names`."""
    n = min(len(images), n)
    cols = 8
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.85))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(images[i], interpolation="nearest" if images.shape[1] <= 64 else "antialiased")
        truth = _short(class_name(class_names, int(labels[i])))
        if preds is None:
            ax.set_title(truth, fontsize=7)
        else:
            guess = _short(class_name(class_names, int(preds[i])))
            ok = int(preds[i]) == int(labels[i])
            ax.set_title(f"{guess}" if ok else f"{guess}\n(true: {truth})", fontsize=7,
                         color="tab:green" if ok else "tab:red")
    fig.suptitle(f"{who} on the first {n} test images: predicted label (red: mistakes, with the true label)"
                 if preds is not None else "Test images and their labels", fontsize=9)
    fig.tight_layout()
    return fig


def epoch_ratio(measured: dict):
    """Seconds per head epoch on cached features against end to end
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
