"""The results: Table 1 (every scored row), the paired test, Table 2 (cost), the regimes, the ImageNet
correlation and the caching measurement, with their figures."""

from __future__ import annotations

import pandas as pd

import backbones
from benchmark.core.results import TOP_SCORER_RULE, best_rows

from .. import figures
from ..analysis import N_EXTRACT, PREDICTORS, QUICK_PREDICTORS
from ..doc import Doc
from ..html import esc, table
from ..numbers import fixed, millions, pct, thousands
from .front import headline
from .references import cite


def results(doc: Doc) -> str:
    figs = doc.figs
    return "\n".join(s for s in [
        "<h2>Results</h2>",
        f"<p>{headline(doc)} Table 1 ranks every scored row by the top-scorer rule; {figs.ref('throughput')} sets "
        f"accuracy against extraction speed, {figs.ref('params')} against the base's size, and "
        f"{figs.ref('time')} gives every backbone's time per image. {figs.ref('confusion')} breaks the top "
        f"scorer's errors down by class, and {figs.ref('examples')} shows its predictions on test images.</p>",
        "<p><b>Table 1.</b> Scored rows, best first by the top-scorer rule (the top scorer in bold).</p>",
        _results_table(doc), _paired_text(doc), _chosen_text(doc),
        figs.body("throughput"), figs.html("params"), figs.html("time"),
        f"<p><b>Table 2.</b> Cost of every backbone at each measured size, in the style of the Keras Applications "
        f"table: published ImageNet top-1, parameters of the base without its top, GFLOPs per image counted "
        f"from the graph, time per image, peak memory, share of this machine's matmul peak, the minutes "
        f"extracting {N_EXTRACT} images would take here, and the best frozen head's test accuracy.</p>",
        _cost_table(doc), figs.html("sweep"),
        _regime_text(doc), figs.html("regimes"),
        _ksl_text(doc), figs.html("ksl"),
        _transferability_text(doc),
        _recommend_text(doc),
        _truth_section(doc),
        figs.html("confusion"), figs.body("examples"),
        _epoch_text(doc), figs.html("epoch"),
    ] if s)


def _results_table(doc: Doc) -> str:
    rows = []
    for i, (_, r) in enumerate(doc.scored.iterrows()):
        rows.append(([esc(r["model"]), str(int(r["img_size"])), esc(r["regime"]), esc(r["head"]), pct(r["val_acc"]),
                      pct(r["test_acc"]), f"{pct(r['test_ci_low'])}–{pct(r['test_ci_high'])}",
                      thousands(r["trainable_params"]) if pd.notna(r["trainable_params"]) else "–"], i == 0))
    return table(["backbone", "size (px)", "regime", "head", "val acc (%)", "test acc (%)", "95% CI (%)",
                  "trained params (k)"], rows)


def _or_dash(value, fmt) -> str:
    return fmt(value) if pd.notna(value) else "–"


def _cost_table(doc: Doc) -> str:
    """keras.io-style: per backbone, its cost at each measured size and its best frozen accuracy."""
    best = best_rows(figures.frozen(doc.frame))
    rows = []
    for _, r in doc.timed.sort_values(["model", "img_size"]).iterrows():
        scored = best[(best["model"] == r["model"]) & (best["img_size"] == r["img_size"])]
        acc = (f"{pct(scored.iloc[0]['test_acc'])} ({pct(scored.iloc[0]['test_ci_low'])}–"
               f"{pct(scored.iloc[0]['test_ci_high'])})" if not scored.empty else "–")
        minutes = doc.stats["extract_minutes"].get(f"{r['model']}|{int(r['img_size'])}")
        rows.append(([esc(r["model"]), fixed(backbones.get(r["model"]).imagenet_top1), millions(r["param_count"]),
                      str(int(r["img_size"])), _or_dash(r["gflops_per_img"], lambda v: fixed(v, 2)),
                      fixed(r["ms_per_img"]), _or_dash(r["peak_rss_mb"], lambda v: fixed(v, 0)),
                      _or_dash(r["pct_of_peak"], fixed), _or_dash(minutes, fixed), acc,
                      _or_dash(r["images_timed"], lambda v: str(int(v)))], False))
    return table(["backbone", "ImageNet top-1 (%)", "params without the top (M)", "size (px)", "GFLOPs/image",
                  "ms/image", "peak RSS (MiB)", "% of matmul peak", f"min to extract {N_EXTRACT}",
                  "test acc (%) (95% CI)", "images timed"], rows)


