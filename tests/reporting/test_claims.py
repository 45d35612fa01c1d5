"""Claims (claims.yaml) on hand-built results: each verdict of a check (the one-sided t
rule at known t values on both sides of the threshold), each kind of claim, how checks
combine into a claim's verdict, and the file's validation."""

from __future__ import annotations

import copy
import math
import statistics

import pandas as pd
import pytest

from ucd.data.tasks import get_task
from ucd.reporting.aggregate import collect
from ucd.reporting.claim_checks import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    MISSING,
    NO_COUNTERPART,
    Check,
    judge,
)
from ucd.reporting.claims import (
    combine,
    evaluate_claim,
    evaluate_claims,
    load_claims,
    parse_claims,
    parse_rule,
)

# Student's t, one-sided 95 % quantiles from a printed table (not from the code under test)
T95 = {1: 6.3138, 2: 2.9200, 4: 2.1318}


def write_run(root, writer, benchmark, method, finals, step0=None):
    """One run per seed: after the last step every old class has IoU `old` and every new
    class `new` (finals: {seed: all or (old, new)}, fractions); after step 0 the old classes
    have `step0[seed]` (default 0.8). Joint: one step with every class."""
    dataset, task, setting = benchmark.split("/")
    t = get_task(dataset, task)
    old = [c for c in t.steps[0] if c != 0]
    for seed, value in finals.items():
        v_old, v_new = value if isinstance(value, tuple) else (value, value)
        last = {0: 0.9, **dict.fromkeys(old, v_old)}
        last.update(dict.fromkeys((c for s in t.steps[1:] for c in s), v_new))
        if method == "joint":
            writer(root, dataset, task, setting, method, 0, last, seed=seed)
            continue
        first = {0: 0.9, **dict.fromkeys(old, (step0 or {}).get(seed, 0.8))}
        writer(root, dataset, task, setting, method, 0, first, seed=seed)
        for k in range(1, t.n_steps - 1):  # intermediate steps: values do not matter
            seen = {c: 0.5 for s in t.steps[: k + 1] for c in s}
            writer(root, dataset, task, setting, method, k, seen, seed=seed)
        writer(root, dataset, task, setting, method, t.n_steps - 1, last, seed=seed)


def claim(kind, quantifier="every", **fields):
    raw = {"id": "c", "text": "a claim", "where": "Table 0", "kind": kind, **fields}
    if quantifier != "every":
        raw["quantifier"] = quantifier
    return parse_claims({"claims": [raw]})[0]


GREATER = {"a": "mib_ucd", "b": "mib", "metrics": ["all"], "on": ["voc/15-5/disjoint"]}
B55 = "digits/5-5/disjoint"


@pytest.fixture
def results(tmp_path, metrics_writer):
    root = tmp_path / "results"

    def run(benchmark, method, finals, step0=None):
        write_run(root, metrics_writer, benchmark, method, finals, step0)

    run.root = root
    return run


# ----------------------------------------------------------------- the verdict of a check


@pytest.mark.parametrize(
    ("ucd", "verdict", "reason"),
    [
        # d = 5, 4, 6: mean 5, s 1, t = 5 sqrt(3) = 8.66 > 2.92
        ({1: 0.55, 2: 0.56, 3: 0.60}, HOLDS, ""),
        ({1: 0.45, 2: 0.48, 3: 0.48}, FAILS, ""),  # d = -5, -4, -6
        ({1: 0.53, 2: 0.51, 3: 0.58}, INCONCLUSIVE, "the bounds straddle 0"),  # 3, -1, 4
        # d = 2, 0.5, 3.5: mean 2 > s 1.5 (the old one-sd rule said holds), but
        # t = 2 sqrt(3) / 1.5 = 2.31 < 2.92: within what 3 seeds can tell apart
        ({1: 0.52, 2: 0.525, 3: 0.575}, INCONCLUSIVE, "the bounds straddle 0"),
        ({1: 0.80}, INCONCLUSIVE, "fewer than 2 seeds"),  # +30 on one seed only
        ({4: 0.60, 5: 0.60}, INCONCLUSIVE, "fewer than 2 seeds"),  # no seed in common
    ],
)
def test_check_verdicts(results, ucd, verdict, reason):
    results(B55, "mib", {1: 0.50, 2: 0.52, 3: 0.54})
    results(B55, "mib_ucd", ucd)
    result = evaluate_claim(collect(results.root), claim("greater", **GREATER), embedded=True)
    (check,) = result.checks
    assert (check.verdict, check.reason) == (verdict, reason)
    assert result.verdict == verdict  # one check: the claim's verdict is the check's
    assert check.benchmark == B55 and check.comparison == "MiB+UCD - MiB, all"


