"""The numbers the paper derives from the results: the paired test, the correlations, the regime gains,
the extraction minutes. Stored in the facts (`report.load.facts`), so the number checker can trace them."""

from __future__ import annotations

import pandas as pd

from benchmark.core.transferability import KNN_K
from benchmark.core.results import REGIMES, best_rows, prediction_key, ranked, row_predictions, top_scorer

from . import figures
from .stats import correlation, mcnemar, weighted_tau

N_EXTRACT = 50000  # the cost table's "time to extract the 50000 training images"
THRESHOLD, P_FLOOR = 0.05, 0.001  # the paired test's level, and the smallest p-value printed as a number


def runner_up(frame: pd.DataFrame, top) -> pd.Series | None:
    """The best row of another backbone, by the same rule."""
    order = ranked(frame)
    others = order[order["model"] != top["model"]]
    return None if others.empty else others.iloc[0]


def sizes(frame: pd.DataFrame) -> list[int]:
    """Every input size in the results, ascending."""
    return sorted({int(s) for s in frame["img_size"].dropna()})


def ksl_settings(frame: pd.DataFrame) -> list[tuple[str, object]]:
    """The (regime, size) settings the correlation paragraph reports, in its order."""
    return [("frozen", "best"), ("frozen", "native"), *[("frozen", s) for s in sizes(frame)], ("finetune", "best")]


def statistics(frame: pd.DataFrame, labels, predictions: dict, truth: pd.DataFrame | None = None) -> dict:
    """The numbers the paper derives from the results: the paired test and the correlations; with `truth` (the
    rows of a `--full --regime finetune` run), how well each quick ranking predicts it (`against_truth`)."""
    out: dict = {"extract_minutes": {}}
    paired = _paired(frame, labels, predictions)
    if paired:
        out["mcnemar"] = paired
    for regime, size in ksl_settings(frame):
        pts = figures.ksl_points(frame, regime, size)
        found = correlation(pts["imagenet_top1"], pts["test_acc"]) if len(pts) else None
        if found:
            out.setdefault("ksl", {})[f"{regime}@{size}"] = {**found, "models": list(pts["model"])}
    ksl = out.get("ksl", {})
    out["ksl_zero"] = {"spans_zero": sum(c["r_low"] < 0 < c["r_high"] for c in ksl.values()), "settings": len(ksl)}
    out["same_order"] = _same_order(frame)
    predicting = transferability(frame)
    if predicting:
        out["transferability"] = predicting
    checked = against_truth(frame, truth)
    if checked:
        out["truth"] = checked
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
    out["threshold"], out["p_floor"] = THRESHOLD, P_FLOOR
    if not scored.empty:
        out["recommend"] = [recommend(frame, labels, predictions, budget, truth)
                            for budget in RECOMMEND_BUDGETS_MS]
        if checked:  # the budgets whose answer the truth can check, and those where it disagrees
            verdicts = [r["truth"] for r in out["recommend"] if r.get("truth")]
            checked.update(budgets_checked=len(verdicts), budgets_misled=sum(not v["agrees"] for v in verdicts))
    return out


PREDICTORS = {"logme": "LogME", "hscore": "H-score", "knn_acc": "k-NN accuracy",
              "imagenet_top1": "ImageNet top-1"}  # column -> name; the first three are `transferability.SCORES`


def transferability(frame: pd.DataFrame) -> dict:
    """How well each cheap predictor ranks the (backbone, size) feature sets by the heads' test accuracy.

    Per target ("frozen": the best frozen head of each feature set; "finetune": the fine-tuned network of the
    same backbone and size) and predictor: weighted Kendall tau and Spearman rho over the feature sets that
    have both, with n; and each score's median cost in ms. Empty without scored transferability columns.
    """
    if "logme" not in frame.columns:
        return {}
    best = best_rows(frame)
    scores = best[best["regime"] == "frozen"].dropna(subset=["logme"])
    if len(scores) < 2:
        return {}
    cols = ["model", "img_size", *PREDICTORS]
    targets = {"frozen": scores[cols + ["test_acc"]],
               "finetune": scores[cols].merge(best[best["regime"] == "finetune"][["model", "img_size", "test_acc"]],
                                              on=["model", "img_size"])}
    out: dict = {"knn_k": KNN_K, "ms": {name: float(scores[f"{name}_ms"].median()) for name in PREDICTORS if name != "imagenet_top1"}}
    for target, pts in targets.items():
        for name in PREDICTORS:
            usable = pts.dropna(subset=[name, "test_acc"])
            tau = weighted_tau(usable[name], usable["test_acc"]) if len(usable) >= 2 else None
            found = correlation(usable[name], usable["test_acc"]) if tau is not None else None
            if tau is not None:
                out.setdefault(target, {})[name] = {"tau": tau, "rho": found["rho"] if found else None,
                                                    "n": len(usable)}
    return out


