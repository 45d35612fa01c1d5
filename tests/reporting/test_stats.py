"""Student's t and Kendall's tau-b of ucd.reporting.stats, against printed tables, closed
forms, hand counts of pairs and (as a second, independent implementation) scipy, which
scikit-learn installs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from ucd.reporting.aggregate import Stats
from ucd.reporting.stats import betainc, kendall_tau_b, one_sided_bounds, t_cdf, t_quantile


@pytest.mark.parametrize(
    ("p", "df", "printed"),
    [  # a printed t table (4 decimals)
        (0.95, 1, 6.3138),
        (0.95, 2, 2.9200),
        (0.95, 3, 2.3534),
        (0.95, 4, 2.1318),
        (0.975, 10, 2.2281),
        (0.99, 30, 2.4573),
        (0.90, 2, 1.8856),
    ],
)
def test_t_quantile_against_a_printed_table(p, df, printed):
    assert t_quantile(p, df) == pytest.approx(printed, abs=6e-5)
    assert t_quantile(1 - p, df) == pytest.approx(-printed, abs=6e-5)


@pytest.mark.parametrize("p", [0.55, 0.9, 0.95, 0.99, 0.9999])
def test_t_quantile_against_closed_forms(p):
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)  # Cauchy
    assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)
    assert abs(t_quantile(0.5, 3)) < 1e-12


def test_t_against_scipy():
    for df in (1, 2, 3, 4, 7, 29, 200):
        for p in (0.6, 0.9, 0.95, 0.975, 0.995):
            assert t_quantile(p, df) == pytest.approx(scipy.stats.t.ppf(p, df), rel=1e-9)
        for t in (-3.0, -0.5, 0.0, 1.2, 8.0):
            assert t_cdf(t, df) == pytest.approx(scipy.stats.t.cdf(t, df), abs=1e-12)
    for a, b, x in ((0.5, 0.5, 0.3), (2.0, 0.5, 0.9), (10.0, 3.0, 0.5), (1.0, 1.0, 0.25)):
        assert betainc(a, b, x) == pytest.approx(scipy.special.betainc(a, b, x), rel=1e-10)
    assert betainc(1.0, 1.0, 0.25) == pytest.approx(0.25)  # the uniform distribution


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="0 < p < 1"):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="degrees of freedom must be > 0"):
        t_cdf(1.0, 0)
    with pytest.raises(ValueError, match=r"level must lie in \(0.5, 1\)"):
        one_sided_bounds(Stats(1.0, 1.0, 3), 0.4)
    with pytest.raises(ValueError, match="3 x values, 2 y values"):
        kendall_tau_b([1, 2, 3], [1, 2])


def test_one_sided_bounds_by_hand():
    # mean 5, s 1, n 3: 5 -/+ 2.9200 / sqrt(3)
    lo, hi = one_sided_bounds(Stats(5.0, 1.0, 3), 0.95)
    assert (lo, hi) == pytest.approx((5 - 1.68586, 5 + 1.68586), abs=1e-4)
    assert all(math.isnan(v) for v in one_sided_bounds(Stats(5.0, math.nan, 1), 0.95))


@pytest.mark.parametrize(
    ("x", "y", "tau"),
    [
        # 5 items, paper order 1 < 2 < 3 < 4 < 5; 10 pairs
        ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], 1.0),
        ([1, 3, 2, 4, 5], [1, 2, 3, 4, 5], (9 - 1) / 10),  # one swapped pair: 0.8
        ([1, 3, 2, 5, 4], [1, 2, 3, 4, 5], (8 - 2) / 10),  # two swapped pairs: 0.6
        ([5, 4, 3, 2, 1], [1, 2, 3, 4, 5], -1.0),
        # a tie in x: 8 concordant, 1 discordant, 1 tied in x -> 7 / sqrt(9 x 10)
        ([5, 5, 20, 40, 30], [1.1, 17.9, 26.7, 58.4, 67.2], 7 / math.sqrt(90)),
        # ties on both sides: x ties (a, b), y ties (c, d); C = 4 (ac ad bc bd), D = 0 ->
        # 4 / sqrt((6 - 1)(6 - 1)) = 0.8
        ([1, 1, 2, 3], [1, 2, 3, 3], 4 / 5),
        ([1, 2, 3], [2, 2, 2], math.nan),  # no order in y
        ([1], [1], math.nan),
    ],
)
def test_kendall_tau_b_by_hand(x, y, tau):
    got = kendall_tau_b(x, y)
    assert (math.isnan(got) and math.isnan(tau)) or got == pytest.approx(tau)


def test_kendall_tau_b_against_scipy():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 12))
        x, y = (rng.integers(0, 5, n).astype(float) for _ in range(2))  # many ties
        want = scipy.stats.kendalltau(x, y, variant="b").statistic
        got = kendall_tau_b(list(x), list(y))
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, abs=1e-12)