# n paired differences of mean 0 and sample standard deviation 1 (by hand: sum of squares
# over n - 1 is 1), scaled and shifted to a chosen t statistic below
SHAPES = {
    2: [-1 / math.sqrt(2), 1 / math.sqrt(2)],
    3: [-1.0, 0.0, 1.0],
    5: [x / math.sqrt(2.5) for x in (-2, -1, 0, 1, 2)],
}


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize(
    ("factor", "verdict"),
    [(1.05, HOLDS), (0.95, INCONCLUSIVE), (-0.95, INCONCLUSIVE), (-1.05, FAILS)],
)
def test_the_rule_at_known_t_values(n, factor, verdict):
    """t = mean(d) / (s / sqrt(n)) set to 1.05 or 0.95 times the one-sided 95 % threshold
    t_{0.95, n-1} (and the mirror below 0): only beyond the threshold is there a verdict."""
    s, t = 2.0, factor * T95[n - 1]
    mean = t * s / math.sqrt(n)
    diffs = [mean + s * z for z in SHAPES[n]]
    assert mean / (statistics.stdev(diffs) / math.sqrt(n)) == pytest.approx(t)  # the data's t
    bounds, got, reason = judge(pd.Series(diffs, index=range(n)), 0.95)
    assert got == verdict
    assert reason == ("" if verdict != INCONCLUSIVE else "the bounds straddle 0")
    half = T95[n - 1] * s / math.sqrt(n)
    assert bounds == pytest.approx((mean - half, mean + half), abs=1e-3)


def test_bounds_straddling_0_are_inconclusive_and_the_level_matters():
    # d = 3, -1, 4: mean 2, s sqrt(7) = 2.646, n 3; half width 2.92 x 2.646 / sqrt(3) = 4.46
    bounds, verdict, _ = judge([3.0, -1.0, 4.0], 0.95)
    assert verdict == INCONCLUSIVE
    assert bounds == pytest.approx((2 - 4.4605, 2 + 4.4605), abs=1e-3)
    # d = 2, 0.5, 3.5: t = 2.31; t_{0.95, 2} = 2.92 > 2.31 > t_{0.90, 2} = 1.8856
    assert judge([2.0, 0.5, 3.5], 0.95)[1] == INCONCLUSIVE
    (lo, _), verdict, _ = judge([2.0, 0.5, 3.5], 0.90)
    assert verdict == HOLDS and lo == pytest.approx(2 - 1.8856 * 1.5 / math.sqrt(3), abs=1e-3)
    # no spread: the bounds are the mean itself
    assert judge([1.0, 1.0], 0.95)[1:] == (HOLDS, "")
    assert judge([0.0, 0.0], 0.95)[1] == INCONCLUSIVE
    assert judge([5.0], 0.95)[1:] == (INCONCLUSIVE, "fewer than 2 seeds")


