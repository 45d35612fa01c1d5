"""Break the engine's wiring on purpose, one breakage at a time, and print which tests catch it.

Each breakage edits one line of a copy of the repository (never the working tree), then runs
the wiring, method, loss and evaluation tests on that copy. A breakage that no test catches is
a hole in the suite; the script exits 1 when there is one.

    python benchmarks/wiring_mutations.py [--only NAME] [--tests tests/test_wiring.py ...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_wiring.py", "tests/losses/test_ucd.py", "tests/evaluation",
         "tests/methods/test_terms.py"]

# name: (file, exact text, replacement)
BREAKAGES = {
    "MiB init off": ("ucd/training/engine.py", "        term.adapt_model(model, spec)\n",
                     "        pass\n"),
    "255 policy off": ("ucd/training/engine.py", "ignore_to_background=spec.ignore_to_background",
                       "ignore_to_background=False"),
    "weights dropped": ("ucd/training/engine.py", "losses = {t.name: t.weight * t.loss(batch)",
                        "losses = {t.name: t.loss(batch)"),
    "UCD sigma forced to 1": ("ucd/losses/ucd.py", "    if uncertainty:\n        pr = ",
                              "    if False:\n        pr = "),
    "UCD term drops sigma": ("ucd/methods/terms/contrastive.py",
                             'uncertainty=self.params["uncertainty"]', "uncertainty=False"),
    "old model in train mode": ("ucd/training/engine.py", "old = copy.deepcopy(model).eval()",
                                "old = copy.deepcopy(model).train()"),
    "step k from random weights": ("ucd/training/engine.py",
                                   '    model.load_state_dict(prev["model"])\n', ""),
    "evaluation counts 255": ("ucd/evaluation/metrics.py", "valid = target != ignore_index",
                              "valid = target >= 0\n    target = target.clamp(max=n_classes - 1)"),
}


def run_broken(name: str, tests: list[str]) -> list[str]:
    """The tests that fail with breakage ``name`` applied to a copy of the repository."""
    path, old, new = BREAKAGES[name]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(
            ".git", ".venv", "results", ".snakemake", "__pycache__", ".pytest_cache"))
        text = (copy / path).read_text()
        if text.count(old) != 1:
            raise SystemExit(f"{name}: the text to break is not found once in {path}")
        (copy / path).write_text(text.replace(old, new))
        env = {**os.environ, "PYTHONPATH": str(copy), "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               *tests], cwd=copy, env=env,
                              capture_output=True, text=True)
    return re.findall(r"^FAILED (\S+)", proc.stdout, re.M)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(BREAKAGES))
    parser.add_argument("--tests", nargs="+", default=TESTS)
    args = parser.parse_args()
    holes = 0
    for name in [args.only] if args.only else BREAKAGES:
        failed = run_broken(name, args.tests)
        holes += not failed
        print(f"{name:28s} caught by {len(failed)} test(s)" + "".join(
            f"\n    {t}" for t in failed[:6]) + ("\n    ..." if len(failed) > 6 else ""),
            flush=True)
    return 1 if holes else 0


if __name__ == "__main__":
    raise SystemExit(main())
