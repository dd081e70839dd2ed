"""Transferability scores: how well a backbone's frozen features predict the labels, without training.

Each score reads the training split's pooled features (N, D) and labels (N,)
and returns one number; higher should mean a better backbone for the task.
Whether any of them ranks backbones the way fine-tuning does is measured
against the benchmark's rows, not assumed: a 2025 study of 23 such metrics
(arXiv 2503.18528) found none robust across datasets.

* `logme`: the log maximum evidence of a Bayesian linear regression from the
  features to each one-hot label column, per image, averaged over classes
  (You et al., ICML 2021; the fixed-point iteration of their arXiv 2110.10545).
* `h_score`: tr(cov(f)^-1 cov(E[f | y])), the feature variance the class
  means explain (Bao et al., ICIP 2019), with the Ledoit-Wolf shrunk
  covariance of Ibrahim et al. (arXiv 2110.06893, 2021): the plain inverse is unstable
  when D is close to N, as in the quick run (D 1,024-2,048, N 2,000).
* `knn_accuracy`: leave-one-out k-nearest-neighbour accuracy (cosine
  similarity of centred features) on the training split.

`ensure_scores` is the benchmark's memoised measurement: the scores of one
split's cached features and the milliseconds each took, through `Store.memo`.
"""

from __future__ import annotations

import time

import numpy as np

from .keys import transferability_parts
from .store import Store

TRANSFERABILITY_VERSION = 1  # bump when a score's definition changes, so stored scores are recomputed
KNN_K = 20
KNN_MAX_IMAGES = 5000  # leave-one-out over at most this many training images (the full data: 45,000)
_EPS = 1e-5  # keeps the fixed point away from a zero residual or a zero weight norm (the reference's value)


def _check(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, np.float64)
    y = np.asarray(labels).reshape(-1)
    if f.ndim != 2 or len(f) != len(y):
        raise ValueError(f"expected features (N, D) and labels (N,), got {f.shape} and {np.shape(labels)}")
    if len(y) < 2 or len(np.unique(y)) < 2:
        raise ValueError("a transferability score needs at least two images of at least two classes")
    return f, y.astype(np.int64)