def test_the_level_of_claims_yaml_is_applied(results):
    results(B55, "mib", {1: 0.50, 2: 0.52, 3: 0.54})
    results(B55, "mib_ucd", {1: 0.52, 2: 0.525, 3: 0.575})  # d = 2, 0.5, 3.5: t = 2.31
    df, c = collect(results.root), claim("greater", **GREATER)
    assert evaluate_claim(df, c, embedded=True).verdict == INCONCLUSIVE  # the file's 0.95
    # at 0.90 the lower bound is 2 - 1.8856 x 1.5 / sqrt(3) = 0.37 points: above 0 ...
    assert evaluate_claim(df, c, embedded=True, level=0.9, resolution=0.0).verdict == HOLDS
    assert evaluate_claims(df, [c], embedded=True, level=0.9, resolution=0)[0].verdict == HOLDS
    # ... but not above the file's resolution (1.0 point): not resolved
    assert evaluate_claim(df, c, embedded=True, level=0.9).verdict == INCONCLUSIVE
    assert evaluate_claims(df, [c], embedded=True, level=0.9)[0].verdict == INCONCLUSIVE


@pytest.mark.parametrize("level", [None, 0.5, 1.0, 95, "0.95", True])
def test_a_bad_level_is_rejected(level):
    data = {"rule": "a rule", "resolution": 1.0} | ({} if level is None else {"level": level})
    with pytest.raises(ValueError, match="'level' must be the one-sided level"):
        parse_rule(data)
    assert parse_rule({"rule": "r", "level": 0.9, "resolution": 0}).level == 0.9


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize(
    ("target", "verdict"),
    [("lower", HOLDS), ("lower", INCONCLUSIVE), ("upper", FAILS), ("upper", INCONCLUSIVE)],
)
def test_the_resolution_at_known_bounds(n, target, verdict):
    """Differences whose lower (upper) 95 % bound sits 0.05 point above or below +r (-r),
    with r = 1.5 points: only a bound beyond the resolution gives a verdict; the same data
    judged without a resolution (r = 0) get one, since both bounds are then past 0."""
    r, s = 1.5, 2.0
    half = T95[n - 1] * s / math.sqrt(n)
    beyond = verdict != INCONCLUSIVE
    edge = r + (0.05 if beyond else -0.05)
    mean = edge + half if target == "lower" else -edge - half
    diffs = [mean + s * z for z in SHAPES[n]]
    (lower, upper), got, reason = judge(diffs, 0.95, r)
    assert got == verdict
    assert (lower if target == "lower" else -upper) == pytest.approx(edge, abs=1e-3)
    if not beyond:
        assert reason == "a bound within the resolution (1.5) of 0"
    assert judge(diffs, 0.95, 0.0)[1] == (HOLDS if target == "lower" else FAILS)


@pytest.mark.parametrize("resolution", [None, -0.5, 100, "1", True])
def test_a_bad_resolution_is_rejected(resolution):
    data = {"rule": "a rule", "level": 0.95}
    data |= {} if resolution is None else {"resolution": resolution}
    with pytest.raises(ValueError, match="'resolution' must be the smallest difference"):
        parse_rule(data)
    assert parse_rule(data | {"resolution": 0.5}).resolution == 0.5


def test_the_numbers_behind_a_check(results):
    results(B55, "mib", {1: 0.50, 2: 0.52, 3: 0.54})
    results(B55, "mib_ucd", {1: 0.55, 2: 0.56, 3: 0.60, 4: 0.99})  # seed 4: no pair
    (check,) = evaluate_claim(
        collect(results.root), claim("greater", **GREATER), embedded=True
    ).checks
    assert (check.diff.mean, check.diff.std, check.diff.n) == pytest.approx((5.0, 1.0, 3))
    half = T95[2] * 1.0 / math.sqrt(3)  # t_{0.95, 2} s / sqrt(n) = 1.686
    assert check.bounds == pytest.approx((5.0 - half, 5.0 + half), abs=1e-3)
    assert (check.a.label, check.a.stats.mean, check.a.stats.n) == (
        "MiB+UCD",
        pytest.approx(57.0),
        3,
    )
    assert (check.b.stats.mean, check.b.stats.std) == pytest.approx((52.0, 2.0))


