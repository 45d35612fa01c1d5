"""tests/ci_strict.py: under CI=true a skip fails with its reason; allowed skips stay skips."""

from __future__ import annotations

import pytest
from ci_strict import ALLOWED_SKIPS

SKIPS = """
import pytest

def test_runtime_skip():
    pytest.skip("pdflatex not installed")

@pytest.mark.skipif(True, reason="needs a local SLURM cluster")
def test_marker_skip():
    pass

@pytest.mark.xfail(reason="known to break without snakemake")
def test_xfail():
    assert False

def test_allowed_skip():
    pytest.skip("needs a CUDA device: compares bf16 kernels")

def test_passes():
    pass
"""


def run(pytester: pytest.Pytester, ci: str | None, **modules: str) -> pytest.RunResult:
    """Run test modules (new ones, if given) in a fresh pytest session with the plugin, CI=`ci`."""
    if modules:
        pytester.makepyfile(**modules)
    with pytest.MonkeyPatch.context() as mp:
        if ci is None:
            mp.delenv("CI", raising=False)
        else:
            mp.setenv("CI", ci)
        return pytester.runpytest("-p", "ci_strict", "-rA")


def test_without_ci_skips_stay_skips(pytester):
    result = run(pytester, None, test_skips=SKIPS)
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)
    assert run(pytester, "false").ret == pytest.ExitCode.OK


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_under_ci_skips_fail_with_their_reason(pytester, ci):
    result = run(pytester, ci, test_skips=SKIPS)
    # a skip in setup (a skipif marker) fails as a setup error, like any failing setup
    result.assert_outcomes(passed=1, failed=2, errors=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    for line in (
        "CI=true: skipped tests fail*",
        "ERROR *::test_marker_skip - CI=true: *not allowed: needs a local SLURM cluster (*",
        "FAILED *::test_runtime_skip - CI=true: *not allowed: pdflatex not installed (*",
        "FAILED *::test_xfail - CI=true: *not allowed: xfail: known to break without snakemake (*",
        "SKIPPED * needs a CUDA device: compares bf16 kernels",
    ):
        result.stdout.fnmatch_lines([line])


def test_under_ci_a_module_level_importorskip_is_a_collection_error(pytester):
    module = 'import pytest\nsnakefmt = pytest.importorskip("no_such_module_xyz")\n'
    result = run(pytester, "true", test_module=module, test_other="def test_a():\n    pass\n")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*not allowed: could not import 'no_such_module_xyz'*"])
    result.stdout.no_fnmatch_line("*1 passed*")  # the session stops: nothing is reported green
    assert run(pytester, None).ret == pytest.ExitCode.OK


def test_every_allowed_skip_says_why():
    assert ALLOWED_SKIPS, "the allow-list exists"
    for prefix, why in ALLOWED_SKIPS.items():
        assert len(prefix.split()) >= 3 and len(why.split()) >= 8, prefix