QUICK_PREDICTORS = {"quick_frozen": "quick frozen head", "quick_finetune": "quick fine-tuned"}  # test accuracies


def truth_rows(truth: pd.DataFrame | None) -> pd.DataFrame:
    """The full fine-tuned truth: per backbone, its best fine-tuned network by the top-scorer rule (ranked)."""
    if truth is None or truth.empty:
        return pd.DataFrame()
    best = ranked(truth)
    return best[best["regime"] == "finetune"].drop_duplicates("model").reset_index(drop=True)


def quick_size(frame: pd.DataFrame, models) -> int | None:
    """The quick input size to hold against the truth: the one with a frozen scored row for the most of `models`,
    then the one with the most scored rows (the quick default's), then the smaller."""
    best = best_rows(frame)
    frozen = best[best["regime"] == "frozen"]
    mine = frozen[frozen["model"].isin(models)]
    counts = [(mine[mine["img_size"] == s]["model"].nunique(), int((best["img_size"] == s).sum()), -s, s)
              for s in sizes(frozen)]
    found = max(counts, default=None)
    return None if found is None or found[0] == 0 else found[3]


def truth_points(frame: pd.DataFrame, truth: pd.DataFrame | None) -> pd.DataFrame:
    """One row per backbone in the truth: its full fine-tuned accuracy (`test_acc`, `test_ci_low/high`,
    `val_acc`, `img_size`, `train_size`) and cost (`extract_min`, `finetune_min`) beside what the quick rows
    predicted for it at `quick_size`:
    `quick_frozen` (the best frozen head's test accuracy, with `quick_frozen_low/high`), `quick_finetune`
    (likewise), the transferability scores of those frozen features and the published ImageNet top-1.
    Empty without a truth, or without a quick row of any of its backbones."""
    found = truth_rows(truth)
    size = quick_size(frame, list(found["model"])) if not found.empty else None
    if size is None:
        return pd.DataFrame()
    best = best_rows(frame)
    at = best[best["img_size"] == size]
    points = found[["model", "img_size", "train_size", "val_acc", "test_acc", "test_ci_low", "test_ci_high"]].assign(
        extract_min=found["extract_wall_s"] / 60, finetune_min=found["ft_train_s"] / 60)  # the truth's cost here
    for regime in ("frozen", "finetune"):
        names = {"test_acc": f"quick_{regime}", "test_ci_low": f"quick_{regime}_low",
                 "test_ci_high": f"quick_{regime}_high"}
        quick = at[at["regime"] == regime].rename(columns=names)
        keep = ["model", f"quick_{regime}", f"quick_{regime}_low", f"quick_{regime}_high"]
        keep += [c for c in PREDICTORS if regime == "frozen" and c in quick.columns]
        points = points.merge(quick[keep], on="model", how="left")
    return points.assign(quick_size=size).reset_index(drop=True)


def against_truth(frame: pd.DataFrame, truth: pd.DataFrame | None) -> dict:
    """How well each quick ranking orders the backbones as the truth does (its test accuracy): per predictor
    (`QUICK_PREDICTORS`, then `PREDICTORS`) the weighted Kendall tau, Spearman rho (None under 3 backbones) and
    n; `points` (`truth_points`, records), the quick `size`, and the truth's `train_size`. Empty without both."""
    points = truth_points(frame, truth)
    if points.empty:
        return {}
    out: dict = {"size": int(points["quick_size"].iloc[0]), "train_size": int(points["train_size"].max()),
                 "n": len(points), "predictors": {}, "points": points.to_dict("records")}
    for name in (*QUICK_PREDICTORS, *PREDICTORS):
        usable = points.dropna(subset=[name]) if name in points.columns else points.iloc[0:0]
        tau = weighted_tau(usable[name], usable["test_acc"]) if len(usable) >= 2 else None
        if tau is not None:
            found = correlation(usable[name], usable["test_acc"])
            out["predictors"][name] = {"tau": tau, "rho": found["rho"] if found else None, "n": len(usable)}
    return out


def truth_verdict(best: dict, within: list[str], truth: pd.DataFrame | None) -> dict | None:
    """Whether the truth agrees with a quick recommendation: among the backbones within the budget that the truth
    measured, the best by the truth's rule (`ranked`). None when the recommended backbone is not in the truth or
    no other backbone within the budget is; else `{"agrees", "model", "test_acc", "test_ci", "best_test_acc",
    "best_test_ci", "n"}`: `model` is the truth's best, `best_*` the recommended backbone's truth row."""
    found = truth_rows(truth)
    found = found[found["model"].isin(within)] if not found.empty else found
    if found.empty or best["model"] not in set(found["model"]) or len(found) < 2:
        return None
    top = found.iloc[0]
    mine = found[found["model"] == best["model"]].iloc[0]
    return {"agrees": top["model"] == best["model"], "model": top["model"], "test_acc": float(top["test_acc"]),
            "test_ci": [float(top["test_ci_low"]), float(top["test_ci_high"])],
            "best_test_acc": float(mine["test_acc"]),
            "best_test_ci": [float(mine["test_ci_low"]), float(mine["test_ci_high"])], "n": len(found)}