def test_missing_runs_are_named_not_dropped(results):
    results(B55, "mib", {1: 0.5, 2: 0.5})
    result = evaluate_claim(collect(results.root), claim("greater", **GREATER), embedded=True)
    assert result.verdict == MISSING
    assert result.missing == ["mib_ucd on digits/5-5/disjoint"]
    # without --embedded the claim's paper benchmark itself is looked for
    result = evaluate_claim(collect(results.root), claim("greater", **GREATER))
    assert result.missing == ["mib_ucd on voc/15-5/disjoint", "mib on voc/15-5/disjoint"]


def test_every_claim_of_the_file_is_listed_on_an_empty_summary(tmp_path):
    (tmp_path / "r").mkdir()
    results = evaluate_claims(collect(tmp_path / "r"), embedded=True)
    assert [r.claim.id for r in results] == [c.id for c in load_claims()[1]]
    assert {r.verdict for r in results} == {MISSING}
    assert all(r.missing for r in results)


# ----------------------------------------------------------------- combining checks


def _checks(*verdicts: str) -> list[Check]:
    return [Check("b", "x", verdict=v) for v in verdicts]


@pytest.mark.parametrize(
    ("verdicts", "every", "most"),
    [
        ((HOLDS, HOLDS), HOLDS, HOLDS),
        ((HOLDS, FAILS), FAILS, FAILS),  # most: half do not hold
        ((HOLDS, HOLDS, FAILS), FAILS, HOLDS),
        ((HOLDS, INCONCLUSIVE), INCONCLUSIVE, INCONCLUSIVE),
        ((HOLDS, HOLDS, INCONCLUSIVE), INCONCLUSIVE, HOLDS),
        ((HOLDS, MISSING), INCONCLUSIVE, INCONCLUSIVE),  # the missing one could fail
        ((HOLDS, HOLDS, MISSING), INCONCLUSIVE, HOLDS),  # 2 of 3 hold whatever it shows
        ((FAILS, MISSING), FAILS, FAILS),
        ((HOLDS, NO_COUNTERPART), HOLDS, HOLDS),  # not runnable on digits: not counted
        ((MISSING, NO_COUNTERPART), MISSING, MISSING),
        ((INCONCLUSIVE, INCONCLUSIVE), INCONCLUSIVE, INCONCLUSIVE),
    ],
)
def test_combine(verdicts, every, most):
    assert combine(_checks(*verdicts), "every") == every
    assert combine(_checks(*verdicts), "most") == most


# ----------------------------------------------------------------- each kind


def test_ratio_below_ft_forgets(results):
    # disjoint: step 0 80/82 %, last 2/3 %: d = 8-2, 8.2-3 = 6, 5.2 -> holds
    results(B55, "ft", {1: (0.02, 0.4), 2: (0.03, 0.4)}, step0={1: 0.80, 2: 0.82})
    # overlapped: keeps 20 % of its old classes: d = 8-16, 8-15 -> does not hold
    results("digits/5-5/overlapped", "ft", {1: (0.16, 0.4), 2: (0.15, 0.4)})
    c = claim("ratio_below", method="ft", metric="old", ratio=0.1, on="any")
    result = evaluate_claim(collect(results.root), c)
    disjoint, overlapped = result.checks
    assert disjoint.verdict == HOLDS and disjoint.diff.mean == pytest.approx(5.6)
    assert (disjoint.a.stats.mean, disjoint.b.stats.mean) == pytest.approx((8.1, 2.5))
    assert overlapped.verdict == FAILS and overlapped.diff.mean == pytest.approx(-7.5)
    assert result.verdict == FAILS


