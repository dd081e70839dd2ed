"""Classification metrics with a bootstrap confidence interval."""

from __future__ import annotations

import numpy as np


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Share of correct predictions; `predicted` is class ids (N,) or probabilities (N, classes)."""
    predicted = np.asarray(predicted)
    predicted = predicted.argmax(axis=1) if predicted.ndim == 2 else predicted
    return float((predicted == np.asarray(labels)).mean())


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """int64 (n_classes, n_classes): rows are true labels, columns predictions."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def bootstrap_ci(correct: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a 0/1 vector."""
    correct = np.asarray(correct, dtype=np.float64)
    if len(correct) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, 100):  # blocks keep memory flat for large test sets
        k = min(100, n_boot - start)
        idx = rng.integers(0, len(correct), size=(k, len(correct)))
        means[start:start + k] = correct[idx].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 10, seed: int = 0) -> dict:
    """Accuracy, its bootstrap 95% interval, per-class accuracy and the confusion matrix."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    correct = y_true == y_pred
    cm = confusion_matrix(y_true, y_pred, n_classes)
    support = cm.sum(axis=1)
    per_class = np.divide(np.diag(cm), support, out=np.full(n_classes, np.nan), where=support > 0)
    lo, hi = bootstrap_ci(correct, seed=seed)
    return {
        "accuracy": float(correct.mean()) if len(correct) else float("nan"),
        "ci_low": lo,
        "ci_high": hi,
        "per_class": [None if np.isnan(v) else round(float(v), 4) for v in per_class],
        "confusion": cm.tolist(),
    }


def prediction_shift(labels: np.ndarray, before: np.ndarray, after: np.ndarray, n_classes: int = 10) -> dict:
    """Where the images go that a change of input (e.g. stronger JPEG compression) turns from right to wrong.

    Args:
        labels, before, after: class ids (N,): the truth, the predictions on the
            original inputs and on the changed ones.

    Returns:
        `{"n_lost", "n_gained", "to_class", "to_class_count", "to_class_share",
        "class_share_before", "class_share_after"}`: images right before and
        wrong after (and the reverse), the class most of the lost ones are
        now called, its count and share among them, and that class's share of
        all predictions before and after. `to_class` is None when none is lost.
    """
    labels, before, after = (np.asarray(a) for a in (labels, before, after))
    lost = (before == labels) & (after != labels)
    counts = np.bincount(after[lost], minlength=n_classes)
    to_class = int(counts.argmax()) if lost.any() else None
    return {"n_lost": int(lost.sum()), "n_gained": int(((before != labels) & (after == labels)).sum()),
            "to_class": to_class, "to_class_count": int(counts.max()) if lost.any() else 0,
            "to_class_share": float(counts.max() / lost.sum()) if lost.any() else 0.0,
            "class_share_before": float(np.mean(before == to_class)) if lost.any() else 0.0,
            "class_share_after": float(np.mean(after == to_class)) if lost.any() else 0.0}
