"""The paper's claims (claims.yaml) evaluated on a summary: each claim split into checks
(A against B on one benchmark), each check judged on the seed-paired differences by a
one-sided t test at the level written in claims.yaml, and the checks combined into a
verdict by the rule written there."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ucd.reporting import claim_checks as C
from ucd.reporting.claim_checks import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    MISSING,
    NO_COUNTERPART,
    Check,
    judged,
)
from ucd.reporting.tables import get_spec, parse_benchmark, settings

CLAIMS_FILE = Path(__file__).with_name("claims.yaml")
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, MISSING)
KINDS = {  # kind -> required fields
    "greater": ("a", "b", "metrics"),
    "ratio_below": ("method", "metric", "ratio"),
    "upper_bound": ("method", "metric"),
    "best_of": ("best", "family", "metric"),
    "gain_grows": ("a", "b", "metric", "task_pairs", "settings"),
}
METRICS = ("old", "new", "all")


@dataclass(frozen=True)
class Claim:
    """One claim of claims.yaml; `fields` holds its kind's own fields."""

    id: str
    text: str
    where: str
    kind: str
    quantifier: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Rule:
    """How checks are judged and combined: the text of claims.yaml, its one-sided level and
    its resolution (mIoU points: the smallest difference a check may call resolved)."""

    text: str
    level: float
    resolution: float

    @property
    def percent(self) -> str:
        """The level as printed: "95 %"."""
        return f"{100 * self.level:g} %"


@dataclass(frozen=True)
class ClaimResult:
    """A claim, its checks and the verdict that combines them."""

    claim: Claim
    checks: list[Check]
    verdict: str

    @property
    def missing(self) -> list[str]:
        return list(dict.fromkeys(m for c in self.checks for m in c.missing))

    def count(self, verdict: str) -> int:
        return sum(c.verdict == verdict for c in self.checks)


# ----------------------------------------------------------------- the YAML


def _check_method(cid: str, method: object) -> str:
    """A method of tables.yaml or a variant `<method>-<name>` of one."""
    name = str(method)
    if name.split("-", 1)[0] not in settings()["methods"]:
        raise ValueError(f"claim {cid}: unknown method {name!r} (not in tables.yaml methods)")
    return name


def _check_fields(cid: str, kind: str, raw: dict) -> None:
    absent = [f for f in KINDS[kind] if f not in raw]
    if absent:
        raise ValueError(f"claim {cid}: kind {kind} needs field(s) {', '.join(absent)}")
    for key in ("a", "b", "method", "best"):
        if key in raw:
            _check_method(cid, raw[key])
    metrics = raw.get("metrics", [raw.get("metric")])
    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        raise ValueError(f"claim {cid}: metric(s) {bad or metrics} not one of {METRICS}")
    for key in ("family", "batch_sizes_of"):
        if key in raw:
            get_spec(str(raw[key]))  # raises, naming the valid ids
    if kind == "ratio_below" and not 0.0 < float(raw["ratio"]) <= 1.0:
        raise ValueError(f"claim {cid}: ratio {raw['ratio']} must lie in (0, 1]")
    if kind == "gain_grows":
        _check_gain_fields(cid, raw)
    on = raw.get("on", "any")
    if isinstance(on, list):
        for bench in on:
            parse_benchmark(bench)
    elif on != "any":
        get_spec(str(on))


def _check_gain_fields(cid: str, raw: dict) -> None:
    """task_pairs: [[dataset/task with more steps, dataset/task with fewer], ...]."""
    for pair in raw["task_pairs"]:
        ok = isinstance(pair, list) and len(pair) == 2
        if not ok or any(len(str(x).split("/")) != 2 for x in pair):
            raise ValueError(
                f"claim {cid}: task pair {pair!r} must read [dataset/task, dataset/task]"
            )
    bad = [s for s in raw["settings"] if s not in ("disjoint", "overlapped")]
    if bad:
        raise ValueError(f"claim {cid}: unknown setting(s) {bad}")


def parse_claims(data: dict) -> list[Claim]:
    """Validated claims of a claims.yaml mapping; errors name the claim and the problem."""
    claims, seen = [], set()
    for raw in data.get("claims") or []:
        cid = str(raw.get("id", ""))
        if not cid or cid in seen:
            raise ValueError(f"claim {cid!r}: every claim needs a unique id")
        seen.add(cid)
        kind = raw.get("kind")
        if kind not in KINDS:
            raise ValueError(f"claim {cid}: unknown kind {kind!r}; valid: {', '.join(KINDS)}")
        quantifier = raw.get("quantifier", "every")
        if quantifier not in ("every", "most"):
            raise ValueError(f"claim {cid}: quantifier must be 'every' or 'most'")
        for key in ("text", "where"):
            if not raw.get(key):
                raise ValueError(f"claim {cid}: missing {key!r}")
        _check_fields(cid, kind, raw)
        common = ("id", "text", "where", "kind", "quantifier")
        fields = {k: v for k, v in raw.items() if k not in common}
        text, where = (" ".join(str(raw[k]).split()) for k in ("text", "where"))
        claims.append(Claim(cid, text, where, kind, quantifier, fields))
    if not claims:
        raise ValueError("claims.yaml defines no claim")
    return claims


