import numpy as np

from benchmark.core.heads import HeadConfig, build_head
from benchmark.core.networks import train_head
from benchmark.core.metrics import bootstrap_ci, classification_report, confusion_matrix


def _separable(n, seed):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).normal(0, 3, size=(10, 16))
    y = np.arange(n) % 10
    return (centers[y] + rng.normal(0, 1, size=(n, 16))).astype(np.float16), y


def test_heads_learn_separable_features():
    train, val, test = _separable(400, 0), _separable(100, 1), _separable(200, 2)
    for kind in ("linear", "mlp"):
        r = train_head(HeadConfig(kind=kind, max_epochs=30), train, val, test, seed=0)
        assert r["test_acc"] > 0.9, (kind, r["test_acc"])
        assert r["test_ci_low"] <= r["test_acc"] <= r["test_ci_high"]
        assert len(r["per_class_acc"]) == 10 and np.array(r["confusion"]).sum() == 200
        assert 1 <= r["epochs"] <= 30 and r["head_train_s"] > 0


def test_same_seed_same_accuracy():
    train, val, test = _separable(300, 3), _separable(100, 4), _separable(300, 5)
    cfg = HeadConfig(kind="mlp", max_epochs=5)
    a = train_head(cfg, train, val, test, seed=7)
    b = train_head(cfg, train, val, test, seed=7)
    assert abs(a["test_acc"] - b["test_acc"]) <= 0.001


def test_build_head_shapes():
    model = build_head(HeadConfig(kind="mlp", hidden=32), 16)
    assert model.output_shape == (None, 10)
    assert model.count_params() == 16 * 32 + 32 + 32 * 10 + 10
    normalized = build_head(HeadConfig(kind="linear"), 16, mean=np.zeros(16), variance=np.ones(16))
    assert normalized.layers[1].name == "standardize"


def test_metrics():
    y = np.array([0, 0, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 0])
    cm = confusion_matrix(y, p, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    r = classification_report(y, p, n_classes=3)
    assert r["accuracy"] == 0.6 and r["per_class"] == [0.5, 1.0, 0.0]
    lo, hi = bootstrap_ci(np.r_[np.ones(800), np.zeros(200)])
    assert 0.76 < lo < 0.8 < hi < 0.83
