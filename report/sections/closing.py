"""Discussion, limitations and conclusion."""

from __future__ import annotations

from benchmark.core.data import default_val_holdout

from ..analysis import N_EXTRACT
from ..doc import Doc
from ..html import esc
from ..numbers import fixed, pct
from .methods import timing_note


def discussion(doc: Doc) -> str:
    frame, figs = doc.frame, doc.figs
    random_models = frame.loc[frame["weights"] == "random", "model"].nunique()
    return "\n".join([
        "<h2>Discussion</h2>",
        f"<p>Accuracy and speed trade off: the Pareto front in {figs.ref('throughput')} shows which backbones are "
        f"worth their cost on this machine. {random_models} of the {frame['model'].nunique()} backbones had no "
        f"pretrained weights here; their speed is measured but their accuracy is unknown, so the ranking covers only "
        f"the others. Timings depend on the core count and on the oneDNN kernels each architecture hits on this "
        f"CPU's instruction set (see the hardware box). Small input sizes hurt networks designed for large inputs "
        f"more, so the resolution sweep ({figs.ref('sweep')}) matters when choosing a size.</p>",
    ])


def limitations(doc: Doc) -> str:
    n_train, _, n_test = doc.split_sizes
    stats, lossy = doc.stats, doc.is_cifar10 and doc.env.get("data_lossy_jpeg")
    items = [
        "<li><b>Lossy data.</b> The CIFAR-10 used here is a quality-75 JPEG copy; the original images are "
        "lossless, and accuracies measured on the copy are not those of the original data.</li>" if lossy else "",
        f"<li><b>{len(doc.pretrained)} of {doc.frame['model'].nunique()} backbones</b> had ImageNet weights on this "
        f"machine; the others are timed only, so the accuracy ranking covers {doc.scored['model'].nunique()} "
        f"networks.</li>",
        f"<li><b>Quick subsets.</b> Heads were trained on {n_train} images and tested on {n_test}; the 95% "
        f"intervals reach ±{pct(stats['median_half_ci'])} points (median half-width), and a full run "
        f"(<code>--full</code>) would narrow them.</li>" if _quick(doc) and "median_half_ci" in stats else "",
        "<li><b>One machine, CPU only.</b> Every timing comes from one CPU (see the hardware box); speeds on "
        "other CPUs or on GPUs were not measured and will rank differently.</li>",
        "<li><b>Timing-only rows</b> were timed on fewer images than the pretrained rows.</li>"
        if timing_note(doc.frame) else "",
        "<li><b>Fine-tuning is partial:</b> only the last stage is trained, on cached maps, for a few epochs.</li>"
        if doc.has_finetune else "",
    ]
    return "\n".join(["<h2>Limitations</h2>", "<ul>" + "".join(items) + "</ul>"])


def _quick(doc: Doc) -> bool:
    """Whether the heads saw fewer training images than a full run of the dataset gives: its training pool
    less the validation holdout (CIFAR-10: 45000)."""
    n_train, pool = doc.split_sizes[0], doc.dataset.get("n_train_pool")
    if not n_train or not pool:
        return False
    holdout = doc.env.get("config", {}).get("n_val_holdout") or default_val_holdout(pool)
    return n_train < pool - holdout


def conclusion(doc: Doc) -> str:
    ksl, data = (doc.stats.get("ksl") or {}).get("frozen@best"), esc(doc.data)
    if not ksl:
        correlation = ""
    elif ksl["r_low"] < 0 < ksl["r_high"]:
        correlation = (f"Whether published ImageNet accuracy predicts {data} accuracy here cannot be told from "
                       f"{ksl['n']} backbones (r = {fixed(ksl['r'], 2)}, 95% interval {fixed(ksl['r_low'], 2)} to "
                       f"{fixed(ksl['r_high'], 2)}, each at its best size). ")
    else:
        correlation = (f"ImageNet top-1 and {data} accuracy correlate with r = {fixed(ksl['r'], 2)} (95% interval "
                       f"{fixed(ksl['r_low'], 2)} to {fixed(ksl['r_high'], 2)}, n = {ksl['n']}). ")
    return "\n".join([
        "<h2>Conclusion</h2>",
        f"<p>{_lead(doc)}{_order(doc.stats.get('same_order') or {})}{correlation}Caching the frozen outputs makes "
        f"every head and every rerun nearly free, so the extraction is the real cost of each choice.</p>",
    ])


def _lead(doc: Doc) -> str:
    test = doc.stats.get("mcnemar")
    if not test:
        return ""
    if test["p"] >= doc.stats["threshold"]:
        return (f"The top of the ranking is within the noise of {test['n']} test images, so the choice between the "
                f"leaders is a choice of speed, which Table 2 prices per image and per {N_EXTRACT} images. ")
    return (f"The top scorer's lead over the runner-up is larger than the noise of {test['n']} test images; "
            f"Table 2 prices what it costs per image and per {N_EXTRACT} images. ")


def _order(same: dict) -> str:
    """Whether fine-tuning kept the order of the backbones, per size ("" without sizes in both regimes)."""
    if not same:
        return ""
    kept = [str(size) for size, yes in same.items() if yes]
    moved = [str(size) for size, yes in same.items() if not yes]
    return ("Fine-tuning the last stage on cached maps is affordable on a CPU; "
            + (f"it kept the order of the backbones by validation accuracy at {', '.join(kept)} px" if kept else "")
            + ("; " if kept and moved else "")
            + (f"it changed it at {', '.join(moved)} px" if moved else "") + ". ")
