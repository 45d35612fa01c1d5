"""Every grid resolves as it did when tests/golden/resolution.json was written: the same run
config, training key, shared training and checkpoint for every (cell, seed, step) of the
default, paper, embedded, calibration and rehearsal grids. A refactor of the resolution must
leave this file unchanged; a change of behaviour rewrites it on purpose
(``python -m tests.test_resolution_snapshot --write``) and says why in its commit."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from ucd.facts.config import config_hash, deep_merge
from ucd.planning.plan import Plan, training_key

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "resolution.json"
GRIDS = {
    "default": [],
    "paper": ["config/paper.yaml"],
    "embedded": ["config/embedded.yaml"],
    "calibration": ["config/calibration.yaml"],
    "rehearsal": ["config/paper.yaml", "config/rehearsal.yaml"],
}


def _digest(record: dict[str, Any]) -> str:
    blob = json.dumps(record, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def resolution(files: list[str]) -> dict[str, str]:
    """(cell/seed/step) -> digest of what the plan resolves for it."""
    config: dict = {}
    for name in ("config.yaml", *files):
        config = deep_merge(config, yaml.safe_load((REPO / name).read_text()))
    plan = Plan(config)
    out = {}
    for cell in plan.cells:
        for seed in plan.seeds:
            for step in plan.steps(cell.dataset, cell.task, cell.method):
                run = plan.run(cell, step, seed)
                shared = plan.shared_run(cell, step, seed)
                out[f"{cell.path}/seed{seed}/step{step}"] = _digest({
                    "run": run.to_dict(), "key": config_hash(training_key(run)),
                    "group": plan.group(cell, step, seed),
                    "shared": None if shared is None else shared.to_dict(),
                    "checkpoint": plan.checkpoint(cell, seed, step)})
    return out


def test_every_grid_resolves_as_before() -> None:
    golden = json.loads(GOLDEN.read_text())
    for grid, files in GRIDS.items():
        now = resolution(files)
        before = golden[grid]
        assert now.keys() == before.keys(), (
            f"{grid}: steps added {sorted(now.keys() - before.keys())[:5]}, "
            f"dropped {sorted(before.keys() - now.keys())[:5]}")
        changed = [k for k in now if now[k] != before[k]]
        assert not changed, f"{grid}: {len(changed)} steps resolve differently, e.g. {changed[:5]}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.test_resolution_snapshot --write")
    GOLDEN.write_text(json.dumps({g: resolution(f) for g, f in GRIDS.items()}, indent=0,
                                 sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
