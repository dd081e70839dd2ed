"""The transferability scores against values worked out by hand or from their definitions (NumPy only: fast)."""

import numpy as np
import pytest

from benchmark.core.store import Store
from benchmark.core.transferability import (SCORES, ensure_scores, h_score, knn_accuracy, ledoit_wolf_shrinkage,
                                            logme, logme_evidence)


def _log_marginal(f, y, alpha, beta):
    """log N(y; 0, I/beta + f f^T/alpha), straight from the definition."""
    n = len(y)
    cov = np.eye(n) / beta + f @ f.T / alpha
    _, log_det = np.linalg.slogdet(cov)
    return -0.5 * (n * np.log(2 * np.pi) + log_det + y @ np.linalg.solve(cov, y))


@pytest.mark.parametrize("n, d", [(40, 6), (12, 30)])  # more images than features, and fewer (as in the quick run)
def test_logme_is_the_maximum_log_marginal_likelihood(n, d):
    rng = np.random.default_rng(1)
    f = rng.normal(size=(n, d))
    y = f @ rng.normal(size=d) * 0.3 + rng.normal(size=n) * 0.5
    evidence, alpha, beta = logme_evidence(f, y)
    assert evidence == pytest.approx(_log_marginal(f, y, alpha, beta) / n, abs=1e-9)
    for da, db in [(1.3, 1), (0.7, 1), (1, 1.3), (1, 0.7)]:  # a maximum in both hyperparameters
        assert _log_marginal(f, y, alpha * da, beta * db) / n < evidence


def test_logme_averages_the_classes_and_prefers_informative_features():
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(3), 20)
    noise = rng.normal(size=(60, 8))
    informative = noise * 0.2 + np.eye(3)[y] @ rng.normal(size=(3, 8))
    by_class = [logme_evidence(informative, (y == c).astype(float))[0] for c in range(3)]
    assert logme(informative, y) == pytest.approx(np.mean(by_class))
    assert logme(informative, y) > logme(noise, y)


def test_h_score_by_hand():
    f = np.array([[0.0], [2.0], [4.0], [6.0]])  # variance 5; class means 1 and 5 around 3: variance 4
    y = np.array([0, 0, 1, 1])
    assert h_score(f, y, shrink=False) == pytest.approx(0.8)
    assert h_score(f, y) == pytest.approx(0.8)  # one feature: nothing to shrink


def test_plain_h_score_is_the_reference_formula():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 200)
    f = rng.normal(size=(200, 5)) + np.eye(4)[y] @ rng.normal(size=(4, 5))
    g = np.stack([f[y == c].mean(axis=0) for c in range(4)])[y]  # tllib/ranking/hscore.py
    reference = np.trace(np.linalg.pinv(np.cov(f, rowvar=False), rcond=1e-15) @ np.cov(g, rowvar=False))
    assert h_score(f, y, shrink=False) == pytest.approx(reference)
    assert 0 < h_score(f, y) < h_score(f, y, shrink=False) <= 3  # shrinking only lowers it; at most C - 1


def test_ledoit_wolf_shrinkage_from_its_definition():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 8)) * np.arange(1, 9)
    x -= x.mean(axis=0)
    n, d = x.shape
    s = x.T @ x / n
    mu = np.trace(s) / d
    spread = np.sum((s - mu * np.eye(d)) ** 2)
    noise = sum(np.sum((np.outer(row, row) - s) ** 2) for row in x) / n ** 2  # Ledoit & Wolf (2004), lemma 3.3
    assert ledoit_wolf_shrinkage(x) == pytest.approx(min(noise, spread) / spread)
    iso = np.vstack([np.eye(3), -np.eye(3)])  # covariance already a multiple of I: no shrinkage
    assert ledoit_wolf_shrinkage(iso) == 0.0


def test_knn_accuracy_by_hand():
    # Two tight groups on the unit circle and one odd point: image 4 (label 1) sits inside group 0.
    angles = np.array([0.0, 0.1, 0.2, 3.0, 0.15, 3.1, 3.2])
    f = np.stack([np.cos(angles), np.sin(angles)], axis=1) + 5.0  # the centring removes the offset
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    # k = 1: image 4's nearest is label 0 (wrong), and images 1 and 2 have image 4 nearest (wrong too)
    assert knn_accuracy(f, y, k=1) == pytest.approx(4 / 7)
    assert knn_accuracy(f, y, k=3) == pytest.approx(6 / 7)  # only image 4 is outvoted
    assert knn_accuracy(f, y, k=3, max_images=5, seed=0) in {i / 5 for i in range(6)}


def test_constant_features_score_as_no_information():
    y = np.repeat(np.arange(2), 10)
    zeros = np.zeros((20, 5))
    yc = (y == 0).astype(float)  # LogME: each class column as noise alone, N(0, I / beta) with beta = N / |y|^2
    beta = 20 / (yc @ yc)
    assert logme(zeros, y) == pytest.approx(0.5 * np.log(beta) - 0.5 * beta * (yc @ yc) / 20 - 0.5 * np.log(2 * np.pi),
                                            abs=1e-6)
    assert h_score(zeros + 3, y) == 0.0 and h_score(zeros, y, shrink=False) == 0.0


def test_scores_refuse_bad_shapes():
    with pytest.raises(ValueError, match=r"features \(N, D\) and labels \(N,\)"):
        logme(np.zeros((5, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="two classes"):
        h_score(np.ones((5, 3)), np.zeros(5))


def test_ensure_scores_is_memoised(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(2), 30)
    f = rng.normal(size=(60, 4)).astype(np.float16) + y[:, None]
    store = Store(str(tmp_path))
    first = ensure_scores(f, y, "features-key", store)
    assert set(first) == set(SCORES) | {f"{name}_ms" for name in SCORES}
    assert first["knn_acc"] > 0.9 and all(first[f"{name}_ms"] >= 0 for name in SCORES)
    monkeypatch.setitem(SCORES, "logme", lambda *_: pytest.fail("recomputed a stored score"))
    assert ensure_scores(f, y, "features-key", store) == first