def _chosen_text(doc: Doc) -> str:
    """The one rule that picks the top scorer, and what 0-transfer.py does with it
    (`benchmark.transfer.select.choose_backbone`)."""
    if doc.top is None:
        return ""
    if not doc.is_cifar10:  # 0-transfer.py chooses from CIFAR-10's rows only
        return (f"<p>The top scorer, here and in the console, is chosen by one rule: {esc(TOP_SCORER_RULE)} "
                f"<code>0-transfer.py</code> trains a CIFAR-10 model and chooses its backbone from CIFAR-10's rows "
                f"only, so {esc(doc.data)}'s rows do not choose it.</p>")
    least = doc.env.get("final_min_size")
    size = (f"at the scored size or {esc(least)} px, whichever is larger" if least else
            "at the scored size, raised to its smallest size for a final model when smaller")
    return (f"<p>The top scorer, here, in the console and in <code>0-transfer.py</code>, is chosen by one rule: "
            f"{esc(TOP_SCORER_RULE)} <code>0-transfer.py</code> trains its final model on that backbone, in that "
            f"regime, {size} (its <code>--size</code> sets another).</p>")


def _paired_text(doc: Doc) -> str:
    test, stats, top, second = doc.stats.get("mcnemar"), doc.stats, doc.top, doc.second
    if top is None or second is None:
        return ""
    if test is None:
        return ("<p><b>Is the top scorer better than the runner-up?</b> The per-image predictions needed for a "
                "paired test are not in this results folder (examples.npz from an older run), so the question is "
                "left open; rerun the benchmark into it to add them.</p>")
    verdict = ("the difference is significant at the 5% level" if test["p"] < stats["threshold"] else
               "<b>the two are not distinguishable</b> at the 5% level: the ranking between them could be noise")
    p_txt = f"p &lt; {esc(stats['p_floor'])}" if test["p"] < stats["p_floor"] else f"p = {fixed(test['p'], 3)}"
    return (f"<p><b>Is the top scorer better than the runner-up?</b> On the same {esc(test['n'])} test images, "
            f"{_row_name(top)} is right where {_row_name(second)} is wrong on {esc(test['only_a'])} images, and the "
            f"reverse on {esc(test['only_b'])}. The exact McNemar test {cite('mcnemar')} gives {p_txt}: "
            f"{verdict}.</p>")


def _row_name(row) -> str:
    return f"{esc(row['model'])} @{int(row['img_size'])} ({esc(row['regime'])}, {esc(row['head'])})"


def _ksl_text(doc: Doc) -> str:
    ksl, zero = doc.stats.get("ksl", {}), doc.stats["ksl_zero"]
    if not ksl:
        return ("<p><b>Do better ImageNet models transfer better?</b> Fewer than 3 pretrained backbones were "
                "scored, too few for a correlation.</p>")
    parts = [_correlation(ksl, "frozen@best", "Frozen, each backbone at its best size"),
             _correlation(ksl, "frozen@native", "frozen, each at its native size"),
             *[_correlation(ksl, f"frozen@{s}", f"frozen, all at {s} px") for s in doc.sizes],
             _correlation(ksl, "finetune@best", "fine-tuned, each at its best size")]
    verdict = (": with so few backbones these numbers neither confirm nor refute the paper."
               if zero["spans_zero"] == zero["settings"] else
               "; where it does not, the sign of r says whether our data agree with the paper.")
    text = (f"<p><b>Do better ImageNet models transfer better?</b> Kornblith et al. {cite('kornblith')} found a "
            f"strong correlation between ImageNet top-1 and transfer accuracy across sixteen networks, for fixed "
            f"features and for fine-tuning. {doc.figs.ref('ksl')} asks the same of our data. {''.join(parts)}"
            f"The interval spans zero in {esc(zero['spans_zero'])} of these {esc(zero['settings'])} settings{verdict}")
    native = ksl.get("frozen@native")
    small = [(s, ksl[f"frozen@{s}"]) for s in doc.sizes if f"frozen@{s}" in ksl]
    if native and small and native["r"] > max(c["r"] for _, c in small):
        s_low, c_low = small[0]
        text += (f" The point estimates move with the input size, from r = {fixed(c_low['r'], 2)} with all at "
                 f"{s_low} px to r = {fixed(native['r'], 2)} with each at its native size, as expected if small "
                 f"inputs favour networks built for small inputs and penalise those built for large ones "
                 f"({doc.figs.ref('sweep')}); the intervals make this a hint, not a finding.")
    return text + "</p>"


