"""The page's figures: one table (`FIGURES`) says, per figure, its file, its caption, why it cannot be
drawn from a results folder (None: it can) and how to draw it.

Figures are numbered in the order they appear, among those that could be
drawn; one that cannot (no examples file, one input size only) is named on
the page with the reason, and takes no number. The top picture is the final
model's predictions when transfer.npz is there, else the top scorer's, else
the speed figure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable

import pandas as pd

from benchmark.core.atomic import atomic_path
from benchmark.core.metrics import confusion_matrix
from benchmark.core.results import best_rows, ranked, row_predictions, top_scorer

from . import figures
from .html import esc
from .load import Results


@dataclass(frozen=True)
class Spec:
    """One figure: its file, caption (`{data}` stands for the dataset's label), why it cannot be drawn (None:
    it can) and how to draw it."""

    key: str
    filename: str
    caption: str
    missing: Callable[[Results], str | None]
    draw: Callable[[Results], object]


@dataclass(frozen=True)
class Figure:
    key: str
    filename: str
    caption: str
    missing: str | None = None  # why it cannot be drawn
    number: int = 0


class Figures:
    """The page's figures in page order; numbers go to the drawable ones only, consecutively."""

    def __init__(self, figures_: list[Figure]):
        self.all, number = [], 0
        for fig in figures_:
            number += fig.missing is None
            self.all.append(replace(fig, number=number if fig.missing is None else 0))
        self.by_key = {f.key: f for f in self.all}
        self.top = self.all[0].key

    def ref(self, key: str) -> str:
        fig = self.by_key[key]
        return f"Figure {fig.number}" if fig.missing is None else "a figure not drawn here"

    def html(self, key: str) -> str:
        fig = self.by_key[key]
        if fig.missing is not None:
            return f'<p class=missing>Not drawn: {esc(fig.caption.split(".")[0].lower())} ({esc(fig.missing)}).</p>'
        return (f'<figure><img src="{fig.filename}" alt="Figure {fig.number}. {esc(fig.caption)}" loading="eager">'
                f"<figcaption><b>Figure {fig.number}.</b> {esc(fig.caption)}</figcaption></figure>")

    def body(self, key: str) -> str:
        """The figure in its place in the text: nothing when it is the top picture, shown above the abstract."""
        return "" if key == self.top else self.html(key)


def _timed(r: Results) -> str | None:
    return None if not figures.timing_rows(r.frame).empty else "no frozen-regime timing in these results"


def _examples(r: Results) -> str | None:
    top = top_scorer(r.frame)
    if r.examples is not None and top is not None and row_predictions(r.examples[2], top) is not None:
        return None
    return "no examples.npz with the top scorer's predictions beside the results, or no scored row"


def _regimes(r: Results) -> str | None:
    if not figures.regime_pairs(r.frame).empty:
        return None
    return ("no backbone and size scored in both regimes" if (r.frame["regime"] == "finetune").any() else
            "no fine-tuned rows (run the benchmark with --regime frozen finetune)")


def _no_transfer(r: Results) -> str | None:
    t = r.env.get("transfer")
    return None if t and t.get("curves") else "no transfer.json from 0-transfer.py in the results folder"


def _no_arrays(r: Results) -> str | None:
    return None if r.final is not None else "no transfer.npz from 0-transfer.py in the results folder"


def _final_examples(r: Results):
    t = r.env.get("transfer")
    who = f"The final model, {t['backbone']} @{t['img_size']} px," if t else "The final model"
    return figures.examples_figure(r.final[0], r.final[1], r.final[2], who, r.dataset["class_names"])