def _spectrum(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(u, sigma)`: the left singular vectors (N, k) of `f` and its nonzero squared singular values (k,),
    from the eigendecomposition of the smaller of f f^T and f^T f."""
    n, d = f.shape
    if n <= d:
        sigma, u = np.linalg.eigh(f @ f.T)
    else:
        sigma, v = np.linalg.eigh(f.T @ f)
    keep = sigma > sigma.max() * 1e-12
    sigma = sigma[keep]
    u = u[:, keep] if n <= d else (f @ v[:, keep]) / np.sqrt(sigma)
    return u, sigma


def _evidence(n: int, d: int, sigma: np.ndarray, x2: np.ndarray, rest: float, alpha: float,
              beta: float) -> tuple[float, float, float]:
    """The log evidence of y ~ N(0, I/beta + f f^T/alpha), with the posterior mean's squared norm and
    residual; `x2` are y's squared coordinates on the singular vectors, `rest` y's squared norm outside them."""
    t = alpha / beta
    m2 = float((sigma * x2 / (t + sigma) ** 2).sum())
    res2 = float((x2 / (1 + sigma / t) ** 2).sum() + rest)
    # log|alpha I + beta f^T f|: the D - k zero singular values contribute log(alpha) each
    log_det = float(np.log(alpha + beta * sigma).sum()) + (d - len(sigma)) * np.log(alpha)
    evidence = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - log_det / 2 - beta / 2 * res2 - alpha / 2 * m2
                - n / 2 * np.log(2 * np.pi))
    return evidence, m2, res2


def logme_evidence(features: np.ndarray, target: np.ndarray, max_iter: int = 100) -> tuple[float, float, float]:
    """The maximum log evidence per image of a Bayesian linear regression `target ~ features @ w`.

    w ~ N(0, I/alpha) and noise ~ N(0, 1/beta); alpha and beta are set by
    MacKay's fixed-point updates until alpha/beta changes by under 1e-3.

    Args:
        features: (N, D) floats.
        target: (N,) floats.

    Returns:
        `(evidence / N, alpha, beta)`.
    """
    f = np.asarray(features, np.float64)
    y = np.asarray(target, np.float64).reshape(-1)
    n, d = f.shape
    u, sigma = _spectrum(f)
    return _fixed_point(n, d, u, sigma, y, max_iter)


def _fixed_point(n, d, u, sigma, y, max_iter: int = 100) -> tuple[float, float, float]:
    x = u.T @ y
    x2 = x ** 2
    rest = max(float(y @ y - x2.sum()), 0.0)
    if not len(sigma):  # features all zero: y is noise alone, y ~ N(0, I/beta), whatever alpha
        beta = n / (rest + _EPS)
        return (n / 2 * np.log(beta) - beta / 2 * rest - n / 2 * np.log(2 * np.pi)) / n, 1.0, beta
    alpha = beta = 1.0
    for _ in range(max_iter):
        t = alpha / beta
        gamma = float((sigma / (sigma + t)).sum())
        _, m2, res2 = _evidence(n, d, sigma, x2, rest, alpha, beta)
        alpha, beta = gamma / (m2 + _EPS), (n - gamma) / (res2 + _EPS)
        if abs(alpha / beta - t) / t <= 1e-3:
            break
    return _evidence(n, d, sigma, x2, rest, alpha, beta)[0] / n, alpha, beta


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME (You et al., ICML 2021): the mean over classes of `logme_evidence` of the class's 0/1 column.

    Args:
        features: (N, D) pooled features, any float dtype (computed in float64).
        labels: (N,) integer class labels.

    Returns:
        The score, per image; higher is better. Typical values lie between -2 and 2.

    The evidence is the exact log marginal likelihood at the final (alpha, beta),
    D - k zero singular values included; the reference code (thuml/LogME) leaves
    those out, which shifts its score when N < D.
    """
    f, y = _check(features, labels)
    n, d = f.shape
    u, sigma = _spectrum(f)
    return float(np.mean([_fixed_point(n, d, u, sigma, (y == c).astype(np.float64))[0] for c in np.unique(y)]))


def ledoit_wolf_shrinkage(centred: np.ndarray, cov: np.ndarray | None = None) -> float:
    """The Ledoit-Wolf (2004) weight in [0, 1] of the scaled identity in the shrunk covariance of `centred` (N, D).

    The shrunk covariance is (1 - a) S + a (tr S / D) I, with S = x^T x / N (`cov`, when the caller has it).
    """
    x = np.asarray(centred, np.float64)
    n, d = x.shape
    s = x.T @ x / n if cov is None else cov
    mu = np.trace(s) / d
    spread = float((s ** 2).sum() - d * mu ** 2)  # ||S - mu I||_F^2
    row_norms2 = (x ** 2).sum(axis=1)
    noise = float(((row_norms2 ** 2).sum() / n - (s ** 2).sum()) / n)  # (1/N^2) sum_k ||x_k x_k^T - S||_F^2
    return 0.0 if spread <= 0 else min(max(noise, 0.0), spread) / spread


def h_score(features: np.ndarray, labels: np.ndarray, shrink: bool = True) -> float:
    """H-score (Bao et al., ICIP 2019): tr(cov(f)^-1 cov(E[f | y])).

    Args:
        features: (N, D) pooled features.
        labels: (N,) integer class labels.
        shrink: use the Ledoit-Wolf shrunk covariance, scaled as in Ibrahim et al.
            (2021): (1 - a) tr(cov_a(f)^-1 cov(E[f | y])). False: the plain
            score with a pseudo-inverse (the reference code, tllib/ranking/hscore.py).

    Returns:
        The score, between 0 and the number of classes - 1; higher is better.
    """
    f, y = _check(features, labels)
    n, d = f.shape
    x = f - f.mean(axis=0)
    cov = x.T @ x / n
    classes, counts = np.unique(y, return_counts=True)
    means = np.stack([x[y == c].mean(axis=0) for c in classes])  # (C, D), centred class means
    weight = counts / n
    if not np.any(cov):  # constant features explain nothing
        return 0.0
    if shrink:
        a = ledoit_wolf_shrinkage(x, cov)
        shrunk = (1 - a) * cov
        shrunk[np.diag_indices(d)] += a * np.trace(cov) / d
        solved = np.linalg.solve(shrunk, means.T)  # (D, C)
        scale = 1 - a
    else:
        solved = np.linalg.pinv(cov, rcond=1e-15, hermitian=True) @ means.T
        scale = 1.0
    return float(scale * np.sum(weight * np.einsum("cd,dc->c", means, solved)))


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = KNN_K, max_images: int = KNN_MAX_IMAGES,
                 seed: int = 0, block: int = 1024) -> float:
    """Leave-one-out k-NN accuracy on cosine similarity of centred features.

    Each image is classified by the majority label of its `k` most similar
    other images (ties: the class with the larger summed similarity).

    Args:
        features: (N, D) pooled features.
        labels: (N,) integer class labels.
        k: neighbours (capped at N - 1).
        max_images: above this, a fixed-seed random subset of this many images is used.
        seed: the subset's seed.
        block: rows of the similarity matrix held at a time.

    Returns:
        Accuracy in [0, 1].
    """
    f, y = _check(features, labels)
    if len(y) > max_images:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), max_images, replace=False))
        f, y = f[keep], y[keep]
    z = f - f.mean(axis=0)
    z = (z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    n, k = len(y), min(k, len(y) - 1)
    n_classes = int(y.max()) + 1
    right = 0
    for start in range(0, n, block):
        sims = z[start:start + block] @ z.T  # (b, N)
        rows = np.arange(len(sims))
        sims[rows, start + rows] = -np.inf  # leave the image itself out
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        near_sims = np.take_along_axis(sims, nearest, axis=1)
        votes = np.zeros((len(sims), n_classes))
        np.add.at(votes, (rows[:, None], y[nearest]), 1.0 + near_sims / (2 * (k + 1)))  # counts first, then sims
        right += int((votes.argmax(axis=1) == y[start:start + block]).sum())
    return right / n


SCORES = {"logme": logme, "hscore": h_score, "knn_acc": knn_accuracy}  # result column -> function


def transferability(features: np.ndarray, labels: np.ndarray) -> dict:
    """Every score of `SCORES` on one split, and the milliseconds each took (`<name>_ms`)."""
    out = {}
    for name, score in SCORES.items():
        t0 = time.perf_counter()
        out[name] = round(score(features, labels), 6)
        out[f"{name}_ms"] = round(1000 * (time.perf_counter() - t0), 1)
    return out


def ensure_scores(features: np.ndarray, labels: np.ndarray, feature_key: str, store: Store) -> dict:
    """`transferability` of one cached split (its features' cache key `feature_key`): from the store, or now."""
    return store.memo("transferability", transferability_parts(feature_key, TRANSFERABILITY_VERSION),
                      lambda: transferability(features, labels))