def _transferability_text(doc: Doc) -> str:
    """The rank table: how each transferability score (and ImageNet top-1) ranks the feature sets against the
    heads and, with a truth folder, how each quick ranking orders the backbones fine-tuned on all the images."""
    found = doc.stats.get("transferability") or {}
    truth = doc.stats.get("truth")
    if not found and not truth:
        return ""
    frozen, tuned, ms = found.get("frozen", {}), found.get("finetune", {}), found.get("ms", {})
    full = truth["predictors"] if truth else {}
    names = {**(QUICK_PREDICTORS if truth else {}), **PREDICTORS}
    rows = []
    for name, label in names.items():
        label = f"{label} @{truth['size']} px" if name in QUICK_PREDICTORS else label
        cells = [esc(label)]
        for target in (frozen, tuned, full) if truth else (frozen, tuned):
            c = target.get(name)
            cells += [fixed(c["tau"], 2), fixed(c["rho"], 2) if c["rho"] is not None else "–", esc(c["n"])] \
                if c else ["–", "–", "–"]
        cells.append(fixed(ms[name], 0) if name in ms else "–")
        rows.append((cells, False))
    n_tuned = max((c["n"] for c in tuned.values()), default=0)
    counts = [f"n = {esc(n_tuned)} fine-tuned networks" if tuned else "", f"n = {esc(truth['n'])} backbones in "
              f"the truth" if truth else ""]
    small = (f" With {' and '.join(c for c in counts if c)} a rank correlation can take only a handful of values, a "
             f"single swap of two neighbours moves it far, and no test can tell a predictor from chance: these "
             f"columns can show that a ranking reversed its target, not which predictor is better."
             if any(counts) else "")
    heads = ["predictor", "τ<sub>w</sub> frozen", "ρ frozen", "n", "τ<sub>w</sub> fine-tuned", "ρ fine-tuned", "n"]
    heads += ["τ<sub>w</sub> full", "ρ full", "n"] if truth else []
    scores = (f"Transferability scores read the frozen features of the training images and their labels, and no "
              f"head is trained: LogME {cite('logme')}, the H-score with a shrunk covariance {cite('hscore')}, and "
              f"the leave-one-out {esc(found['knn_k'])}-nearest-neighbour accuracy. Table {doc.tables['rank']} sets "
              f"each, and the "
              f"published ImageNet top-1, against the test accuracy of the best frozen head of the same features, "
              f"and of the network fine-tuned above the cut at the same backbone and size: the weighted Kendall tau "
              f"{cite('vigna')}, which counts disagreements among the top-ranked more, Spearman's rho, and the "
              f"number of feature sets n." if found else
              f"Table {doc.tables['rank']} gives the weighted Kendall tau {cite('vigna')}, Spearman's rho and the "
              f"number of backbones n.")
    # Without transferability columns only ImageNet top-1 and the quick accuracies are held against the truth.
    question = ("Do cheap scores rank the backbones as the heads do?" if found else
                "Do ImageNet top-1 and the quick runs rank the backbones as the full-data truth does?")
    return (f"<p><b>{question}</b> {scores} "
            + (_truth_text(doc, truth) if truth else
               "Both targets are the benchmark's own quick rows, not a full-data fine-tuned ground truth, which "
               "this machine has not yet measured.") + f"{small}</p>"
            f"<p><b>Table {doc.tables['rank']}.</b> Rank agreement of each predictor with the "
            + ("quick test accuracies and the full fine-tuned truth" if truth else "quick test accuracies")
            + " (1: the same order, -1: reversed), and each score's median cost per feature set.</p>"
            + table(heads + ["cost (ms)"], rows))