def test_upper_bound(results):
    results(B55, "joint", {1: 0.75, 2: 0.76})
    results(B55, "mib", {1: 0.50, 2: 0.52})
    results(B55, "ft", {1: 0.20, 2: 0.22})
    results("digits/5-5/overlapped", "joint", {1: 0.60, 2: 0.61})
    results("digits/5-5/overlapped", "mib", {1: 0.70, 2: 0.72})  # above Joint
    results("digits/5-1/disjoint", "mib", {1: 0.3, 2: 0.3})  # no Joint there: out of scope
    c = claim("upper_bound", method="joint", metric="all", on="any")
    result = evaluate_claim(collect(results.root), c)
    verdicts = {(ch.benchmark, ch.comparison): ch.verdict for ch in result.checks}
    assert verdicts == {
        (B55, "Joint - FT, all"): HOLDS,
        (B55, "Joint - MiB, all"): HOLDS,
        ("digits/5-5/overlapped", "Joint - MiB, all"): FAILS,
    }
    assert result.verdict == FAILS


def test_best_of_table8_on_the_embedded_benchmark(results):
    results(B55, "mib_ucd", {1: 0.60, 2: 0.62, 3: 0.61})
    for variant, v in (("tau1", 0.50), ("tau0.1", 0.55), ("tau0.05", 0.58), ("tau0.01", 0.59)):
        results(B55, f"mib_ucd-{variant}", {1: v, 2: v + 0.01, 3: v + 0.005})
    result = evaluate_claim(
        collect(results.root),
        claim("best_of", best="mib_ucd", family="table8", metric="all"),
        embedded=True,
        resolution=0.0,  # the last pair's lower bound is 0.66 point: below the file's 1.0
    )
    ade, *digits = result.checks
    assert (ade.benchmark, ade.verdict) == ("ade/100-50/disjoint", NO_COUNTERPART)
    assert [c.comparison for c in digits] == [
        f"Temperature 0.07 - Temperature {t}, all" for t in ("1", "0.1", "0.05", "0.01")
    ]
    assert [c.verdict for c in digits] == [HOLDS] * 4
    # 60 - 59, 62 - 60, 61 - 59.5: d = 1, 2, 1.5, s 0.5, t = 5.2 > 2.92
    assert digits[-1].diff.mean == pytest.approx(1.5)
    assert result.verdict == HOLDS


def test_greater_at_every_batch_size(results):
    for b, (mib, ucd) in {4: (0.40, 0.45), 24: (0.50, 0.48)}.items():
        suffix = "" if b == 24 else f"-bs{b}"
        results(B55, f"mib{suffix}", {1: mib, 2: mib + 0.01})
        results(B55, f"mib_ucd{suffix}", {1: ucd, 2: ucd + 0.01})
    c = claim("greater", a="mib_ucd", b="mib", metrics=["all"], batch_sizes_of="figure11")
    result = evaluate_claim(collect(results.root), c, embedded=True)
    by_size = {ch.comparison.rsplit(" ", 1)[1]: ch for ch in result.checks}
    assert list(by_size) == ["2", "4", "8", "12", "24"]
    assert by_size["4"].verdict == HOLDS and by_size["4"].comparison.startswith("MiB+UCD - MiB")
    assert by_size["24"].verdict == FAILS
    assert by_size["2"].missing == (
        "mib_ucd-bs2 on digits/5-5/disjoint",
        "mib-bs2 on digits/5-5/disjoint",
    )
    assert result.verdict == FAILS  # at batch 24 MiB+UCD is below MiB