def parse_rule(data: dict) -> Rule:
    """The rule text, its one-sided level (`level`, in (0.5, 1)) and its resolution
    (`resolution`, mIoU points >= 0) of a claims.yaml mapping."""
    text = str(data.get("rule", "")).strip()
    if not text:
        raise ValueError("claims.yaml: missing 'rule' (how a verdict is reached)")
    level = data.get("level")
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0.5 < level < 1:
        raise ValueError(
            f"claims.yaml: 'level' must be the one-sided level of the test, a number in "
            f"(0.5, 1) such as 0.95 (got {level!r})"
        )
    resolution = data.get("resolution")
    if isinstance(resolution, bool) or not isinstance(resolution, int | float) or not (
        0 <= resolution < 100
    ):
        raise ValueError(
            f"claims.yaml: 'resolution' must be the smallest difference a check may call "
            f"resolved, in mIoU points, a number in [0, 100) such as 1.0 (got {resolution!r})"
        )
    return Rule(text, float(level), float(resolution))


@functools.cache
def _load(path: str, stamp: tuple[int, int]) -> tuple[Rule, tuple[Claim, ...]]:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    return parse_rule(data), tuple(parse_claims(data))


def load_claims(path: str | Path = CLAIMS_FILE) -> tuple[Rule, list[Claim]]:
    """(the rule and its level as written in the file, the claims), re-read when the file
    changes."""
    st = Path(path).stat()
    rule, claims = _load(str(path), (st.st_mtime_ns, st.st_size))
    return rule, list(claims)


# ----------------------------------------------------------------- evaluation


def combine(checks: list[Check], quantifier: str) -> str:
    """A claim's verdict from its checks, by the rule of claims.yaml: holds / does not hold
    only when no outcome of its missing checks could change that."""
    verdicts = [c.verdict for c in checks if c.verdict != NO_COUNTERPART]
    if all(v == MISSING for v in verdicts):
        return MISSING
    n, holds, fails = len(verdicts), verdicts.count(HOLDS), verdicts.count(FAILS)
    if quantifier == "every":
        if holds == n:
            return HOLDS
        return FAILS if fails else INCONCLUSIVE
    if holds > n / 2:
        return HOLDS
    return FAILS if fails >= n / 2 else INCONCLUSIVE


def _methods(claim: Claim) -> list[str]:
    """The methods a claim names (for the `any` scope)."""
    return [str(claim.fields[k]) for k in ("a", "b", "method", "best") if k in claim.fields]


def _judging(level: float | None, resolution: float | None) -> tuple[float, float]:
    """(level, resolution) to judge checks at: those given, claims.yaml's for any left None
    (the file is read only then)."""
    if level is None or resolution is None:
        rule = load_claims()[0]
        level = rule.level if level is None else level
        resolution = rule.resolution if resolution is None else resolution
    return level, resolution


def evaluate_claim(
    df: pd.DataFrame,
    claim: Claim,
    *,
    embedded: bool = False,
    level: float | None = None,
    resolution: float | None = None,
) -> ClaimResult:
    """Every check of one claim on the summary, judged at the one-sided `level` with the
    `resolution` (default: claims.yaml's), and its combined verdict."""
    f = claim.fields
    if claim.kind == "gain_grows":
        checks = C.gain_grows(df, f, embedded)
    else:
        blocks, checks = C.scope(df, f, _methods(claim), embedded)
        kind = {
            "greater": C.greater,
            "ratio_below": C.ratio_below,
            "upper_bound": C.upper_bound,
            "best_of": C.best_of,
        }[claim.kind]
        checks = checks + kind(df, f, blocks)
    level, resolution = _judging(level, resolution)
    checks = [judged(c, level, resolution) for c in checks]
    return ClaimResult(claim, checks, combine(checks, claim.quantifier))


def evaluate_claims(
    df: pd.DataFrame,
    claims: list[Claim] | None = None,
    *,
    embedded: bool = False,
    level: float | None = None,
    resolution: float | None = None,
) -> list[ClaimResult]:
    """Every claim (default: those of claims.yaml) on the summary, none left out, judged at
    the one-sided `level` with the `resolution` (default: claims.yaml's)."""
    claims = load_claims()[1] if claims is None else claims
    level, resolution = _judging(level, resolution)
    return [
        evaluate_claim(df, c, embedded=embedded, level=level, resolution=resolution)
        for c in claims
    ]