RECOMMEND_BUDGETS_MS = (2, 5, 10, 20, 50)  # the report's budgets, in ms per image on the measuring machine


def _summary(row, cost_ms: float) -> dict:
    return {"model": row["model"], "img_size": int(row["img_size"]), "regime": row["regime"], "head": row["head"],
            "val_acc": float(row["val_acc"]), "test_acc": float(row["test_acc"]),
            "test_ci_low": float(row["test_ci_low"]), "test_ci_high": float(row["test_ci_high"]),
            "ms_per_img": float(cost_ms), "key": prediction_key(row)}


def recommend(frame: pd.DataFrame, labels, predictions: dict, max_ms: float,
              truth: pd.DataFrame | None = None) -> dict:
    """The best scored row whose network runs within `max_ms` per image on the machine that measured it, by
    the top-scorer rule, and the rows within the budget that the exact McNemar test cannot tell from it.

    A row's cost is the whole base's time per image at its size (a fine-tuned row's own throughput is of the
    part below its cut only). Returns `{"max_ms", "n_scored", "n_within", "best", "alike", "untested",
    "matmul_peak"}`: `best` and each of `alike` (best first, with its "p") summarise a row; `untested` counts
    the rows within the budget whose predictions are not in the results (no paired test). Without a row
    within the budget, `best` is None and "fastest_ms" gives the cheapest scored row's cost. With `truth` (a
    full fine-tuned run's rows), "truth" is `truth_verdict` over the backbones with a row within the budget.
    """
    scored = ranked(frame)
    speed = {(r["model"], int(r["img_size"])): r["ms_per_img"] for _, r in figures.timing_rows(frame).iterrows()}
    cost = [speed.get((r["model"], int(r["img_size"])), r["ms_per_img"]) for _, r in scored.iterrows()]
    scored = scored.assign(_cost=cost).dropna(subset=["_cost"])
    within = scored[scored["_cost"] <= max_ms]
    out = {"max_ms": max_ms, "n_scored": len(scored), "n_within": len(within), "best": None, "alike": [],
           "untested": 0}
    if within.empty:
        return {**out, "fastest_ms": float(scored["_cost"].min()) if len(scored) else None}
    top = within.iloc[0]
    out["best"] = _summary(top, top["_cost"])
    out["truth"] = truth_verdict(out["best"], list(within["model"].unique()), truth)
    peaks = within["matmul_peak_gflops"].dropna()
    out["matmul_peak"] = float(peaks.median()) if len(peaks) else None
    a = row_predictions(predictions, top) if labels is not None else None
    for _, row in within.iloc[1:].iterrows():
        b = row_predictions(predictions, row) if a is not None else None
        if b is None or not len(a) == len(b) == len(labels):
            out["untested"] += 1
            continue
        test = mcnemar(a, b, labels)
        if test["p"] >= THRESHOLD:
            out["alike"].append({**_summary(row, row["_cost"]), "p": test["p"]})
    return out


def _paired(frame: pd.DataFrame, labels, predictions: dict) -> dict | None:
    """The exact McNemar test of the top scorer against the runner-up on the same test images, when
    both rows' predictions on every test image are in examples.npz."""
    top = top_scorer(frame)
    second = runner_up(frame, top) if top is not None else None
    if second is None or labels is None:
        return None
    a, b = row_predictions(predictions, top), row_predictions(predictions, second)
    full = int(top["test_size"]) == int(second["test_size"]) == len(labels)  # not an older 48-image file
    if a is None or b is None or not full or not len(a) == len(b) == len(labels):
        return None
    return {**mcnemar(a, b, labels), "a": prediction_key(top), "b": prediction_key(second)}


def _same_order(frame: pd.DataFrame) -> dict:
    """Per size with at least two backbones scored in both regimes: whether they rank them alike."""
    out = {}
    best = best_rows(frame)
    for size in sizes(frame):
        orders = [list(best[(best["regime"] == regime) & (best["img_size"] == size)]["model"]) for regime in REGIMES]
        shared = set(orders[0]) & set(orders[1])
        if len(shared) >= 2:  # ranked: each list is the models best first by validation accuracy
            out[size] = [m for m in orders[0] if m in shared] == [m for m in orders[1] if m in shared]
    return out