def _truth_text(doc: Doc, truth: dict) -> str:
    """The truth columns of the rank table, what n backbones can show, and the verdict of the quick frozen ranking."""
    pred = truth["predictors"]
    frozen = pred.get("quick_frozen")
    verdict = (f" The quick frozen ranking at {esc(truth['size'])} px agrees with it at τ<sub>w</sub> = "
               f"{fixed(frozen['tau'], 2)}." if frozen else "")
    return (f"The full columns hold each against the truth: the networks fine-tuned above the registry's cut on all "
            f"{esc(truth['train_size'])} training images (Table {doc.tables['truth']}, {doc.figs.ref('truth')}), "
            f"one per backbone, with each quick ranking taken at {esc(truth['size'])} px.{verdict}")


def _truth_section(doc: Doc) -> str:
    """The truth's table and figure: the truth, per backbone, beside its quick accuracies."""
    truth = doc.stats.get("truth")
    if not truth:
        return ""
    rows = []
    for p in truth["points"]:
        def quick(regime):
            value = p.get(f"quick_{regime}")
            return pct(value) if pd.notna(value) else "–"

        rows.append(([esc(p["model"]), esc(p["img_size"]), esc(p["train_size"]), pct(p["val_acc"]),
                      pct(p["test_acc"]), f"{pct(p['test_ci_low'])}–{pct(p['test_ci_high'])}", quick("frozen"),
                      quick("finetune"), _or_dash(p["extract_min"], fixed), _or_dash(p["finetune_min"], fixed)],
                     False))
    return (f"<p><b>Table {doc.tables['truth']}.</b> The truth: each backbone fine-tuned above its cut on all the "
            "training images, best first by validation accuracy, beside its quick test accuracies at "
            f"{esc(truth['size'])} px, and what it cost on the machine that ran it: the extraction of every image's "
            "maps below the cut, and the fine-tuning.</p>"
            + table(["backbone", "size (px)", "training images", "val acc (%)", "test acc (%)", "95% CI (%)",
                     "quick frozen (%)", "quick fine-tuned (%)", "extraction (min)", "fine-tuning (min)"], rows)
            + doc.figs.html("truth"))


def _recommend_text(doc: Doc) -> str:
    """The budgets' table: the best row within a few time budgets, and what the paired test cannot tell from it."""
    found = [r for r in doc.stats.get("recommend", []) if r["best"] is not None]
    if not found:
        return ""
    rows = []
    for r in found:
        best, alike = r["best"], r["alike"]
        cheaper = min(alike, key=lambda a: a["ms_per_img"]) if alike else None
        rows.append(([fixed(r["max_ms"], 0), esc(r["n_within"]), _short(best), pct(best["test_acc"]),
                      f"{pct(best['test_ci_low'])}–{pct(best['test_ci_high'])}", fixed(best["ms_per_img"]),
                      f"{_short(alike[0])} (p = {fixed(alike[0]['p'], 2)})" if alike else "–",
                      f"{_short(cheaper)}, {fixed(cheaper['ms_per_img'])} ms" if cheaper and
                      cheaper["ms_per_img"] < best["ms_per_img"] else "–"], False))
    untested = sum(r["untested"] for r in found)
    truth = doc.stats.get("truth")
    if truth:
        wrong = [r for r in found if r.get("truth") and not r["truth"]["agrees"]]
        checked = [r for r in found if r.get("truth")]
        misled = "; ".join(f"within {fixed(r['max_ms'], 0)} ms it is {esc(r['truth']['model'])} "
                           f"({pct(r['truth']['test_acc'])}% against {pct(r['truth']['best_test_acc'])}%)"
                           for r in wrong)
        holds = (f" Against the truth (Table {doc.tables['truth']}), the quick ranking misleads in "
                 f"{esc(truth['budgets_misled'])} of "
                 f"the {esc(truth['budgets_checked'])} budgets where it can be checked: fine-tuned on all the "
                 f"training images, another backbone ranks first ({misled})" if wrong else
                 f" Against the truth (Table {doc.tables['truth']}), the recommended backbone also ranks first in "
                 f"each of the "
                 f"{esc(truth['budgets_checked'])} budgets where it can be checked" if checked else
                 f" The truth (Table {doc.tables['truth']}) lacks the recommended backbone or a rival within every "
                 f"budget, so no "
                 "answer is checked against it")
    else:
        holds = (" The ranking is that of the quick subsets; whether it holds when every network is fine-tuned on "
                 "all the training images has not been measured here")
    return (f"<p><b>Which backbone under a time budget?</b> <code>python -m benchmark --recommend "
            f"--max-ms-per-img MS</code> answers from the results at hand: among the rows whose whole base runs "
            f"within the budget on the machine that measured it, the best by the top-scorer rule, and those the "
            f"exact McNemar test on the same test images cannot tell from it (p ≥ {fixed(doc.stats['threshold'], 2)})"
            f". Table {doc.tables['budgets']} gives the answer for a few budgets.{holds}"
            + (f"; {esc(untested)} rows within these budgets lack the per-image predictions a paired test needs"
               if untested else "") + ".</p>"
            f"<p><b>Table {doc.tables['budgets']}.</b> The best row within each budget (ms per image, this "
            f"machine), how many rows fit, "
            "the runner-up the paired test cannot tell from it, and the cheapest such row when it is cheaper.</p>"
            + table(["budget (ms)", "rows within", "best", "test acc (%)", "95% CI (%)", "ms/image",
                     "not distinguishable", "cheaper and not distinguishable"], rows))