# In page order; the top picture moves to the front (see `figure_plan`).
FIGURES = (
    Spec("throughput", "fig_accuracy_vs_throughput.png",
         "Test accuracy against extraction throughput, frozen features. Error bars are bootstrap 95% intervals; the "
         "orange line is the Pareto front; the star is the top scorer when it is a frozen row. The strip below "
         "places the backbones timed with random weights on the same speed axis; they have no accuracy.",
         _timed, lambda r: figures.accuracy_vs_throughput(r.frame)),
    Spec("params", "fig_accuracy_vs_params.png",
         "Test accuracy (best frozen head, 95% interval) against the frozen base's parameters without its top.",
         lambda r: None if not best_rows(figures.frozen(r.frame)).empty else
         "no frozen-regime accuracy in these results", lambda r: figures.accuracy_vs_params(r.frame)),
    Spec("time", "fig_time_per_image.png", "Extraction time per image, sorted, with the values.",
         _timed, lambda r: figures.time_per_image(r.frame)),
    Spec("sweep", "fig_resolution_sweep.png",
         "Resolution sweep: test accuracy (best frozen head, 95% interval) and throughput against input size.",
         lambda r: None if figures.sweep_models(r.frame) else "every pretrained backbone was scored at one size only",
         lambda r: figures.resolution_sweep(r.frame)),
    Spec("regimes", "fig_frozen_vs_finetuned.png",
         "Frozen against fine-tuned: test accuracy of the frozen base's best head and of the network whose last "
         "stage was fine-tuned, per backbone and size, with bootstrap 95% intervals.",
         _regimes, lambda r: figures.frozen_vs_finetuned(r.frame)),
    Spec("ksl", "fig_imagenet_vs_cifar.png",
         "ImageNet top-1 against {data} test accuracy (95% interval), each backbone at its best size, frozen and, "
         "where measured, fine-tuned.",
         lambda r: None if ranked(r.frame)["model"].nunique() >= 2 else "fewer than 2 pretrained backbones",
         lambda r: figures.imagenet_vs_cifar(r.frame, r.dataset["label"])),
    Spec("truth", "fig_quick_vs_truth.png",
         "Each backbone's quick test accuracy (frozen head and fine-tuned, 95% intervals) against the test accuracy "
         "of the same backbone fine-tuned on all the training images (the truth, 95% interval).",
         lambda r: None if r.env["statistics"].get("truth") else
         "no truth folder (python -m report --truth DIR, DIR from a --full --regime finetune run)",
         lambda r: figures.quick_vs_truth(pd.DataFrame(r.env["statistics"]["truth"]["points"]),
                                          r.dataset["label"])),
    Spec("confusion", "fig_confusion.png",
         "The top scorer's confusion matrix, each row as % of its true class (errors coloured, the diagonal in "
         "blue), and its per-class accuracy with Wilson 95% intervals.",
         lambda r: None if top_scorer(r.frame) is not None else "no scored row",
         lambda r: figures.confusion(r.frame, r.dataset["class_names"])),
    Spec("examples", "fig_examples.png",
         "{data} test images with the top scorer's predictions (green: right; red: wrong, with the true label).",
         _examples, lambda r: figures.examples(r.frame, *r.examples, r.dataset["class_names"])),
    Spec("epoch", "fig_epoch_ratio.png",
         "Seconds per head epoch on cached features and end to end through the frozen base, median with the range "
         "over the repeats.",
         lambda r: None if r.env.get("epoch_ratio") else "python -m benchmark.epoch_ratio was not run into this folder",
         lambda r: figures.epoch_ratio(r.env["epoch_ratio"])),
    Spec("final_curves", "fig_final_curves.png",
         "Training the final model: training and validation accuracy per epoch, the head on frozen features and "
         "then the fine-tuned part above the cut.", _no_transfer, lambda r: figures.training_curves(r.env["transfer"])),
    Spec("final_confusion", "fig_final_confusion.png",
         "The final model's confusion matrix on the test images, each row as % of its true class, and its "
         "per-class accuracy with Wilson 95% intervals.", _no_arrays,
         lambda r: figures.confusion_figure(confusion_matrix(r.final[1], r.final[2]), "the final model",
                                            r.dataset["class_names"])),
    Spec("final_examples", "fig_final_examples.png",
         "The final model (cifar10.h5 as saved) on CIFAR-10 test images: predicted label (green: right; red: "
         "wrong, with the true label).", _no_arrays, _final_examples),
)
SPECS = {spec.key: spec for spec in FIGURES}
TOP_CHOICES = ("final_examples", "examples", "throughput")  # the top picture: the first drawable; else the last


def figure_plan(results: Results) -> Figures:
    """The page's figures, in page order, each with the reason when it cannot be drawn."""
    plan = [Figure(s.key, s.filename, s.caption.format(data=results.dataset["label"]), s.missing(results))
            for s in FIGURES]
    missing = {f.key: f.missing for f in plan}
    top = next((k for k in TOP_CHOICES if missing[k] is None), TOP_CHOICES[-1])
    return Figures([f for f in plan if f.key == top] + [f for f in plan if f.key != top])


def draw(figs: Figures, results: Results, out_dir: str) -> None:
    """Draws every drawable figure of the plan as a PNG file in `out_dir`."""
    import matplotlib.pyplot as plt

    for fig in figs.all:
        if fig.missing is None:
            drawn = SPECS[fig.key].draw(results)
            with atomic_path(os.path.join(out_dir, fig.filename)) as tmp:  # concurrent builds never share a name
                drawn.savefig(tmp, dpi=110)
            plt.close(drawn)
