"""pytest plugin: under CI=true a skipped (or xfailed) test fails, with the reason it gave.

A skip usually means a component is missing (pdflatex, the SLURM cluster, a package, In-Place
ABN), and a CI that reports it as a pass hides a whole area. Only the skips listed in
ALLOWED_SKIPS stay skips: they are legitimate on a CPU-only CI machine, each says why. Loaded by
tests/conftest.py; a skip at import time (pytest.importorskip in a module) becomes a collection
error, which stops the session.
"""

from __future__ import annotations

import os

import pytest

# reason prefix -> why that skip is legitimate on CI (CPU-only, no GPU, no CUDA toolkit)
ALLOWED_SKIPS: dict[str, str] = {
    "needs a CUDA device": "CI machines have no GPU; such a test checks a GPU-only code path",
    "no CUDA toolkit (nvcc)": (
        "In-Place ABN is compiled with nvcc; without a toolkit `make iabn` cannot build it and "
        "the pure-PyTorch twin runs instead, which other tests check against a hand computation"
    ),
}


def ci_strict() -> bool:
    """Whether skips fail: the CI environment variable is `true` (as CI services set it) or 1."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str | None:
    """The reason a skipped or xfailed report gives, or None when it did not skip."""
    if not report.skipped:
        return None
    if hasattr(report, "wasxfail"):
        return "xfail: " + str(report.wasxfail).removeprefix("reason: ")
    longrepr = report.longrepr
    message = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return message.removeprefix("Skipped: ")


def allowed(reason: str) -> bool:
    """Whether a skip's reason starts with one of ALLOWED_SKIPS (an xfail never does)."""
    return any(reason.startswith(prefix) for prefix in ALLOWED_SKIPS)


def enforce(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Under CI=true, turn a report that skipped for a reason not allowed into a failure."""
    reason = skip_reason(report)
    if reason is None or not ci_strict() or allowed(reason):
        return
    report.outcome = "failed"
    if hasattr(report, "wasxfail"):
        del report.wasxfail
    report.longrepr = (
        f"CI=true: a skip fails on CI, and this one is not allowed: {reason} (install what is "
        "missing; a skip legitimate on a CPU-only CI machine goes in ALLOWED_SKIPS, "
        "tests/ci_strict.py, with why)"
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """A test's setup, call or teardown that skipped."""
    report = yield
    enforce(report)
    return report


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_make_collect_report(collector: pytest.Collector) -> pytest.CollectReport:
    """A module that skipped while it was imported (e.g. pytest.importorskip at module level)."""
    report = yield
    enforce(report)
    return report


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say in the header that skips fail, so a CI log explains its own failures."""
    if not ci_strict():
        return None
    return f"CI=true: skipped tests fail, except reasons starting {sorted(ALLOWED_SKIPS)}"
