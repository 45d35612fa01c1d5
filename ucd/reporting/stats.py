"""The few statistics the reports need, without scipy (not a dependency of the package):
Student's t distribution (CDF and quantile, through the regularised incomplete beta), the
one-sided t bounds of a mean that judge the claims, and Kendall's tau-b that the fidelity
report ranks methods with."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ucd.reporting.aggregate import Stats

_TINY = 1e-300
_EPS = 1e-15


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz), for x < (a + 1) / (a + b + 2)."""

    def nudge(v: float) -> float:
        return _TINY if abs(v) < _TINY else v

    c, d = 1.0, 1.0 / nudge(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in range(1, 10_000):
        even = m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m))
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))
        for coef in (even, odd):
            d = 1.0 / nudge(1.0 + coef * d)
            c = nudge(1.0 + coef / c)
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta I_{x}({a}, {b}) did not converge")


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b), a, b > 0, 0 <= x <= 1."""
    if a <= 0 or b <= 0 or not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc needs a, b > 0 and 0 <= x <= 1 (got {a}, {b}, {x})")
    if x in (0.0, 1.0):
        return x
    log_front = a * math.log(x) + b * math.log1p(-x)
    log_front -= math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0 (got {df})")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))  # P(T > |t|)
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p (Student's t, `df` degrees of freedom), by bisection on
    t_cdf: t_quantile(0.95, 1) = 6.3138, (0.95, 2) = 2.9200, (0.95, 4) = 2.1318."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a quantile needs 0 < p < 1 (got {p})")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def one_sided_bounds(st: Stats, level: float) -> tuple[float, float]:
    """(lower, upper): the one-sided `level` t bounds of a mean from n values (mean, sample
    std): mean -/+ t_{level, n-1} std / sqrt(n); NaN for fewer than 2 values."""
    if not 0.5 < level < 1.0:
        raise ValueError(f"level must lie in (0.5, 1) (got {level})")
    if st.n < 2 or math.isnan(st.std):
        return math.nan, math.nan
    half = t_quantile(level, st.n - 1) * st.std / math.sqrt(st.n)
    return st.mean - half, st.mean + half


def _sign(v: float) -> int:
    return int(v > 0) - int(v < 0)


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of paired values: (concordant - discordant pairs) / sqrt((pairs - ties
    in x) (pairs - ties in y)); NaN with fewer than 2 pairs or when x or y is all ties."""
    if len(x) != len(y):
        raise ValueError(f"kendall_tau_b: {len(x)} x values, {len(y)} y values")
    n = len(x)
    score = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            sx, sy = _sign(x[i] - x[j]), _sign(y[i] - y[j])
            score += sx * sy
            ties_x += sx == 0
            ties_y += sy == 0
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - ties_x) * (pairs - ties_y))
    return score / denominator if denominator > 0 else math.nan