def _short(row: dict) -> str:
    return f"{esc(row['model'])} @{esc(row['img_size'])} ({esc(row['regime'])}, {esc(row['head'])})"


def _correlation(ksl: dict, key: str, what: str) -> str:
    c = ksl.get(key)
    if not c:
        return ""
    return (f"{what}: Pearson r = {fixed(c['r'], 2)} (95% interval {fixed(c['r_low'], 2)} to "
            f"{fixed(c['r_high'], 2)}, n = {esc(c['n'])}), Spearman rho = {fixed(c['rho'], 2)}. ")


def _regime_text(doc: Doc) -> str:
    gains = doc.stats.get("regime_gain") or {}
    if not gains:
        return ""
    low, high = min(gains, key=gains.get), max(gains, key=gains.get)

    def name(key):
        model, size = key.split("|")
        return f"{esc(model)} @{esc(size)}"

    counts = doc.stats["regime_counts"]
    return (f"<p><b>Frozen against fine-tuned.</b> {doc.figs.ref('regimes')} compares, for each backbone and size "
            f"with both regimes, the frozen features' best head with the network whose last stage was fine-tuned "
            f"with an MLP head on cached maps. Fine-tuning changed test accuracy by {pct(gains[low])} points "
            f"({name(low)}) to {pct(gains[high])} points ({name(high)}); it helped in {esc(counts['helped'])} of the "
            f"{esc(counts['pairs'])} pairs. Whether the order of the backbones is the same in both regimes can be "
            f"read off Table 1 and {doc.figs.ref('ksl')}.</p>")


def _epoch_text(doc: Doc) -> str:
    measured = doc.env.get("epoch_ratio")
    if not measured:
        return ""
    h, e, r = measured["head_epoch_s"], measured["end_to_end_epoch_s"], measured["ratio"]
    return (f"<p><b>Why cache.</b> One epoch of the MLP head on {esc(measured['n_images'])} images took "
            f"{fixed(h['median'], 2)} s on cached features and {fixed(e['median'])} s when trained end to end "
            f"through the frozen {esc(measured['model'])} at {esc(measured['img_size'])} px with the upscaling inside "
            f"the model: {fixed(r['median'])}× slower (median of {esc(measured['repeats'])} paired epochs, range "
            f"{fixed(r['min'])}–{fixed(r['max'])}×; {doc.figs.ref('epoch')}). The frozen base gives the same "
            f"outputs every epoch, so computing them once makes every later epoch nearly free.</p>")