def test_gain_grows_with_the_number_of_steps(results):
    # gain on 5-1: 6, 7 points; on 5-5: 1, 2 points -> d = 5, 5
    results("digits/5-1/disjoint", "mib", {1: 0.30, 2: 0.30})
    results("digits/5-1/disjoint", "mib_ucd", {1: 0.36, 2: 0.37})
    results(B55, "mib", {1: 0.50, 2: 0.50})
    results(B55, "mib_ucd", {1: 0.51, 2: 0.52})
    c = claim(
        "gain_grows",
        a="mib_ucd",
        b="mib",
        metric="all",
        task_pairs=[["voc/15-1", "voc/15-5"], ["voc/10-1", "voc/10-10"]],
        settings=["disjoint", "overlapped"],
    )
    result = evaluate_claim(collect(results.root), c, embedded=True)
    dis, ov, *unmapped = result.checks
    assert dis.benchmark == "digits/5-1 vs 5-5/disjoint" and dis.verdict == HOLDS
    assert (dis.a.stats.mean, dis.b.stats.mean, dis.diff.mean) == pytest.approx((6.5, 1.5, 5.0))
    assert ov.verdict == MISSING and "mib_ucd on digits/5-1/overlapped" in ov.missing
    assert [u.verdict for u in unmapped] == [NO_COUNTERPART] * 2  # digits has no 10-1
    assert result.verdict == INCONCLUSIVE  # the overlapped pair could still fail


# ----------------------------------------------------------------- the file


def test_claims_file_covers_the_paper():
    rule, claims = load_claims()
    kinds = {c.id: c.kind for c in claims}
    assert {
        "ft_forgets": "ratio_below",
        "joint_upper_bound": "upper_bound",
        "mib_ucd_beats_mib": "greater",
        "plop_ucd_beats_plop": "greater",
        "ucd_gain_grows_with_steps": "gain_grows",
        "pixel_beats_segment_contrastive": "greater",
        "cd_beats_pixel_contrastive": "greater",
        "ucd_beats_cd": "greater",
        "temperature_0.07_best": "best_of",
        "lambda_0.01_best": "best_of",
        "mib_ucd_beats_mib_every_batch_size": "greater",
    }.items() <= kinds.items()
    assert rule.level == 0.95 and rule.percent == "95 %" and rule.resolution == 1.0
    assert "lower = mean(d) - q s / sqrt(n)" in rule.text and "ddof = 1" in rule.text
    assert all(c.where and c.text for c in claims)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "bigger"}, "claim c: unknown kind 'bigger'"),
        ({"a": "nosuch"}, "claim c: unknown method 'nosuch'"),
        ({"metrics": ["mean"]}, r"claim c: metric\(s\) \['mean'\]"),
        ({"on": "table42"}, "unknown table or figure 'table42'"),
        ({"on": ["voc/15-5"]}, "must read 'dataset/task/setting'"),
        ({"quantifier": "some"}, "quantifier must be 'every' or 'most'"),
        ({"text": ""}, "claim c: missing 'text'"),
    ],
)
def test_bad_claims_are_rejected(change, message):
    raw = {"id": "c", "text": "t", "where": "w", "kind": "greater", **copy.deepcopy(GREATER)}
    raw.update(change)
    with pytest.raises(ValueError, match=message):
        parse_claims({"claims": [raw]})


def test_incomplete_or_repeated_claims_are_rejected():
    raw = {"id": "c", "text": "t", "where": "w", "kind": "greater"}
    with pytest.raises(ValueError, match="claim c: kind greater needs field.s. a, b, metrics"):
        parse_claims({"claims": [raw]})
    with pytest.raises(ValueError, match="claim 'c': every claim needs a unique id"):
        parse_claims({"claims": [{**raw, **GREATER}] * 2})
    with pytest.raises(ValueError, match="defines no claim"):
        parse_claims({"claims": []})


def test_nan_values_are_not_counted(results):
    results(B55, "mib", {1: 0.5, 2: 0.5})
    results(B55, "mib_ucd", {1: 0.6, 2: 0.6})
    df = collect(results.root)
    df.loc[(df["method"] == "mib") & (df["seed"] == 2), [f"iou_{c}" for c in range(1, 11)]] = (
        math.nan
    )
    (check,) = evaluate_claim(df, claim("greater", **GREATER), embedded=True).checks
    assert check.diff.n == 1 and check.reason == "fewer than 2 seeds"
