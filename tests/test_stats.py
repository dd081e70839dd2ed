"""The report's statistics against values worked out by hand."""

import math

import numpy as np
import pytest

from report.stats import correlation, mcnemar, weighted_tau, wilson


def test_exact_mcnemar():
    labels = np.zeros(20, int)
    a = np.zeros(20, int)  # right everywhere
    b = np.zeros(20, int)
    b[:5] = 1  # wrong on 5 images where a is right, never right where a is wrong
    test = mcnemar(a, b, labels)
    assert (test["n"], test["only_a"], test["only_b"]) == (20, 5, 0)
    assert test["p"] == pytest.approx(2 * 0.5 ** 5)  # 0.0625: two-sided binomial, k = 0 of 5
    assert mcnemar(a, a, labels)["p"] == 1.0  # no discordant images: no evidence either way
    b[5:7] = 0
    a[10:13] = 1  # 5 against 3 discordant
    assert mcnemar(a, b, labels)["p"] == pytest.approx(min(1, 2 * sum(math.comb(8, i) for i in range(4)) / 2 ** 8))


def test_wilson_interval():
    low, high = wilson(81, 100)  # a textbook case: 0.81 of 100 -> about 0.722 to 0.874
    assert low == pytest.approx(0.7222, abs=1e-3) and high == pytest.approx(0.8740, abs=1e-3)
    assert wilson(0, 10)[0] == 0.0 and 0 < wilson(0, 10)[1] < 0.35
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_correlation_with_fisher_interval():
    c = correlation([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])
    assert c["n"] == 5 and c["r"] == pytest.approx(0.7745967, abs=1e-6)
    z, half = math.atanh(c["r"]), 1.96 / math.sqrt(2)
    assert c["r_low"] == pytest.approx(math.tanh(z - half)) and c["r_high"] == pytest.approx(math.tanh(z + half))
    assert c["rho"] == pytest.approx(0.7378648, abs=1e-6)  # Spearman with the tied 4s and 5s sharing ranks
    perfect = correlation([1, 2, 3, 4], [2, 4, 6, 8])
    assert perfect["r"] == pytest.approx(1.0) and perfect["r_low"] == perfect["r_high"] == perfect["r"]
    assert correlation([1, 2], [3, 4]) is None and correlation([1, 1, 1], [1, 2, 3]) is None


def test_weighted_tau():
    # One swap, of the items ranked 2nd and 3rd of 4: the pair weighs 1/2 + 1/3 of the 3 (1 + 1/2 + 1/3 + 1/4)
    # all pairs weigh together, so tau = (6.25 - 2 * 5/6) / 6.25 in either ranking.
    assert weighted_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.733333, abs=1e-6)
    assert weighted_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # values from scipy.stats.weightedtau (scipy 1.17.1), with and without ties
    assert weighted_tau([0.1, 0.4, 0.2, 0.9, 0.5], [3, 1, 2, 5, 4]) == pytest.approx(0.6569343, abs=1e-6)
    assert weighted_tau([1, 1, 2, 3, 3], [0.5, 1, 1, 2.5, 2]) == pytest.approx(0.8421663, abs=1e-6)
    assert weighted_tau([1], [2]) is None and weighted_tau([1, 1, 1], [1, 2, 3]) is None
