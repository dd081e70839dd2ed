"""The report's statistics, computed from the results files (so the number checker can trace them).

* `mcnemar`: the exact McNemar test of two classifiers on the same test
  images (McNemar 1947): only the images where exactly one of them is right
  count, and under the null hypothesis each such image goes either way with
  probability 1/2.
* `wilson`: the Wilson score interval of a proportion (per-class accuracy).
* `correlation`: Pearson's r with a Fisher-z 95% interval, and Spearman's rho.
* `weighted_tau`: Kendall's tau with hyperbolic weights (Vigna 2015), which
  counts disagreements among the top-ranked items more: the statistic the
  transferability literature reports (You et al. 2021).
"""

from __future__ import annotations

import math

import numpy as np


def mcnemar(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray) -> dict:
    """Exact two-sided McNemar test of classifiers a and b on the same images.

    Returns:
        `{"n": images, "only_a": a right and b wrong, "only_b": the reverse, "p": two-sided p-value}`.
    """
    right_a, right_b = np.asarray(pred_a) == labels, np.asarray(pred_b) == labels
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    n = only_a + only_b
    k = min(only_a, only_b)
    p = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)
    return {"n": int(len(labels)), "only_a": only_a, "only_b": only_b, "p": p}


def wilson(successes: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of `successes / n`."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def correlation(x, y) -> dict | None:
    """Pearson's r with its Fisher-z 95% interval, and Spearman's rho; None for fewer than 3 points."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 3 or np.std(x) == 0 or np.std(y) == 0:
        return None
    r = float(np.corrcoef(x, y)[0, 1])
    rho = float(np.corrcoef(_ranks(x), _ranks(y))[0, 1])
    if n > 3 and abs(r) < 1:
        z, half = math.atanh(r), 1.96 / math.sqrt(n - 3)
        low, high = math.tanh(z - half), math.tanh(z + half)
    elif n > 3:  # a perfect correlation: Fisher's z is infinite and the interval is the point
        low = high = r
    else:  # n = 3 has no Fisher interval: anything is possible
        low, high = -1.0, 1.0
    return {"n": n, "r": r, "r_low": low, "r_high": high, "rho": rho}


def _ranks(values: np.ndarray) -> np.ndarray:
    order = values.argsort()
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for v in np.unique(values):  # ties share their mean rank
        ranks[values == v] = ranks[values == v].mean()
    return ranks


def weighted_tau(x, y) -> float | None:
    """Weighted Kendall tau of `x` and `y` (Vigna 2015, additive hyperbolic weights 1/(r + 1)).

    A pair of items i, j weighs 1/(r_i + 1) + 1/(r_j + 1), r being an item's
    rank from the top (0 = the largest); tau is averaged over the ranking by
    x (ties broken by y) and by y (ties broken by x), with tau-b's treatment
    of tied pairs. The same definition as `scipy.stats.weightedtau`'s default.
    None for fewer than 2 items or a constant input.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    sx, sy = np.sign(x[:, None] - x[None, :]), np.sign(y[:, None] - y[None, :])
    upper = np.triu_indices(len(x), 1)

    def tau(first, second) -> float:
        order = np.lexsort((-second, -first))  # decreasing by first, then by second
        rank = np.empty(len(x))
        rank[order] = np.arange(len(x))
        w = (1 / (rank[:, None] + 1) + 1 / (rank[None, :] + 1))[upper]
        a, b = sx[upper], sy[upper]
        return float(np.sum(w * a * b) / math.sqrt(np.sum(w * a * a) * np.sum(w * b * b)))

    return (tau(x, y) + tau(y, x)) / 2
