"""Helpers of the workflow tests: run Snakemake on the repository's Snakefile in a scratch
working directory, parse the jobs of a dry run, merge configs as Snakemake does."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("snakemake")  # every workflow test needs it

from ucd.cost.dag import Job, parse_dry_run  # noqa: E402  (one parser of dry runs)

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"
RULES = REPO / "workflow" / "rules"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def snakemake(workdir: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's Snakefile with `workdir` as working directory."""
    env = {
        **os.environ,
        # jobs call `python` (-m ucd, scripts): the interpreter running the tests
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def dry_run(workdir: Path, *args: str) -> list[Job]:
    """Jobs of a dry run; fails the test with Snakemake's output if it does not succeed."""
    proc = snakemake(workdir, "-n", *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return parse_dry_run(proc.stdout + proc.stderr)


def by_rule(jobs: list[Job], rule: str) -> list[Job]:
    return [j for j in jobs if j.rule == rule]


def default_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def paper_config() -> dict:
    """config.yaml with config/paper.yaml merged over it, as `--configfile` merges them."""
    return merged(default_config(), yaml.safe_load((REPO / "config" / "paper.yaml").read_text()))


def merged(base: dict, *overrides: dict) -> dict:
    """Merge configs as Snakemake does for --configfile/--config (dicts merge, values replace)."""
    from snakemake.utils import update_config

    out = copy.deepcopy(base)
    for o in overrides:
        update_config(out, copy.deepcopy(o))
    return out

