"""Two replicates of a run on different floating-point paths, and their claims side by side.

A verdict is reproducible when a replicate that changes only the floating-point path (as
another machine does) agrees. Replicate A runs with the machine's native CPU kernels,
replicate B with ``ATEN_CPU_CAPABILITY=default`` (PyTorch's portable kernels: other
vectorisation, other rounding), each from an empty results directory; nothing else differs
(seeds, data, configs). Then every claim's verdict of both is printed with its lower and upper
bounds, and the largest change of any mIoU of ``summary.csv`` between the two.

    python benchmarks/replicates.py                      # the default run, twice
    python benchmarks/replicates.py --cores 2 --configfile config/calibration.yaml
    python benchmarks/replicates.py --only portable      # one: results/replicates/portable
    python benchmarks/replicates.py --compare results/rep-a results/rep-b   # no training

Each replicate's Snakemake wall time is printed with the CPU model and the step-0
images/s of its summary.csv, so that another machine can scale it.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from ucd.facts.config import deep_merge  # noqa: E402
from ucd.reporting.aggregate import ID_COLUMNS, read_summary  # noqa: E402
from ucd.reporting.claims import evaluate_claims  # noqa: E402

REPLICATES = {"native": {}, "portable": {"ATEN_CPU_CAPABILITY": "default"}}
MIOU = ("miou_old", "miou_new", "miou_all")


def cpu_model() -> str:
    """lscpu's model name (platform's processor where lscpu is missing)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def overlay(results: Path, configfiles: list[str]) -> Path:
    """A config file that moves the run into `results`: `results` itself, and the root of every
    generated dataset (the workflow refuses a generated root outside RESULTS/data)."""
    config: dict = {}
    for name in ("config.yaml", *configfiles):
        config = deep_merge(config, yaml.safe_load((REPO / name).read_text()))
    roots = {name: {"root": f"{results}/data/{name}"}
             for name, ds in config["datasets"].items() if ds.get("generate")}
    path = results.parent / f"{results.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"results": str(results), "datasets": roots}))
    return path


def run(results: Path, env: dict[str, str], cores: int, configfiles: list[str]) -> float:
    """``snakemake all_tables`` into `results` with `env` added; its wall time (s)."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), "all_tables",
           "--configfile", *configfiles, str(overlay(results, configfiles))]
    start = time.monotonic()
    subprocess.run(cmd, cwd=REPO, env={**os.environ, **env}, check=True)
    return time.monotonic() - start


def compare(a: Path, b: Path, embedded: bool = True) -> int:
    """Print both replicates' verdicts per claim and the largest mIoU that moved."""
    sa, sb = read_summary(a / "summary.csv"), read_summary(b / "summary.csv")
    ra, rb = evaluate_claims(sa, embedded=embedded), evaluate_claims(sb, embedded=embedded)
    differ = 0
    print(f"{'claim':<34} {'A: ' + a.name:<24} {'B: ' + b.name:<24}")
    for x, y in zip(ra, rb):
        same = x.verdict == y.verdict
        differ += not same
        print(f"{x.claim.id:<34} {x.verdict:<24} {y.verdict:<24}{'' if same else '  DIFFERS'}")
        for cx, cy in zip(x.checks, y.checks):
            print(f"    {cx.benchmark} {cx.comparison}"[:64].ljust(64)
                  + f" A [{_b(cx.bounds[0])}, {_b(cx.bounds[1])}]"
                  f"  B [{_b(cy.bounds[0])}, {_b(cy.bounds[1])}]")
    merged = sa.merge(sb, on=ID_COLUMNS, suffixes=("_a", "_b"))
    change = {m: (merged[f"{m}_a"] - merged[f"{m}_b"]).abs() for m in MIOU}
    metric = max(MIOU, key=lambda m: change[m].max(skipna=True))
    row = merged.loc[change[metric].idxmax()]
    where = "/".join(str(row[k]) for k in ID_COLUMNS)
    print(f"\nlargest change between the replicates: {100 * change[metric].max():.2f} points "
          f"of {metric} ({where}); rows compared: {len(merged)} (A {len(sa)}, B {len(sb)})")
    for name, s in (("A", sa), ("B", sb)):
        step0 = s[(s["step"] == 0) & (s["method"] == "ft")]["images_per_s"]
        print(f"{name}: step-0 images/s (summary.csv, ft rows): "
              f"{', '.join(f'{v:.1f}' for v in step0)}")
    print(f"verdicts that differ: {differ} of {len(ra)}\n")
    print(moved_table(merged))
    return 1 if differ else 0


def moved_table(merged: pd.DataFrame) -> str:
    """Markdown: per benchmark and method, mIoU after the last step (mean over seeds) of A and
    of B, and the largest change of one seed's cell between them (points)."""
    keys = ["dataset", "task", "setting", "method"]
    last = merged[merged["step"] == merged.groupby(keys)["step"].transform("max")]
    lines = ["| benchmark | method | " + " | ".join(
        f"{m[5:]} A / B (max moved)" for m in MIOU) + " | seeds |", "|---" * 6 + "|"]
    for key, g in last.groupby(keys, sort=True):
        cells = []
        for m in MIOU:
            a, b = g[f"{m}_a"], g[f"{m}_b"]
            moved = (a - b).abs().max(skipna=True)
            cells.append("-" if a.isna().all() else
                         f"{100 * a.mean():.1f} / {100 * b.mean():.1f} ({100 * moved:.1f})")
        seeds = ",".join(str(s) for s in sorted(g["seed"]))
        lines.append(f"| {'/'.join(map(str, key[:3]))} | {key[3]} | {' | '.join(cells)} "
                     f"| {seeds} |")
    return "\n".join(lines)


def _b(x: float) -> str:
    """A check's bound as claims.md prints it (already in mIoU points)."""
    return "-" if x != x else f"{x:+.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--configfile", nargs="*", default=[])
    p.add_argument("--out", default="results/replicates", help="parent of the two results")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"),
                   help="compare two existing results directories (no training)")
    p.add_argument("--only", choices=sorted(REPLICATES),
                   help="run this replicate alone (compare it with another run by --compare)")
    a = p.parse_args(argv)
    if a.compare:
        return compare(*a.compare)
    dirs = []
    for name, env in REPLICATES.items():
        if a.only and name != a.only:
            continue
        results = Path(a.out) / name
        if (results / "summary.csv").exists():
            raise SystemExit(f"{results} holds a run already: remove it for a fresh replicate")
        wall = run(results, env, a.cores, a.configfile)
        print(f"replicate {name} ({env or 'native kernels'}): {wall / 60:.1f} min wall, "
              f"{a.cores} cores of {cpu_model()}, load before: {os.getloadavg()[0]:.2f}")
        dirs.append(results)
    return compare(*dirs) if len(dirs) == 2 else 0


if __name__ == "__main__":
    sys.exit(main())
